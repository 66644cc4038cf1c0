//! When the AS settles or closes a channel: a pure function of the channel as the chain
//! has it, the best receipt the ledger holds and the current block.
use crate::ledger::BestReceipt;
use protocol::{Authority, Balance, Channel, Claim};

/// The AS's settle and close policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Close once less than this is left of the deposit beyond what has been sold.
    pub remaining_below: Balance,
    /// Close once the channel expires within this many blocks; settle once a rotation
    /// takes effect within this many blocks. It must cover the time a transaction takes to
    /// land (checked at start, see [`crate::config`]).
    pub blocks_before_expiry: u32,
    /// Settle once this much is sold and not yet paid (`None`: never for this reason).
    pub settle_above: Option<Balance>,
    /// Settle once an unpaid sale is this many blocks old (`None`: never for this reason).
    pub settle_after_blocks: Option<u32>,
}

/// What one channel needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Wait,
    /// The chain no longer has it: record it closed.
    Forget,
    Settle(Claim),
    /// Close, with the best receipt if it claims anything not yet paid.
    Close(Option<Claim>),
}

/// What the AS holds for a channel, beside the chain's view.
#[derive(Debug, Clone)]
pub struct Holding<'a> {
    /// The best receipt of the latest epoch with a sale.
    pub best: &'a BestReceipt,
    /// A close was begun (sales stopped): it must be finished.
    pub closing: bool,
    /// Since which block something sold is unpaid, as far as the closer has seen.
    pub unpaid_since: Option<u32>,
}

/// What the best receipt would still pay on `channel` (as it stands now), and the claim to
/// present. A receipt of an epoch that has ended pays nothing any more.
pub fn unpaid(channel: &Channel, best: &BestReceipt) -> (Balance, Option<Claim>) {
    if best.epoch != channel.epoch {
        return (0, None);
    }
    let claimed = channel.base.saturating_add(best.amount);
    let unpaid = claimed.saturating_sub(channel.settled);
    (unpaid, (unpaid > 0).then(|| best.claim()))
}

/// Decides for one channel at best block `now`. `channel` is the chain's view brought to
/// `now` (`None`: not open).
pub fn decide(
    policy: &Policy,
    channel: Option<&Channel>,
    holding: &Holding<'_>,
    now: u32,
) -> Action {
    let Some(channel) = channel else {
        return Action::Forget;
    };
    let (unpaid, claim) = unpaid(channel, holding.best);
    let deadline =
        |block: u32| u64::from(now) + u64::from(policy.blocks_before_expiry) >= u64::from(block);
    if holding.closing || deadline(channel.expires_at) {
        return Action::Close(claim);
    }
    // Revoked: nothing more can be sold, so nothing is gained by waiting.
    if channel.authority == Authority::Revoked && channel.rotation.is_none() {
        return Action::Close(claim);
    }
    let sold = if holding.best.epoch == channel.epoch {
        channel.base.saturating_add(holding.best.amount)
    } else {
        channel.settled
    };
    if channel.deposit.saturating_sub(sold) < policy.remaining_below {
        return Action::Close(claim);
    }
    let Some(claim) = claim else {
        return Action::Wait;
    };
    // The current epoch's receipts stop counting when a rotation takes effect.
    if channel.rotation.is_some_and(|r| deadline(r.effective_at)) {
        return Action::Settle(claim);
    }
    if policy.settle_above.is_some_and(|above| unpaid >= above) {
        return Action::Settle(claim);
    }
    if let (Some(after), Some(since)) = (policy.settle_after_blocks, holding.unpaid_since) {
        if now.saturating_sub(since) >= after {
            return Action::Settle(claim);
        }
    }
    Action::Wait
}
