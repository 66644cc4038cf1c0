//! Group commit. Every sale must be durable (an fsync) before its OTPs leave the AS; one
//! fsync per sale would cap the AS at the disk's sync rate. So checked offers wait in a
//! queue and one thread takes all that are waiting, sells them in one SQLite transaction
//! ([`Seller::sell_checked`]), and answers each only after that single commit. While one
//! batch syncs the next one gathers, so batches grow with load.
use crate::ledger::{Ledger, LedgerError};
use crate::metrics::Metrics;
use crate::sale::{CheckedOffer, SaleError, Seller, SoldSlots};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// Most offers committed together: bounds one transaction's time and memory.
pub const MAX_BATCH: usize = 512;
/// Offers waiting beyond this make senders wait (back-pressure, not unbounded memory).
const QUEUE: usize = 8 * MAX_BATCH;

type Reply = oneshot::Sender<Result<SoldSlots, SaleError>>;

pub struct Committer {
    queue: mpsc::Sender<(CheckedOffer, Reply)>,
}

impl Committer {
    /// Starts the commit thread; it ends when the committer is dropped.
    pub fn start(seller: Arc<Seller>, ledger: Arc<Mutex<Ledger>>, metrics: Arc<Metrics>) -> Self {
        let (queue, mut waiting) = mpsc::channel::<(CheckedOffer, Reply)>(QUEUE);
        std::thread::Builder::new()
            .name("slotpay-commit".into())
            .spawn(move || {
                let mut batch = Vec::with_capacity(MAX_BATCH);
                while let Some(first) = waiting.blocking_recv() {
                    batch.push(first);
                    while batch.len() < MAX_BATCH {
                        match waiting.try_recv() {
                            Ok(next) => batch.push(next),
                            Err(_) => break,
                        }
                    }
                    commit(&seller, &ledger, &metrics, &mut batch);
                }
            })
            .expect("spawn the commit thread");
        Self { queue }
    }

    /// Sells `offer` in the next batch; returns once that batch is durable.
    pub async fn sell(&self, offer: CheckedOffer) -> Result<SoldSlots, SaleError> {
        let (reply, answer) = oneshot::channel();
        let stopped =
            || SaleError::Ledger(LedgerError::Unavailable("commit thread stopped".into()));
        self.queue
            .send((offer, reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn commit(
    seller: &Seller,
    ledger: &Mutex<Ledger>,
    metrics: &Metrics,
    batch: &mut Vec<(CheckedOffer, Reply)>,
) {
    let (offers, replies): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
    let outcomes = match ledger.lock() {
        Ok(mut ledger) => seller.sell_checked(&mut ledger, &offers),
        Err(_) => Err(SaleError::Ledger(LedgerError::Unavailable(
            "ledger lock poisoned".into(),
        ))),
    };
    match outcomes {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                if let Ok(sold) = &outcome {
                    metrics.sold(sold);
                }
                // A requester that went away still paid: its sale stays in the ledger.
                let _ = reply.send(outcome);
            }
        }
        Err(e) => {
            // The commit failed: nothing in the batch was sold; each request hears why.
            let reason = e.to_string();
            for reply in replies {
                let _ = reply.send(Err(SaleError::Ledger(LedgerError::Unavailable(
                    reason.clone(),
                ))));
            }
        }
    }
}
