//! The closer's chain on a node of either layer: the AS's view of the node plus its
//! signing key; the layer is the contract's (the one match of the closer on it).
//!
//! On Substrate, settles and closes go out as `Utility::force_batch` transactions (items
//! fail independently), as many per transaction and per block as the chain's limits
//! allow for the heaviest close measured, every transaction of a pass sent at once.
//!
//! On an EVM, one settle or close per transaction (the contract has no batch entry
//! point): every transaction of a pass is sent at once with consecutive nonces, so a
//! block takes as many as its gas limit holds of the heaviest close measured
//! (`eth_estimateGas`, with the headroom each transaction declares: `chain::evm::gas_limit`).
use super::{Capacity, ClosingChain, Effect, Landed, Op, TransactionCost};
use crate::view::{ChainView, ChannelRead, Heights, NodeView};
use chain::dry_run::Weight;
use chain::evm::{self, EvmContract, EvmSigner};
use chain::{
    AnyContract, AnySigner, Batch, BlockLimits, Call, ChainError, Contract, Finality, ItemOutcome,
    LayerSigner, SlotpayEvent,
};
use interface::messages::{Close, Settle};
use protocol::ChannelId;
use std::sync::{Arc, Mutex};

/// The most gas a settle or close of the EVM contract can take, for the plan before one
/// has been estimated (the sales of a first burst would otherwise be planned at one close
/// per block): bench/evm-gas.md measures 51,455 to 68,818 for a close, a group proof's
/// 32 siblings add some 3,000, and each of its two payments can burn at most 12,300 (the
/// contract's `PAYMENT_GAS` and the stipend). Twice that, with room.
const CLOSE_GAS_BOUND: u64 = 250_000;

/// What the closer knows of the chain's room, per layer.
#[derive(Clone)]
enum Room {
    /// A Substrate chain's limits, and the heaviest close (or settle) measured so far
    /// with its call's length.
    Substrate {
        contract: Contract,
        signer: AnySigner,
        limits: BlockLimits,
        heaviest: Arc<Mutex<Option<(Weight, u32)>>>,
    },
    /// An EVM chain's block gas limit, and the most gas a close (or settle) was
    /// estimated to need so far.
    Evm {
        contract: EvmContract,
        signer: EvmSigner,
        gas_limit: u64,
        heaviest: Arc<Mutex<Option<u64>>>,
    },
}

/// The closer's chain on a node.
#[derive(Clone)]
pub struct NodeChain {
    view: NodeView,
    room: Room,
}

impl NodeChain {
    /// The closer's chain over `view`, signing with `signer` (a key of the contract's
    /// layer); reads the chain's limits (on an EVM, the best block's gas limit).
    pub async fn new(view: NodeView, signer: LayerSigner) -> Result<Self, ChainError> {
        let room = match (view.reader().clone(), signer) {
            (AnyContract::Substrate(contract), LayerSigner::Substrate(signer)) => Room::Substrate {
                limits: contract.node().block_limits()?,
                contract,
                signer,
                heaviest: Arc::default(),
            },
            (AnyContract::Evm(contract), LayerSigner::Evm(signer)) => Room::Evm {
                gas_limit: contract.node().block_gas_limit().await?,
                contract,
                signer,
                heaviest: Arc::default(),
            },
            _ => {
                return Err(ChainError::Other(
                    "the AS's key is of another layer than its deployment".into(),
                ))
            }
        };
        Ok(Self { view, room })
    }
}

fn note(heaviest: &Mutex<Option<(Weight, u32)>>, weight: Weight, len: usize) {
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    let mut heaviest = heaviest.lock().unwrap_or_else(|p| p.into_inner());
    let (w, l) = heaviest.get_or_insert((weight, len));
    w.ref_time = w.ref_time.max(weight.ref_time);
    w.proof_size = w.proof_size.max(weight.proof_size);
    *l = (*l).max(len);
}

fn note_gas(heaviest: &Mutex<Option<u64>>, gas: u64) {
    let mut heaviest = heaviest.lock().unwrap_or_else(|p| p.into_inner());
    *heaviest = Some(heaviest.unwrap_or(0).max(gas));
}

