//! The SQLite backend: one thread owns the [`Store`]; every operation is a message to it.
//! Sales are group-committed: the thread takes every sale waiting in its queue, decides
//! them in order inside one transaction, and answers each only after that transaction's
//! single fsync. While one batch syncs the next gathers, so batches grow with load.
use super::{
    note_seen, LedgerError, Offer, Refused, Rules, SaleError, SaleRecord, SeenTotals, SellOutcome,
    Sold, Store, MAX_BATCH,
};
use crate::metrics::Metrics;
use protocol::{check_terms, Balance, PurchaseError};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Operations waiting beyond this make senders wait (back-pressure, not unbounded memory).
const QUEUE: usize = 8 * MAX_BATCH;

type Job = Box<dyn FnOnce(&mut Store) + Send>;
type SaleReply = oneshot::Sender<Result<Sold, SaleError>>;

enum Op {
    Sell(Box<Offer>, SaleReply),
    Run(Job),
}

/// A handle on the ledger thread; the thread ends when every handle is gone.
#[derive(Clone)]
pub(super) struct SqliteLedger {
    queue: mpsc::Sender<Op>,
}

fn stopped() -> LedgerError {
    LedgerError::Unavailable("the ledger thread stopped".into())
}

impl SqliteLedger {
    /// Starts the ledger thread on `store`.
    pub(super) fn start(
        store: Store,
        rules: Rules,
        metrics: Arc<Metrics>,
        seen: SeenTotals,
    ) -> Result<Self, LedgerError> {
        let (queue, waiting) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("slotpay-ledger".into())
            .spawn(move || run(store, rules, metrics, seen, waiting))
            .map_err(|e| LedgerError::Unavailable(format!("spawn the ledger thread: {e}")))?;
        Ok(Self { queue })
    }

    /// Sells `offer` in the next batch; returns once that batch is durable.
    pub(super) async fn sell(&self, offer: Offer) -> Result<Sold, SaleError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Op::Sell(Box::new(offer), reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Runs `f` on the store in the ledger thread, in order with every other operation.
    pub(super) async fn run<T: Send + 'static>(
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
            Ok(SellOutcome::AlreadySold(sale)) => {
                let (channel, epoch) = (sale.channel, sale.epoch);
                retry(sale, offer, || {
                    Ok(store.best(channel, epoch)?.map_or(0, |b| b.receipt.amount))
                })
            }
            Err(Refused::Rule(e)) => Err(e.into()),
            Err(Refused::Ledger(e)) => Err(e.into()),
        })
        .collect())
}

/// An offer of exactly a recorded sale's channel, epoch and amount: the same sale again
/// only for its buyer. `current_total` reads the channel's epoch's running total now.
pub(super) fn retry(
    sale: SaleRecord,
    offer: &Offer,
    current_total: impl FnOnce() -> Result<Balance, LedgerError>,
) -> Result<Sold, SaleError> {
    // In a group every member signs "total + price": the same amount from another member
    // is a lost race, not a retry, and must not get the winner's tokens. A retry is
    // matched on the recovered signer, never on signature bytes ...
    if sale.signer != offer.authorized.signer() {
        return Err(PurchaseError::StaleTotal {
            current_total: current_total()?,
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
    let started = Instant::now();
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
    metrics.batch(refs.len(), started.elapsed(), 0);
    for (answer, reply) in outcomes.into_iter().zip(replies) {
        if let Ok(sold) = &answer {
            note_seen(seen, sold);
            metrics.sold(sold);
        }
        // A requester that went away still paid: its sale stays in the ledger.
        let _ = reply.send(answer);
    }
}
