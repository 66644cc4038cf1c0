//! Keeping the [`NodeView`] current: the chain's heights and the contract's events of
//! every best block, from a Substrate node's subscriptions or an EVM node's polls.
//!
//! A Substrate node's two subscriptions (best and finalized blocks) each report a lost
//! connection on their own and resubscribe on their own (subxt's reconnecting client),
//! so one can report its loss after the other has already come back, and a resubscribed
//! finalized stream shows no block until the next one is finalized. A report of loss is
//! therefore a reason to ask the node, not a verdict: [`track`] asks for the heads at
//! once and forgets the chain (every purchase then answers 503) only if the node does not
//! answer within [`PROBE`]; after a loss it learns the heads by asking, not by waiting for
//! a notification that a still chain (a dev node's instant seal) would never send; and
//! the blocks made while it was away have their events read, from the finalized block on.
use crate::view::NodeView;
use chain::evm::EvmContract;
use chain::{AnyContract, BlockHash, ChainError, Contract, SlotpayEvent};
use futures::{Stream, StreamExt};
use std::future::Future;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

#[cfg(test)]
mod tests;

/// How long the node has to answer after a subscription reported a loss before the view
/// forgets the chain. Calls made while the client reconnects wait for it, so a node that
/// is away shows as a probe that does not return; a live one answers in milliseconds.
pub(crate) const PROBE: Duration = Duration::from_secs(1);

/// The pause between two probes of a node that is away.
const RETRY: Duration = Duration::from_millis(200);

/// What a subscription said, in the order it said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Notice {
    /// A new best block (its events are read by [`track`]).
    Best(u32),
    /// A newly finalized block.
    Finalized(u32, BlockHash),
    /// The subscription saw its connection go, or ended.
    Lost,
}

/// What [`track`] asks of the node directly.
pub(crate) trait HeadSource: Send + Sync {
    /// The best block's number.
    fn best(&self) -> impl Future<Output = Result<u32, ChainError>> + Send;
    /// The latest finalized block.
    fn finalized(&self) -> impl Future<Output = Result<(u32, BlockHash), ChainError>> + Send;
    /// The contract's events in best-chain blocks `from..=to`, with their block numbers.
    fn events_in(
        &self,
        from: u32,
        to: u32,
    ) -> impl Future<Output = Result<Vec<(u32, SlotpayEvent)>, ChainError>> + Send;
}

/// What [`track`] keeps current ([`NodeView`]'s three updates).
pub(crate) trait Followed: Send + Sync {
    /// A new finalized block.
    fn on_finalized(&self, number: u32, hash: BlockHash);
    /// A best block and the contract's events in it.
    fn on_best(&self, number: u32, events: &[SlotpayEvent]);
    /// The node is away: nothing is known until it is back.
    fn on_lost(&self);
}

impl<R: crate::view::ContractReader> Followed for NodeView<R> {
    fn on_finalized(&self, number: u32, hash: BlockHash) {
        NodeView::on_finalized(self, number, hash);
    }

    fn on_best(&self, number: u32, events: &[SlotpayEvent]) {
        NodeView::on_best(self, number, events);
    }

    fn on_lost(&self) {
        NodeView::on_lost(self);
    }
}

impl HeadSource for Contract {
    async fn best(&self) -> Result<u32, ChainError> {
        Ok(self.node().best().await?.0)
    }

    async fn finalized(&self) -> Result<(u32, BlockHash), ChainError> {
        self.node().finalized().await
    }

    async fn events_in(&self, from: u32, to: u32) -> Result<Vec<(u32, SlotpayEvent)>, ChainError> {
        Contract::events_in(self, from, to).await
    }
}

/// Keeps `view` current: follows finalized and best blocks of the contract's layer,
/// sends every contract event of every best block to `events`, and the best height to
/// `tick` (the closer's clock; it never goes back). Runs for ever.
pub async fn follow(
    view: NodeView<AnyContract>,
    events: mpsc::UnboundedSender<(u32, SlotpayEvent)>,
    tick: watch::Sender<u32>,
) {
    match view.reader().clone() {
        AnyContract::Substrate(contract) => {
            let (notify, notices) = mpsc::unbounded_channel();
            let api = contract.node().api().clone();
            let best = api.clone();
            tokio::spawn(subscribe(
                notify.clone(),
                "best",
                move || best.blocks().subscribe_best(),
                |block| Notice::Best(block.number()),
            ));
            tokio::spawn(subscribe(
                notify,
                "finalized",
                move || api.blocks().subscribe_finalized(),
                |block| Notice::Finalized(block.number(), block.hash()),
            ));
            track(&view, &contract, notices, events, tick).await;
        }
        AnyContract::Evm(contract) => follow_evm(view, contract, events, tick).await,
    }
}

/// One subscription's blocks as notices to `notify`, resubscribing after it ends; stops
/// when no one listens.
async fn subscribe<B, E, S, F, Fut>(
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

/// What [`track`] knows of the chain it delivered to the view.
struct Tracker<'a, V, S> {
    view: &'a V,
    source: &'a S,
    events: mpsc::UnboundedSender<(u32, SlotpayEvent)>,
    tick: watch::Sender<u32>,
    /// The highest finalized block given to the view.
    finalized: Option<u32>,
    /// The last best block whose events were delivered.
    seen: Option<u32>,
}

