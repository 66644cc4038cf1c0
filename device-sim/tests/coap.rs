//! The simulator's CoAP interface, its client and the file storage: tokens open the
//! device once each, across a reboot from the state file, over real UDP, with lost
//! answers and retransmissions.
use device_sim::client::{ClientConfig, DeviceClient, Granted, PresentError};
use device_sim::coap::{
    parse_answer, status_request, token_request, CoapDevice, Event, Outcome, Status,
    DEDUP_CAPACITY, EXCHANGE_LIFETIME_MS,
};
use device_sim::core::Device;
use device_sim::file_store::FileCounterStore;
use device_sim::provision::Provision;
use protocol::hotp::{DeviceKey, Digits, Token};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KEY: [u8; 32] = [0x17; 32];

fn provision() -> Provision {
    let mut p = Provision::new("lock-1", DeviceKey(KEY));
    p.digits = Digits::EIGHT;
    p
}

fn boot(state: &Path) -> CoapDevice<FileCounterStore> {
    let p = provision();
    let device = Device::boot(p.device_config(), FileCounterStore::new(state)).expect("boot");
    CoapDevice::new(device, p.slot_ms())
}

fn token(counter: u64) -> Token {
    Token::issue(&DeviceKey(KEY), counter, Digits::EIGHT)
}

fn from() -> SocketAddr {
    "192.0.2.1:40000".parse().expect("addr")
}

/// One request with a fresh Echo (the client's second round trip), as message `id`.
fn ask(device: &mut CoapDevice<FileCounterStore>, id: u16, text: &str, now_ms: u64) -> Outcome {
    let echo = device
        .device
        .echo(&device_sim::core::Source::from_ip(from().ip()), now_ms);
    let (reply, _) = device
        .handle(
            from(),
            &token_request(id, b"tk", text, Some(echo.as_bytes())),
            now_ms,
        )
        .expect("a response");
    let answer = parse_answer(&reply).expect("a CoAP response");
    assert_eq!(
        (answer.message_id, answer.token.as_slice()),
        (id, &b"tk"[..])
    );
    answer.outcome
}

#[test]
fn tokens_grant_slots_once_across_reboots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("lock.state");
    let mut device = boot(&state);
    // Without an Echo: 4.01 with one, nothing checked.
    let (reply, _) = device
        .handle(
            from(),
            &token_request(1, b"a", &token(0).to_string(), None),
            0,
        )
        .expect("answer");
    assert!(
        matches!(parse_answer(&reply).map(|a| a.outcome), Some(Outcome::EchoRequired(e)) if e.len() == 9)
    );
    let granted = |counter, seconds| Outcome::Granted { counter, seconds };
    assert_eq!(
        ask(&mut device, 2, &token(0).to_string(), 0),
        granted(0, 60)
    );
    // A second token extends the slot; skipping one is fine.
    assert_eq!(
        ask(&mut device, 3, &token(2).to_string(), 1_000),
        granted(2, 119)
    );
    assert_eq!(
        ask(&mut device, 4, &token(2).to_string(), 2_000),
        Outcome::Used(2)
    );
    drop(device);
    let mut rebooted = boot(&state);
    assert_eq!(rebooted.device.next_counter(), 3);
    assert_eq!(
        ask(&mut rebooted, 5, &token(0).to_string(), 0),
        Outcome::Used(0)
    );
    // Counter 1 was skipped, not used: still good once, after the reboot too.
    assert_eq!(
        ask(&mut rebooted, 6, &token(1).to_string(), 0),
        granted(1, 60)
    );
    assert_eq!(
        ask(&mut rebooted, 7, &token(1).to_string(), 0),
        Outcome::Used(1)
    );
    assert!(matches!(
        ask(&mut rebooted, 8, "12ab", 0),
        Outcome::Malformed(_)
    ));
    let wrong = format!("9:{:08}", (token(9).otp().value() + 1) % 100_000_000);
    assert_eq!(ask(&mut rebooted, 9, &wrong, 0), Outcome::Invalid);
    let (reply, _) = rebooted
        .handle(from(), &status_request(10, b"s"), 500)
        .expect("status");
    assert_eq!(
        parse_answer(&reply).map(|a| a.outcome),
        Some(Outcome::Status(Status {
            next_counter: 3,
            active_ms: 59_500,
            window: 1024
        }))
    );
}

