//! Harness for the cross-component end-to-end tests: the real `slotpay`, `slotpay-as` and
//! `slotpay-device` binaries as separate processes on loopback, against the node at
//! `SLOTPAY_NODE_URL` (scripts/test.sh starts one).
use serde_json::Value;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where cargo put the workspace's binaries (next to this test's own executable).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace` (scripts/test.sh does)",
        path.display()
    );
    path
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

pub fn node_url() -> Option<String> {
    std::env::var("SLOTPAY_NODE_URL").ok()
}

pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

pub fn free_udp_addr() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
}

/// Runs a command to completion; panics with its output if it fails.
pub fn run(cmd: &mut Command) -> String {
    let output = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{cmd:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Runs `slotpay --json ...` and parses its output.
pub fn slotpay(args: &[&str]) -> Value {
    let out = run(Command::new(bin("slotpay")).arg("--json").args(args));
    serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("slotpay {args:?} printed {out:?}: {e}"))
}

/// Runs `slotpay --json ...`, expecting failure; returns stderr.
pub fn slotpay_fails(args: &[&str]) -> String {
    let output = Command::new(bin("slotpay"))
        .arg("--json")
        .args(args)
        .output()
        .expect("run slotpay");
    assert!(!output.status.success(), "slotpay {args:?} should fail");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
}

impl Proc {
    pub fn spawn(cmd: &mut Command, log: &Path) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let child = cmd
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        Self { child }
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill9(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `ready` until it holds or `timeout` passes.
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Deploys the contract with `scripts/deploy.sh`; returns the deployment file's path.
pub fn deploy(dir: &Path, url: &str) -> PathBuf {
    let out = dir.join("deployment.json");
    run(Command::new(repo_root().join("scripts/deploy.sh"))
        .args(["--url", url, "--out"])
        .arg(&out));
    out
}

/// The shared HOTP key of the `index`th device an AS config names: 32 bytes of
/// `0x11 * (index + 1)` (index 0: `11..11`, index 1: `22..22`).
pub fn device_key(index: usize) -> [u8; 32] {
    [(0x11 * (index + 1)) as u8; 32]
}

/// [`device_key`] as the hex its key file holds.
pub fn device_key_hex(index: usize) -> String {
    format!("{:02x}", device_key(index)[0]).repeat(32)
}

/// `GET /v1/terms` of the AS at `as_url`.
pub fn as_terms(as_url: &str) -> slotpay_as::api::TermsReply {
    ureq::get(&format!("{as_url}/v1/terms"))
        .call()
        .expect("terms")
        .into_json()
        .expect("terms JSON")
}

/// Opens one delegate channel per key with `deposit` each, paying `payee`, expiring at
/// `expires_at`, all in one transaction signed by //Alice; returns their ids in order.
pub async fn open_delegate_channels(
    client: &slotpay_as::chain::ContractClient,
    payee: protocol::AccountId32,
    secrets: &[protocol::signature::keys::SecretKey],
    deposit: protocol::Balance,
    expires_at: u32,
) -> Vec<protocol::ChannelId> {
    use parity_scale_codec::{Decode, Encode};
    let calls: Vec<slotpay_as::chain::ContractCall> = secrets
        .iter()
        .map(|s| slotpay_as::chain::ContractCall {
            value: deposit,
            message: "open",
            args: (
                payee,
                protocol::Authority::Delegate(protocol::signature::keys::public_key(s)),
                expires_at,
            )
                .encode(),
        })
        .collect();
    let done = client
        .call_batch(&subxt_signer::sr25519::dev::alice(), &calls)
        .await
        .expect("open the channels");
    assert_eq!(
        done.contract_events.len(),
        secrets.len(),
        "one Opened per open"
    );
    done.contract_events
        .iter()
        .map(|e| protocol::ChannelId::decode(&mut e.as_slice()).expect("Opened event"))
        .collect()
}

/// The best block number, to set expiries from.
pub async fn best_block(client: &slotpay_as::chain::ContractClient) -> u32 {
    client
        .api()
        .blocks()
        .at_latest()
        .await
        .expect("block")
        .number()
}

/// Writes `as.toml` (AS account //Bob, database `as.db`, closes only on demand) and the
/// key files it names into `dir`, next to `deployment.json`.
pub fn write_as_config(dir: &Path, url: &str, port: u16, price: u128, devices: &[&str]) {
    std::fs::write(dir.join("as.suri"), "//Bob\n").expect("as key");
    let mut config = format!(
        r#"rpc_url = "{url}"
deployment = "deployment.json"
account_key_file = "as.suri"
price = "{price}"
slot_seconds = 30
expiry_margin_blocks = 5
database = "as.db"
listen = "127.0.0.1:{port}"

[close]
remaining_below = "0"
blocks_before_expiry = 3
interval_seconds = 3600
"#
    );
    for (i, id) in devices.iter().enumerate() {
        std::fs::write(dir.join(format!("{id}.key")), device_key_hex(i)).expect("device key");
        config.push_str(&format!(
            "\n[[devices]]\nid = \"{id}\"\nkey_file = \"{id}.key\"\n"
        ));
    }
    std::fs::write(dir.join("as.toml"), config).expect("config");
}

/// Starts `slotpay-as serve` on `dir/as.toml` and waits until it answers at `as_url`.
pub fn start_as(dir: &Path, as_url: &str) -> Proc {
    let mut proc = Proc::spawn(
        Command::new(bin("slotpay-as"))
            .arg("--config")
            .arg(dir.join("as.toml"))
            .arg("serve"),
        &dir.join("as.log"),
    );
    let terms = format!("{as_url}/v1/terms");
    wait_until("the AS", Duration::from_secs(60), || {
        if let Ok(Some(status)) = proc.child.try_wait() {
            panic!(
                "the AS exited ({status}):\n{}",
                std::fs::read_to_string(dir.join("as.log")).unwrap_or_default()
            );
        }
        ureq::get(&terms).call().is_ok()
    });
    proc
}

/// Starts `slotpay-device` for device `id` (key file `dir/{id}.key`) on `addr`.
pub fn start_device(dir: &Path, id: &str, addr: SocketAddr) -> Proc {
    let proc = Proc::spawn(
        Command::new(bin("slotpay-device"))
            .args([
                "--id",
                id,
                "--listen",
                &addr.to_string(),
                "--slot-seconds",
                "30",
            ])
            .arg("--key-file")
            .arg(dir.join(format!("{id}.key")))
            .arg("--state-file")
            .arg(dir.join(format!("{id}.state"))),
        &dir.join(format!("{id}.log")),
    );
    // Probe with GET /status: a bad OTP would count as a failure for throttling.
    wait_until("the device", Duration::from_secs(10), || {
        device_status(addr).is_some()
    });
    proc
}

/// `GET /status` of a device over CoAP, if it answers.
pub fn device_status(addr: SocketAddr) -> Option<String> {
    let mut packet = coap_lite::Packet::new();
    packet.header.set_version(1);
    packet.header.set_type(coap_lite::MessageType::Confirmable);
    packet.header.code = coap_lite::MessageClass::Request(coap_lite::RequestType::Get);
    packet.header.message_id = 1;
    packet.add_option(coap_lite::CoapOption::UriPath, b"status".to_vec());
    let socket = UdpSocket::bind("127.0.0.1:0").ok()?;
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .ok()?;
    socket.send_to(&packet.to_bytes().ok()?, addr).ok()?;
    let mut buf = [0u8; 1280];
    let (n, _) = socket.recv_from(&mut buf).ok()?;
    device_sim::coap::parse_response(&buf[..n]).map(|(_, _, text)| text)
}

/// One CoAP exchange presenting `otp` to a device (three tries on loss): its status and
/// text, or None if it never answered.
pub fn present_otp(addr: SocketAddr, otp: &str) -> Option<(coap_lite::ResponseType, String)> {
    let socket = UdpSocket::bind("127.0.0.1:0").ok()?;
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .ok()?;
    let mut buf = [0u8; 1280];
    for id in 0..3u16 {
        socket
            .send_to(&device_sim::coap::otp_request(id, b"t", otp), addr)
            .ok()?;
        if let Ok((n, _)) = socket.recv_from(&mut buf) {
            let (status, _, text) = device_sim::coap::parse_response(&buf[..n])?;
            return Some((status, text));
        }
    }
    None
}
