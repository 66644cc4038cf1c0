//! Failover without loss: a PostgreSQL primary and a synchronous standby streaming from
//! it (`synchronous_commit = on`, `synchronous_standby_names`), both started by the test;
//! two `slotpay-as` instances connect with a libpq multi-host URL
//! (`host=primary,standby`, `target_session_attrs=read-write`: whichever accepts writes).
//! Under purchase load the primary is killed with `kill -9` (the postmaster and every
//! backend at once, as when its machine is lost) and the standby promoted (`pg_ctl
//! promote`); the instances reconnect by themselves. Every purchase that got a 200 is in
//! the promoted database as answered, and the closes that follow pay exactly what was
//! sold.
//!
//! Needs `SLOTPAY_NODE_URL` and PostgreSQL (scripts/setup.sh).
use protocol::keys::{self, SecretKey};
use protocol::{AnyDomain, ChannelId};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tests::services::Postgres;
use tests::several::*;
use tests::*;

const PRICE: u128 = 1_000_000;
const DEPOSIT: u128 = 100_000 * PRICE;
const BUYERS: usize = 8;

/// What a buyer was answered with 200: (channel, total, device, first counter, slots).
type Answers = Arc<Mutex<Vec<(ChannelId, u128, String, u64, usize)>>>;

/// Buys one slot at a time on `channel`, alternating instances; a request that is not
/// answered 200 (the database failing over under it) is sent again with the same receipt
/// until it is, so every receipt signed ends answered. Returns the last total.
fn buyer(
    instances: Vec<String>,
    domain: AnyDomain,
    channel: ChannelId,
    key: SecretKey,
    stop: Arc<AtomicBool>,
    answers: Answers,
) -> (u128, usize) {
    let mut total = 0;
    let mut failed = 0;
    let mut turn = 0;
    while !stop.load(Ordering::SeqCst) {
        let amount = total + PRICE;
        let body = purchase_body(&domain, "lock-1", channel, 0, amount, &key, None);
        let started = Instant::now();
        loop {
            turn += 1;
            match post_purchase(&instances[turn % instances.len()], &body) {
                Ok(reply) => {
                    answers.lock().expect("answers").push((
                        channel,
                        amount,
                        reply.device,
                        reply.first_counter,
                        reply.tokens.len(),
                    ));
                    break;
                }
                Err((status, e)) => {
                    assert!(
                        started.elapsed() < Duration::from_secs(120),
                        "{amount} on {channel} still unanswered: {status} {e}"
                    );
                    failed += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        total = amount;
        std::thread::sleep(Duration::from_millis(5));
    }
    (total, failed)
}

#[test]
fn every_answered_purchase_survives_the_loss_of_the_primary() {
    assert!(
        services::postgres_available(),
        "PostgreSQL is not installed: run scripts/setup.sh"
    );
    let url = node_url();
    let dir = work_dir("failover");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut primary = Postgres::start();
    primary.create_database("slotpay");
    let standby = Postgres::standby_of(&primary, "standby1");
    primary.require_synchronous("standby1");
    assert!(standby.in_recovery());
    let database_url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/slotpay?target_session_attrs=read-write&connect_timeout=2",
        primary.port, standby.port
    );
    let deployment = deploy(&dir, &url);
    let contract = runtime.block_on(contract(&url, &deployment));
    let domain = api::Deployment::load(&deployment)
        .expect("deployment")
        .domain();
    let options = AsOptions {
        price: PRICE,
        blocks_before_expiry: 10,
        expiry_margin_blocks: 10,
        min_notice_blocks: 12,
        database_url: Some(database_url),
        lease_seconds: 2.0,
        ..AsOptions::default()
    };
    let instances: Vec<Instance> = ["as-a", "as-b"]
        .iter()
        .map(|name| Instance::start(&dir, name, &url, &["lock-1"], &options))
        .collect();
    let keys: Vec<SecretKey> = (0..BUYERS).map(|_| keys::generate()).collect();
    let bob = subxt_signer::sr25519::dev::bob().public_key().0;
    let start = runtime.block_on(best_block(&contract));
    let expires_at = start + 40;
    let ids = runtime.block_on(open_channels(
        &contract,
        bob,
        &delegates(&keys),
        DEPOSIT,
        expires_at,
        12,
    ));
    for instance in &instances {
        wait_for_channel(&instance.url(), *ids.last().expect("channels"));
    }
    let urls: Vec<String> = instances.iter().map(Instance::url).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let answers: Answers = Arc::default();
    let buyers: Vec<_> = keys
        .iter()
        .zip(&ids)
        .map(|(key, id)| {
            let (urls, key, id, stop, answers) =
                (urls.clone(), *key, *id, stop.clone(), answers.clone());
            std::thread::spawn(move || (id, buyer(urls, domain, id, key, stop, answers)))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let before_kill = answers.lock().expect("answers").len();
    assert!(before_kill > 0, "nothing sold before the failover");
    // The standby falls behind (its WAL receiver stopped, as on a slow or cut link): a
    // commit the primary makes from now on is on the primary's disk only, unless the
    // primary waits for the standby before it answers, as a synchronous one must.
    let receiver = standby
        .wal_receiver_pid()
        .expect("the standby's WAL receiver");
    signal(receiver, "-STOP");
    std::thread::sleep(Duration::from_secs(1));
    let while_behind = answers.lock().expect("answers").len() - before_kill;
    // The primary's machine is lost: every one of its processes at once; what the
    // standby had not received goes with it.
    primary.kill9();
    signal(receiver, "-KILL");
    eprintln!("{while_behind} purchases answered while the standby was behind");
    let killed = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    standby.promote();
    eprintln!(
        "primary killed after {before_kill} purchases; standby promoted {:.1} s later",
        killed.elapsed().as_secs_f64()
    );
    // The instances reconnect by themselves: sales resume.
    let resumed = Instant::now();
    let at_promotion = answers.lock().expect("answers").len();
    while answers.lock().expect("answers").len() < at_promotion + 2 * BUYERS {
        assert!(
            resumed.elapsed() < Duration::from_secs(60),
            "sales did not resume after the promotion"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let back_after = resumed.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);
    let finals: BTreeMap<ChannelId, (u128, usize)> = buyers
        .into_iter()
        .map(|b| b.join().expect("buyer"))
        .collect();
    let failed: usize = finals.values().map(|(_, f)| f).sum();
    let answered = answers.lock().expect("answers").clone();
    eprintln!(
        "{} purchases answered; {failed} requests failed during the failover and were retried; \
         sales back {:.1} s after the promotion",
        answered.len(),
        back_after.as_secs_f64()
    );
    // Every 200 is in the promoted database, as answered.
    let sales = ledger_sales(&standby, "slotpay");
    let held: BTreeMap<(u64, u128), (String, u64, u64)> = sales
        .into_iter()
        .map(|(c, t, d, f, s)| ((c, t), (d, f, s)))
        .collect();
    for (channel, total, device, first, slots) in &answered {
        let sale = held.get(&(channel.0, *total)).unwrap_or_else(|| {
            panic!("answered {total} on {channel} is not in the promoted database")
        });
        assert_eq!(
            sale,
            &(device.clone(), *first, *slots as u64),
            "{channel} {total}"
        );
    }
    // No counter sold twice across the failover.
    let mut ranges: Vec<(u64, u64)> = held.values().map(|(_, f, s)| (*f, *s)).collect();
    ranges.sort_unstable();
    for pair in ranges.windows(2) {
        assert!(
            pair[0].0 + pair[0].1 <= pair[1].0,
            "counters {pair:?} overlap"
        );
    }
    // The closes that follow (by the lease holder, on the promoted database) pay exactly
    // what was sold.
    let deadline = Instant::now() + Duration::from_secs(300);
    while runtime.block_on(best_block(&contract)) <= expires_at {
        assert!(Instant::now() < deadline, "blocks did not pass");
        runtime.block_on(make_block(&contract));
        std::thread::sleep(Duration::from_millis(500));
    }
    let end = runtime.block_on(best_block(&contract));
    let (closed, _) = runtime.block_on(close_and_settle_events(&contract, start, end));
    for (id, (total, _)) in &finals {
        let closes = closed.get(id).cloned().unwrap_or_default();
        assert_eq!(closes.len(), 1, "channel {id}: closes {closes:?}");
        let (block, paid, refunded) = closes[0];
        assert!(block < expires_at, "channel {id} closed at {block}");
        assert_eq!((paid, refunded), (*total, DEPOSIT - total), "channel {id}");
    }
    drop(instances);
    drop(standby);
    drop(primary);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sends `sig` ("-STOP", "-KILL") to `pid`.
fn signal(pid: u32, sig: &str) {
    let status = std::process::Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(status.success(), "kill {sig} {pid}");
}
