//! The operator's `slotpay-as close|settle <channel>`: the pass's own steps for one
//! channel, watched to finality.
use super::{unpaid, Closer, CloserError, ClosingChain, Effect, Landed, Op, TransactionCost};
use crate::ledger::Fence;
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
    /// holds it is final. It takes the closer lease for the while (a serving closer's
    /// writes are refused until it is given back) and gives it back at the end.
    pub async fn now(&self, channel: ChannelId, close: bool) -> Result<NowReport, CloserError> {
        let fence = self
            .ledger
            .take_lease(&self.lease.holder, self.lease.duration)
            .await?;
        let done = self.now_under(channel, close, fence).await;
        let released = self.ledger.release_lease(fence).await;
        let report = done?;
        released?;
        Ok(report)
    }

    async fn now_under(
        &self,
        channel: ChannelId,
        close: bool,
        fence: Fence,
    ) -> Result<NowReport, CloserError> {
        // Gone from the best block but still open in the finalized one: an earlier close
        // (this command's, cut off, or the closer's) or the payer's claim is on its way to
        // finality. Wait for it, as for this command's own block, so that the ledger
        // records the close before the command says it is done; if the block that held it
        // is dropped instead, the channel is back and is closed below.
        let start = Instant::now();
        let state = loop {
            let read = self.chain.read(channel).await?;
            if let Some(state) = read.channel {
                break state;
            }
            if !read.finalized_open {
                self.ledger.mark_closed(channel, read.block, fence).await?;
                return Ok(NowReport::not_open(channel));
            }
            if start.elapsed() > FINALITY_WAIT {
                return Err(CloserError::Nothing(format!(
                    "channel {channel} was closed or claimed in a best block that was not final after {} s",
                    FINALITY_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let op = if close {
            let best = self
                .ledger
                .begin_close(channel, fence)
                .await?
                .map(|w| w.best);
            Op::Close {
                channel,
                receipt: best.and_then(|b| unpaid(&state, &b).1),
            }
        } else {
            let epoch = state.epoch;
            let best = self.ledger.best(channel, epoch).await?;
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
        self.wait_final(block, fence).await?;
        match &op {
            Op::Settle(receipt) => {
                self.ledger
                    .record_settlement(receipt.receipt, block, fence)
                    .await?;
            }
            Op::Close { .. } => {
                let after = self.chain.read(channel).await?;
                if !after.finalized_open {
                    self.ledger.mark_closed(channel, block, fence).await?;
                }
            }
        }
        Ok(NowReport::landed(channel, block, effect, &deferred, cost))
    }

    /// Waits until `block` is final, renewing the lease `fence` meanwhile.
    async fn wait_final(&self, block: u32, fence: Fence) -> Result<(), CloserError> {
        let start = Instant::now();
        let mut renewed = Instant::now();
        loop {
            if renewed.elapsed() > self.lease.duration / 3 {
                renewed = Instant::now();
                self.ledger
                    .lease(&self.lease.holder, Some(fence), self.lease.duration)
                    .await?;
            }
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
    fn not_open(channel: ChannelId) -> Self {
        Self {
            channel,
            block: None,
            closed: false,
            paid: "0".into(),
            refunded: None,
            settled: None,
            deferred: Vec::new(),
            cost: TransactionCost::default(),
            reason: Some("not open on chain".into()),
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
