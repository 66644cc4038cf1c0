//! One closer at a time on a real node: three `slotpay-as` instances on one PostgreSQL
//! ledger behind HAProxy, under purchase load, settling by amount and closing by expiry.
//! The instance holding the closer lease is killed (SIGKILL) as it submits; the next one
//! to take the lease is stopped (SIGSTOP) as it submits, for longer than its lease, and
//! continued (SIGCONT) once a third has taken over. Every channel is closed exactly once,
//! none after its expiry, every settle and close together paying exactly what was sold;
//! the stopped instance's lease renewal and its writes after it was continued are refused.
//!
//! Needs `SLOTPAY_NODE_URL` and PostgreSQL and HAProxy (scripts/setup.sh).
use protocol::keys::{self, SecretKey};
use protocol::{AnyDomain, ChannelId};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tests::services::{Haproxy, Postgres};
use tests::several::*;
use tests::*;

const PRICE: u128 = 1_000_000;
const DEPOSIT: u128 = 10_000 * PRICE;
const CHANNELS: usize = 12;
const LEASE_SECONDS: f64 = 2.0;

/// Buys one slot at a time on `channel` through `balancer` until told to stop or the
/// channel stops selling; a failed request is sent again with the same receipt until it
/// is answered. Returns the last total answered.
fn buyer(
    balancer: String,
    domain: AnyDomain,
    channel: ChannelId,
    key: SecretKey,
    stop: Arc<AtomicBool>,
) -> u128 {
    let mut total = 0;
    let mut pending: Option<u128> = None;
    while !stop.load(Ordering::SeqCst) || pending.is_some() {
        let amount = pending.unwrap_or(total + PRICE);
        let body = purchase_body(&domain, "lock-1", channel, 0, amount, &key, None);
        match post_purchase(&balancer, &body) {
            Ok(reply) => {
                total = reply.total.parse().expect("total");
                pending = None;
            }
            // The channel's margin before its close: it sells nothing more.
            Err((422 | 410, e)) if pending.is_none() => {
                let _ = e;
                return total;
            }
            Err((status, e)) => {
                // Unknown outcome (an instance killed or stopped under it): the same
                // receipt again, until answered; refused for good only if a close stopped
                // it, in which case the ledger holds it or not (checked below).
                if status == 410 || status == 422 {
                    eprintln!("pending {amount} on {channel} refused: {status} {e}");
                    return total;
                }
                pending = Some(amount);
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    total
}

#[test]
fn a_killed_and_a_paused_closer_leave_one_close_per_channel_in_time() {
    assert!(
        services::postgres_available(),
        "PostgreSQL is not installed: run scripts/setup.sh"
    );
    let url = node_url();
    let dir = work_dir("closer-lease");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let pg = Postgres::start();
    let database_url = pg.create_database("slotpay");
    let deployment = deploy(&dir, &url);
    let contract = runtime.block_on(contract(&url, &deployment));
    let domain = api::Deployment::load(&deployment)
        .expect("deployment")
        .domain();
    // Margins: inclusion, the interval and a takeover (lease + interval) at 0.5 s a block.
    let options = AsOptions {
        price: PRICE,
        blocks_before_expiry: 12,
        expiry_margin_blocks: 12,
        min_notice_blocks: 14,
        database_url: Some(database_url),
        lease_seconds: LEASE_SECONDS,
        // Settle every few slots: the closer writes a record after each settle lands.
        settle_above: Some(3 * PRICE),
        ..AsOptions::default()
    };
    let mut instances: Vec<Instance> = ["as-a", "as-b", "as-c"]
        .iter()
        .map(|name| Instance::start(&dir, name, &url, &["lock-1"], &options))
        .collect();
    let proxy = Haproxy::start(&instances.iter().map(|i| i.port).collect::<Vec<_>>());
    let keys: Vec<SecretKey> = (0..CHANNELS).map(|_| keys::generate()).collect();
    let bob = subxt_signer::sr25519::dev::bob().public_key().0;
    let start = runtime.block_on(best_block(&contract));
    // Expiries spread over the test: closes come all along, through the chaos below.
    let mut ids = Vec::new();
    let mut expiry = BTreeMap::new();
    for (i, chunk) in keys.chunks(3).enumerate() {
        let expires_at = start + 40 + 12 * i as u32;
        for id in runtime.block_on(open_channels(
            &contract,
            bob,
            &delegates(chunk),
            DEPOSIT,
            expires_at,
            14,
        )) {
            expiry.insert(id, expires_at);
            ids.push(id);
        }
    }
    let last_expiry = *expiry.values().max().expect("channels");
    for instance in &instances {
        wait_for_channel(&instance.url(), *ids.last().expect("channels"));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let buyers: Vec<_> = keys
        .iter()
        .zip(&ids)
        .map(|(key, id)| {
            let (balancer, key, id, stop) = (proxy.url(), *key, *id, stop.clone());
            std::thread::spawn(move || (id, buyer(balancer, domain, id, key, stop)))
        })
        .collect();
    // Blocks at the pace the AS was told (0.5 s), from a thread of their own.
    let blocks_done = Arc::new(AtomicBool::new(false));
    let blocks = {
        let (url, deployment, done) = (url, deployment, blocks_done.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            let contract = runtime.block_on(tests::contract(&url, &deployment));
            while !done.load(Ordering::SeqCst) {
                runtime.block_on(make_block(&contract));
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };
    let pid_of = |instances: &[Instance], pid: u32| {
        instances
            .iter()
            .position(|i| i.pid() == Some(pid))
            .expect("the lease holder is one of the instances")
    };
    // Waits until instance `i` logs another submission than the `before` it had.
    let submitting = |instance: &Instance, before: usize, timeout: Duration| {
        let start = Instant::now();
        while instance.log_count("submitting settles and closes") <= before {
            assert!(
                start.elapsed() < timeout,
                "{} never submitted",
                instance.name
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    // 1. Kill the leader as it submits.
    let db = "slotpay";
    let leader = wait_for_new_leader(&pg, db, None, Duration::from_secs(30));
    let a = pid_of(&instances, leader);
    let before = instances[a].log_count("submitting settles and closes");
    submitting(&instances[a], before, Duration::from_secs(60));
    instances[a].kill9();
    eprintln!("killed the leader {} as it submitted", instances[a].name);
    // 2. Stop the next leader as it submits, past its lease; continue it once a third has
    //    taken over. Until one of its writes is refused (it must have one pending when it
    //    stops), at most three times.
    let mut refused_writes = 0.0;
    let mut refused_on_chain = 0;
    let mut paused_names = Vec::new();
    for _ in 0..3 {
        let next = wait_for_new_leader(&pg, db, Some(leader), Duration::from_secs(30));
        let b = pid_of(&instances, next);
        let before = instances[b].log_count("submitting settles and closes");
        submitting(&instances[b], before, Duration::from_secs(60));
        instances[b].pause();
        let paused_at = Instant::now();
        // Another takes over once the stopped one's lease has run out.
        let third = wait_for_new_leader(&pg, db, Some(next), Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(500));
        let refused_on_chain_before = instances[b].log_count("settle or close did not land");
        instances[b].resume();
        eprintln!(
            "stopped {} for {:.1} s; pid {third} took over",
            instances[b].name,
            paused_at.elapsed().as_secs_f64()
        );
        paused_names.push(instances[b].name.clone());
        // Its next pass finds its lease lost (and any write of the pass it was in the
        // middle of is refused).
        let lost = Instant::now();
        while instances[b].log_count("closer lease lost") == 0
            && instances[b].log_count("a write under a lost lease was refused") == 0
        {
            assert!(
                lost.elapsed() < Duration::from_secs(20),
                "{} never saw it lost the lease",
                instances[b].name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_secs(1));
        // What it was doing when stopped was refused: its records by the database (the
        // fence), or its transaction by the chain (the new leader had settled or closed
        // those channels first; then it has nothing to record).
        refused_writes = instances[b]
            .metric("slotpay_closer_fenced_writes_total")
            .unwrap_or(0.0);
        refused_on_chain =
            instances[b].log_count("settle or close did not land") - refused_on_chain_before;
        if refused_writes > 0.0 || refused_on_chain > 0 {
            break;
        }
    }
    eprintln!(
        "the stopped closer's late work: {refused_writes} writes refused by the ledger, \
         {refused_on_chain} operations refused by the chain ({paused_names:?})"
    );
    assert!(
        refused_writes > 0.0 || refused_on_chain > 0,
        "no stopped closer had its late work refused"
    );
    // Blocks past every expiry, then the load stops.
    let deadline = Instant::now() + Duration::from_secs(300);
    while runtime.block_on(best_block(&contract)) <= last_expiry + 2 {
        assert!(Instant::now() < deadline, "blocks did not pass");
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::SeqCst);
    let sold: BTreeMap<ChannelId, u128> = buyers
        .into_iter()
        .map(|b| b.join().expect("buyer"))
        .collect();
    blocks_done.store(true, Ordering::SeqCst);
    blocks.join().expect("blocks");
    let end = runtime.block_on(best_block(&contract));
    let (closed, settled) = runtime.block_on(close_and_settle_events(&contract, start, end));
    let sales = ledger_sales(&pg, db);
    for id in &ids {
        let ledger_total = sales
            .iter()
            .filter(|s| s.0 == id.0)
            .map(|s| s.1)
            .max()
            .unwrap_or(0);
        assert!(
            ledger_total >= sold[id],
            "channel {id}: an answered purchase is not in the ledger"
        );
        let closes = closed.get(id).cloned().unwrap_or_default();
        assert_eq!(closes.len(), 1, "channel {id} closed {closes:?}");
        let (block, close_paid, refunded) = closes[0];
        assert!(
            block < expiry[id],
            "channel {id} closed at {block}, expiry {}",
            expiry[id]
        );
        let settle_paid: u128 = settled.get(id).map_or(0, |s| s.iter().map(|x| x.1).sum());
        assert_eq!(
            settle_paid + close_paid,
            ledger_total,
            "channel {id}: settles {:?} and close {close_paid} against the ledger's {ledger_total}",
            settled.get(id)
        );
        assert_eq!(refunded, DEPOSIT - ledger_total, "channel {id}");
    }
    drop(proxy);
    instances.clear();
    drop(pg);
    let _ = std::fs::remove_dir_all(&dir);
}
