//! Crash survival, with the real binaries: the AS SIGKILLed at random points under load
//! (SLOTPAY_CRASH_KILLS times, 100 by default; `scripts/soak.sh` runs 1,000), the device
//! SIGKILLed while OTPs are presented, and the node restarted while the AS is closing a
//! channel. Random points come from SLOTPAY_CRASH_SEED (printed, so a failure replays).
//!
//! Needs `SLOTPAY_NODE_URL` (scripts/test.sh starts a node and sets it), and for the node
//! restart `SLOTPAY_NODE_PORT` naming the port `scripts/node.sh` started it on.
use coap_lite::ResponseType;
use protocol::hotp::{hotp, Digits, HmacSha256};
use protocol::signature::keys::{self, SecretKey};
use protocol::{ChannelId, Domain, Receipt};
use serde_json::Value;
use slotpay_as::api::PurchaseBody;
use slotpay_as::chain::ContractClient;
use slotpay_as::ledger::Ledger;
use slotpay_tests::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
        self.next() % n
    }
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn work_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("slotpay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("work dir");
    dir
}

fn terms(as_url: &str) -> (Domain, [u8; 32]) {
    let terms = as_terms(as_url);
    (
        terms.domain().expect("domain"),
        terms.payee_account().expect("payee"),
    )
}

/// Opens one delegate channel per key, in one transaction, paid by //Alice.
fn open_channels(
    url: &str,
    domain: &Domain,
    payee: [u8; 32],
    keys: &[SecretKey],
) -> Vec<ChannelId> {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let client = ContractClient::connect(url, domain.contract)
            .await
            .expect("connect");
        let expires_at = best_block(&client).await + 100_000;
        open_delegate_channels(&client, payee, keys, PRICE * 1_000_000, expires_at).await
    })
}

