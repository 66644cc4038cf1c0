//! The follower against a node that goes away and comes back the way a Substrate node
//! behind subxt's reconnecting client does: each subscription reports the loss on its
//! own, calls made while the client reconnects wait for it, a resubscribed finalized
//! stream shows nothing until the next finalized block, and a dev node's chain stands
//! still until a transaction comes. Time is tokio's paused clock: the waits are exact.
use super::{track, HeadSource, Notice, PROBE};
use crate::view::{ChainView, ContractReader, Heights, NodeView};
use chain::{BlockHash, ChainError, SlotpayEvent};
use interface::events::Closed;
use protocol::{Authority, Channel, ChannelId, PublicKey};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

fn hash(number: u32) -> BlockHash {
    BlockHash::from_low_u64_be(u64::from(number) + 1)
}

/// How the node answers calls.
#[derive(Clone, Copy, PartialEq)]
enum Reach {
    Up,
    /// Away, calls waiting for the reconnect (subxt queues them).
    Hanging,
    /// Away, calls refused at once.
    Refusing,
}

struct ChainState {
    reach: Reach,
    best: u32,
    finalized: u32,
    events: Vec<(u32, SlotpayEvent)>,
}

#[derive(Clone)]
struct FakeNode(Arc<Mutex<ChainState>>);

impl FakeNode {
    fn new(best: u32, finalized: u32) -> Self {
        Self(Arc::new(Mutex::new(ChainState {
            reach: Reach::Up,
            best,
            finalized,
            events: Vec::new(),
        })))
    }

    fn set(&self, change: impl FnOnce(&mut ChainState)) {
        change(&mut self.0.lock().expect("lock"));
    }

    /// The node's state, or how it fails to answer.
    async fn answer<T>(&self, read: impl FnOnce(&ChainState) -> T) -> Result<T, ChainError> {
        let reach = self.0.lock().expect("lock").reach;
        match reach {
            Reach::Up => Ok(read(&self.0.lock().expect("lock"))),
            Reach::Hanging => std::future::pending().await,
            Reach::Refusing => Err(ChainError::Other("connection refused".into())),
        }
    }
}

impl HeadSource for FakeNode {
    async fn best(&self) -> Result<u32, ChainError> {
        self.answer(|s| s.best).await
    }

    async fn finalized(&self) -> Result<(u32, BlockHash), ChainError> {
        self.answer(|s| (s.finalized, hash(s.finalized))).await
    }

    async fn events_in(&self, from: u32, to: u32) -> Result<Vec<(u32, SlotpayEvent)>, ChainError> {
        self.answer(|s| {
            s.events
                .iter()
                .filter(|(at, _)| (from..=to).contains(at))
                .cloned()
                .collect()
        })
        .await
    }
}

/// One open channel, id 0, in every finalized state.
#[derive(Clone)]
struct OneChannel;

impl ContractReader for OneChannel {
    async fn next_channel_id(&self, _at: BlockHash) -> Result<u64, ChainError> {
        Ok(1)
    }