/// An op as an EVM call: (label, value, call data).
fn evm_call(op: &Op) -> (&'static str, u128, Vec<u8>) {
    match op {
        Op::Settle(receipt) => ("settle", 0, evm::settle_data(receipt)),
        Op::Close { channel, receipt } => ("close", 0, evm::close_data(*channel, receipt.as_ref())),
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
        match &self.room {
            Room::Substrate {
                limits, heaviest, ..
            } => {
                let heaviest = *heaviest.lock().unwrap_or_else(|p| p.into_inner());
                match heaviest {
                    // The gas limit a transaction declares is its dry run's doubled
                    // (headroom).
                    Some((weight, len)) => {
                        let (per_transaction, per_block) = limits.fit(weight.with_headroom(), len);
                        Capacity::new(per_transaction, per_block)
                    }
                    // Nothing measured: one at a time until a close has been weighed.
                    None => Capacity::new(1, 1),
                }
            }
            Room::Evm {
                gas_limit,
                heaviest,
                ..
            } => {
                // The heaviest close estimated, or before any has been: the bound.
                let gas = heaviest
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .unwrap_or(CLOSE_GAS_BOUND);
                // A transaction declares its gas limit (`chain::evm::gas_limit` of its
                // estimate); a block holds what its gas limit takes of those.
                let declared = evm::gas_limit(gas).max(1);
                let per_block = u32::try_from(gas_limit / declared).unwrap_or(u32::MAX);
                Capacity::new(1, per_block)
            }
        }
    }

    async fn measure(&self, ops: &[Op]) -> Vec<bool> {
        match &self.room {
            Room::Substrate {
                contract,
                signer,
                heaviest,
                ..
            } => {
                let calls: Vec<Call> = ops.iter().map(call).collect();
                match contract.weigh(signer.account(), &calls).await {
                    Ok(weights) => weights
                        .into_iter()
                        .zip(&calls)
                        .map(|(weight, call)| {
                            weight
                                .inspect(|w| note(heaviest, *w, call.data.len()))
                                .is_some()
                        })
                        .collect(),
                    Err(e) => {
                        tracing::warn!(error = %e, "weigh closes");
                        vec![false; ops.len()]
                    }
                }
            }
            Room::Evm {
                contract,
                signer,
                heaviest,
                ..
            } => {
                let estimates = futures::future::join_all(ops.iter().map(|op| {
                    let (label, value, data) = evm_call(op);
                    contract.estimate(signer.account(), value, data, label)
                }))
                .await;
                estimates
                    .into_iter()
                    .map(|gas| match gas {
                        Ok(gas) => {
                            note_gas(heaviest, gas);
                            true
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "estimate a close");
                            false
                        }
                    })
                    .collect()
            }
        }
    }

    async fn submit(&self, ops: Vec<Op>) -> Result<Vec<Landed>, ChainError> {
        match &self.room {
            Room::Substrate {
                contract,
                signer,
                heaviest,
                ..
            } => submit_substrate(self.capacity(), contract, signer, heaviest, ops).await,
            Room::Evm {
                contract,
                signer,
                heaviest,
                ..
            } => {
                let calls: Vec<_> = ops.iter().map(evm_call).collect();
                let outcomes = contract.send_many(signer, &calls).await?;
                Ok(ops
                    .iter()
                    .zip(outcomes)
                    .map(|(op, outcome)| match outcome {
                        Ok(included) => {
                            note_gas(heaviest, included.gas_used);
                            match effect(op, &included.events) {
                                Some(effect) => Landed::Included {
                                    block: included.block,
                                    effect,
                                    deferred: deferred(&included.events),
                                    transaction: TransactionCost {
                                        fee: included.fee,
                                        storage_deposit_held: 0,
                                        storage_deposit_released: 0,
                                    },
                                },
                                None => Landed::Failed("no event of the op".into()),
                            }
                        }
                        Err(e @ ChainError::Refused { .. }) => Landed::Refused(e.to_string()),
                        Err(ChainError::Call { message, reason }) if message != "transaction" => {
                            Landed::Refused(format!("{message}: {reason}"))
                        }
                        Err(e) => Landed::Failed(e.to_string()),
                    })
                    .collect())
            }
        }
    }
}

fn deferred(events: &[SlotpayEvent]) -> Vec<(protocol::AccountId32, u128)> {
    events
        .iter()
        .filter_map(|e| match e {
            SlotpayEvent::PaymentDeferred(d) => Some((d.account, d.amount)),
            _ => None,
        })
        .collect()
}

async fn submit_substrate(
    capacity: Capacity,
    contract: &Contract,
    signer: &AnySigner,
    heaviest: &Mutex<Option<(Weight, u32)>>,
    ops: Vec<Op>,
) -> Result<Vec<Landed>, ChainError> {
    let per_transaction = capacity.per_transaction as usize;
    let chunks: Vec<&[Op]> = ops.chunks(per_transaction).collect();
    // Every transaction at once: the node hands out their nonces in order.
    let outcomes = futures::future::join_all(chunks.iter().map(|chunk| async move {
        let calls: Vec<Call> = chunk.iter().map(call).collect();
        let outcome = contract
            .batch(signer, &calls, Batch::Force, Finality::Best)
            .await;
        (calls, outcome)
    }))
    .await;
    let account = signer.account();
    let mut landed = Vec::with_capacity(ops.len());
    for (chunk, (calls, outcome)) in chunks.into_iter().zip(outcomes) {
        let outcome = outcome?;
        for (weight, call) in outcome.weights.iter().zip(&calls) {
            if weight.ref_time > 0 {
                note(heaviest, *weight, call.data.len());
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
                        deferred: deferred(&events),
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