/// A purchase the AS answered: what the client was given.
#[derive(Debug, Clone)]
struct Answered {
    channel: ChannelId,
    amount: u128,
    device: String,
    first_counter: u64,
    otps: Vec<String>,
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
    fn buy(&mut self, as_url: &str, domain: &Domain) -> Step {
        let amount = self.pending.unwrap_or(self.accepted + PRICE);
        self.pending = Some(amount);
        let device = DEVICES[self.turn % DEVICES.len()];
        let receipt = Receipt {
            channel: self.channel,
            amount,
        };
        let body = PurchaseBody::new(device, &receipt, &receipt.sign(domain, &self.secret), None);
        let answer = ureq::post(&format!("{as_url}/v1/purchase"))
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
                    otps: reply["otps"]
                        .as_array()
                        .expect("otps")
                        .iter()
                        .map(|o| o.as_str().expect("otp").to_owned())
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
/// and counters, and the OTPs are that device's HOTPs for those counters.
fn check_durable(db: &Path, answered: &[Answered]) {
    let ledger = Ledger::open(db).expect("open the AS ledger");
    for a in answered {
        let sale = ledger
            .sale_for(a.channel, a.amount)
            .expect("read")
            .unwrap_or_else(|| panic!("answered but not stored: {a:?}"));
        assert_eq!(
            (sale.device.as_str(), sale.first_counter),
            (a.device.as_str(), a.first_counter),
            "{a:?}"
        );
        let index = DEVICES.iter().position(|d| *d == a.device).expect("device");
        let key = device_key(index);
        for (i, otp) in a.otps.iter().enumerate() {
            let expected =
                hotp::<HmacSha256>(&key, a.first_counter + i as u64, Digits::new(8).expect("8"));
            assert_eq!(otp, &expected.to_string(), "{a:?}");
        }
        assert!(ledger.total(a.channel).expect("total") >= a.amount);
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
    let url = node_url().expect("SLOTPAY_NODE_URL is not set (scripts/test.sh sets it)");
    let kills = env_count("SLOTPAY_CRASH_KILLS", 100);
    let mut rng = Rng::from_env();
    let dir = work_dir("crash");
    deploy(&dir, &url);
    let port = free_tcp_port();
    write_as_config(&dir, &url, port, PRICE, &DEVICES);
    let as_url = format!("http://127.0.0.1:{port}");
    let mut as_proc = start_as(&dir, &as_url);
    let (domain, payee) = terms(&as_url);
    let secrets: Vec<SecretKey> = (0..6).map(|_| keys::generate()).collect();
    let channels = open_channels(&url, &domain, payee, &secrets);
    let payers: Vec<Arc<Mutex<Payer>>> = channels
        .iter()
        .zip(secrets)
        .map(|(channel, secret)| {
            Arc::new(Mutex::new(Payer {
                channel: *channel,
                secret,
                accepted: 0,
                pending: None,
                turn: 0,
            }))
        })
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
    // Retried receipts got the same OTPs: no (channel, amount) was answered differently.
    let mut seen = std::collections::BTreeMap::new();
    for a in &answered {
        if let Some(otps) = seen.insert((a.channel, a.amount), a.otps.clone()) {
            assert_eq!(otps, a.otps, "a retry was answered with other OTPs");
        }
    }
    // No counter of a device was sold twice.
    let mut counters = std::collections::BTreeSet::new();
    for a in seen
        .keys()
        .filter_map(|k| answered.iter().find(|a| (a.channel, a.amount) == *k))
    {
        for i in 0..a.otps.len() as u64 {
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

/// One CoAP request, one short wait: the device is on loopback, so no answer means it
/// is dead (or too slow, which the test treats alike: that OTP becomes the uncertain one).
fn present_once(addr: std::net::SocketAddr, otp: &str) -> Option<(ResponseType, String)> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
    socket
        .set_read_timeout(Some(Duration::from_millis(150)))
        .ok()?;
    socket
        .send_to(&device_sim::coap::otp_request(1, b"k", otp), addr)
        .ok()?;
    let mut buf = [0u8; 1280];
    let (n, _) = socket.recv_from(&mut buf).ok()?;
    let (status, _, text) = device_sim::coap::parse_response(&buf[..n])?;
    Some((status, text))
}

#[test]
fn a_device_never_grants_an_otp_twice_across_sigkills() {
    let kills = env_count("SLOTPAY_CRASH_KILLS", 100);
    let mut rng = Rng::from_env();
    let dir = work_dir("device-crash");
    std::fs::write(dir.join("lock-1.key"), device_key_hex(0)).expect("key");
    let key = device_key(0);
    let digits = Digits::new(8).expect("8");
    let addr = free_udp_addr();
    let mut device = start_device(&dir, "lock-1", addr);
    let granted = Arc::new(Mutex::new(Vec::<u64>::new()));
    let mut next = 0u64;
    for round in 0..=kills {
        // Present fresh OTPs in order until the device stops answering.
        let presenter = {
            let granted = granted.clone();
            std::thread::spawn(move || {
                let mut counter = next;
                loop {
                    let otp = hotp::<HmacSha256>(&key, counter, digits).to_string();
                    counter += 1;
                    match present_once(addr, &otp) {
                        Some((ResponseType::Changed, _)) => {
                            granted.lock().expect("granted").push(counter - 1)
                        }
                        Some((status, text)) => {
                            panic!("counter {}: {status:?} {text}", counter - 1)
                        }
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
        // Skip the one that may have been cut off: the window covers the gap.
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
                let otp = hotp::<HmacSha256>(&key, counter, digits).to_string();
                let (status, _) = present_otp(addr, &otp).expect("device answers");
                assert_ne!(
                    status,
                    ResponseType::Changed,
                    "counter {counter} granted again after a crash"
                );
            }
            // The OTP cut off by the kill: if the device saved it (its counter moved past
            // it), it must be refused now; if not, it is still good, once.
            let uncertain = next - 1;
            let saved_next: u64 = device_status(addr)
                .and_then(|s| s.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
                .expect("device status");
            let otp = hotp::<HmacSha256>(&key, uncertain, digits).to_string();
            let (status, _) = present_otp(addr, &otp).expect("device answers");
            if saved_next > uncertain {
                assert_ne!(
                    status,
                    ResponseType::Changed,
                    "cut-off counter {uncertain} granted twice"
                );
            } else if status == ResponseType::Changed {
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
    let url = node_url().expect("SLOTPAY_NODE_URL is not set (scripts/test.sh sets it)");
    let mut rng = Rng::from_env();
    let dir = work_dir("close-restart");
    deploy(&dir, &url);
    let port = free_tcp_port();
    write_as_config(&dir, &url, port, PRICE, &DEVICES);
    let as_url = format!("http://127.0.0.1:{port}");
    let as_proc = start_as(&dir, &as_url);
    let (domain, payee) = terms(&as_url);
    let rounds = env_count("SLOTPAY_CLOSE_RESTARTS", 4);
    // One more channel, closed undisturbed first to time a close.
    let secrets: Vec<SecretKey> = (0..=rounds).map(|_| keys::generate()).collect();
    let channels = open_channels(&url, &domain, payee, &secrets);
    for (channel, secret) in channels.iter().zip(&secrets) {
        let mut payer = Payer {
            channel: *channel,
            secret: *secret,
            accepted: 0,
            pending: None,
            turn: 0,
        };
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
    let node = |action: &str| {
        run(Command::new(repo_root().join("scripts/node.sh")).arg(action));
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
        node("restart");
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
        let second = outcome.unwrap_or_else(|e| panic!("the close never answered: {e}"));
        eprintln!(
            "channel {:?}: first close {} ; then {second}",
            channel,
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
        let ledger = Ledger::open(&dir.join("as.db")).expect("ledger");
        assert!(
            ledger.is_closed(*channel).expect("read"),
            "the ledger records the close"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
