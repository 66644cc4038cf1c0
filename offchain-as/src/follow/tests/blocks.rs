//! Which blocks' events reach the view: made while away, on forks, already final, of
//! another chain.
use super::*;
use crate::follow::{PROBE, SLOW_PROBE};

/// Blocks made while the node was away (or while the connection was) are read when it is
/// back: a close in one of them stops sales on its channel before it is final, as one
/// seen live would.
#[tokio::test(start_paused = true)]
async fn a_close_made_while_the_connection_was_away_is_seen_when_it_is_back() {
    let mut f = running(10, 10).await;
    assert!(f.open().await);
    f.node.set(|s| s.reach = Reach::Refusing);
    f.say(Notice::Lost);
    settle().await;
    f.node.set(|s| {
        s.reach = Reach::Up;
        s.push(0, Vec::new());
        s.push(0, vec![closed(5)]);
        s.push(0, Vec::new());
    });
    tokio::time::sleep(PROBE).await;
    let read = f.view.view.read(ChannelId(0)).await.expect("read");
    assert_eq!((read.now, read.block), (13, 10));
    assert_eq!(read.channel, None, "sold on a channel closed while away");
    assert!(read.finalized_open);
    assert_eq!(f.events.try_recv().ok(), Some((12, closed(5))));
    assert_eq!(*f.tick.borrow_and_update(), 13);
}

/// A fork longer than the chain seen: the best block's parent is not the last block
/// delivered, so every block above the finalized one is read again (a close in the
/// fork's first block counts).
#[tokio::test(start_paused = true)]
async fn a_longer_fork_is_read_from_the_finalized_block() {
    let f = running(12, 10).await;
    f.node.set(|s| {
        s.chain.truncate(11);
        s.push(1, vec![closed(7)]);
        s.push(1, Vec::new());
        s.push(1, Vec::new());
    });
    f.show(13);
    settle().await;
    assert!(!f.open().await, "a close in a fork's block was missed");
}

/// A best block at a height seen before (another fork's) has its events read, and the
/// closer's wake-up does not go back.
#[tokio::test(start_paused = true)]
async fn a_fork_block_is_read_and_the_clock_does_not_go_back() {
    let mut f = running(12, 10).await;
    f.node.set(|s| {
        s.chain.truncate(11);
        s.push(1, vec![closed(1)]);
    });
    f.show(11);
    settle().await;
    assert_eq!(f.events.try_recv().ok(), Some((11, closed(1))));
    assert_eq!(*f.tick.borrow_and_update(), 12);
    assert!(!f.open().await);
}

/// A best block shown only after the node has finalized it: the finalized state holds
/// what it did, and replaying its rotation on that state would announce it twice (a
/// phantom epoch, or a later rotation's margin hidden).
#[tokio::test(start_paused = true)]
async fn a_block_already_final_is_not_replayed_on_the_finalized_state() {
    let f = running(10, 10).await;
    let rotation = rotation(3, 21);
    f.node.set(|s| {
        s.push(0, vec![rotation]);
        s.finalized = 11;
    });
    // The finalized subscription speaks first; the best one's notice comes late.
    f.say(Notice::Finalized(11, hash(11)));
    f.show(11);
    settle().await;
    let read = f.view.view.read(ChannelId(0)).await.expect("read");
    assert_eq!(read.block, 11);
    assert_eq!(
        read.channel.map(|c| c.rotation),
        Some(None),
        "a final block's rotation was replayed on the finalized state"
    );
}

/// The node came back on another chain (its finality is behind what was seen): what best
/// blocks of the old chain said is forgotten too.
#[tokio::test(start_paused = true)]
async fn a_new_chain_forgets_the_old_chains_best_blocks() {
    let f = running(10, 10).await;
    f.node.set(|s| s.push(0, vec![closed(3)]));
    f.show(11);
    settle().await;
    assert!(!f.open().await);
    f.node.set(|s| {
        s.chain = (0..=5).map(|n| hash_of(2, n)).collect();
        s.finalized = 5;
    });
    f.say(Notice::Lost);
    tokio::time::sleep(PROBE).await;
    assert_eq!(f.heights().map(|h| (h.best, h.finalized)), Some((5, 5)));
    assert!(f.open().await, "the old chain's close still counted");
}

