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
mod tracker;

use evm::follow_evm;
use substrate::subscribe;
use tracker::{Behind, Tracker};

/// How long the node has to give its heads after a subscription reported the connection
/// lost before the view forgets the chain. Calls made while the client reconnects wait
/// for it, so a node that is away shows as a call that does not return; a live one
/// answers in milliseconds.
pub(crate) const PROBE: Duration = Duration::from_secs(1);

/// The same after a silence or a read that failed, when nothing says the connection
/// went: a live node under load (the closer's reads queue on the same connection) must
/// not be taken for a lost one.
pub(crate) const SLOW_PROBE: Duration = Duration::from_secs(3);

/// How long blocks known to exist may stay unread (their events unknown) before the view
/// forgets the chain, counted from the first such block; also the time a read of the
/// blocks above the finalized one may take.
pub(crate) const READ: Duration = Duration::from_secs(10);

/// A silence after which the node is asked whether it is still there.
pub(crate) const WATCH: Duration = Duration::from_secs(1);

/// How long finality may go unheard of before the node is asked for it (a finalized
/// subscription can stop while the best one goes on, and a busy chain is never silent).
pub(crate) const FINALITY_REFRESH: Duration = Duration::from_secs(5);

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
/// sends the contract's events of best blocks to `events` as they are delivered (a block
/// read again after a fork or a loss is sent again; one finalized while the node was away,
/// or skipped behind a later notice and final by then, is not), and the best height to
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
        anchor: None,
        seen: None,
        forgotten: true,
        unread_since: None,
        tick_may_go_back: false,
        step_began: Instant::now(),
    };
    // Some(limit): the node is to be asked, its heads within `limit`.
    let mut ask = Some(PROBE);
    let mut logged: Option<Instant> = None;
    let mut finality_heard = Instant::now();
    loop {
        if let Some(limit) = ask {
            if tracker.unread_too_long() && !tracker.forgotten {
                tracker.forget();
            }
            match tracker.catch_up(limit).await {
                Ok(()) => {
                    ask = None;
                    finality_heard = Instant::now();
                    if logged.take().is_some() {
                        tracing::info!("node back: following the chain again");
                    }
                }
                Err(behind) => {
                    // A node that answers its heads but not its blocks' events for as
                    // long as a read may take is as good as away: a rotation or close
                    // in those blocks must not go unseen.
                    let away = matches!(behind, Behind::Away(_)) || tracker.unread_too_long();
                    if away && !tracker.forgotten {
                        tracker.forget();
                    }
                    if tracker.forgotten {
                        // Nothing is sold now: a slow answer is as good as a fast one.
                        ask = Some(SLOW_PROBE);
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
        let mut notice = match timeout(WATCH, notices.recv()).await {
            Ok(Some(notice)) => notice,
            Ok(None) => return,
            Err(_) => {
                // Silence: is the node still there?
                ask = Some(SLOW_PROBE);
                continue;
            }
        };
        // Notices queued behind this one (blocks came faster than their events were
        // read): only the latest best block is taken, and "now" jumps to it; the blocks
        // between are read by the catch-up its parent calls for. A loss report wins.
        while let Ok(next) = notices.try_recv() {
            notice = match (notice, next) {
                // Heard before the loss: kept (the new-chain check compares against it).
                // One heard after a loss is left to the catch-up: it may be another chain's.
                (Notice::Finalized(number, hash), Notice::Lost) => {
                    tracker.finalized(number, hash);
                    Notice::Lost
                }
                (Notice::Lost, _) | (_, Notice::Lost) => Notice::Lost,
                (Notice::Finalized(number, hash), later) => {
                    tracker.finalized(number, hash);
                    finality_heard = Instant::now();
                    later
                }
                (best, Notice::Finalized(number, hash)) => {
                    tracker.finalized(number, hash);
                    finality_heard = Instant::now();
                    best
                }
                (Notice::Best { .. }, later) => later,
            };
        }
        match notice {
            Notice::Lost => ask = Some(PROBE),
            Notice::Finalized(number, hash) => {
                tracker.finalized(number, hash);
                finality_heard = Instant::now();
            }
            Notice::Best {
                number,
                hash,
                parent,
            } => {
                if tracker.best(number, hash, parent).await.is_err() {
                    ask = Some(SLOW_PROBE);
                }
            }
        }
        if ask.is_none() && finality_heard.elapsed() >= FINALITY_REFRESH {
            ask = Some(SLOW_PROBE);
        }
    }
}