    async fn channel(&self, id: ChannelId, _at: BlockHash) -> Result<Option<Channel>, ChainError> {
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

    fn on_lost(&self) {
        self.forgotten.fetch_add(1, Ordering::SeqCst);
        self.view.on_lost();
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
}

/// The follower on a node at `best`/`finalized`, after the subscriptions' first blocks.
async fn running(best: u32, finalized: u32) -> Running {
    let node = FakeNode::new(best, finalized);
    let view = Arc::new(Recorded {
        view: NodeView::new(OneChannel),
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
    running.say(Notice::Best(best));
    running.say(Notice::Finalized(finalized, hash(finalized)));
    settle().await;
    running
}

/// Lets every task run until all wait (the paused clock then moves on by itself).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(10)).await;
}

/// The failure CI met: the node restarts; the best subscription reports the loss, comes
/// back and shows its head, and sales resume; then the finalized subscription reports
/// the same loss. The node answers, so the view must not forget the chain again: on a
/// still chain no new block would ever bring it back.
#[tokio::test(start_paused = true)]
async fn a_loss_reported_late_by_the_other_subscription_does_not_stop_sales() {
    let mut f = running(10, 10).await;
    assert_eq!(f.heights().map(|h| h.best), Some(10));
    f.node.set(|s| s.reach = Reach::Hanging);
    f.say(Notice::Lost);
    tokio::time::sleep(PROBE * 2).await;
    assert_eq!(f.heights(), None, "sold on while the node was away");
    f.node.set(|s| s.reach = Reach::Up);
    f.say(Notice::Best(10));
    tokio::time::sleep(PROBE * 2).await;
    assert!(
        f.view.view.read(ChannelId(0)).await.is_ok(),
        "sales resumed"
    );
    let forgotten = f.forgotten();
    f.say(Notice::Lost);
    tokio::time::sleep(PROBE * 10).await;
    assert_eq!(
        f.forgotten(),
        forgotten,
        "a late report of a loss the node has recovered from stopped sales"
    );
    assert!(f.view.view.read(ChannelId(0)).await.is_ok());
    assert_eq!(*f.tick.borrow_and_update(), 10);
}

/// A node back on a chain that stands still sends no notification: the follower asks.
#[tokio::test(start_paused = true)]
async fn a_node_back_on_a_still_chain_is_followed_without_a_new_block() {
    let f = running(10, 9).await;
    f.node.set(|s| s.reach = Reach::Refusing);
    f.say(Notice::Lost);
    f.say(Notice::Lost);
    settle().await;
    assert_eq!(f.heights(), None);
    f.node.set(|s| s.reach = Reach::Up);
    tokio::time::sleep(PROBE).await;
    assert_eq!(
        f.heights(),
        Some(Heights {
            best: 10,
            finalized: 9
        })
    );
}

/// While the node may still answer, the view keeps what it knew; once the probe's time
/// is up without an answer, it forgets.
#[tokio::test(start_paused = true)]
async fn a_node_that_does_not_answer_is_forgotten_after_the_probe_time() {
    let f = running(10, 10).await;
    f.node.set(|s| s.reach = Reach::Hanging);
    f.say(Notice::Lost);
    tokio::time::sleep(PROBE / 2).await;
    assert!(f.heights().is_some());
    tokio::time::sleep(PROBE).await;
    assert_eq!(f.heights(), None);
    assert_eq!(
        f.view
            .view
            .read(ChannelId(0))
            .await
            .err()
            .map(|e| e.to_string()),
        Some("not following the chain: no block seen".into())
    );
}

/// Blocks made while the node was away (or while the connection was) are read when it is
/// back: a close in one of them stops sales on its channel before it is final, as one
/// seen live would.
#[tokio::test(start_paused = true)]
async fn a_close_made_while_the_connection_was_away_is_seen_when_it_is_back() {
    let mut f = running(10, 10).await;
    assert!(f
        .view
        .view
        .read(ChannelId(0))
        .await
        .expect("read")
        .channel
        .is_some());
    f.node.set(|s| s.reach = Reach::Refusing);
    f.say(Notice::Lost);
    settle().await;
    let closed = SlotpayEvent::Closed(Closed {
        channel: ChannelId(0),
        paid: 5,
        refunded: 995,
    });
    f.node.set(|s| {
        s.reach = Reach::Up;
        s.best = 13;
        s.events.push((12, closed.clone()));
    });
    tokio::time::sleep(PROBE).await;
    let read = f.view.view.read(ChannelId(0)).await.expect("read");
    assert_eq!((read.now, read.block), (13, 10));
    assert_eq!(read.channel, None, "sold on a channel closed while away");
    assert!(read.finalized_open);
    assert_eq!(f.events.try_recv().ok(), Some((12, closed)));
    assert_eq!(*f.tick.borrow_and_update(), 13);
}

/// A best block at a height seen before (another fork's) has its events read, and the
/// closer's clock does not go back.
#[tokio::test(start_paused = true)]
async fn a_fork_block_is_read_and_the_clock_does_not_go_back() {
    let mut f = running(12, 10).await;
    let closed = SlotpayEvent::Closed(Closed {
        channel: ChannelId(0),
        paid: 1,
        refunded: 999,
    });
    f.node.set(|s| s.events.push((11, closed.clone())));
    f.say(Notice::Best(11));
    settle().await;
    assert_eq!(f.events.try_recv().ok(), Some((11, closed)));
    assert_eq!(*f.tick.borrow_and_update(), 12);
    let read = f.view.view.read(ChannelId(0)).await.expect("read");
    assert_eq!((read.now, read.channel), (12, None));
}
