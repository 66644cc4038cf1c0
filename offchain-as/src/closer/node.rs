//! The closer's chain on a node: the AS's view of the node plus its signing key. Settles
//! and closes go out as `Utility::force_batch` transactions (items fail independently),
//! as many per transaction and per block as the chain's limits allow for the heaviest
//! close measured, every transaction of a pass sent at once.
use super::{Capacity, ClosingChain, Effect, Landed, Op, TransactionCost};
use crate::view::{ChainView, ChannelRead, Heights, NodeView};
use chain::dry_run::Weight;
use chain::{AnySigner, Batch, BlockLimits, Call, ChainError, Finality, ItemOutcome, SlotpayEvent};
use interface::messages::{Close, Settle};
use protocol::ChannelId;
use std::sync::{Arc, Mutex};

/// The closer's chain on a node.
#[derive(Clone)]
pub struct NodeChain {
    view: NodeView,
    signer: AnySigner,
    limits: BlockLimits,
    /// The heaviest close (or settle) measured so far, and its call's length.
    heaviest: Arc<Mutex<Option<(Weight, u32)>>>,
}

impl NodeChain {
    /// The closer's chain over `view`, signing with `signer`; reads the chain's limits.
    pub fn new(view: NodeView, signer: AnySigner) -> Result<Self, ChainError> {
        let limits = view.reader().node().block_limits()?;
        Ok(Self {
            view,
            signer,
            limits,
            heaviest: Arc::default(),
        })
    }

    fn note(&self, weight: Weight, len: usize) {
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        let mut heaviest = self.heaviest.lock().unwrap_or_else(|p| p.into_inner());
        let (w, l) = heaviest.get_or_insert((weight, len));
        w.ref_time = w.ref_time.max(weight.ref_time);
        w.proof_size = w.proof_size.max(weight.proof_size);
        *l = (*l).max(len);
    }
}

impl ChainView for NodeChain {
    fn heights(&self) -> Option<Heights> {
        self.view.heights()
    }

    async fn read(&self, id: ChannelId) -> Result<ChannelRead, ChainError> {
        self.view.read(id).await
    }
}

fn call(op: &Op) -> Call {
    match op {
        Op::Settle(receipt) => Call::new(
            &Settle {
                receipt: receipt.clone(),
            },
            0,
        ),
        Op::Close { channel, receipt } => Call::new(
            &Close {
                channel: *channel,
                receipt: receipt.clone(),
            },
            0,
        ),
    }
}

/// The op's effect among an item's events, if it took effect.
fn effect(op: &Op, events: &[SlotpayEvent]) -> Option<Effect> {
    events.iter().find_map(|e| match (op, e) {
        (Op::Settle(r), SlotpayEvent::Settled(s)) if s.channel == r.receipt.channel => {
            Some(Effect::Settled {
                paid: s.paid,
                settled: s.settled,
            })
        }
        (Op::Close { channel, .. }, SlotpayEvent::Closed(c)) if c.channel == *channel => {
            Some(Effect::Closed {
                paid: c.paid,
                refunded: c.refunded,
            })
        }
        _ => None,
    })
}

impl ClosingChain for NodeChain {
    fn capacity(&self) -> Capacity {
        let heaviest = *self.heaviest.lock().unwrap_or_else(|p| p.into_inner());
        match heaviest {
            // The gas limit a transaction declares is its dry run's doubled (headroom).
            Some((weight, len)) => {
                let (per_transaction, per_block) = self.limits.fit(weight.with_headroom(), len);
                Capacity::new(per_transaction, per_block)
            }
            // Nothing measured: one at a time until a close has been weighed.
            None => Capacity::new(1, 1),
        }
    }

    async fn measure(&self, ops: &[Op]) -> Vec<bool> {
        let calls: Vec<Call> = ops.iter().map(call).collect();
        match self
            .view
            .reader()
            .weigh(self.signer.account(), &calls)
            .await
        {
            Ok(weights) => weights
                .into_iter()
                .zip(&calls)
                .map(|(weight, call)| weight.inspect(|w| self.note(*w, call.data.len())).is_some())
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "weigh closes");
                vec![false; ops.len()]
            }
        }
    }

    async fn submit(&self, ops: Vec<Op>) -> Result<Vec<Landed>, ChainError> {
        let per_transaction = self.capacity().per_transaction as usize;
        let chunks: Vec<&[Op]> = ops.chunks(per_transaction).collect();
        let contract = self.view.reader();
        // Every transaction at once: the node hands out their nonces in order.
        let outcomes = futures::future::join_all(chunks.iter().map(|chunk| async move {
            let calls: Vec<Call> = chunk.iter().map(call).collect();
            let outcome = contract
                .batch(&self.signer, &calls, Batch::Force, Finality::Best)
                .await;
            (calls, outcome)
        }))
        .await;
        let account = self.signer.account();
        let mut landed = Vec::with_capacity(ops.len());
        for (chunk, (calls, outcome)) in chunks.into_iter().zip(outcomes) {
            let outcome = outcome?;
            for (weight, call) in outcome.weights.iter().zip(&calls) {
                if weight.ref_time > 0 {
                    self.note(*weight, call.data.len());
                }
            }
            let (block, transaction) = match &outcome.included {
                Some(included) => {
                    let (held, released) = included.storage_deposit(&account);
                    (
                        included.block,
                        TransactionCost {
                            fee: included.fee,
                            storage_deposit_held: held,
                            storage_deposit_released: released,
                        },
                    )
                }
                None => (0, TransactionCost::default()),
            };
            for (op, item) in chunk.iter().zip(outcome.items) {
                landed.push(match item {
                    ItemOutcome::Done(events) => match effect(op, &events) {
                        Some(effect) => Landed::Included {
                            block,
                            effect,
                            deferred: events
                                .iter()
                                .filter_map(|e| match e {
                                    SlotpayEvent::PaymentDeferred(d) => Some((d.account, d.amount)),
                                    _ => None,
                                })
                                .collect(),
                            transaction,
                        },
                        None => Landed::Failed("no event of the op".into()),
                    },
                    ItemOutcome::Refused(e) => Landed::Refused(e.to_string()),
                    ItemOutcome::Failed(reason) => Landed::Failed(reason),
                });
            }
        }
        Ok(landed)
    }
}
