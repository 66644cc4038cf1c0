//! The AS's view of the chain: where "now" is, and what a channel looks like.
//!
//! Money comes from finality, time from the best block. A channel is read at the latest
//! finalized block (a deposit or expiry seen only in a best block could still vanish in a
//! fork, and both only ever grow), then brought to the best block's height
//! ([`protocol::Channel::at`]), so a finality stall cannot make the AS sell on a channel
//! that has already expired. What can only make the AS more careful is taken from best
//! blocks at once: a rotation announced or a channel closed or claimed there applies
//! before it is final.
//!
//! Reads are cached per finalized block, absent channels included, and an id at or above
//! the contract's next channel id is known absent without a call: a bogus id costs at
//! most one dry run per finalized block.
use chain::evm::EvmContract;
use chain::{AnyContract, At, ChainError, Contract, SlotpayEvent};
use interface::messages::{GetChannel, NextChannelId};
use protocol::{Channel, ChannelId, Rotation};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// The chain's heights as last seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heights {
    /// The best block: "now".
    pub best: u32,
    /// The latest finalized block.
    pub finalized: u32,
}

/// A channel as the AS reasons about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelRead {
    /// The finalized block it was read at.
    pub block: u32,
    /// The best block: "now".
    pub now: u32,
    /// The channel as it stands at `now`; `None` if it is not open (closed or claimed in
    /// a best block counts: the AS acts on it at once).
    pub channel: Option<Channel>,
    /// Whether the finalized state still has it open: only its absence there is final.
    pub finalized_open: bool,
}

/// Reads channels; the HTTP layer and the closer need only this.
pub trait ChainView: Send + Sync + 'static {
    /// The heights last seen (`None` while the node is away).
    fn heights(&self) -> Option<Heights>;
    /// `id` at the finalized block, brought to the best block.
    fn read(&self, id: ChannelId) -> impl Future<Output = Result<ChannelRead, ChainError>> + Send;
}

/// What best blocks said before finality did.
#[derive(Debug, Clone, Default)]
struct Overlay {
    /// Every rotation announced in a best block above the finalized one, with that block,
    /// in order: a second announcement, or one made after an earlier one took effect,
    /// must not hide the first.
    rotations: Vec<(Rotation, u32)>,
    /// Closed or claimed at this best block.
    gone_at: Option<u32>,
}

/// One read of the finalized state, shared by every request that needs it while it is
/// under way: concurrent misses of the cache make one contract call, not one each.
type Shared<T> = Arc<tokio::sync::OnceCell<T>>;

#[derive(Default)]
struct State {
    heights: Option<Heights>,
    finalized: Option<chain::BlockHash>,
    channels: HashMap<ChannelId, Shared<Option<Channel>>>,
    next_id: Shared<u64>,
    overlay: HashMap<ChannelId, Overlay>,
    /// Bumped each time the node is lost: a read that began before cannot answer after.
    generation: u64,
}

impl State {
    fn finalize(&mut self, number: u32, hash: chain::BlockHash) {
        self.finalized = Some(hash);
        self.channels.clear();
        self.next_id = Shared::default();
        // What best blocks up to this one said is now in the finalized state, or was
        // retracted with its block.
        self.overlay.retain(|_, o| {
            o.rotations.retain(|(_, at)| *at > number);
            o.gone_at = o.gone_at.filter(|at| *at > number);
            !o.rotations.is_empty() || o.gone_at.is_some()
        });
        let best = self.heights.map_or(number, |h| h.best.max(number));
        self.heights = Some(Heights {
            best,
            finalized: number,
        });
    }

    fn best(&mut self, number: u32, events: &[SlotpayEvent]) {
        if let Some(h) = self.heights.as_mut() {
            h.best = h.best.max(number);
        }
        // A block the finalized state already holds adds nothing to it: replaying its
        // rotation on that state would announce it twice.
        if self.heights.is_some_and(|h| number <= h.finalized) {
            return;
        }
        for event in events {
            match event {
                SlotpayEvent::RotationAnnounced(e) => {
                    let rotation = Rotation {
                        authority: e.authority,
                        effective_at: e.effective_at,
                    };
                    let rotations = &mut self.overlay.entry(e.channel).or_default().rotations;
                    if !rotations.contains(&(rotation, number)) {
                        rotations.push((rotation, number));
                        rotations.sort_by_key(|(_, at)| *at);
                    }
                }
                SlotpayEvent::Closed(e) => {
                    self.overlay.entry(e.channel).or_default().gone_at = Some(number);
                }
                SlotpayEvent::ExpiredClaimed(e) => {
                    self.overlay.entry(e.channel).or_default().gone_at = Some(number);
                }
                _ => {}
            }
        }
    }

    fn lose(&mut self) {
        self.heights = None;
        self.finalized = None;
        self.channels.clear();
        self.next_id = Shared::default();
        self.generation += 1;
    }
}

/// The two reads a [`NodeView`] makes of the contract, at a given block.
pub trait ContractReader: Clone + Send + Sync + 'static {
    /// The id the contract's next `open` will assign, as of block `at`: no channel at or
    /// above it exists there yet, so the view answers for those without reading them.
    fn next_channel_id(
        &self,
        at: chain::BlockHash,
    ) -> impl Future<Output = Result<u64, ChainError>> + Send;
    /// Channel `id` as the contract has it at block `at`, `None` if it is not open there.
    fn channel(
        &self,
        id: ChannelId,
        at: chain::BlockHash,
    ) -> impl Future<Output = Result<Option<Channel>, ChainError>> + Send;
}

