//! Settling and closing channels by policy, on every new best block.
//!
//! Each pass reads every channel the AS has sold on and not seen closed, decides with
//! [`policy::decide`], stops sales on the channels it will close ([`Store::begin_close`],
//! durable before anything is submitted, so a close claims everything ever sold), and
//! submits every settle and close of the pass together ([`Settlement::submit`]: on the
//! node, `Utility::force_batch` transactions of up to 16 items that fail independently;
//! more items go in further transactions, each sent once the previous one is in a best
//! block, never waiting for finality), not one close after another's finality. A
//! submission is given `retry_after_blocks` to show in the finalized state before it is
//! tried again, until the channel's expiry. The closer is generic over the chain, so its
//! decisions and its loop are tested against a fake chain.
pub mod policy;

use crate::ledger::{Ledger, LedgerError, Store};
use crate::view::{ChainView, Heights};
use chain::ChainError;
use futures::future::join_all;
use policy::{decide, unpaid, Action, Holding, Policy};
use protocol::{ChannelId, Claim};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;

/// A settle or close to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Settle {
        channel: ChannelId,
        claim: Claim,
    },
    Close {
        channel: ChannelId,
        claim: Option<Claim>,
    },
}

impl Op {
    pub fn channel(&self) -> ChannelId {
        match self {
            Op::Settle { channel, .. } | Op::Close { channel, .. } => *channel,
        }
    }
}

/// What became of a submitted op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landed {
    /// In a best block.
    Included { block: u32 },
    /// Not submitted: its dry run was refused (the reason names the contract's error).
    Refused(String),
    /// Submitted and failed in its block.
    Failed(String),
}

/// The chain as the closer needs it.
pub trait Settlement: ChainView {
    /// Submits `ops` together; one outcome per op, in order.
    fn submit(&self, ops: Vec<Op>) -> impl Future<Output = Result<Vec<Landed>, ChainError>> + Send;
}

