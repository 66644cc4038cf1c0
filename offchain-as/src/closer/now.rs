//! The operator's `slotpay-as close|settle <channel>`: the pass's own steps for one
//! channel, watched to finality.
use super::{unpaid, Closer, CloserError, ClosingChain, Effect, Landed, Op, TransactionCost};
use crate::ledger::Store;
use protocol::{AccountId32, Balance, ChannelId};
use std::time::{Duration, Instant};

/// What the operator's close or settle did, final.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NowReport {
    /// The channel.
    pub channel: ChannelId,
    /// The block it was included in (`None`: the channel was not open).
    pub block: Option<u32>,
    /// Whether the channel is closed now.
    pub closed: bool,
    /// Paid to the AS by this transaction.
    pub paid: String,
    /// Refunded to the payer (a close).
    pub refunded: Option<String>,
    /// The AS's total on the channel after it (a settle).
    pub settled: Option<String>,
    /// Payments the chain refused, owed by the contract: (account in SS58, amount).
    pub deferred: Vec<(String, String)>,
    /// The transaction's cost to the AS.
    #[serde(flatten)]
    pub cost: TransactionCost,
    /// Why nothing was submitted, if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How long the operator's command waits for its block to be final.
const FINALITY_WAIT: Duration = Duration::from_secs(300);

impl<S: ClosingChain> Closer<S> {
    /// Closes (`close`) or settles `channel` now with the best receipt held for it, as a
    /// pass would (sales stop before the receipt is read), and waits until the block that
    /// holds it is final.
    pub async fn now(&self, channel: ChannelId, close: bool) -> Result<NowReport, CloserError> {
        let read = self.chain.read(channel).await?;
        let Some(state) = read.channel else {
            if !read.finalized_open {
                let block = read.block;
                self.ledger
                    .run(move |s| s.mark_closed(channel, block))
                    .await?;
            }
            return Ok(NowReport::not_open(channel, read.finalized_open));
        };
        let op = if close {
            let best = self
                .ledger
                .run(move |s: &mut Store| Ok(s.begin_close(channel)?.map(|w| w.best)))
                .await?;
            Op::Close {
                channel,
                receipt: best.and_then(|b| unpaid(&state, &b).1),
            }
        } else {
            let epoch = state.epoch;
            let best = self.ledger.run(move |s| s.best(channel, epoch)).await?;
            match best.and_then(|b| unpaid(&state, &b).1) {
                Some(receipt) => Op::Settle(receipt),
                None => {
                    return Err(CloserError::Nothing(format!(
                        "nothing to settle on channel {channel}: everything sold is paid"
                    )))
                }
            }
        };
        let landed = self
            .chain
            .submit(vec![op.clone()])
            .await?
            .pop()
            .ok_or_else(|| CloserError::Nothing("the chain reported no outcome".into()))?;
        let (block, effect, deferred, cost) = match landed {
            Landed::Included {
                block,
                effect,
                deferred,
                transaction,
            } => (block, effect, deferred, transaction),
            Landed::Refused(reason) | Landed::Failed(reason) => {
                return Err(CloserError::Nothing(format!(
                    "channel {channel}: the contract did not take it: {reason}"
                )))
            }
        };
        self.wait_final(block).await?;
        match &op {
            Op::Settle(receipt) => {
                let receipt = receipt.receipt;
                self.ledger
                    .run(move |s| s.record_settlement(&receipt, block))
                    .await?;
            }
            Op::Close { .. } => {
                let after = self.chain.read(channel).await?;
                if !after.finalized_open {
                    self.ledger
                        .run(move |s| s.mark_closed(channel, block))
                        .await?;
                }
            }
        }
        Ok(NowReport::landed(channel, block, effect, &deferred, cost))
    }

    async fn wait_final(&self, block: u32) -> Result<(), CloserError> {
        let start = Instant::now();
        loop {
            if self.chain.heights().is_some_and(|h| h.finalized >= block) {
                return Ok(());
            }
            if start.elapsed() > FINALITY_WAIT {
                return Err(CloserError::Nothing(format!(
                    "block {block} was not final after {} s",
                    FINALITY_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl NowReport {
    fn not_open(channel: ChannelId, closing_in_best_block: bool) -> Self {
        Self {
            channel,
            block: None,
            closed: false,
            paid: "0".into(),
            refunded: None,
            settled: None,
            deferred: Vec::new(),
            cost: TransactionCost::default(),
            reason: Some(if closing_in_best_block {
                "closed or claimed in a block that is not final yet".into()
            } else {
                "not open on chain".into()
            }),
        }
    }

    fn landed(
        channel: ChannelId,
        block: u32,
        effect: Effect,
        deferred: &[(AccountId32, Balance)],
        cost: TransactionCost,
    ) -> Self {
        let (paid, refunded, settled, closed) = match effect {
            Effect::Closed { paid, refunded } => (paid, Some(refunded.to_string()), None, true),
            Effect::Settled { paid, settled } => (paid, None, Some(settled.to_string()), false),
        };
        Self {
            channel,
            block: Some(block),
            closed,
            paid: paid.to_string(),
            refunded,
            settled,
            deferred: deferred
                .iter()
                .map(|(account, amount)| (api::account_text(account), amount.to_string()))
                .collect(),
            cost,
            reason: None,
        }
    }
}
