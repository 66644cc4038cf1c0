//! A Substrate node's side of the follower: its subscriptions as [`Notice`]s, and the
//! contract as the [`HeadSource`] the follower asks.
use super::{HeadSource, Notice};
use chain::{BlockEvents, BlockHash, ChainError, Contract, SlotpayEvent};
use futures::{Stream, StreamExt};
use std::future::Future;
use std::time::Duration;
use tokio::sync::mpsc;

impl HeadSource for Contract {
    async fn best(&self) -> Result<(u32, BlockHash), ChainError> {
        self.node().best().await
    }

    async fn finalized(&self) -> Result<(u32, BlockHash), ChainError> {
        self.node().finalized().await
    }

    async fn events_at(&self, hash: BlockHash) -> Result<Vec<SlotpayEvent>, ChainError> {
        Contract::events_at(self, hash).await
    }

    async fn blocks_in(&self, from: u32, to: u32) -> Result<Vec<BlockEvents>, ChainError> {
        Contract::blocks_in(self, from, to).await
    }
}

/// One subscription's blocks as notices to `notify`, resubscribing after it ends; stops
/// when no one listens.
pub(super) async fn subscribe<B, E, S, F, Fut>(
    notify: mpsc::UnboundedSender<Notice>,
    what: &'static str,
    open: F,
    notice: fn(&B) -> Notice,
) where
    E: std::fmt::Display,
    S: Stream<Item = Result<B, E>> + Unpin,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<S, E>>,
{
    loop {
        match open().await {
            Ok(mut blocks) => {
                while let Some(block) = blocks.next().await {
                    let said = match block {
                        Ok(block) => notice(&block),
                        Err(e) => {
                            tracing::warn!(error = %e, "{what} blocks: connection lost");
                            Notice::Lost
                        }
                    };
                    if notify.send(said).is_err() {
                        return;
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "subscribe to {what} blocks"),
        }
        if notify.send(Notice::Lost).is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