/// A replacement rotation in a fork block later abandoned: the blocks above the finalized
/// one are read again, and what the abandoned block said no longer counts (else the old
/// authority would seem to hold until the replacement's later effective block).
#[tokio::test(start_paused = true)]
async fn an_abandoned_forks_rotation_does_not_count() {
    let f = running(10, 10).await;
    let rotation = rotation(4, 25);
    f.node.set(|s| s.push(0, vec![rotation]));
    f.show(11);
    settle().await;
    let rotated = |read: crate::view::ChannelRead| read.channel.and_then(|c| c.rotation);
    assert!(rotated(f.view.view.read(ChannelId(0)).await.expect("read")).is_some());
    f.node.set(|s| {
        s.chain.truncate(11);
        s.push(1, Vec::new());
        s.push(1, Vec::new());
    });
    f.show(12);
    tokio::time::sleep(PROBE).await;
    assert_eq!(
        rotated(f.view.view.read(ChannelId(0)).await.expect("read")),
        None,
        "an abandoned fork's rotation still counted"
    );
}

/// The node comes back, after an outage longer than the probe, on another chain whose
/// finalized and best block are at the old finalized one's height: the old chain's close
/// (above it) does not stop sales on the new chain's channel of the same id, and the
/// closer's wake-up comes down to the new chain's best block.
#[tokio::test(start_paused = true)]
async fn a_new_chain_after_an_outage_is_not_taken_for_the_old_one() {
    let mut f = running(10, 10).await;
    f.node.set(|s| s.push(0, vec![closed(3)]));
    f.show(11);
    settle().await;
    assert!(!f.open().await);
    f.node.set(|s| s.reach = Reach::Hanging);
    f.say(Notice::Lost);
    tokio::time::sleep(PROBE * 3).await;
    assert_eq!(f.heights(), None);
    f.node.set(|s| {
        s.chain = (0..=10).map(|n| hash_of(2, n)).collect();
        s.finalized = 10;
        s.reach = Reach::Up;
    });
    tokio::time::sleep(SLOW_PROBE).await;
    assert!(
        f.open().await,
        "the old chain's close stopped sales on the new chain"
    );
    assert_eq!(*f.tick.borrow_and_update(), 10);
}

/// Back on another chain behind the old one: the closer's wake-up follows it down.
#[tokio::test(start_paused = true)]
async fn a_new_chain_behind_the_old_one_moves_the_clock_back() {
    let mut f = running(10, 10).await;
    f.node.set(|s| {
        s.chain = (0..=6).map(|n| hash_of(2, n)).collect();
        s.finalized = 6;
    });
    f.say(Notice::Lost);
    tokio::time::sleep(PROBE).await;
    assert_eq!(f.heights().map(|h| (h.best, h.finalized)), Some((6, 6)));
    assert_eq!(*f.tick.borrow_and_update(), 6);
}

/// Blocks shown faster than their events are read (2 s a read): "now" jumps to the latest
/// one at once instead of trailing the queue, and the blocks between are read by a
/// catch-up (a close in one of them counts).
#[tokio::test(start_paused = true)]
async fn queued_best_blocks_move_now_to_the_latest_at_once() {
    let f = running(10, 10).await;
    f.node.set(|s| {
        s.latency = Duration::from_secs(2);
        s.push(0, Vec::new());
        s.push(0, vec![closed(2)]);
        s.push(0, Vec::new());
        s.push(0, Vec::new());
        s.push(0, Vec::new());
    });
    for number in 11..=15 {
        f.show(number);
    }
    settle().await;
    assert_eq!(
        f.heights().map(|h| h.best),
        Some(15),
        "now trailed the queued blocks"
    );
    tokio::time::sleep(SLOW_PROBE * 4).await;
    f.node.set(|s| s.latency = Duration::ZERO);
    assert!(!f.open().await, "a close in a skipped block was missed");
}

/// A finalized subscription that stops while the best one goes on (a block every half
/// second: never a silence): finality is asked of the node.
#[tokio::test(start_paused = true)]
async fn finality_is_asked_when_the_finalized_subscription_goes_quiet() {
    let f = running(10, 10).await;
    for number in 11..=30 {
        f.node.set(|s| {
            s.push(0, Vec::new());
            s.finalized = number - 2;
        });
        f.show(number);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Asked at least every FINALITY_REFRESH (5 s: 10 blocks here).
    let finalized = f.heights().map(|h| h.finalized).expect("following");
    assert!(
        finalized >= 17,
        "finality stuck at {finalized} while the node's reached 28"
    );
}
