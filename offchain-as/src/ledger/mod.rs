//! The AS's durable ledger, owned by one thread.
//!
//! [`Ledger`] is a cheap handle; every operation is a message to the ledger thread, which
//! alone holds the SQLite [`Store`]. Sales are group-committed: the thread takes every
//! sale waiting in its queue, decides them in order with the protocol's purchase rule
//! ([`protocol::check_terms`]) inside one transaction, and answers each only after that
//! transaction's single fsync. While one batch syncs the next gathers, so batches grow
//! with load. A sale (receipt, signer's spending, device counters) is durable before any
//! token for it is derived, let alone sent.
mod rows;
mod schema;
mod store;

pub use store::{
    counter_floor_now, ChannelState, Refused, SaleRecord, SellOutcome, Store, Watched, COUNTER_BITS,
};

use crate::metrics::Metrics;
use protocol::{
    check_terms, AccountId32, Authorized, Channel, ChannelId, Epoch, PurchaseError, Tariff,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// A ledger failure. Nothing is changed by a failed call.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The database failed.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file is another deployment's, or of a layout this build does not read.
    #[error("the ledger cannot be used: {0}")]
    Incompatible(String),
    /// No such device.
    #[error("unknown device {0:?}")]
    UnknownDevice(String),
    /// A row this code did not write.
    #[error("corrupt ledger row: {0}")]
    Corrupt(&'static str),
    /// A close is under way: nothing more is sold.
    #[error("channel {0} is being closed: it sells nothing more")]
    Closing(ChannelId),
    /// The epoch's last settle is under way (a rotation is near).
    #[error("channel {channel}'s epoch {epoch} is being settled before its authority rotates: it sells nothing more")]
    EpochEnded {
        /// The channel.
        channel: ChannelId,
        /// The epoch that ended.
        epoch: Epoch,
    },
    /// The ledger thread is gone.
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
    /// A device's 64-bit counter space is used up.
    #[error("device {device:?} has used up its counters")]
    CountersExhausted {
        /// The device.
        device: String,
    },
}

/// Why a sale did not happen. Nothing changed in the ledger.
#[derive(Debug, thiserror::Error)]
pub enum SaleError {
    /// The purchase rule refused.
    #[error(transparent)]
    Purchase(#[from] PurchaseError),
    /// The ledger refused or failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A retry of a recorded sale without the request secret that made it: the tokens go
    /// to their buyer only.
    #[error("this receipt was sold to the holder of another request secret")]
    NotTheBuyer,
}

/// An offer whose signature [`protocol::authorize`] has checked, against `channel` as it
/// stood at block `now`: everything the purchase rule needs inside the ledger thread.
#[derive(Debug, Clone)]
pub struct Offer {
    /// The device the slots are for.
    pub device: String,
    /// The checked receipt (with its signature, proof and signer).
    pub authorized: Authorized,
    /// The channel as the AS read it, brought to `now`.
    pub channel: Channel,
    /// The best block.
    pub now: u32,
    /// The digest of the buyer's request secret.
    pub secret_digest: [u8; 32],
}

/// A sale, new or repeated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sold {
    /// The sale.
    pub sale: SaleRecord,
    /// False when this repeats an earlier sale (a retried request): nothing was charged.
    pub fresh: bool,
}

/// Who the AS is and what it charges: the part of the purchase rule that is configuration.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// The AS's account: the payee of every channel it sells on.
    pub our_account: AccountId32,
    /// What it charges.
    pub tariff: Tariff,
}

/// Running totals the ledger has committed, shared with request handlers so that a stale
/// receipt is refused before any key recovery. Totals only grow, so a stale read is safe.
pub type SeenTotals = Arc<Mutex<HashMap<(ChannelId, Epoch), protocol::Balance>>>;

/// Most sales committed together: bounds one transaction's time and memory.
pub(crate) const MAX_BATCH: usize = 512;
/// Operations waiting beyond this make senders wait (back-pressure, not unbounded memory).
const QUEUE: usize = 8 * MAX_BATCH;

type Job = Box<dyn FnOnce(&mut Store) + Send>;
type SaleReply = oneshot::Sender<Result<Sold, SaleError>>;

enum Op {
    Sell(Box<Offer>, SaleReply),
    Run(Job),
}

/// A handle on the ledger thread. Clone freely; the thread ends when every handle is gone.
#[derive(Clone)]
pub struct Ledger {
    queue: mpsc::Sender<Op>,
    seen: SeenTotals,
}

fn stopped() -> LedgerError {
    LedgerError::Unavailable("the ledger thread stopped".into())
}

impl Ledger {
    /// Starts the ledger thread on `store`.
    pub fn start(store: Store, rules: Rules, metrics: Arc<Metrics>) -> Result<Self, LedgerError> {
        let seen: SeenTotals = Arc::new(Mutex::new(
            store
                .totals()?
                .into_iter()
                .map(|(c, e, t)| ((c, e), t))
                .collect(),
        ));
        let (queue, waiting) = mpsc::channel(QUEUE);
        let thread_seen = seen.clone();
        std::thread::Builder::new()
            .name("slotpay-ledger".into())
            .spawn(move || run(store, rules, metrics, thread_seen, waiting))
            .map_err(|e| LedgerError::Unavailable(format!("spawn the ledger thread: {e}")))?;
        Ok(Self { queue, seen })
    }

