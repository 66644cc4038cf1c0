//! The node, or the connection to it, going away and coming back.
use super::*;
use crate::follow::{PROBE, READ, SLOW_PROBE, WATCH};

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
    f.show(10);
    tokio::time::sleep(PROBE * 2).await;
    assert!(f.open().await, "sales resumed");
    let forgotten = f.forgotten();
    f.say(Notice::Lost);
    tokio::time::sleep(PROBE * 10).await;
    assert_eq!(
        f.forgotten(),
        forgotten,
        "a late report of a loss the node has recovered from stopped sales"
    );
    assert!(f.open().await);
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

/// A connection can die without a word (no error, no end of stream): a silence is a
/// reason to ask, and a node that does not answer is forgotten.
#[tokio::test(start_paused = true)]
async fn a_connection_that_dies_silently_is_noticed() {
    let f = running(10, 10).await;
    f.node.set(|s| s.reach = Reach::Hanging);
    tokio::time::sleep(WATCH + SLOW_PROBE + Duration::from_millis(50)).await;
    assert_eq!(
        f.heights(),
        None,
        "sold on a connection that had died silently"
    );
}

/// A read that began before the node went away and ends after it came back answers that
/// it went: its "now" is from before, and a channel may have expired or rotated since.
#[tokio::test(start_paused = true)]
async fn a_read_begun_before_a_loss_does_not_answer_after_it() {
    let f = running(10, 10).await;
    f.view.view.reader().slow.store(true, Ordering::SeqCst);
    let view = f.view.clone();
    let read = tokio::spawn(async move { view.view.read(ChannelId(0)).await });
    settle().await;
    f.node.set(|s| s.reach = Reach::Hanging);
    f.say(Notice::Lost);
    tokio::time::sleep(PROBE * 2).await;
    f.node.set(|s| {
        s.reach = Reach::Up;
        for _ in 0..20 {
            s.push(0, Vec::new());
        }
    });
    let answer = read.await.expect("read task");
    assert_eq!(
        answer.err().map(|e| e.to_string()),
        Some("not following the chain: the node went away during the read".into()),
        "a read from before the loss answered with its old heights"
    );
}

/// A node that gives its heads but not its blocks' events: the view keeps its state as
/// long as a read may take, then forgets the chain rather than miss a rotation or close.
#[tokio::test(start_paused = true)]
async fn blocks_whose_events_cannot_be_read_stop_sales_after_the_read_time() {
    let f = running(10, 10).await;
    f.node.set(|s| {
        s.events_fail = true;
        s.push(0, Vec::new());
    });
    f.show(11);
    tokio::time::sleep(READ / 2).await;
    assert!(f.heights().is_some());
    tokio::time::sleep(READ).await;
    assert_eq!(
        f.heights(),
        None,
        "sold on blocks whose events were never read"
    );
    f.node.set(|s| s.events_fail = false);
    tokio::time::sleep(PROBE).await;
    assert_eq!(f.heights().map(|h| h.best), Some(11));
}

/// A node whose heads answer but whose blocks' events never come: "now" keeps moving, and
/// once blocks have been unread for READ the view forgets the chain.
#[tokio::test(start_paused = true)]
async fn a_hanging_events_read_stops_sales_within_the_read_time() {
    let f = running(10, 10).await;
    f.node.set(|s| {
        s.events_hang = true;
        s.push(0, Vec::new());
    });
    f.show(11);
    tokio::time::sleep(READ / 2).await;
    assert_eq!(f.heights().map(|h| h.best), Some(11), "now moved at once");
    tokio::time::sleep(READ / 2 + Duration::from_millis(300)).await;
    assert_eq!(
        f.heights(),
        None,
        "sold for longer than READ on unread blocks"
    );
    f.node.set(|s| s.events_hang = false);
    // A read begun while it hung runs out its READ first.
    tokio::time::sleep(READ + PROBE).await;
    assert_eq!(f.heights().map(|h| h.best), Some(11));
}

/// A live node that answers every call in 1.5 s (its connection queued behind the
/// closer's reads): slower than a lost connection's probe, faster than a silence's.
/// Sales go on; new blocks are followed.
#[tokio::test(start_paused = true)]
async fn a_slow_but_live_node_is_not_forgotten() {
    let f = running(10, 10).await;
    let range_reads = f.node.0.lock().expect("lock").range_reads;
    f.node.set(|s| s.latency = Duration::from_millis(1_500));
    for number in 11..=16 {
        f.node.set(|s| s.push(0, Vec::new()));
        f.show(number);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(f.forgotten(), 0, "a slow node was taken for a lost one");
    }
    assert_eq!(f.heights().map(|h| h.best), Some(16));
    assert_eq!(
        f.node.0.lock().expect("lock").range_reads,
        range_reads,
        "each block should have been read by itself, not by a catch-up"
    );
}

/// A late report of a loss while the node is slow (1.5 s a call): the 1 s probe forgets
/// the chain, and the tries that follow, with nothing being sold, wait long enough for
/// the slow node to answer.
#[tokio::test(start_paused = true)]
async fn a_slow_node_forgotten_after_a_loss_report_is_taken_back() {
    let f = running(10, 10).await;
    f.node.set(|s| s.latency = Duration::from_millis(1_500));
    f.say(Notice::Lost);
    tokio::time::sleep(PROBE + Duration::from_millis(100)).await;
    assert_eq!(f.heights(), None);
    tokio::time::sleep(SLOW_PROBE * 2).await;
    assert_eq!(
        f.heights().map(|h| h.best),
        Some(10),
        "a slow node stayed forgotten"
    );
}

/// A finalized block heard just before a report of loss (both queued behind a slow step)
/// is kept, not dropped with the notices the loss makes moot.
#[tokio::test(start_paused = true)]
async fn a_finalized_block_heard_before_a_loss_report_is_kept() {
    let f = running(10, 10).await;
    f.node.set(|s| {
        s.push(0, Vec::new());
        s.push(0, Vec::new());
        s.finalized = 12;
        s.reach = Reach::Hanging;
    });
    f.say(Notice::Finalized(12, hash(12)));
    f.say(Notice::Lost);
    tokio::time::sleep(PROBE / 2).await;
    assert_eq!(
        f.heights().map(|h| h.finalized),
        Some(12),
        "a finalized block heard before the loss was dropped"
    );
}
