//! The AS under a real chain: its policy closer closes several hundred channels expiring
//! in the same block, each with a sold receipt and each paid exactly, planned against the
//! chain's own block limits, on a node with instant finality and on one whose finality
//! lags (`SLOTPAY_LAG_NODE_URL`, a node started with `--finalize-delay-sec`); and a
//! running `serve` survives a node restart under load: sales answer 503 only while the
//! node is down, resume after, and a close pending across the restart completes.
use api::PurchaseReply;
use chain::{balances, Contract};
use protocol::keys::{self, SecretKey};
use protocol::{AnyDomain, ChannelId};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tests::several::make_block;
use tests::*;

const PRICE: u128 = 1_000_000;
const DEPOSIT: u128 = 1_000 * PRICE;
/// The restart test's load: each buyer makes at most one purchase per `LOAD_PACE` ...
const LOAD_PACE: Duration = Duration::from_millis(20);
/// ... and its channel's deposit covers this many: 50 purchases a second for 40 minutes,
/// far longer than the test can run (its waits are bounded by minutes).
const LOAD_BUDGET_SLOTS: u128 = 120_000;

fn buy(
    as_url: &str,
    domain: &AnyDomain,
    channel: ChannelId,
    amount: u128,
    key: &SecretKey,
) -> Result<PurchaseReply, (u16, String)> {
    post_purchase(
        as_url,
        &purchase_body(domain, "lock-1", channel, 0, amount, key, None),
    )
}

/// Every `Closed` event of the contract in blocks `from..=to` of the best chain: what
/// each channel's (last) close paid and refunded.
async fn closed_events(
    contract: &Contract,
    from: u32,
    to: u32,
) -> BTreeMap<ChannelId, (u128, u128)> {
    let (closed, _) = several::close_and_settle_events(contract, from, to).await;
    closed
        .into_iter()
        .filter_map(|(id, closes)| Some((id, closes.last().map(|c| (c.1, c.2))?)))
        .collect()
}

/// Channels expiring in one block in the crowd tests: several hundred, each with a sale.
const CROWD: usize = 300;