/// What a pass did to one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Settled {
        channel: ChannelId,
        block: u32,
    },
    Closed {
        channel: ChannelId,
        block: u32,
    },
    /// The chain no longer has it (closed, or claimed by the payer after expiry).
    Gone {
        channel: ChannelId,
    },
    Refused {
        channel: ChannelId,
        reason: String,
    },
    Failed {
        channel: ChannelId,
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CloserError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// The policy closer's state between passes.
pub struct Closer<S> {
    chain: S,
    ledger: Ledger,
    policy: Policy,
    /// Blocks a submission may take to show in the finalized state before it is retried.
    retry_after_blocks: u32,
    /// Channels with a submission under way: the best block it landed in.
    in_flight: HashMap<ChannelId, u32>,
    /// Since which best block each channel has had something sold and unpaid.
    unpaid_since: HashMap<ChannelId, u32>,
    /// Channels found marked closing that this closer has already considered.
    seen_closing: HashSet<ChannelId>,
}

impl<S: Settlement> Closer<S> {
    pub fn new(chain: S, ledger: Ledger, policy: Policy, retry_after_blocks: u32) -> Self {
        Self {
            chain,
            ledger,
            policy,
            retry_after_blocks,
            in_flight: HashMap::new(),
            unpaid_since: HashMap::new(),
            seen_closing: HashSet::new(),
        }
    }

    pub fn chain(&self) -> &S {
        &self.chain
    }

    /// One pass over every channel the AS must settle or close.
    pub async fn pass(&mut self) -> Result<Vec<Report>, CloserError> {
        let Some(Heights {
            best: now,
            finalized,
        }) = self.chain.heights()
        else {
            return Ok(Vec::new());
        };
        let watched = self.ledger.run(|s: &mut Store| s.watched()).await?;
        let mut reports = Vec::new();
        let mut ops = Vec::new();
        let mut due = Vec::with_capacity(watched.len());
        for held in &watched {
            let id = held.channel;
            if let Some(&landed) = self.in_flight.get(&id) {
                if finalized < landed && now < landed.saturating_add(self.retry_after_blocks) {
                    continue;
                }
                self.in_flight.remove(&id);
            }
            due.push(held);
        }
        // All reads at once: with many channels expiring together, a pass that read them
        // one by one would spend the blocks its closes need.
        let chain = &self.chain;
        let reads = join_all(due.iter().map(|held| chain.read(held.channel))).await;
        for (held, read) in due.into_iter().zip(reads) {
            let id = held.channel;
            let read = match read {
                Ok(read) => read,
                Err(e) => {
                    reports.push(Report::Failed {
                        channel: id,
                        reason: e.to_string(),
                    });
                    continue;
                }
            };
            // A close begun elsewhere (the operator's `slotpay-as close`, or this process
            // before a restart) may still land: it gets the grace of a submission of our
            // own before we submit another, unless expiry is too near to wait.
            if held.closing && self.seen_closing.insert(id) && !self.in_flight.contains_key(&id) {
                if let Some(channel) = &read.channel {
                    let waited = now
                        .saturating_add(self.retry_after_blocks)
                        .saturating_add(self.policy.blocks_before_expiry);
                    if waited < channel.expires_at {
                        // As if it lands `retry_after_blocks` from now: until then, and
                        // until that block is final, it is given the chance to.
                        self.in_flight
                            .insert(id, now.saturating_add(self.retry_after_blocks));
                        continue;
                    }
                }
            }
            if let Some(channel) = &read.channel {
                if unpaid(channel, &held.best).0 > 0 {
                    self.unpaid_since.entry(id).or_insert(now);
                } else {
                    self.unpaid_since.remove(&id);
                }
            }
            let holding = Holding {
                best: &held.best,
                closing: held.closing,
                unpaid_since: self.unpaid_since.get(&id).copied(),
            };
            match decide(&self.policy, read.channel.as_ref(), &holding, now) {
                Action::Wait => {}
                Action::Forget => {
                    let block = read.block;
                    self.ledger.run(move |s| s.mark_closed(id, block)).await?;
                    self.unpaid_since.remove(&id);
                    self.seen_closing.remove(&id);
                    reports.push(Report::Gone { channel: id });
                }
                Action::Settle(claim) => ops.push(Op::Settle { channel: id, claim }),
                Action::Close(claim) => {
                    // Durable before the close is submitted: no sale can slip in after.
                    self.ledger.run(move |s| s.begin_close(id)).await?;
                    ops.push(Op::Close { channel: id, claim });
                }
            }
        }
        if ops.is_empty() {
            return Ok(reports);
        }
        let landed = self.chain.submit(ops.clone()).await?;
        for (op, landed) in ops.iter().zip(landed) {
            let channel = op.channel();
            reports.push(match (op, landed) {
                (Op::Settle { claim, .. }, Landed::Included { block }) => {
                    self.in_flight.insert(channel, block);
                    let (epoch, amount) = (claim.epoch, claim.amount);
                    self.ledger
                        .run(move |s| s.record_settlement(channel, epoch, amount, block))
                        .await?;
                    Report::Settled { channel, block }
                }
                (Op::Close { .. }, Landed::Included { block }) => {
                    self.in_flight.insert(channel, block);
                    Report::Closed { channel, block }
                }
                (_, Landed::Refused(reason)) => Report::Refused { channel, reason },
                (_, Landed::Failed(reason)) => Report::Failed { channel, reason },
            });
        }
        Ok(reports)
    }

    /// Runs a pass at every new best block (and at least every `interval`), for ever.
    pub async fn run(mut self, mut tick: watch::Receiver<u32>, interval: Duration) {
        loop {
            match self.pass().await {
                Ok(reports) => {
                    for report in reports {
                        match &report {
                            Report::Refused { .. } | Report::Failed { .. } => {
                                tracing::warn!(?report, "settle or close did not land; will retry")
                            }
                            _ => tracing::info!(?report, "closer"),
                        }
                    }
                }
                Err(e) => tracing::error!(error = %e, "closer pass failed; will retry"),
            }
            tokio::select! {
                changed = tick.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep(interval).await;
                    }
                }
                () = tokio::time::sleep(interval) => {}
            }
        }
    }
}