/// RFC 7252 section 4.5. Before this fix, a lost ACK made the retransmission a second
/// check: "retransmission answered Unauthorized invalid or already used OTP".
#[test]
fn a_retransmitted_request_gets_the_first_answer_not_a_second_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut device = boot(&dir.path().join("d.state"));
    let echo = device
        .device
        .echo(&device_sim::core::Source::from_ip(from().ip()), 0);
    let request = token_request(77, b"tk", &token(0).to_string(), Some(echo.as_bytes()));
    let (first, event) = device.handle(from(), &request, 0).expect("answer");
    assert!(matches!(event, Event::Granted { counter: 0, .. }));
    // The ACK was lost; the client retransmits the same message (same message ID).
    let (second, event) = device.handle(from(), &request, 2_000).expect("answer");
    assert_eq!(event, Event::Duplicate);
    assert_eq!(first, second, "the same answer, byte for byte");
    // A failed check retransmitted is not a second failure either.
    let wrong = format!("5:{:08}", (token(5).otp().value() + 1) % 100_000_000);
    let budget = device.device.failures_left(3_000);
    let bad = token_request(78, b"tk", &wrong, Some(echo.as_bytes()));
    for _ in 0..5 {
        device.handle(from(), &bad, 3_000).expect("answer");
    }
    assert_eq!(device.device.failures_left(3_000), budget - 1);
    // The same message ID from another endpoint is another exchange.
    let other: SocketAddr = "192.0.2.1:40001".parse().expect("addr");
    let (_, event) = device.handle(other, &request, 4_000).expect("answer");
    assert!(matches!(event, Event::Refused(_)));
    // After EXCHANGE_LIFETIME the message ID is fresh again: checked anew, refused as
    // used, never granted twice.
    let late = EXCHANGE_LIFETIME_MS + 1;
    let echo = device
        .device
        .echo(&device_sim::core::Source::from_ip(from().ip()), late);
    let again = token_request(77, b"tk", &token(0).to_string(), Some(echo.as_bytes()));
    let (answer, event) = device.handle(from(), &again, late).expect("answer");
    assert!(matches!(event, Event::Refused(_)));
    assert_eq!(
        parse_answer(&answer).map(|a| a.outcome),
        Some(Outcome::Used(0))
    );
}

/// A spoofed flood cannot push a grant out of the deduplication: spoofed requests never
/// carry a valid Echo, so their answers (an Echo challenge) are not remembered, and a
/// client whose ACK was lost still gets its grant back, not "used".
#[test]
fn a_spoofed_flood_does_not_evict_a_grant_awaiting_its_retransmission() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut device = boot(&dir.path().join("d.state"));
    let echo = device
        .device
        .echo(&device_sim::core::Source::from_ip(from().ip()), 0);
    let request = token_request(77, b"tk", &token(0).to_string(), Some(echo.as_bytes()));
    let (first, event) = device.handle(from(), &request, 0).expect("answer");
    assert!(matches!(event, Event::Granted { counter: 0, .. }));
    // More spoofed datagrams than the deduplication holds, all within one exchange
    // lifetime, each from its own forged endpoint.
    for i in 0..2 * DEDUP_CAPACITY as u32 {
        let spoofed: SocketAddr = format!(
            "198.51.{}.{}:{}",
            (i >> 8) & 0xff,
            i & 0xff,
            1024 + (i % 60_000)
        )
        .parse()
        .expect("addr");
        let guess = token_request(i as u16, b"sp", "1:12345678", None);
        device.handle(spoofed, &guess, 1_000).expect("answer");
    }
    let (second, event) = device.handle(from(), &request, 2_000).expect("answer");
    assert_eq!(event, Event::Duplicate, "the grant was forgotten");
    assert_eq!(first, second);
}

#[test]
fn every_answer_parses_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut device = boot(&dir.path().join("d.state"));
    for (i, text) in ["", "1:2", "99999999999999999999999:12345678", "1:123456789"]
        .iter()
        .enumerate()
    {
        assert!(
            matches!(ask(&mut device, i as u16, text, 0), Outcome::Malformed(_)),
            "{text:?}"
        );
    }
    let (reply, _) = device
        .handle(from(), &status_request(100, b"s")[..], 0)
        .expect("status");
    assert!(matches!(
        parse_answer(&reply).map(|a| a.outcome),
        Some(Outcome::Status(_))
    ));
    // Not a request (an answer, garbage): ignored, as RFC 7252 section 4.2 says.
    assert!(device.handle(from(), &reply, 0).is_none());
    assert!(device.handle(from(), b"\x40", 0).is_none());
}

/// A UDP relay between the client and the device that drops the answers whose numbers
/// (0, 1, 2, ... in the order the device sent them) are in `drop`.
fn lossy_relay(device: SocketAddr, drop: Vec<usize>) -> (SocketAddr, Arc<Mutex<usize>>) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = socket.local_addr().expect("addr");
    let answers = Arc::new(Mutex::new(0usize));
    let count = answers.clone();
    std::thread::spawn(move || {
        let mut client = None;
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = socket.recv_from(&mut buf) {
            if peer == device {
                let mut k = count.lock().expect("count");
                let dropped = drop.contains(&k);
                *k += 1;
                if let (false, Some(c)) = (dropped, client) {
                    let _ = socket.send_to(&buf[..n], c);
                }
            } else {
                client = Some(peer);
                let _ = socket.send_to(&buf[..n], device);
            }
        }
    });
    (addr, answers)
}

