//! Keeping the [`NodeView`] current: the chain's heights and the contract's events of
//! every best block, from a Substrate node's subscriptions or an EVM node's polls.
//!
//! A Substrate node's two subscriptions (best and finalized blocks) each report a lost
//! connection on their own and resubscribe on their own (subxt's reconnecting client),
//! so one can report its loss after the other has already come back, and a resubscribed
//! finalized stream shows no block until the next one is finalized. A report of loss is
//! therefore a reason to ask the node, not a verdict: [`track`] asks for the heads at
//! once and forgets the chain (every purchase then answers 503) only if the node does not
//! answer within [`PROBE`]. It asks too when no notice came for [`WATCH`] (a connection
//! can die without a word). After a loss it learns the heads by asking, not by waiting
//! for a notification a still chain (a dev node's instant seal) would never send, and it
//! reads the blocks above the finalized one before the view answers again. A best block
//! whose parent is not the last one delivered (a fork, or notices missed) has every
//! block above the finalized one read again.
use crate::view::NodeView;
use chain::{AnyContract, BlockEvents, BlockHash, ChainError, SlotpayEvent};
use std::future::Future;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::{timeout, Instant};

mod evm;
mod substrate;
#[cfg(test)]
mod tests;

use evm::follow_evm;
use substrate::subscribe;

/// How long the node has to give its heads after a report of loss (or a silence) before
/// the view forgets the chain. Calls made while the client reconnects wait for it, so a
/// node that is away shows as a call that does not return; a live one answers in
/// milliseconds.
pub(crate) const PROBE: Duration = Duration::from_secs(1);

/// How long the node has to give the blocks above the finalized one (one call per block
/// and a few round trips each; the finality lag bounds how many there are).
pub(crate) const READ: Duration = Duration::from_secs(10);

/// A silence after which the node is asked whether it is still there.
pub(crate) const WATCH: Duration = Duration::from_secs(1);

/// The pause between two tries while the node is away.
const RETRY: Duration = Duration::from_millis(200);

/// How often a node that stays away is logged.
const LOG_EVERY: Duration = Duration::from_secs(30);

/// What a subscription said, in the order it said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Notice {
    /// A new best block (its events are read by [`track`]).
    Best {
        number: u32,
        hash: BlockHash,
        parent: BlockHash,
    },
    /// A newly finalized block.
    Finalized(u32, BlockHash),
    /// The subscription saw its connection go, or ended.
    Lost,
}

/// What [`track`] asks of the node directly.
pub(crate) trait HeadSource: Send + Sync {
    /// The best block.
    fn best(&self) -> impl Future<Output = Result<(u32, BlockHash), ChainError>> + Send;
    /// The latest finalized block.
    fn finalized(&self) -> impl Future<Output = Result<(u32, BlockHash), ChainError>> + Send;
    /// The contract's events in block `hash`.
    fn events_at(
        &self,
        hash: BlockHash,
    ) -> impl Future<Output = Result<Vec<SlotpayEvent>, ChainError>> + Send;
    /// Best-chain blocks `from..=to` with their events (all of them, or an error).
    fn blocks_in(
        &self,
        from: u32,
        to: u32,
    ) -> impl Future<Output = Result<Vec<BlockEvents>, ChainError>> + Send;
}

/// What [`track`] keeps current ([`NodeView`]'s updates).
pub(crate) trait Followed: Send + Sync {
    /// A new finalized block.
    fn on_finalized(&self, number: u32, hash: BlockHash);
    /// A best block and the contract's events in it.
    fn on_best(&self, number: u32, events: &[SlotpayEvent]);
    /// The finalized block, the best blocks above it and the best height, at once.
    fn on_caught_up(
        &self,
        finalized: (u32, BlockHash),
        blocks: &[(u32, &[SlotpayEvent])],
        best: u32,
    );
    /// The node is away: nothing is known until it is back.
    fn on_lost(&self);
    /// The node is back on another chain.
    fn on_new_chain(&self);
}

impl<R: crate::view::ContractReader> Followed for NodeView<R> {
    fn on_finalized(&self, number: u32, hash: BlockHash) {
        NodeView::on_finalized(self, number, hash);
    }

    fn on_best(&self, number: u32, events: &[SlotpayEvent]) {
        NodeView::on_best(self, number, events);
    }

    fn on_caught_up(
        &self,
        finalized: (u32, BlockHash),
        blocks: &[(u32, &[SlotpayEvent])],
        best: u32,
    ) {
        NodeView::on_caught_up(self, finalized, blocks, best);
    }

    fn on_lost(&self) {
        NodeView::on_lost(self);
    }

    fn on_new_chain(&self) {
        NodeView::on_new_chain(self);
    }
}

/// Keeps `view` current: follows finalized and best blocks of the contract's layer,
/// sends every contract event of every best block to `events`, and the best height to
/// `tick` (the closer's wake-up). Runs for ever.
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
                |block| Notice::Best {
                    number: block.number(),
                    hash: block.hash(),
                    parent: block.header().parent_hash,
                },
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

/// Why the follower could not bring the view up to date.
#[derive(Debug, thiserror::Error)]
enum Behind {
    /// The node did not give its heads: the view must forget the chain.
    #[error("the node did not give its heads: {0}")]
    Away(String),
    /// The heads came but a block's events did not: try again.
    #[error("the node gave its heads but not its blocks' events: {0}")]
    Unread(String),
}