/// Each layer's own contract type answers both reads with its typed messages.
macro_rules! read_by_messages {
    ($($contract:ty),*) => {$(
        impl ContractReader for $contract {
            async fn next_channel_id(&self, at: chain::BlockHash) -> Result<u64, ChainError> {
                Ok(self.read(&NextChannelId, At::Block(at)).await?.1 .0)
            }

            async fn channel(
                &self,
                id: ChannelId,
                at: chain::BlockHash,
            ) -> Result<Option<Channel>, ChainError> {
                Ok(self
                    .read(&GetChannel { channel: id }, At::Block(at))
                    .await?
                    .1)
            }
        }
    )*};
}

read_by_messages!(Contract, EvmContract);

/// Either layer's contract: its reads are [`AnyContract`]'s own.
impl ContractReader for AnyContract {
    async fn next_channel_id(&self, at: chain::BlockHash) -> Result<u64, ChainError> {
        AnyContract::next_channel_id(self, At::Block(at)).await
    }

    async fn channel(
        &self,
        id: ChannelId,
        at: chain::BlockHash,
    ) -> Result<Option<Channel>, ChainError> {
        Ok(AnyContract::channel(self, id, At::Block(at)).await?.1)
    }
}

/// [`ChainView`] over the contract, kept current by [`crate::follow`] (which calls
/// [`NodeView::on_finalized`], [`NodeView::on_best`] and [`NodeView::on_lost`]).
#[derive(Clone)]
pub struct NodeView<R = AnyContract> {
    reader: R,
    state: Arc<Mutex<State>>,
}

fn unreachable(what: &str) -> ChainError {
    ChainError::Other(format!("not following the chain: {what}"))
}

impl<R: ContractReader> NodeView<R> {
    /// A view that knows no block yet: it answers once [`crate::follow`] has reported the first
    /// finalized and best blocks.
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            state: Arc::default(),
        }
    }

    /// The contract reader behind the view (the closer's node adapter shares it).
    pub fn reader(&self) -> &R {
        &self.reader
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave it inconsistent: every update is a
        // single assignment or map operation.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new finalized block: the cache starts over.
    pub fn on_finalized(&self, number: u32, hash: chain::BlockHash) {
        self.lock().finalize(number, hash);
    }

    /// A new best block and the contract's events in it (ignored for a block at or below
    /// the finalized one).
    pub fn on_best(&self, number: u32, events: &[SlotpayEvent]) {
        self.lock().best(number, events);
    }

    /// A finalized block, every best block above it with its events, in order, and the
    /// best height, all at once: no read sees the heights without those blocks' events.
    /// The blocks are the whole best chain above the finalized one, so what other blocks
    /// said (a fork since abandoned, an earlier chain) is dropped.
    pub fn on_caught_up(
        &self,
        finalized: (u32, chain::BlockHash),
        blocks: &[(u32, &[SlotpayEvent])],
        best: u32,
    ) {
        let mut state = self.lock();
        state.finalize(finalized.0, finalized.1);
        state.overlay.clear();
        for (number, events) in blocks {
            state.best(*number, events);
        }
        state.best(best, &[]);
    }

    /// The node went away: nothing is known until it is back, and a read under way
    /// answers that it went.
    pub fn on_lost(&self) {
        self.lock().lose();
    }

    /// The node is back on another chain (its finality went back): what best blocks said
    /// before is forgotten too.
    pub fn on_new_chain(&self) {
        let mut state = self.lock();
        state.lose();
        state.overlay.clear();
    }

    /// `id` at the finalized block `hash`; `next_id` and `cell` are that block's shared
    /// reads (taken from the state when `hash` was current).
    async fn finalized_channel(
        &self,
        id: ChannelId,
        hash: chain::BlockHash,
        next_id: Shared<u64>,
        cell: Shared<Option<Channel>>,
    ) -> Result<Option<Channel>, ChainError> {
        let next_id = *next_id
            .get_or_try_init(|| self.reader.next_channel_id(hash))
            .await?;
        if id.0 >= next_id {
            return Ok(None);
        }
        Ok(*cell
            .get_or_try_init(|| self.reader.channel(id, hash))
            .await?)
    }
}

impl<R: ContractReader> ChainView for NodeView<R> {
    fn heights(&self) -> Option<Heights> {
        self.lock().heights
    }

    async fn read(&self, id: ChannelId) -> Result<ChannelRead, ChainError> {
        let (heights, hash, next_id, cell, overlay, generation) = {
            let mut state = self.lock();
            let heights = state.heights.ok_or_else(|| unreachable("no block seen"))?;
            let hash = state
                .finalized
                .ok_or_else(|| unreachable("no finalized block"))?;
            let cell = state.channels.entry(id).or_default().clone();
            (
                heights,
                hash,
                state.next_id.clone(),
                cell,
                state.overlay.get(&id).cloned().unwrap_or_default(),
                state.generation,
            )
        };
        let channel = self.finalized_channel(id, hash, next_id, cell).await?;
        if self.lock().generation != generation {
            // Its heights are from before the node went away: "now" may have moved far.
            return Err(unreachable("the node went away during the read"));
        }
        let finalized_open = channel.is_some();
        let channel = channel.filter(|_| overlay.gone_at.is_none()).map(|mut c| {
            // Announced in best blocks: replayed as the contract ran them (bring any due
            // rotation into force at the announcing block, then set the new one), before
            // they are final.
            for (rotation, at) in &overlay.rotations {
                c.advance(*at);
                c.rotation = Some(*rotation);
            }
            c.at(heights.best)
        });
        Ok(ChannelRead {
            block: heights.finalized,
            now: heights.best,
            channel,
            finalized_open,
        })
    }
}
