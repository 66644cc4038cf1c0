//! The simulator over real UDP: its client, lost answers and retransmissions, its flags.
//! The CoAP side without a socket: device/tests/coap.rs.
use device::{ClientConfig, DeviceClient, Granted, PresentError, Provision};
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

fn token(counter: u64) -> Token {
    Token::issue(&DeviceKey(KEY), counter, Digits::EIGHT)
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

/// The same settings as the firmware's flash image: what `scripts/firmware.sh` and the
/// firmware tests boot the firmware from.
#[test]
fn the_simulator_writes_the_firmwares_flash_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("lock-1.toml");
    provision().write(&file).expect("provision");
    let out = dir.path().join("flash.bin");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_slotpay-device"))
        .arg("--provision")
        .arg(&file)
        .arg("--write-flash")
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run");
    assert!(status.success());
    let image = std::fs::read(&out).expect("image");
    assert_eq!(image, provision().flash_image());
    let read = device::Provisioned::decode(&image[device::PROVISIONING_OFFSET..]).expect("page");
    assert_eq!(read.config.key, DeviceKey(KEY));
}