    /// The highest running total committed so far for `channel` in `epoch` (0 if none).
    pub fn seen_total(&self, channel: ChannelId, epoch: Epoch) -> protocol::Balance {
        self.seen
            .lock()
            .map(|m| m.get(&(channel, epoch)).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Sells `offer` in the next batch; returns once that batch is durable.
    pub async fn sell(&self, offer: Offer) -> Result<Sold, SaleError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Op::Sell(Box::new(offer), reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Runs `f` on the store in the ledger thread, in order with every other operation.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, LedgerError> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |store| {
            let _ = reply.send(f(store));
        });
        self.queue.send(Op::Run(job)).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn run(
    mut store: Store,
    rules: Rules,
    metrics: Arc<Metrics>,
    seen: SeenTotals,
    mut waiting: mpsc::Receiver<Op>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = waiting.blocking_recv() {
        let mut next = Some(first);
        while let Some(op) = next.take() {
            match op {
                Op::Run(job) => job(&mut store),
                Op::Sell(offer, reply) => {
                    batch.push((offer, reply));
                    // Gather every sale already waiting, up to the batch size; a job ends
                    // the batch (it runs after, keeping order).
                    while batch.len() < MAX_BATCH {
                        match waiting.try_recv() {
                            Ok(Op::Sell(offer, reply)) => batch.push((offer, reply)),
                            Ok(job) => {
                                next = Some(job);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    commit(&mut store, &rules, &metrics, &seen, &mut batch);
                }
            }
        }
    }
}

/// Decides and commits sales in order under one transaction: what the ledger thread does
/// with each batch. `Err`: the commit failed and nothing was sold.
fn decide_batch(
    store: &mut Store,
    rules: &Rules,
    offers: &[&Offer],
) -> Result<Vec<Result<Sold, SaleError>>, LedgerError> {
    let outcomes = store.sell_batch(offers, |i, spent| {
        let o = offers[i];
        let id = o.authorized.receipt().channel;
        check_terms(
            &rules.our_account,
            &rules.tariff,
            id,
            &o.channel,
            o.now,
            spent,
            &o.authorized,
        )
    })?;
    Ok(outcomes
        .into_iter()
        .zip(offers)
        .map(|(outcome, offer)| match outcome {
            Ok(SellOutcome::Sold(sale)) => Ok(Sold { sale, fresh: true }),
            Ok(SellOutcome::AlreadySold(sale)) => retry(store, sale, offer),
            Err(Refused::Rule(e)) => Err(e.into()),
            Err(Refused::Ledger(e)) => Err(e.into()),
        })
        .collect())
}

/// An offer of exactly a recorded sale's channel, epoch and amount: the same sale again
/// only for its buyer.
fn retry(store: &Store, sale: SaleRecord, offer: &Offer) -> Result<Sold, SaleError> {
    // In a group every member signs "total + price": the same amount from another member
    // is a lost race, not a retry, and must not get the winner's tokens. A retry is
    // matched on the recovered signer, never on signature bytes ...
    if sale.signer != offer.authorized.signer() {
        let best = store.best(sale.channel, sale.epoch)?;
        return Err(PurchaseError::StaleTotal {
            current_total: best.map_or(0, |b| b.receipt.amount),
        }
        .into());
    }
    // ... and on the request secret: the receipt is public once sold (it justifies the
    // running total), the secret never is.
    answer_retry(sale, &offer.secret_digest)
}

/// A recorded sale for whoever holds the secret whose digest is `digest`, or
/// [`SaleError::NotTheBuyer`].
pub fn answer_retry(sale: SaleRecord, digest: &[u8; 32]) -> Result<Sold, SaleError> {
    use subtle::ConstantTimeEq as _;
    match &sale.secret_digest {
        Some(kept) if bool::from(kept.ct_eq(digest)) => Ok(Sold { sale, fresh: false }),
        _ => Err(SaleError::NotTheBuyer),
    }
}

/// [`Store::sell_batch`] with the protocol's rule, exactly as the ledger thread runs it:
/// for tests and the fuzz target, which drive a [`Store`] directly.
#[cfg(feature = "_test_utils")]
pub fn sell_now(
    store: &mut Store,
    rules: &Rules,
    offers: &[&Offer],
) -> Result<Vec<Result<Sold, SaleError>>, LedgerError> {
    decide_batch(store, rules, offers)
}

/// Decides and commits one batch of sales, then answers each.
fn commit(
    store: &mut Store,
    rules: &Rules,
    metrics: &Metrics,
    seen: &SeenTotals,
    batch: &mut Vec<(Box<Offer>, SaleReply)>,
) {
    let (offers, replies): (Vec<Box<Offer>>, Vec<_>) = batch.drain(..).unzip();
    let refs: Vec<&Offer> = offers.iter().map(|o| &**o).collect();
    let outcomes = match decide_batch(store, rules, &refs) {
        Ok(outcomes) => outcomes,
        Err(e) => {
            // The commit failed: nothing in the batch was sold; each request hears why.
            let reason = e.to_string();
            for reply in replies {
                let _ = reply.send(Err(LedgerError::Unavailable(reason.clone()).into()));
            }
            return;
        }
    };
    for (answer, reply) in outcomes.into_iter().zip(replies) {
        if let Ok(sold) = &answer {
            if sold.fresh {
                if let Ok(mut seen) = seen.lock() {
                    let total = seen
                        .entry((sold.sale.channel, sold.sale.epoch))
                        .or_default();
                    *total = (*total).max(sold.sale.new_total);
                }
            }
            metrics.sold(sold);
        }
        // A requester that went away still paid: its sale stays in the ledger.
        let _ = reply.send(answer);
    }
}
