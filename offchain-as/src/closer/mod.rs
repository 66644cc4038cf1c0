//! Settling and closing channels by policy, on every new best block, and on the
//! operator's word ([`Closer::now`]): one path for both.
//!
//! Each pass reads every channel the AS has sold on and not seen closed, plans every
//! close against the chain's capacity ([`ClosePlan`]: a crowd sharing a deadline is
//! begun early enough), decides with [`decide`], and for a close or a settle ahead of a
//! rotation *first* stops the sales it must claim ([`Ledger::begin_close`],
//! [`Ledger::end_epoch`], durable) and only then reads the receipt it claims, so nothing
//! sold is left out.
//!
//! Several AS instances may share one ledger: every one plans (so each stops its sales
//! where the plan begins a close), but only the holder of the ledger's closer lease
//! acts. It renews the lease at every pass; each of its writes carries the lease's number
//! ([`Fence`]) and is refused once another closer has taken over, and it submits nothing
//! once its lease may have run out by its own clock. Every settle and close of a pass goes out at once
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

use crate::ledger::{Fence, Ledger, LedgerError, Stop};
use crate::metrics::Metrics;
use crate::view::{ChainView, ChannelRead, Heights};
use chain::ChainError;
use futures::future::join_all;
use protocol::{Balance, ChannelId, SignedReceipt};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
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

/// Who a closer is to the ledger's lease, and how long a lease it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseTerms {
    /// The closer's name in the lease (for the operator: which instance leads).
    pub holder: String,
    /// How long an acquisition or renewal holds; the closer renews at every pass.
    pub duration: Duration,
}

impl LeaseTerms {
    /// Terms for this process: its host name, process id and a random suffix, so that a
    /// restarted process is a new holder.
    pub fn for_this_process(duration: Duration) -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "as".into());
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Self {
            holder: format!("{host}:{}:{nonce:08x}", std::process::id()),
            duration,
        }
    }
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
    lease: LeaseTerms,
    /// The lease this closer holds, and until when by its own clock.
    fence: Option<(Fence, Instant)>,
    metrics: Arc<Metrics>,
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
            lease: LeaseTerms::for_this_process(Duration::from_secs(10)),
            fence: None,
            metrics: Arc::default(),
        }
    }

    /// The same closer under the lease terms `lease` (default: this process, 10 s).
    pub fn with_lease(mut self, lease: LeaseTerms) -> Self {
        self.lease = lease;
        self
    }

    /// The same closer counting refused writes in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The ledger it writes to.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The lease it holds now, if any (as of its last pass).
    pub fn fence(&self) -> Option<Fence> {
        self.fence.map(|(fence, _)| fence)
    }

    /// Gives up the lease it holds, so that another closer takes over at once (a closer
    /// that stops).
    pub async fn release(&mut self) -> Result<(), LedgerError> {
        match self.fence.take() {
            Some((fence, _)) => self.ledger.release_lease(fence).await,
            None => Ok(()),
        }
    }

    /// Renews or acquires the lease: the fence to write under, or `None` while another
    /// closer leads.
    async fn hold_lease(&mut self) -> Result<Option<Fence>, CloserError> {
        let asked = Instant::now();
        let held = self.fence();
        let got = self
            .ledger
            .lease(&self.lease.holder, held, self.lease.duration)
            .await?;
        match (held, got) {
            (Some(old), Some(new)) if old != new => {
                tracing::info!(fence = new.number(), "closer lease acquired again")
            }
            (None, Some(new)) => tracing::info!(
                fence = new.number(),
                holder = %self.lease.holder,
                "closer lease acquired: this instance closes"
            ),
            (Some(old), None) => tracing::warn!(
                fence = old.number(),
                "closer lease lost: another instance closes"
            ),
            _ => {}
        }
        self.fence = got.map(|fence| (fence, asked + self.lease.duration));
        Ok(got)
    }

    /// Whether the lease may still be held by this closer's own clock, with a fifth of
    /// it to spare: nothing is submitted otherwise (the chain cannot check a fence).
    fn lease_live(&self) -> bool {
        self.fence
            .is_some_and(|(_, until)| Instant::now() + self.lease.duration / 5 < until)
    }

    /// A fenced write's outcome: a refusal means another closer leads now.
    fn fenced<T>(&mut self, result: Result<T, LedgerError>) -> Result<T, CloserError> {
        if let Err(LedgerError::Fenced { fence }) = &result {
            self.metrics.fenced();
            tracing::warn!(fence, "a write under a lost lease was refused");
            self.fence = None;
        }
        Ok(result?)
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
    pub async fn run(self, tick: watch::Receiver<u32>, interval: Duration) {
        self.run_until(tick, interval, std::future::pending()).await
    }

    /// [`Self::run`] until `stop` resolves (between passes); then gives the lease back,
    /// so that another instance takes over at once.
    pub async fn run_until(
        mut self,
        tick: watch::Receiver<u32>,
        interval: Duration,
        stop: impl Future<Output = ()>,
    ) {
        tokio::select! {
            () = self.passes(tick, interval) => {}
            () = stop => {}
        }
        if let Err(e) = self.release().await {
            tracing::warn!(error = %e, "give back the closer lease");
        }
    }

    async fn passes(&mut self, mut tick: watch::Receiver<u32>, interval: Duration) {
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

/// What `action` stops before its receipt is read.
fn stop_for(action: Action, id: ChannelId, epoch: protocol::Epoch) -> Option<Stop> {
    match action {
        Action::Close => Some(Stop::Close(id)),
        Action::SettleEnding => Some(Stop::EndEpoch(id, epoch)),
        _ => None,
    }
}
