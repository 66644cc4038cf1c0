//! Crash survival, with the real binaries: the AS SIGKILLed at random points under load
//! (SLOTPAY_CRASH_KILLS times, 100 by default; `scripts/soak.sh` runs 1,000), the device
//! SIGKILLed while tokens are presented, and the node restarted while the AS is closing a
//! channel. Random points come from SLOTPAY_CRASH_SEED (printed, so a failure replays).
//!
//! Needs `SLOTPAY_NODE_URL` (scripts/test.sh starts a node and sets it), and for the node
//! restart the port `scripts/node.sh` started it on (`SLOTPAY_NODE_PORT`).
use device::PresentError;
use offchain_as::Store;
use protocol::hotp::{Digits, Token};
use protocol::keys::{self, SecretKey};
use protocol::{AnyDomain, ChannelId};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tests::*;

const PRICE: u128 = 1_000_000;
const DEVICES: [&str; 2] = ["lock-1", "pump-2"];

/// A small deterministic generator (SplitMix64): the crash points must replay from a seed.
struct Rng(u64);

impl Rng {
    fn from_env() -> Self {
        let seed = std::env::var("SLOTPAY_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("SLOTPAY_CRASH_SEED={seed}");
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// An AS on `url` with a fresh deployment, and its delegate channels for `secrets`.
fn as_with_channels(
    dir: &Path,
    url: &str,
    secrets: &[SecretKey],
) -> (String, Proc, AnyDomain, Vec<ChannelId>) {
    let deployment = deploy(dir, url);
    let port = free_tcp_port();
    write_as_config(
        dir,
        url,
        port,
        &DEVICES,
        &AsOptions {
            price: PRICE,
            ..AsOptions::default()
        },
    );
    let as_url = format!("http://127.0.0.1:{port}");
    let as_proc = start_as(dir, &as_url);
    let domain = api::Deployment::load(&deployment)
        .expect("deployment")
        .domain();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let ids = runtime.block_on(async {
        let contract = contract(url, &deployment).await;
        let expires_at = best_block(&contract).await + 100_000;
        let bob = subxt_signer::sr25519::dev::bob().public_key().0;
        open_channels(
            &contract,
            bob,
            &delegates(secrets),
            PRICE * 1_000_000,
            expires_at,
            20,
        )
        .await
    });
    (as_url, as_proc, domain, ids)
}

/// A purchase the AS answered: what the client was given.
#[derive(Debug, Clone)]
struct Answered {
    channel: ChannelId,
    amount: u128,
    device: String,
    first_counter: u64,
    tokens: Vec<String>,
}

/// One client paying on its own channel, one slot at a time. After a failed request it
/// resends the very same receipt (it cannot know whether it was sold).
struct Payer {
    channel: ChannelId,
    secret: SecretKey,
    accepted: u128,
    pending: Option<u128>,
    turn: usize,
}

enum Step {
    Bought(Answered),
    /// The AS is gone (killed): stop until it is back.
    Down,
}

impl Payer {
    fn new(channel: ChannelId, secret: SecretKey) -> Self {
        Self {
            channel,
            secret,
            accepted: 0,
            pending: None,
            turn: 0,
        }
    }

    fn buy(&mut self, as_url: &str, domain: &AnyDomain) -> Step {
        let amount = self.pending.unwrap_or(self.accepted + PRICE);
        self.pending = Some(amount);
        let device = DEVICES[self.turn % DEVICES.len()];
        let body = purchase_body(domain, device, self.channel, 0, amount, &self.secret, None);
        let answer = ureq::post(&format!("{as_url}{}", api::routes::PURCHASE))
            .timeout(Duration::from_secs(10))
            .send_json(serde_json::to_value(&body).expect("json"));
        match answer {
            Ok(reply) => {
                let reply: Value = reply.into_json().expect("reply JSON");
                self.accepted = amount;
                self.pending = None;
                self.turn += 1;
                Step::Bought(Answered {
                    channel: self.channel,
                    amount,
                    device: reply["device"].as_str().expect("device").to_owned(),
                    first_counter: reply["first_counter"].as_u64().expect("first_counter"),
                    tokens: reply["tokens"]
                        .as_array()
                        .expect("tokens")
                        .iter()
                        .map(|o| o.as_str().expect("token").to_owned())
                        .collect(),
                })
            }
            // A refusal would mean a bug (every receipt here is valid): fail loudly.
            Err(ureq::Error::Status(status, r)) => {
                panic!(
                    "{amount} on {:?} refused: {status} {}",
                    self.channel,
                    r.into_string().unwrap_or_default()
                )
            }
            Err(ureq::Error::Transport(_)) => Step::Down,
        }
    }
}

/// Every answered purchase is in the ledger exactly as answered: its receipt, its device
/// and counters, and the tokens are that device's tokens for those counters.
fn check_durable(db: &Path, answered: &[Answered]) {
    let store = Store::open(db, &identity(db)).expect("open the AS ledger");
    for a in answered {
        let sale = store
            .sale_for(a.channel, 0, a.amount)
            .expect("read")
            .unwrap_or_else(|| panic!("answered but not stored: {a:?}"));
        assert_eq!(
            (sale.device.as_str(), sale.first_counter),
            (a.device.as_str(), a.first_counter),
            "{a:?}"
        );
        let index = DEVICES.iter().position(|d| *d == a.device).expect("device");
        for (i, token) in a.tokens.iter().enumerate() {
            let expected = Token::issue(
                &device_key(index),
                a.first_counter + i as u64,
                Digits::EIGHT,
            );
            assert_eq!(token, &expected.to_string(), "{a:?}");
        }
        assert!(
            store
                .best(a.channel, 0)
                .expect("best")
                .expect("held")
                .receipt
                .amount
                >= a.amount
        );
    }
}

fn close(dir: &Path, channel: ChannelId) -> Result<Value, String> {
    let out = Command::new(bin("slotpay-as"))
        .arg("--config")
        .arg(dir.join("as.toml"))
        .args(["close", &channel.0.to_string()])
        .output()
        .expect("run slotpay-as close");
    if out.status.success() {
        serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn every_answered_purchase_survives_sigkill_of_the_as_under_load() {
    let url = node_url();
    let kills = env_count("SLOTPAY_CRASH_KILLS", 100);
    let mut rng = Rng::from_env();
    let dir = work_dir("crash");
    let secrets: Vec<SecretKey> = (0..6).map(|_| keys::generate()).collect();
    let (as_url, mut as_proc, domain, channels) = as_with_channels(&dir, &url, &secrets);
    let payers: Vec<Arc<Mutex<Payer>>> = channels
        .iter()
        .zip(secrets)
        .map(|(channel, secret)| Arc::new(Mutex::new(Payer::new(*channel, secret))))
        .collect();
    let mut answered: Vec<Answered> = Vec::new();
    let started = Instant::now();
    for round in 0..=kills {
        let last = round == kills;
        // Load: one thread per payer, buying back to back until the AS dies (or, in the
        // last round, until each has settled its pending receipt and bought a few more).
        let threads: Vec<_> = payers
            .iter()
            .map(|payer| {
                let (payer, as_url) = (payer.clone(), as_url.clone());
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    let mut payer = payer.lock().expect("payer");
                    for _ in 0..if last { 3 } else { usize::MAX } {
                        match payer.buy(&as_url, &domain) {
                            Step::Bought(a) => mine.push(a),
                            Step::Down => break,
                        }
                    }
                    mine
                })
            })
            .collect();
        if !last {
            // A random point: in the middle of requests, commits and answers.
            std::thread::sleep(Duration::from_micros(rng.below(150_000)));
            as_proc.kill9();
        }
        let before = answered.len();
        for t in threads {
            answered.extend(t.join().expect("payer thread"));
        }
        // The AS is dead (or idle): its ledger must hold everything it answered.
        check_durable(&dir.join("as.db"), &answered[before..]);
        if !last {
            as_proc = start_as(&dir, &as_url);
        }
        if round % 10 == 0 {
            eprintln!(
                "round {round}/{kills}: {} purchases answered ({:.0} s)",
                answered.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    assert!(
        answered.len() > kills,
        "the load made progress between kills"
    );
    check_durable(&dir.join("as.db"), &answered);
    // Retried receipts got the same tokens: no (channel, amount) was answered differently.
    let mut seen = std::collections::BTreeMap::new();
    for a in &answered {
        if let Some(tokens) = seen.insert((a.channel, a.amount), a.tokens.clone()) {
            assert_eq!(tokens, a.tokens, "a retry was answered with other tokens");
        }
    }
    // No counter of a device was sold twice.
    let mut counters = std::collections::BTreeSet::new();
    for a in seen
        .keys()
        .filter_map(|k| answered.iter().find(|a| (a.channel, a.amount) == *k))
    {
        for i in 0..a.tokens.len() as u64 {
            assert!(
                counters.insert((a.device.clone(), a.first_counter + i)),
                "counter sold twice: {a:?}"
            );
        }
    }
    drop(as_proc);
    // The close claims the highest receipt of each channel: the last one answered.
    for payer in &payers {
        let payer = payer.lock().expect("payer");
        let closed = close(&dir, payer.channel).expect("close");
        assert_eq!(
            closed["paid"].as_str(),
            Some(payer.accepted.to_string().as_str()),
            "{closed}"
        );
    }
    eprintln!(
        "{kills} kills, {} purchases, {:.0} s",
        answered.len(),
        started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// One presentation with one short wait: the device is on loopback, so no answer means it
/// is dead (or too slow, which the test treats alike: that token becomes the uncertain one).
fn present_once(addr: std::net::SocketAddr, token: &Token) -> Option<Result<u64, PresentError>> {
    let mut client = device::DeviceClient::new(
        addr,
        device::ClientConfig {
            ack_timeout: Duration::from_millis(150),
            max_retransmit: 0,
            max_throttle_wait: Duration::ZERO,
        },
    )
    .ok()?;
    match client.present(token) {
        Err(PresentError::NoAnswer { .. }) => None,
        other => Some(other.map(|g| g.counter)),
    }
}

#[test]
fn a_device_never_grants_a_token_twice_across_sigkills() {
    let kills = env_count("SLOTPAY_CRASH_KILLS", 100);
    let mut rng = Rng::from_env();
    let dir = work_dir("device-crash");
    let path = provision(&dir, "lock-1", 0);
    // Every kill during a check loses the failures reserved in flash before it (by
    // design: a power cut never returns budget; device/tests/power_cut.rs). A
    // hundred kills would drain the default budget; this test is about grants, so it
    // gives the device room for them.
    let mut p = device::Provision::read(&path).expect("provision");
    p.throttle.global_burst = 100_000;
    p.write(&path).expect("provision");
    let key = device_key(0);
    let addr = free_udp_addr();
    let mut device = start_device(&dir, "lock-1", addr);
    let granted = Arc::new(Mutex::new(Vec::<u64>::new()));
    let mut next = 0u64;
    for round in 0..=kills {
        // Present fresh tokens in order until the device stops answering.
        let presenter = {
            let (granted, key) = (granted.clone(), key.clone());
            std::thread::spawn(move || {
                let mut counter = next;
                loop {
                    let token = Token::issue(&key, counter, Digits::EIGHT);
                    counter += 1;
                    match present_once(addr, &token) {
                        Some(Ok(c)) => granted.lock().expect("granted").push(c),
                        Some(Err(e)) => panic!("counter {}: {e}", counter - 1),
                        None => return counter,
                    }
                    if round == kills && counter >= next + 5 {
                        return counter;
                    }
                }
            })
        };
        if round < kills {
            std::thread::sleep(Duration::from_micros(rng.below(30_000)));
            device.kill9();
        }
        next = presenter.join().expect("presenter");
        if round < kills {
            device = start_device(&dir, "lock-1", addr);
            // Replays of the last grants are refused after the reboot.
            let recent: Vec<u64> = granted
                .lock()
                .expect("granted")
                .iter()
                .rev()
                .take(2)
                .copied()
                .collect();
            for counter in recent {
                let token = Token::issue(&key, counter, Digits::EIGHT);
                let answer = device_client(addr).present(&token);
                assert!(
                    matches!(answer, Err(PresentError::Used(_))),
                    "counter {counter} after a crash: {answer:?}"
                );
            }
            // The token cut off by the kill: if the device saved it (its highest counter
            // reached it), it must be refused now; if not, it is still good, once.
            let uncertain = next - 1;
            let saved_next = device_client(addr)
                .status()
                .expect("device status")
                .next_counter;
            let answer = device_client(addr).present(&Token::issue(&key, uncertain, Digits::EIGHT));
            if saved_next > uncertain {
                assert!(answer.is_err(), "cut-off counter {uncertain} granted twice");
            } else if answer.is_ok() {
                granted.lock().expect("granted").push(uncertain);
            }
        }
    }
    let granted = granted.lock().expect("granted");
    let unique: std::collections::BTreeSet<u64> = granted.iter().copied().collect();
    assert_eq!(unique.len(), granted.len(), "a counter granted twice");
    assert!(granted.len() > kills, "progress between kills");
    drop(device);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_node_restart_while_the_as_closes_ends_with_one_close() {
    let url = node_url();
    let mut rng = Rng::from_env();
    let dir = work_dir("close-restart");
    let rounds = env_count("SLOTPAY_CLOSE_RESTARTS", 4);
    // One more channel, closed undisturbed first to time a close.
    let secrets: Vec<SecretKey> = (0..=rounds).map(|_| keys::generate()).collect();
    let (as_url, as_proc, domain, channels) = as_with_channels(&dir, &url, &secrets);
    for (channel, secret) in channels.iter().zip(&secrets) {
        let mut payer = Payer::new(*channel, *secret);
        for _ in 0..3 {
            assert!(matches!(payer.buy(&as_url, &domain), Step::Bought(_)));
        }
    }
    drop(as_proc);
    let alice = slotpay(&["account", "--suri", "//Alice"])["account"]
        .as_str()
        .expect("account")
        .to_owned();
    let alice_balance = || -> u128 {
        slotpay(&["balance", "--url", &url, &alice])[alice.as_str()]
            .as_str()
            .expect("balance")
            .parse()
            .expect("number")
    };
    let timed = Instant::now();
    close(&dir, channels[0]).expect("undisturbed close");
    let close_ms = timed.elapsed().as_millis() as u64;
    eprintln!("an undisturbed close takes {close_ms} ms");
    for channel in &channels[1..] {
        let before = alice_balance();
        let closing = Command::new(bin("slotpay-as"))
            .arg("--config")
            .arg(dir.join("as.toml"))
            .args(["close", &channel.0.to_string()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn close");
        // Somewhere in connecting, dry-running, submitting, sealing or finalizing.
        std::thread::sleep(Duration::from_millis(rng.below(close_ms)));
        run(Command::new(repo_root().join("scripts/node.sh")).arg("restart"));
        // A live chain goes on making blocks; the dev chain seals one per transaction,
        // and a block left unfinalized across its restart is finalized with the next
        // one: blocks come every half second meanwhile, as they would.
        let blocks_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let blocks = {
            let (url, deployment) = (url.clone(), dir.join("deployment.json"));
            let done = blocks_done.clone();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Runtime::new().expect("runtime");
                let contract = runtime.block_on(contract(&url, &deployment));
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    runtime.block_on(several::make_block(&contract));
                    std::thread::sleep(Duration::from_millis(500));
                }
            })
        };
        let first = closing.wait_with_output().expect("close ended");
        let first_ok = first.status.success();
        // The AS closes again until the chain says it is done, as its closer does.
        let mut outcome = Err(String::new());
        for _ in 0..60 {
            outcome = close(&dir, *channel);
            if outcome.is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        blocks_done.store(true, std::sync::atomic::Ordering::SeqCst);
        blocks.join().expect("blocks");
        let second = outcome.unwrap_or_else(|e| panic!("the close never answered: {e}"));
        eprintln!(
            "channel {channel:?}: first close {} ; then {second}",
            if first_ok { "finished" } else { "cut off" }
        );
        // The retry either closed it now or found it closed, never both: and the chain
        // refunded the payer exactly once (a second close would refund again).
        let first_closed =
            first_ok && String::from_utf8_lossy(&first.stdout).contains("\"closed\":true");
        assert!(
            !(first_closed && second["closed"] == true),
            "closed twice: {second}"
        );
        assert_eq!(
            alice_balance() - before,
            PRICE * 1_000_000 - 3 * PRICE,
            "one refund of the rest"
        );
        let status = slotpay(&[
            "status",
            "--url",
            &url,
            "--deployment",
            &dir.join("deployment.json").display().to_string(),
            "--channel",
            &channel.0.to_string(),
        ]);
        assert_eq!(status["open"], false, "{status}");
        let store = Store::open(&dir.join("as.db"), &identity(&dir.join("as.db"))).expect("ledger");
        assert!(
            store.state(*channel).expect("read").closed,
            "the ledger records the close"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The deployment beside the ledger `db`: what the AS bound its ledger to.
fn identity(db: &Path) -> protocol::Domain {
    api::Deployment::load(&db.with_file_name("deployment.json"))
        .expect("deployment")
        .identity()
}