/// `lag`: the node's configured finality lag in seconds (right after a deploy, which
/// waits for finality, there is nothing to measure it on).
fn crowd_expiring_together(url: &str, name: &str, lag: f64) {
    let dir = work_dir(name);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let deployment = deploy(&dir, url);
    let contract = runtime.block_on(contract(url, &deployment));
    // Margins from the measured lag: the AS refuses a configuration that cannot work.
    let before = 8 + (lag * 4.0).ceil() as u32;
    let options = AsOptions {
        price: PRICE,
        blocks_before_expiry: before,
        expiry_margin_blocks: before,
        // Long enough a notice for the whole crowd's settles (the AS holds only as many
        // channels as it could settle together if the payer rotated them all at once).
        min_notice_blocks: before + 40,
        block_seconds: 0.5,
        inclusion_seconds: 1.0,
        ..AsOptions::default()
    };
    let port = free_tcp_port();
    write_as_config(&dir, url, port, &["lock-1"], &options);
    let as_url = format!("http://127.0.0.1:{port}");
    let _as_proc = start_as(&dir, &as_url);
    let domain = api::Deployment::load(&deployment)
        .expect("deployment")
        .domain();
    let secrets: Vec<SecretKey> = (0..CROWD).map(|_| keys::generate()).collect();
    let bob = subxt_signer::sr25519::dev::bob().public_key().0;
    let alice = subxt_signer::sr25519::dev::alice().public_key().0;
    let alice_before = runtime
        .block_on(balances::free(contract.node(), &alice))
        .expect("balance");
    let start = runtime.block_on(best_block(&contract));
    let expires_at = start + before + 40;
    let ids = runtime.block_on(open_channels(
        &contract,
        bob,
        &delegates(&secrets),
        DEPOSIT,
        expires_at,
        before + 40,
    ));
    wait_for_channel(&as_url, *ids.last().expect("a crowd"));
    let mut sold = BTreeMap::new();
    for (i, (id, key)) in ids.iter().zip(&secrets).enumerate() {
        let amount = PRICE * (1 + i as u128 % 5);
        let reply = buy(&as_url, &domain, *id, amount, key)
            .unwrap_or_else(|e| panic!("sale on {id}: {e:?}"));
        assert_eq!(reply.total, amount.to_string());
        sold.insert(*id, amount);
    }
    // Blocks pass until every channel has expired; the AS must have closed all of them
    // before, each with its receipt.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let now = runtime.block_on(best_block(&contract));
        if now > expires_at {
            break;
        }
        assert!(Instant::now() < deadline, "blocks did not pass");
        runtime.block_on(make_block(&contract));
        // No faster than the block time the AS was told (block_seconds).
        std::thread::sleep(Duration::from_millis(500));
    }
    let end = runtime.block_on(best_block(&contract));
    let closed = runtime.block_on(closed_events(&contract, start, end));
    for (id, amount) in &sold {
        let (paid, refunded) = closed.get(id).unwrap_or_else(|| {
            panic!(
                "channel {id} expired unclosed (lag {lag:.1} s); log: {}",
                dir.join("as.log").display()
            )
        });
        assert_eq!(
            (*paid, *refunded),
            (*amount, DEPOSIT - amount),
            "channel {id}"
        );
    }
    // The payer paid exactly what was sold, plus what opening cost it.
    let spent: u128 = sold.values().sum();
    let alice_after = runtime
        .block_on(balances::free(contract.node(), &alice))
        .expect("balance");
    // (Each payment and refund is exact by the events above; her loss beyond them is
    // fees and storage deposits, accounted to the unit in e2e.rs.)
    assert!(
        alice_before - alice_after >= spent,
        "Alice paid less than was sold"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hundreds_of_channels_expiring_together_are_closed_and_paid_exactly() {
    crowd_expiring_together(&node_url(), "crowd", 0.0);
}

#[test]
fn hundreds_of_channels_expiring_together_under_finality_lag() {
    let Some(url) = lag_node_url() else {
        panic!("SLOTPAY_LAG_NODE_URL is not set: scripts/test.sh starts a node with --finalize-delay-sec");
    };
    let lag = std::env::var("SLOTPAY_LAG_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8.0);
    crowd_expiring_together(&url, "crowd-lag", lag);
}

fn restart_node() {
    run(Command::new(repo_root().join("scripts/node.sh")).arg("restart"));
}

/// A running `serve` outlives its node: while the node is down purchases answer 503, after
/// it is back they are served again without restarting the AS, and a close submitted by
/// the closer around the restart completes.
#[test]
fn serve_survives_a_node_restart_under_load() {
    let url = node_url();
    let dir = work_dir("restart");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let deployment = deploy(&dir, &url);
    let port = free_tcp_port();
    write_as_config(
        &dir,
        &url,
        port,
        &["lock-1"],
        &AsOptions {
            price: PRICE,
            ..AsOptions::default()
        },
    );
    let as_url = format!("http://127.0.0.1:{port}");
    let _as_proc = start_as(&dir, &as_url);
    let domain = api::Deployment::load(&deployment)
        .expect("deployment")
        .domain();
    let contract = runtime.block_on(contract(&url, &deployment));
    let secrets: Vec<SecretKey> = (0..3).map(|_| keys::generate()).collect();
    let bob = subxt_signer::sr25519::dev::bob().public_key().0;
    let now = runtime.block_on(best_block(&contract));
    // Channel 2 expires soon: its close falls around the restart.
    // The load channels' deposit covers the most the paced load can buy (below), so the
    // verdict does not depend on how fast this machine serves purchases.
    let mut ids = runtime.block_on(open_channels(
        &contract,
        bob,
        &delegates(&secrets[..2]),
        LOAD_BUDGET_SLOTS * PRICE,
        now + 400,
        20,
    ));
    ids.extend(runtime.block_on(open_channels(
        &contract,
        bob,
        &delegates(&secrets[2..]),
        DEPOSIT,
        now + 16,
        20,
    )));
    wait_for_channel(&as_url, ids[2]);
    buy(&as_url, &domain, ids[2], 3 * PRICE, &secrets[2]).expect("a sale on the expiring channel");
    // Load: two buyers, each at most one purchase per LOAD_PACE, recording every answer.
    // A buyer never signs beyond its channel's deposit: if it ran out before the test
    // ended, the test's own sizing is wrong, and it says so (a fast machine only buys
    // more slowly than the pace, never faster).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loads: Vec<_> = (0..2)
        .map(|i| {
            let (as_url, key, id, stop) = (as_url.clone(), secrets[i], ids[i], stop.clone());
            std::thread::spawn(move || {
                let mut answers = Vec::new();
                let mut bought = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    assert!(
                        bought < LOAD_BUDGET_SLOTS,
                        "the paced load bought all {LOAD_BUDGET_SLOTS} slots its deposit covers before the test ended: \
                         raise LOAD_BUDGET_SLOTS"
                    );
                    let at = Instant::now();
                    match buy(&as_url, &domain, id, (bought + 1) * PRICE, &key) {
                        Ok(r) => {
                            bought += 1;
                            answers.push((at, 200, r.total));
                        }
                        Err((status, body)) => answers.push((at, status, body)),
                    }
                    std::thread::sleep(LOAD_PACE.saturating_sub(at.elapsed()));
                }
                answers
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    // Blocks up to the expiring channel's close deadline: the closer submits its close
    // now, and the node goes down right after.
    while runtime.block_on(best_block(&contract)) + 3 < now + 16 {
        runtime.block_on(make_block(&contract));
    }
    let down = Instant::now();
    restart_node();
    let up = Instant::now();
    // No blocks from the test now: the expiring channel is 3 blocks from expiry, and the
    // closer's own transaction makes the block its close needs. Sales must resume.
    let resumed = Instant::now() + Duration::from_secs(20);
    while Instant::now() < resumed {
        let served = buy(&as_url, &domain, ids[1], u128::MAX / 2, &secrets[1]);
        // An amount no deposit covers: any answer but 503 shows the AS follows again.
        if !matches!(served, Err((503, _)) | Err((0, _))) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let answers: Vec<_> = loads
        .into_iter()
        .flat_map(|l| l.join().expect("load"))
        .collect();
    let served_after = answers
        .iter()
        .filter(|(at, s, _)| *at > up && *s == 200)
        .count();
    assert!(
        served_after > 0,
        "sales did not resume after the restart: {:?}",
        &answers[answers.len().saturating_sub(5)..]
    );
    // Refused only as 503, only from the restart on (a request in flight as the node
    // went down included), and never again once sales had resumed: by order of events,
    // not by a time allowance.
    let resumed = answers
        .iter()
        .filter(|(at, s, _)| *at > up && *s == 200)
        .map(|(at, _, _)| *at)
        .min()
        .expect("served after the restart");
    for (at, status, body) in &answers {
        if *status != 200 {
            assert!(*status == 503, "{status} {body}");
            assert!(
                *at >= down - Duration::from_millis(500) && *at < resumed,
                "refused outside the restart: {status} {body}"
            );
        }
    }
    // The close of the expiring channel completed.
    let store =
        offchain_as::Store::open(&dir.join("as.db"), &deployment_identity(&dir)).expect("ledger");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !store.state(ids[2]).expect("state").closed {
        assert!(
            Instant::now() < deadline,
            "the pending close never completed; log {}",
            dir.join("as.log").display()
        );
        // Blocks again, slowly: the close has had its chance at the expiry deadline.
        runtime.block_on(make_block(&contract));
        std::thread::sleep(Duration::from_secs(1));
    }
    // On chain, not only in the ledger: the close paid the AS exactly what it sold.
    let end = runtime.block_on(best_block(&contract));
    let closed = runtime.block_on(closed_events(&contract, now, end));
    assert_eq!(
        closed.get(&ids[2]).map(|(paid, _)| *paid),
        Some(3 * PRICE),
        "the expiring channel's Closed event"
    );
    let _ = Path::new(&dir);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The deployment in `dir`: what the AS bound its ledger to.
fn deployment_identity(dir: &Path) -> protocol::Domain {
    api::Deployment::load(&dir.join("deployment.json"))
        .expect("deployment")
        .identity()
}
