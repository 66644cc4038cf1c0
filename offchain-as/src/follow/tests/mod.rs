//! The follower against a node that goes away and comes back the way a Substrate node
//! behind subxt's reconnecting client does: each subscription reports the loss on its
//! own, calls made while the client reconnects wait for it, a resubscribed finalized
//! stream shows nothing until the next finalized block, and a dev node's chain stands
//! still until a transaction comes. Time is tokio's paused clock: the waits are exact.
use super::{track, HeadSource, Notice};
use crate::view::{ChainView, ContractReader, Heights, NodeView};
use chain::{BlockEvents, BlockHash, ChainError, SlotpayEvent};
use interface::events::{Closed, RotationAnnounced};
use protocol::{Authority, Channel, ChannelId, PublicKey};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Block `number` of fork `fork` (0: the first chain).
fn hash_of(fork: u64, number: u32) -> BlockHash {
    BlockHash::from_low_u64_be((fork << 32) | (u64::from(number) + 1))
}

fn hash(number: u32) -> BlockHash {
    hash_of(0, number)
}

/// How the node answers calls.
#[derive(Clone, Copy, PartialEq)]
enum Reach {
    Up,
    /// Away, calls waiting for the reconnect (subxt queues them and sends them once it
    /// is back).
    Hanging,
    /// Away, calls refused at once.
    Refusing,
}

struct ChainState {
    reach: Reach,
    /// The best chain: block `n`'s hash at index `n`.
    chain: Vec<BlockHash>,
    finalized: u32,
    events: HashMap<BlockHash, Vec<SlotpayEvent>>,
    /// Refuse every events read (the heads still answer).
    events_fail: bool,
    /// Every events read waits for ever (the heads still answer).
    events_hang: bool,
    /// How long every call takes (a range read: this per eight blocks).
    latency: Duration,
    /// How many range reads were made.
    range_reads: usize,
}

#[derive(Clone)]
struct FakeNode(Arc<Mutex<ChainState>>);

impl FakeNode {
    fn new(best: u32, finalized: u32) -> Self {
        Self(Arc::new(Mutex::new(ChainState {
            reach: Reach::Up,
            chain: (0..=best).map(hash).collect(),
            finalized,
            events: HashMap::new(),
            events_fail: false,
            events_hang: false,
            latency: Duration::ZERO,
            range_reads: 0,
        })))
    }

    fn set(&self, change: impl FnOnce(&mut ChainState)) {
        change(&mut self.0.lock().expect("lock"));
    }

    /// The notice the best subscription gives for block `number` of the best chain.
    fn best_notice(&self, number: u32) -> Notice {
        let s = self.0.lock().expect("lock");
        Notice::Best {
            number,
            hash: s.chain[number as usize],
            parent: s.chain[number as usize - 1],
        }
    }