async fn within<T>(
    limit: Duration,
    call: impl Future<Output = Result<T, ChainError>>,
    why: fn(String) -> Behind,
) -> Result<T, Behind> {
    match timeout(limit, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(why(e.to_string())),
        Err(_) => Err(why(format!("no answer within {limit:?}"))),
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
    /// The last best block delivered, with its hash.
    seen: Option<(u32, BlockHash)>,
    /// Whether the view was made to forget the chain and has not been caught up since.
    forgotten: bool,
}

impl<V: Followed, S: HeadSource> Tracker<'_, V, S> {
    fn send(&self, number: u32, events: Vec<SlotpayEvent>) {
        for event in events {
            let _ = self.events.send((number, event));
        }
    }

    fn ticked(&self, best: u32) {
        self.tick.send_if_modified(|now| {
            let later = best > *now;
            *now = (*now).max(best);
            later
        });
    }

    fn finalized(&mut self, number: u32, hash: BlockHash) {
        if self.finalized.is_none_or(|f| number > f) {
            self.view.on_finalized(number, hash);
            self.finalized = Some(number);
        }
    }

    /// A best block the subscription showed: its events if it extends the last one
    /// delivered, else every block above the finalized one read again.
    async fn best(
        &mut self,
        number: u32,
        hash: BlockHash,
        parent: BlockHash,
    ) -> Result<(), Behind> {
        if self.finalized.is_none_or(|f| f < number) {
            // Finality is learnt from the node too whenever it is behind this block: the
            // finalized subscription speaks seconds later.
            let (finalized, hash) = within(PROBE, self.source.finalized(), Behind::Away).await?;
            self.finalized(finalized, hash);
        }
        if self.finalized.is_some_and(|f| number <= f) {
            // The finalized state holds it: only "now" can move.
            self.view.on_best(number, &[]);
        } else if self.seen == Some((number.wrapping_sub(1), parent)) {
            let events = within(PROBE, self.source.events_at(hash), Behind::Unread).await?;
            self.view.on_best(number, &events);
            self.send(number, events);
        } else {
            return self.catch_up().await;
        }
        self.seen = Some((number, hash));
        self.ticked(number);
        Ok(())
    }

    /// The heads asked of the node and, unless the last block delivered is still the best
    /// one, every block above the finalized one, given to the view at once.
    async fn catch_up(&mut self) -> Result<(), Behind> {
        let heads = async {
            Ok::<_, ChainError>((self.source.finalized().await?, self.source.best().await?))
        };
        let ((finalized, finalized_hash), (best, best_hash)) =
            within(PROBE, heads, Behind::Away).await?;
        if self.finalized.is_some_and(|f| finalized < f) {
            // Finality went back: not the chain the view was built from.
            self.view.on_new_chain();
            self.finalized = None;
            self.seen = None;
            self.forgotten = true;
        }
        if !self.forgotten && self.seen == Some((best, best_hash)) {
            self.finalized(finalized, finalized_hash);
            return Ok(());
        }
        if !self.forgotten {
            // "Now" moves at once; the events of the blocks to read follow.
            self.view.on_best(best, &[]);
        }
        let blocks = if best > finalized {
            within(
                READ,
                self.source.blocks_in(finalized + 1, best),
                Behind::Unread,
            )
            .await?
        } else {
            Vec::new()
        };
        if blocks.last().is_some_and(|b| b.hash != best_hash) {
            return Err(Behind::Unread(
                "the best block changed during the read".into(),
            ));
        }
        let delivered: Vec<(u32, &[SlotpayEvent])> =
            blocks.iter().map(|b| (b.number, &b.events[..])).collect();
        self.view
            .on_caught_up((finalized, finalized_hash), &delivered, best);
        self.finalized = Some(finalized);
        self.forgotten = false;
        for block in blocks {
            self.send(block.number, block.events);
        }
        self.seen = Some((best, best_hash));
        self.ticked(best);
        Ok(())
    }

    fn forget(&mut self) {
        self.view.on_lost();
        self.finalized = None;
        self.forgotten = true;
    }
}

/// Keeps `view` current from `notices` (in the order the subscriptions gave them),
/// asking `source` whenever a notice says the connection went or none came for
/// [`WATCH`] (see the module's docs). Returns when no subscription is left.
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
        forgotten: true,
    };
    let mut synced = false;
    let mut logged: Option<Instant> = None;
    let mut behind_since: Option<Instant> = None;
    loop {
        if !synced {
            match tracker.catch_up().await {
                Ok(()) => {
                    behind_since = None;
                    if logged.take().is_some() {
                        tracing::info!("node back: following the chain again");
                    }
                }
                Err(behind) => {
                    let since = *behind_since.get_or_insert_with(Instant::now);
                    // A node that answers its heads but not its blocks' events for as
                    // long as a read may take is as good as away: a rotation or close
                    // in those blocks must not go unseen.
                    let away = matches!(behind, Behind::Away(_)) || since.elapsed() >= READ;
                    if away && !tracker.forgotten {
                        tracker.forget();
                    }
                    if logged.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
                        tracing::warn!(why = %behind, "not following the chain: not selling until it is back");
                        logged = Some(Instant::now());
                    }
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            }
        }
        let notice = match timeout(WATCH, notices.recv()).await {
            Ok(Some(notice)) => notice,
            Ok(None) => return,
            // Silence: is the node still there?
            Err(_) => Notice::Lost,
        };
        synced = match notice {
            Notice::Lost => false,
            Notice::Finalized(number, hash) => {
                tracker.finalized(number, hash);
                true
            }
            Notice::Best {
                number,
                hash,
                parent,
            } => tracker.best(number, hash, parent).await.is_ok(),
        };
    }
}
