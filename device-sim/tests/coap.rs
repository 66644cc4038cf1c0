//! The simulator's CoAP interface and file storage: OTPs computed by the protocol's HOTP
//! open the device once each, across a reboot from the counter file, over real UDP.
use coap_lite::ResponseType;
use device_sim::coap::{otp_request, parse_response, CoapDevice};
use device_sim::core::{Device, DeviceConfig, Throttle};
use device_sim::file_store::FileCounterStore;
use protocol::hotp::{hotp, Digits, HmacSha256};
use std::net::UdpSocket;
use std::path::Path;

const KEY: [u8; 32] = [0x17; 32];

fn boot(state: &Path) -> CoapDevice<FileCounterStore> {
    let device = Device::boot(
        DeviceConfig {
            key: KEY,
            digits: Digits::new(8).expect("8"),
            window: 4,
            throttle: Throttle::default(),
        },
        FileCounterStore::new(state),
    )
    .expect("boot");
    CoapDevice {
        device,
        slot_ms: 60_000,
        active_until_ms: 0,
    }
}

fn otp(counter: u64) -> String {
    hotp::<HmacSha256>(&KEY, counter, Digits::new(8).expect("8")).to_string()
}

fn ask(
    device: &mut CoapDevice<FileCounterStore>,
    code: &str,
    now_ms: u64,
) -> (ResponseType, String) {
    let (reply, _) = device
        .handle(&otp_request(7, b"tk", code), now_ms)
        .expect("a response");
    let (status, id, text) = parse_response(&reply).expect("a CoAP response");
    assert_eq!(id, 7, "the response echoes the message id");
    (status, text)
}

#[test]
fn otps_grant_slots_once_across_reboots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("lock.state");
    let mut device = boot(&state);
    let (status, text) = ask(&mut device, &otp(0), 0);
    assert_eq!(status, ResponseType::Changed);
    assert_eq!(text, "granted 0 60");
    // A second OTP extends the slot; skipping one within the window is fine.
    let (status, text) = ask(&mut device, &otp(2), 1_000);
    assert_eq!(status, ResponseType::Changed);
    assert_eq!(text, "granted 2 119");
    assert_eq!(
        ask(&mut device, &otp(2), 2_000).0,
        ResponseType::Unauthorized
    );
    drop(device);
    let mut rebooted = boot(&state);
    assert_eq!(rebooted.device.next_counter(), 3);
    assert_eq!(ask(&mut rebooted, &otp(0), 0).0, ResponseType::Unauthorized);
    assert_eq!(ask(&mut rebooted, &otp(2), 0).0, ResponseType::Unauthorized);
    // Counter 1 was skipped, not used: still good once, after the reboot too.
    assert_eq!(ask(&mut rebooted, &otp(1), 0).0, ResponseType::Changed);
    assert_eq!(ask(&mut rebooted, &otp(1), 0).0, ResponseType::Unauthorized);
    assert_eq!(ask(&mut rebooted, &otp(3), 0).0, ResponseType::Changed);
    assert_eq!(ask(&mut rebooted, "12ab", 0).0, ResponseType::BadRequest);
}

#[test]
fn repeated_failures_are_throttled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut device = boot(&dir.path().join("d.state"));
    for _ in 0..4 {
        assert_eq!(
            ask(&mut device, "00000000", 0).0,
            ResponseType::Unauthorized
        );
    }
    assert_eq!(
        ask(&mut device, &otp(0), 10).0,
        ResponseType::TooManyRequests
    );
    assert_eq!(ask(&mut device, &otp(0), 5_000).0, ResponseType::Changed);
}

#[test]
fn the_simulator_answers_over_udp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, hex::encode(KEY)).expect("key");
    let probe = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = probe.local_addr().expect("addr").port();
    drop(probe);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_slotpay-device"))
        .args(["--id", "lock", "--digits", "8", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--key-file")
        .arg(&key_file)
        .arg("--state-file")
        .arg(dir.path().join("state"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the simulator");
    let client = UdpSocket::bind("127.0.0.1:0").expect("bind");
    client
        .set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .expect("timeout");
    let mut buf = [0u8; 1280];
    let mut answer = None;
    // Retransmit like a CoAP client until the simulator is up.
    for _ in 0..50 {
        client
            .send_to(&otp_request(1, b"x", &otp(0)), ("127.0.0.1", port))
            .expect("send");
        if let Ok((n, _)) = client.recv_from(&mut buf) {
            answer = parse_response(&buf[..n]);
            break;
        }
    }
    child.kill().ok();
    child.wait().ok();
    let (status, _, text) = answer.expect("the simulator answered");
    assert_eq!(status, ResponseType::Changed);
    assert_eq!(text, "granted 0 60");
}
