//! When the AS settles or closes a channel: a pure function of the channel as the chain
//! has it, the best receipt the ledger holds, the close plan and the current block.
use crate::view::ChannelRead;
use protocol::{Authority, Balance, Channel, SignedReceipt};

/// The AS's settle and close policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Close once less than this is left of the deposit beyond what has been sold.
    pub remaining_below: Balance,
    /// The lead a close (or a settle ahead of a rotation) needs before its deadline: the
    /// closer's interval, a transaction's inclusion and the finality lag, in blocks
    /// (checked at start, see [`crate::Config::check_timing`]). The close plan starts
    /// a job at least this far ahead, earlier when many share a deadline.
    pub blocks_before_expiry: u32,
    /// Settle once this much is sold and not yet paid (`None`: never for this reason).
    pub settle_above: Option<Balance>,
    /// Settle once an unpaid sale is this many blocks old (`None`: never for this reason).
    pub settle_after_blocks: Option<u32>,
}

/// What one channel needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing now.
    Wait,
    /// The finalized chain no longer has it: record it closed.
    Forget,
    /// Settle the best receipt; the channel keeps selling.
    Settle,
    /// Stop sales of the current epoch, then settle its best receipt: a rotation is near.
    SettleEnding,
    /// Stop sales, then close with the best receipt if it claims anything not yet paid.
    Close,
}

/// What the AS holds for a channel, beside the chain's view.
#[derive(Debug, Clone)]
pub struct Holding<'a> {
    /// The best receipt of the latest epoch with a sale.
    pub best: &'a SignedReceipt,
    /// A close was begun (sales stopped): it must be finished.
    pub closing: bool,
    /// Since which block something sold is unpaid, as far as the closer has seen.
    pub unpaid_since: Option<u32>,
    /// The block from which the close plan has this channel's job under way.
    pub planned_start: Option<u32>,
}

/// What `best` would still pay on `channel` (as it stands now), and the receipt to present:
/// [`Channel::claimable`] above what was settled. A receipt of an epoch that has ended
/// pays nothing any more.
pub fn unpaid(channel: &Channel, best: &SignedReceipt) -> (Balance, Option<SignedReceipt>) {
    let unpaid = channel
        .claimable(&best.receipt)
        .map_or(0, |total| total.saturating_sub(channel.settled));
    (unpaid, (unpaid > 0).then(|| best.clone()))
}

/// Decides for one channel at best block `now`, from `read` (the chain's view brought to
/// `now`).
pub fn decide(policy: &Policy, read: &ChannelRead, holding: &Holding<'_>, now: u32) -> Action {
    let Some(channel) = &read.channel else {
        // Closed or claimed in a best block only: a fork could undo it; wait for finality.
        return if read.finalized_open {
            Action::Wait
        } else {
            Action::Forget
        };
    };
    let (unpaid, _) = unpaid(channel, holding.best);
    let reached =
        |block: u32| u64::from(now) + u64::from(policy.blocks_before_expiry) >= u64::from(block);
    let planned = holding.planned_start.is_some_and(|start| now >= start);
    let rotating = channel
        .rotation
        .is_some_and(|r| r.effective_at < channel.expires_at);
    if holding.closing || reached(channel.expires_at) || (planned && !rotating) {
        return Action::Close;
    }
    // Revoked: nothing more can be sold, so nothing is gained by waiting.
    if channel.authority == Authority::Revoked && channel.rotation.is_none() {
        return Action::Close;
    }
    let sold = channel
        .claimable(&holding.best.receipt)
        .unwrap_or(channel.settled);
    if channel.deposit.saturating_sub(sold) < policy.remaining_below {
        return Action::Close;
    }
    if unpaid == 0 {
        return Action::Wait;
    }
    // The current epoch's receipts stop counting when a rotation takes effect.
    if channel
        .rotation
        .is_some_and(|r| reached(r.effective_at) || planned)
    {
        return Action::SettleEnding;
    }
    if policy.settle_above.is_some_and(|above| unpaid >= above) {
        return Action::Settle;
    }
    if let (Some(after), Some(since)) = (policy.settle_after_blocks, holding.unpaid_since) {
        if now.saturating_sub(since) >= after {
            return Action::Settle;
        }
    }
    Action::Wait
}