    /// The node's state, or how it fails to answer; `events` reads wait for ever while
    /// `events_hang` is set.
    async fn answer<T>(
        &self,
        events: bool,
        read: impl FnOnce(&ChainState) -> Result<T, ChainError>,
    ) -> Result<T, ChainError> {
        let (reach, latency, hang) = {
            let s = self.0.lock().expect("lock");
            (s.reach, s.latency, events && s.events_hang)
        };
        tokio::time::sleep(latency).await;
        if hang {
            std::future::pending::<()>().await;
        }
        if reach == Reach::Hanging {
            // As subxt's client does: a call made while it reconnects is sent once it has.
            while self.0.lock().expect("lock").reach == Reach::Hanging {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let s = self.0.lock().expect("lock");
        match s.reach {
            Reach::Refusing => Err(ChainError::Other("connection refused".into())),
            _ => read(&s),
        }
    }
}

impl ChainState {
    fn best(&self) -> u32 {
        self.chain.len() as u32 - 1
    }

    /// Adds block `best + 1` of fork `fork` with `events`.
    fn push(&mut self, fork: u64, events: Vec<SlotpayEvent>) {
        let hash = hash_of(fork, self.best() + 1);
        self.chain.push(hash);
        self.events.insert(hash, events);
    }

    fn events_of(&self, hash: &BlockHash) -> Result<Vec<SlotpayEvent>, ChainError> {
        if self.events_fail {
            return Err(ChainError::Other("cannot decode the block's events".into()));
        }
        Ok(self.events.get(hash).cloned().unwrap_or_default())
    }
}

impl HeadSource for FakeNode {
    async fn best(&self) -> Result<(u32, BlockHash), ChainError> {
        self.answer(false, |s| Ok((s.best(), s.chain[s.best() as usize])))
            .await
    }

    async fn finalized(&self) -> Result<(u32, BlockHash), ChainError> {
        self.answer(false, |s| Ok((s.finalized, s.chain[s.finalized as usize])))
            .await
    }

    async fn events_at(&self, hash: BlockHash) -> Result<Vec<SlotpayEvent>, ChainError> {
        self.answer(true, |s| s.events_of(&hash)).await
    }

    async fn blocks_in(&self, from: u32, to: u32) -> Result<Vec<BlockEvents>, ChainError> {
        let latency = {
            let mut s = self.0.lock().expect("lock");
            s.range_reads += 1;
            s.latency
        };
        // Eight blocks at a time, as `Contract::blocks_in` reads them: one latency in
        // `answer`, one more per further eight (optimistic: the real read makes two or
        // three calls one after the other per block).
        let rounds = (to.saturating_sub(from) + 1).div_ceil(8);
        tokio::time::sleep(latency * rounds.saturating_sub(1)).await;
        self.answer(true, |s| {
            (from..=to)
                .map(|number| {
                    let hash = *s.chain.get(number as usize).ok_or_else(|| {
                        ChainError::Other(format!("no block {number} on the best chain"))
                    })?;
                    Ok(BlockEvents {
                        number,
                        hash,
                        parent: s.chain[number as usize - 1],
                        events: s.events_of(&hash)?,
                    })
                })
                .collect()
        })
        .await
    }
}

/// One open channel, id 0, in every finalized state; its reads can be held up (a call
/// queued while the client reconnects).
#[derive(Clone, Default)]
struct OneChannel {
    slow: Arc<std::sync::atomic::AtomicBool>,
}

impl ContractReader for OneChannel {
    async fn next_channel_id(&self, _at: BlockHash) -> Result<u64, ChainError> {
        Ok(1)
    }

    async fn channel(&self, id: ChannelId, _at: BlockHash) -> Result<Option<Channel>, ChainError> {
        if self.slow.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
        Ok((id == ChannelId(0)).then_some(Channel {
            payer: [1; 32],
            payee: [2; 32],
            authority: Authority::Delegate(PublicKey([2; 33])),
            epoch: 0,
            deposit: 1_000,
            settled: 0,
            base: 0,
            expires_at: 1_000,
            notice: 10,
            rotation: None,
        }))
    }
}

/// The real view, with a count of the times it was made to forget the chain.
struct Recorded {
    view: NodeView<OneChannel>,
    forgotten: AtomicUsize,
}

impl super::Followed for Recorded {
    fn on_finalized(&self, number: u32, hash: BlockHash) {
        self.view.on_finalized(number, hash);
    }

    fn on_best(&self, number: u32, events: &[SlotpayEvent]) {
        self.view.on_best(number, events);
    }

    fn on_caught_up(
        &self,
        finalized: (u32, BlockHash),
        blocks: &[(u32, &[SlotpayEvent])],
        best: u32,
    ) {
        self.view.on_caught_up(finalized, blocks, best);
    }

    fn on_lost(&self) {
        self.forgotten.fetch_add(1, Ordering::SeqCst);
        self.view.on_lost();
    }

    fn on_new_chain(&self) {
        self.forgotten.fetch_add(1, Ordering::SeqCst);
        self.view.on_new_chain();
    }
}

struct Running {
    node: FakeNode,
    view: Arc<Recorded>,
    notify: mpsc::UnboundedSender<Notice>,
    events: mpsc::UnboundedReceiver<(u32, SlotpayEvent)>,
    tick: watch::Receiver<u32>,
}

impl Running {
    fn heights(&self) -> Option<Heights> {
        self.view.view.heights()
    }

    fn forgotten(&self) -> usize {
        self.view.forgotten.load(Ordering::SeqCst)
    }

    fn say(&self, notice: Notice) {
        self.notify.send(notice).expect("the follower listens");
    }

    /// The best subscription showing the node's block `number`.
    fn show(&self, number: u32) {
        self.say(self.node.best_notice(number));
    }

    async fn open(&self) -> bool {
        self.view
            .view
            .read(ChannelId(0))
            .await
            .expect("read")
            .channel
            .is_some()
    }
}

/// The follower on a node at `best`/`finalized`, after the subscriptions' first blocks.
async fn running(best: u32, finalized: u32) -> Running {
    let node = FakeNode::new(best, finalized);
    let view = Arc::new(Recorded {
        view: NodeView::new(OneChannel::default()),
        forgotten: AtomicUsize::new(0),
    });
    let (notify, notices) = mpsc::unbounded_channel();
    let (events, events_rx) = mpsc::unbounded_channel();
    let (tick, tick_rx) = watch::channel(0);
    {
        let (node, view) = (node.clone(), view.clone());
        tokio::spawn(async move { track(&*view, &node, notices, events, tick).await });
    }
    let running = Running {
        node,
        view,
        notify,
        events: events_rx,
        tick: tick_rx,
    };
    running.show(best);
    running.say(Notice::Finalized(finalized, hash(finalized)));
    settle().await;
    running
}

/// Lets every task run until all wait (the paused clock then moves on by itself).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// Channel 0's rotation to the delegate key `[key; 33]`, in force at `effective_at`.
fn rotation(key: u8, effective_at: u32) -> SlotpayEvent {
    SlotpayEvent::RotationAnnounced(RotationAnnounced {
        channel: ChannelId(0),
        authority: Authority::Delegate(PublicKey([key; 33])),
        epoch: 1,
        effective_at,
    })
}

/// Channel 0 closed, `paid` to the AS.
fn closed(paid: u128) -> SlotpayEvent {
    SlotpayEvent::Closed(Closed {
        channel: ChannelId(0),
        paid,
        refunded: 1_000 - paid,
    })
}

mod blocks;
mod losses;