impl<V: Followed, S: HeadSource> Tracker<'_, V, S> {
    fn finalized(&mut self, number: u32, hash: BlockHash) {
        if self.finalized.is_none_or(|f| number > f) {
            self.view.on_finalized(number, hash);
            self.finalized = Some(number);
        }
    }

    /// Best block `to` and, before it, every block since the last one delivered that is
    /// above the finalized one (what the finalized state does not hold yet).
    async fn deliver(&mut self, to: u32) -> Result<(), ChainError> {
        let floor = self.finalized.map_or(to, |f| f.saturating_add(1));
        let from = match self.seen {
            Some(seen) if seen < to => seen + 1,
            // A block at a height seen before: another fork's; read it again.
            Some(_) => to,
            None => floor,
        }
        .max(floor)
        .min(to);
        let found = self.source.events_in(from, to).await?;
        for number in from..=to {
            let here: Vec<SlotpayEvent> = found
                .iter()
                .filter(|(at, _)| *at == number)
                .map(|(_, e)| e.clone())
                .collect();
            self.view.on_best(number, &here);
            for event in here {
                let _ = self.events.send((number, event));
            }
        }
        self.seen = Some(to);
        self.tick.send_if_modified(|now| {
            let later = to > *now;
            *now = (*now).max(to);
            later
        });
        Ok(())
    }

    /// A new best block: finality is learnt from the node too whenever it is behind it
    /// (the finalized subscription speaks seconds later).
    async fn best(&mut self, number: u32) -> Result<(), ChainError> {
        if self.finalized.is_none_or(|f| f < number) {
            let (finalized, hash) = self.source.finalized().await?;
            self.finalized(finalized, hash);
        }
        self.deliver(number).await
    }

    /// The heads asked of the node, and the blocks since the last delivered one.
    async fn catch_up(&mut self) -> Result<(), ChainError> {
        let (finalized, hash) = self.source.finalized().await?;
        let best = self.source.best().await?;
        if self.finalized.is_some_and(|f| finalized < f) {
            // Finality went back: not the chain the view was built from.
            self.forget();
        }
        self.finalized(finalized, hash);
        self.deliver(best.max(finalized)).await
    }

    fn forget(&mut self) {
        self.view.on_lost();
        self.finalized = None;
        self.seen = None;
    }
}

/// Keeps `view` current from `notices` (in the order the subscriptions gave them),
/// asking `source` whenever a notice says the connection went (see the module's docs).
/// Returns when no subscription is left.
pub(crate) async fn track<V: Followed, S: HeadSource>(
    view: &V,
    source: &S,
    mut notices: mpsc::UnboundedReceiver<Notice>,
    events: mpsc::UnboundedSender<(u32, SlotpayEvent)>,
    tick: watch::Sender<u32>,
) {
    let mut tracker = Tracker {
        view,
        source,
        events,
        tick,
        finalized: None,
        seen: None,
    };
    let mut synced = false;
    loop {
        if !synced {
            match tokio::time::timeout(PROBE, tracker.catch_up()).await {
                Ok(Ok(())) => {}
                failed => {
                    if tracker.finalized.is_some() {
                        let why = failed.map_or("no answer".to_owned(), |e| {
                            e.err().map_or(String::new(), |e| e.to_string())
                        });
                        tracing::warn!(error = %why, "node away: not selling until it is back");
                    }
                    tracker.forget();
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            }
        }
        let Some(notice) = notices.recv().await else {
            return;
        };
        synced = match notice {
            Notice::Lost => false,
            Notice::Finalized(number, hash) => {
                tracker.finalized(number, hash);
                true
            }
            Notice::Best(number) => matches!(
                tokio::time::timeout(PROBE, tracker.best(number)).await,
                Ok(Ok(()))
            ),
        };
    }
}
/// An EVM node's blocks, polled (every 100 ms): the `finalized` tag's block, and every
/// new best block with its contract events (one `eth_getLogs` over the new blocks).
/// Anvil does not reorganise; a node that does could show an event twice, which
/// [`NodeView::on_best`] takes once.
async fn follow_evm(
    view: NodeView<AnyContract>,
    contract: EvmContract,
    events: mpsc::UnboundedSender<(u32, SlotpayEvent)>,
    tick: watch::Sender<u32>,
) {
    let node = contract.node().clone();
    let mut seen: Option<u32> = None;
    let mut finalized_seen = None;
    loop {
        let heads = async { Ok::<_, ChainError>((node.best().await?, node.finalized().await?)) };
        match heads.await {
            Ok(((best, _), (finalized, hash))) => {
                if finalized_seen != Some(hash) {
                    view.on_finalized(finalized, hash);
                    finalized_seen = Some(hash);
                }
                // At start and after a lost connection, every block above the finalized
                // one: a rotation announced there must not wait for finality to be seen.
                let from = seen.map_or(finalized.saturating_add(1).min(best), |s| s + 1);
                if from <= best {
                    match node.events_in(contract.address(), from, best).await {
                        Ok(found) => {
                            for number in from..=best {
                                let here: Vec<SlotpayEvent> = found
                                    .iter()
                                    .filter(|(b, _)| *b == number)
                                    .map(|(_, e)| e.clone())
                                    .collect();
                                view.on_best(number, &here);
                                for event in here {
                                    let _ = events.send((number, event));
                                }
                            }
                            seen = Some(best);
                            let _ = tick.send(best);
                        }
                        Err(e) => tracing::warn!(error = %e, "read the contract's logs"),
                    }
                }
            }
            Err(e) => {
                if seen.is_some() {
                    tracing::warn!(error = %e, "EVM node: connection lost");
                }
                view.on_lost();
                finalized_seen = None;
                seen = None;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
