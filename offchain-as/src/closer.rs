//! Closing channels on chain with the best receipt: by policy and on demand.
//!
//! A close first stops sales on the channel ([`Ledger::begin_close`]) so it claims
//! everything sold, then submits; a close interrupted by a crash or a node restart is
//! picked up again by the next pass, and a channel the chain no longer has is recorded as
//! closed (the contract deletes a channel when it is closed, so it closes at most once).
use crate::chain::{ChainError, ChannelReader, NodeChain};
use crate::ledger::{Ledger, LedgerError};
use protocol::{Balance, ChannelId};
use std::sync::{Arc, Mutex};

#[derive(Debug, thiserror::Error)]
pub enum CloseError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("no receipt held for channel {0}")]
    NoReceipt(ChannelId),
    #[error("ledger lock poisoned")]
    Poisoned,
}

/// What became of one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseOutcome {
    /// Closed now by this AS.
    Closed(crate::chain::Closed),
    /// The chain no longer has it (closed before, or claimed by the payer after expiry).
    AlreadyGone,
}

fn with_ledger<T>(
    ledger: &Arc<Mutex<Ledger>>,
    f: impl FnOnce(&mut Ledger) -> Result<T, LedgerError>,
) -> Result<T, CloseError> {
    let mut guard = ledger.lock().map_err(|_| CloseError::Poisoned)?;
    Ok(f(&mut guard)?)
}

/// Closes `channel` with the best receipt held for it.
pub async fn close_channel(
    chain: &NodeChain,
    ledger: &Arc<Mutex<Ledger>>,
    channel: ChannelId,
) -> Result<CloseOutcome, CloseError> {
    let read = chain.read_channel(channel).await?;
    if read.channel.is_none() {
        with_ledger(ledger, |l| l.mark_closed(channel, read.block))?;
        return Ok(CloseOutcome::AlreadyGone);
    }
    let best =
        with_ledger(ledger, |l| l.begin_close(channel))?.ok_or(CloseError::NoReceipt(channel))?;
    let closed = chain
        .close(channel, best.amount, &best.signature, best.proof.as_ref())
        .await?;
    with_ledger(ledger, |l| l.mark_closed(channel, closed.block))?;
    Ok(CloseOutcome::Closed(closed))
}

/// Should the policy close this channel now?
pub fn due(
    deposit: Balance,
    total: Balance,
    expires_at: u32,
    now: u32,
    remaining_below: Balance,
    blocks_before_expiry: u32,
) -> bool {
    deposit.saturating_sub(total) < remaining_below
        || u64::from(now) + u64::from(blocks_before_expiry) >= u64::from(expires_at)
}

/// One pass over every channel with a receipt that is not closed yet.
pub async fn pass(
    chain: &NodeChain,
    ledger: &Arc<Mutex<Ledger>>,
    remaining_below: Balance,
    blocks_before_expiry: u32,
) -> Vec<(ChannelId, Result<CloseOutcome, CloseError>)> {
    let channels = match with_ledger(ledger, |l| l.unclosed_channels()) {
        Ok(c) => c,
        Err(e) => return vec![(ChannelId(u64::MAX), Err(e))],
    };
    let mut results = Vec::new();
    for id in channels {
        let outcome = async {
            let read = chain.read_channel(id).await?;
            let (total, closing) = with_ledger(ledger, |l| Ok((l.total(id)?, l.is_closing(id)?)))?;
            let act = match read.channel {
                None => true,
                Some(c) => {
                    closing
                        || due(
                            c.deposit,
                            total,
                            c.expires_at,
                            read.block,
                            remaining_below,
                            blocks_before_expiry,
                        )
                }
            };
            if act {
                close_channel(chain, ledger, id).await.map(Some)
            } else {
                Ok(None)
            }
        }
        .await;
        match outcome {
            Ok(None) => {}
            Ok(Some(done)) => results.push((id, Ok(done))),
            Err(e) => results.push((id, Err(e))),
        }
    }
    results
}
