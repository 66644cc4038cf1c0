//! Settling and closing channels by policy, on every new best block, and on the
//! operator's word ([`Closer::now`]): one path for both.
//!
//! Each pass reads every channel the AS has sold on and not seen closed, plans every
//! close against the chain's capacity ([`ClosePlan`]: a crowd sharing a deadline is
//! begun early enough), decides with [`decide`], and for a close or a settle ahead of a
//! rotation *first* stops the sales it must claim ([`Store::begin_close`],
//! [`Store::end_epoch`], durable) and only then reads the receipt it claims, so nothing
//! sold is left out. Every settle and close of a pass goes out at once
//! ([`ClosingChain::submit`]: on the node, `Utility::force_batch` transactions sized
//! from the chain's limits, all sent together). A submission is given
//! `retry_after_blocks` to show in the finalized state before it is tried again, until
//! the channel's expiry. The closer is generic over the chain, so its decisions and its
//! loop are tested against a fake chain with a per-block capacity.
mod node;
mod plan;
mod policy;

pub use node::NodeChain;
pub use plan::{deadline, Capacity, ClosePlan, Full};
pub use policy::{decide, unpaid, Action, Holding, Policy};

use crate::ledger::{Ledger, LedgerError, Store};
use crate::view::{ChainView, ChannelRead, Heights};
use chain::ChainError;
use futures::future::join_all;
use protocol::{Balance, ChannelId, SignedReceipt};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// A settle or close to submit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Settle with this receipt (it names its channel).
    Settle(SignedReceipt),
    /// Close `channel`, with the best receipt if it claims anything unpaid.
    Close {
        /// The channel.
        channel: ChannelId,
        /// The receipt claimed.
        receipt: Option<SignedReceipt>,
    },
}

impl Op {
    /// The channel it acts on.
    pub fn channel(&self) -> ChannelId {
        match self {
            Op::Settle(receipt) => receipt.receipt.channel,
            Op::Close { channel, .. } => *channel,
        }
    }
}

/// What an included op did, from the contract's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// A settle paid `paid`, bringing the payee's total to `settled`.
    Settled {
        /// Paid by this settle.
        paid: Balance,
        /// The payee's total.
        settled: Balance,
    },
    /// A close paid the payee `paid` and the payer `refunded`.
    Closed {
        /// To the payee.
        paid: Balance,
        /// To the payer.
        refunded: Balance,
    },
}

/// What became of a submitted op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landed {
    /// In a best block, with its effect.
    Included {
        /// The block.
        block: u32,
        /// What it did.
        effect: Effect,
        /// Payments the chain refused, kept as owed by the contract: (account, amount).
        deferred: Vec<(protocol::AccountId32, Balance)>,
        /// The transaction it went in: its fee and the storage deposit the AS put on hold
        /// and got back (shared by every op of that transaction).
        transaction: TransactionCost,
    },
    /// Not submitted: its dry run was refused (the reason names the contract's error).
    Refused(String),
    /// Submitted and failed in its block.
    Failed(String),
}

/// What a transaction cost its signer beyond the value it moved (balances as decimal
/// strings in JSON, as everywhere on slotpay's wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct TransactionCost {
    /// The fee (tip included).
    #[serde(serialize_with = "decimal")]
    pub fee: Balance,
    /// Storage deposit put on hold.
    #[serde(serialize_with = "decimal")]
    pub storage_deposit_held: Balance,
    /// Storage deposit released.
    #[serde(serialize_with = "decimal")]
    pub storage_deposit_released: Balance,
}

fn decimal<S: serde::Serializer>(value: &Balance, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// The chain as the closer needs it.
pub trait ClosingChain: ChainView {
    /// How many closes the chain takes now: its limits over the heaviest close measured.
    fn capacity(&self) -> Capacity;
    /// Weighs `ops` without submitting them, so that [`Self::capacity`] knows them before
    /// any has to go out; whether each was weighed.
    fn measure(&self, ops: &[Op]) -> impl Future<Output = Vec<bool>> + Send;
    /// Submits `ops` together; one outcome per op, in order.
    fn submit(&self, ops: Vec<Op>) -> impl Future<Output = Result<Vec<Landed>, ChainError>> + Send;
}

/// What a pass did to one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// A settle landed in a best block.
    Settled {
        /// The channel.
        channel: ChannelId,
        /// The block.
        block: u32,
    },
    /// A close landed in a best block.
    Closed {
        /// The channel.
        channel: ChannelId,
        /// The block.
        block: u32,
    },
    /// The finalized chain no longer has it (closed, or claimed by the payer).
    Gone {
        /// The channel.
        channel: ChannelId,
    },
    /// Its dry run was refused.
    Refused {
        /// The channel.
        channel: ChannelId,
        /// Why.
        reason: String,
    },
    /// It failed (in its block, or reading the chain).
    Failed {
        /// The channel.
        channel: ChannelId,
        /// Why.
        reason: String,
    },
}

/// Why a pass, or an operator's close, did not run.
#[derive(Debug, thiserror::Error)]
pub enum CloserError {
    /// The chain failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The operator asked for what cannot be done.
    #[error("{0}")]
    Nothing(String),
}

/// The close plan the closer keeps and the sale path consults.
pub type SharedPlan = Arc<Mutex<ClosePlan>>;

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
    /// The shapes of close already weighed: `None` for a key's receipt, `Some(n)` for a
    /// member's with a proof of `n` siblings.
    measured: HashSet<Option<usize>>,
    plan: SharedPlan,
}

mod now;
mod pass;
pub use now::NowReport;

impl<S: ClosingChain> Closer<S> {
    /// A closer over `chain` and `ledger`, publishing its plan into `plan`.
    pub fn new(
        chain: S,
        ledger: Ledger,
        policy: Policy,
        retry_after_blocks: u32,
        plan: SharedPlan,
    ) -> Self {
        Self {
            chain,
            ledger,
            policy,
            retry_after_blocks,
            in_flight: HashMap::new(),
            unpaid_since: HashMap::new(),
            seen_closing: HashSet::new(),
            measured: HashSet::new(),
            plan,
        }
    }

    /// The chain it closes on.
    pub fn chain(&self) -> &S {
        &self.chain
    }

    /// The plan it keeps (the sale path consults it).
    pub fn plan(&self) -> SharedPlan {
        self.plan.clone()
    }

    /// A new plan for `policy` on `chain`: nothing planned yet.
    pub fn new_plan(chain: &S, policy: &Policy) -> SharedPlan {
        Arc::new(Mutex::new(ClosePlan::new(
            chain.capacity().per_block,
            policy.blocks_before_expiry,
        )))
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

/// Reads every channel of `ids` at once: with many channels expiring together, a pass
/// that read them one by one would spend the blocks its closes need.
async fn read_all<S: ChainView>(
    chain: &S,
    ids: &[ChannelId],
) -> Vec<Result<ChannelRead, ChainError>> {
    join_all(ids.iter().map(|id| chain.read(*id))).await
}

fn heights<S: ChainView>(chain: &S) -> Option<Heights> {
    chain.heights()
}

fn stop_and_read(
    action: Action,
    id: ChannelId,
    epoch: protocol::Epoch,
) -> impl FnOnce(&mut Store) -> Result<Option<SignedReceipt>, LedgerError> + Send + 'static {
    move |s: &mut Store| match action {
        Action::Close => Ok(s.begin_close(id)?.map(|w| w.best)),
        Action::SettleEnding => s.end_epoch(id, epoch),
        _ => Ok(None),
    }
}
