//! The closer's chain: the AS's view of the node plus its signing key; settles and
//! closes go out as `Utility::force_batch` transactions (items fail independently), at
//! most [`MAX_PER_TRANSACTION`] per transaction so one stays well inside a block's weight.
use crate::closer::{Landed, Op, Settlement};
use crate::view::{ChainView, ChannelRead, Heights, NodeView};
use chain::{AnySigner, Batch, Call, ChainError, Finality, ItemOutcome, SlotpayEvent};
use interface::events::{Closed, Settled};
use interface::messages::{Close, Settle};
use protocol::ChannelId;

/// Most settles and closes in one transaction.
pub const MAX_PER_TRANSACTION: usize = 16;

#[derive(Clone)]
pub struct NodeChain {
    pub view: NodeView,
    pub signer: AnySigner,
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
        Op::Settle { channel, claim } => Call::new(
            &Settle {
                channel: *channel,
                claim: claim.clone(),
            },
            0,
        ),
        Op::Close { channel, claim } => Call::new(
            &Close {
                channel: *channel,
                claim: claim.clone(),
            },
            0,
        ),
    }
}

/// Whether an item's events show the op took effect.
fn took_effect(op: &Op, events: &[SlotpayEvent]) -> bool {
    events.iter().any(|e| match (op, e) {
        (Op::Settle { channel, .. }, SlotpayEvent::Settled(Settled { channel: c, .. })) => {
            c == channel
        }
        (Op::Close { channel, .. }, SlotpayEvent::Closed(Closed { channel: c, .. })) => {
            c == channel
        }
        _ => false,
    })
}

impl Settlement for NodeChain {
    async fn submit(&self, ops: Vec<Op>) -> Result<Vec<Landed>, ChainError> {
        let mut landed = Vec::with_capacity(ops.len());
        for chunk in ops.chunks(MAX_PER_TRANSACTION) {
            let calls: Vec<Call> = chunk.iter().map(call).collect();
            let outcome = self
                .view
                .reader()
                .batch(&self.signer, &calls, Batch::Force, Finality::Best)
                .await?;
            let block = outcome.included.as_ref().map_or(0, |i| i.block);
            for (op, item) in chunk.iter().zip(outcome.items) {
                landed.push(match item {
                    ItemOutcome::Done(events) if took_effect(op, &events) => {
                        Landed::Included { block }
                    }
                    ItemOutcome::Done(_) => Landed::Failed("no event of the op".into()),
                    ItemOutcome::Refused(e) => Landed::Refused(e.to_string()),
                    ItemOutcome::Failed(reason) => Landed::Failed(reason),
                });
            }
        }
        Ok(landed)
    }
}