/// The simulator process, killed when dropped (a failing test must not leave it
/// running: it holds the test harness's output open).
struct Simulator(std::process::Child);

impl Drop for Simulator {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

fn start_simulator(dir: &Path) -> (Simulator, SocketAddr) {
    let file = dir.join("lock-1.toml");
    provision().write(&file).expect("provision");
    let probe = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = probe.local_addr().expect("addr");
    drop(probe);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_slotpay-device"))
        .arg("--provision")
        .arg(&file)
        .arg("--state-file")
        .arg(dir.join("state"))
        .arg("--listen")
        .arg(addr.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the simulator");
    let child = Simulator(child);
    // Wait until it answers GET /status.
    let config = ClientConfig {
        ack_timeout: Duration::from_millis(100),
        max_retransmit: 1,
        ..ClientConfig::default()
    };
    for _ in 0..50 {
        if DeviceClient::new(addr, config)
            .and_then(|mut c| c.status())
            .is_ok()
        {
            return (child, addr);
        }
    }
    panic!("the simulator did not come up");
}

fn stop(mut child: Simulator) -> String {
    use std::io::Read;
    child.0.kill().ok();
    let mut log = String::new();
    if let Some(mut out) = child.0.stdout.take() {
        out.read_to_string(&mut log).ok();
    }
    log
}

/// A purchase of three tokens over UDP through a relay that loses answers: a lost answer
/// is retransmitted and answered again (not checked again), and an answer lost for good
/// fails that token only: the next ones are still presented.
#[test]
fn the_client_presents_every_token_of_a_purchase_when_answers_are_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (child, device) = start_simulator(dir.path());
    let config = ClientConfig {
        ack_timeout: Duration::from_millis(150),
        max_retransmit: 2,
        max_throttle_wait: Duration::from_secs(5),
    };
    let tokens: Vec<Token> = (0..3).map(token).collect();
    // Answers: 0 = Echo for token 0, 1 = its grant, 2 = token 1's grant (lost), 3 = the
    // same grant again for the retransmission, 4 = token 2's grant.
    let (relay, answers) = lossy_relay(device, vec![2]);
    let mut client = DeviceClient::new(relay, config).expect("client");
    let results = client.present_all(&tokens);
    let counters: Vec<u64> = results
        .iter()
        .map(|r| r.as_ref().map(|g| g.counter).expect("granted"))
        .collect();
    assert_eq!(counters, [0, 1, 2]);
    assert_eq!(*answers.lock().expect("answers"), 5);
    // Now every answer to one token's exchange is lost (3 transmissions).
    // (0 = the new client's Echo, 1 = token 3's grant, 2..=4 = token 4's.)
    let (relay, _) = lossy_relay(device, vec![2, 3, 4]);
    let mut client = DeviceClient::new(relay, config).expect("client");
    let more: Vec<Token> = (3..6).map(token).collect();
    let results = client.present_all(&more);
    assert!(
        matches!(results[0], Ok(Granted { counter: 3, .. })),
        "{results:?}"
    );
    // Token 4 was granted, but no answer came back; presented again at the end, it is
    // "used", and token 5 after it was still presented and granted.
    assert!(
        matches!(results[1], Err(PresentError::Used(4))),
        "{results:?}"
    );
    assert!(
        matches!(results[2], Ok(Granted { counter: 5, .. })),
        "{results:?}"
    );
    let status = client.status().expect("status");
    assert_eq!(status.next_counter, 6);
    let log = stop(child);
    assert_eq!(log.matches("repeated its answer").count(), 3, "{log}");
    assert_eq!(log.matches("ACTUATE").count(), 6, "{log}");
}

#[test]
fn the_simulator_takes_flags_and_writes_a_provisioning_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, hex::encode(KEY)).expect("key");
    let out = dir.path().join("p.toml");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_slotpay-device"))
        .args([
            "--id",
            "lock-1",
            "--digits",
            "8",
            "--slot-seconds",
            "30",
            "--write-provision",
        ])
        .arg(&out)
        .arg("--key-file")
        .arg(&key_file)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run");
    assert!(status.success());
    let p = Provision::read(&out).expect("read");
    assert_eq!(
        (p.id.as_str(), p.slot_seconds, p.window),
        ("lock-1", 30, 1024)
    );
    assert_eq!(p.key, DeviceKey(KEY));
    // A 16-byte key is refused (one rule: exactly 32 bytes).
    std::fs::write(&key_file, hex::encode([1u8; 16])).expect("key");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_slotpay-device"))
        .args(["--id", "x", "--write-provision"])
        .arg(&out)
        .arg("--key-file")
        .arg(&key_file)
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("exactly 32"));
}
