//! Harness for the cross-component tests: the real `slotpay`, `slotpay-as` and
//! `slotpay-device` binaries as separate processes on loopback, against the node at
//! `SLOTPAY_NODE_URL` (scripts/test.sh starts one); and the device firmware under QEMU
//! in place of `slotpay-device` ([`start_firmware`]).
pub mod accounting;
pub mod services;
pub mod several;

use api::Deployment;
use chain::{Batch, Call, Contract, Finality, Node, SlotpayEvent};
use device::{ClientConfig, DeviceClient, Granted, PresentError, Provision};
use interface::messages::Open;
use protocol::hotp::{DeviceKey, Token};
use protocol::keys::{self, SecretKey};
use protocol::{Authority, Balance, ChannelId};
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

/// The checkout's root (this crate's parent directory), for scripts and fixtures.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The node every test uses (instant finality).
pub fn node_url() -> String {
    std::env::var("SLOTPAY_NODE_URL").expect(
        "SLOTPAY_NODE_URL is not set: start a node with scripts/node.sh start (scripts/test.sh does)",
    )
}

/// A node whose finality lags (started with --finalize-delay-sec), if one is given.
pub fn lag_node_url() -> Option<String> {
    std::env::var("SLOTPAY_LAG_NODE_URL").ok()
}

/// The file `variable` names, else `relative` in the cache (`SLOTPAY_CACHE`, default
/// `~/.cache/slotpay`), where scripts/test.sh's earlier steps build it.
fn built(variable: &str, relative: &str) -> PathBuf {
    std::env::var(variable)
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            let cache = std::env::var("SLOTPAY_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|_| {
                    PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/slotpay")
                });
            cache.join(relative)
        })
}

/// The contract bundle `cargo contract build` wrote (scripts/test.sh builds it first).
pub fn contract_bundle() -> PathBuf {
    let path = built(
        "SLOTPAY_CONTRACT_BUNDLE",
        "target/contract/ink/slotpay_channels.contract",
    );
    assert!(
        path.exists(),
        "no contract bundle at {}: run `cargo contract build --release` in contract/",
        path.display()
    );
    path
}

/// A loopback TCP port free at the time of asking (the OS's pick; another process may
/// take it before the test binds it, which loopback tests accept).
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A loopback UDP address free at the time of asking, for a simulated device.
pub fn free_udp_addr() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
}

/// A fresh work directory for one test.
pub fn work_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("slotpay-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("work dir");
    dir
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
    /// The process, for `try_wait` and the like; killed with the `Proc`.
    pub child: Child,
}

impl Proc {
    /// Starts `cmd` with stdout and stderr appended to the file `log` (read it when a test
    /// fails); panics if it cannot start.
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

/// Deploys the contract with `slotpay deploy`; returns the deployment file's path.
pub fn deploy(dir: &Path, url: &str) -> PathBuf {
    let out = dir.join("deployment.json");
    let bundle = contract_bundle();
    slotpay(&[
        "deploy",
        "--url",
        url,
        "--suri",
        "//Alice",
        "--bundle",
        &bundle.display().to_string(),
        "--out",
        &out.display().to_string(),
    ]);
    out
}

/// The shared key of the `index`th device: 32 bytes of `0x11 * (index + 1)`.
pub fn device_key(index: usize) -> DeviceKey {
    DeviceKey([(0x11 * (index + 1)) as u8; 32])
}

/// Writes `dir/{id}.device.toml`, the provisioning file the AS and the device share.
pub fn provision(dir: &Path, id: &str, index: usize) -> PathBuf {
    let mut p = Provision::new(id, device_key(index));
    p.slot_seconds = 30;
    let path = dir.join(format!("{id}.device.toml"));
    p.write(&path).expect("provisioning file");
    path
}

/// The AS's settings that tests vary.
#[derive(Debug, Clone)]
pub struct AsOptions {
    /// Price of one slot, in the chain's smallest unit ([`offchain_as::Config::price`]).
    pub price: Balance,
    /// Most slots one purchase may buy.
    pub max_slots: u64,
    /// No sale on a channel expiring or rotating within this many blocks.
    pub expiry_margin_blocks: u32,
    /// No sale on a channel whose rotation notice is shorter than this (blocks).
    pub min_notice_blocks: u32,
    /// The chain's shortest block time, in seconds, as the AS must assume it.
    pub block_seconds: f64,
    /// The closer closes (or settles ahead of a rotation) this many blocks before the
    /// deadline.
    pub blocks_before_expiry: u32,
    /// The closer's fallback interval; it also runs at every best block.
    pub interval_seconds: f64,
    /// How long a settle or close may take to land in a block, in seconds.
    pub inclusion_seconds: f64,
    /// Settle once this much is sold and unpaid (`None`: only on other grounds).
    pub settle_above: Option<Balance>,
    /// A PostgreSQL ledger (`database_url`) instead of `as.db`.
    pub database_url: Option<String>,
    /// The closer lease's duration (PostgreSQL ledgers).
    pub lease_seconds: f64,
}

impl Default for AsOptions {
    fn default() -> Self {
        Self {
            price: 1_000_000_000,
            max_slots: 64,
            expiry_margin_blocks: 5,
            min_notice_blocks: 8,
            // The dev chain seals a block per transaction: a block is a few hundred ms at
            // the fastest the tests drive it.
            block_seconds: 0.5,
            blocks_before_expiry: 3,
            interval_seconds: 0.2,
            inclusion_seconds: 1.0,
            settle_above: None,
            database_url: None,
            lease_seconds: 2.0,
        }
    }
}

/// Writes `as.toml` (AS account //Bob, database `as.db`) and the provisioning files it
/// names into `dir`, next to `deployment.json`, through the AS's own writer.
pub fn write_as_config(dir: &Path, url: &str, port: u16, devices: &[&str], o: &AsOptions) {
    write_as_config_as(dir, "as.toml", url, port, devices, o);
}

/// [`write_as_config`] into `dir/{file}` (one file per AS instance sharing a ledger).
pub fn write_as_config_as(
    dir: &Path,
    file: &str,
    url: &str,
    port: u16,
    devices: &[&str],
    o: &AsOptions,
) {
    std::fs::write(dir.join("as.suri"), "//Bob\n").expect("as key");
    let devices = devices
        .iter()
        .enumerate()
        .map(|(i, id)| offchain_as::DeviceEntry {
            provision: PathBuf::from(
                provision(dir, id, i)
                    .file_name()
                    .expect("name")
                    .to_string_lossy()
                    .into_owned(),
            ),
        })
        .collect();
    let config = offchain_as::Config {
        rpc_url: url.to_owned(),
        deployment: "deployment.json".into(),
        account_key_file: "as.suri".into(),
        price: o.price.to_string(),
        max_slots: o.max_slots,
        expiry_margin_blocks: o.expiry_margin_blocks,
        min_notice_blocks: o.min_notice_blocks,
        database: "as.db".into(),
        database_url: o.database_url.clone(),
        listen: SocketAddr::from(([127, 0, 0, 1], port)),
        chain: offchain_as::ChainTiming {
            block_seconds: o.block_seconds,
            ..offchain_as::ChainTiming::default()
        },
        close: offchain_as::ClosePolicy {
            remaining_below: "0".into(),
            blocks_before_expiry: o.blocks_before_expiry,
            interval_seconds: o.interval_seconds,
            inclusion_seconds: o.inclusion_seconds,
            retry_after_blocks: 5,
            settle_above: o.settle_above.map(|s| s.to_string()),
            settle_after_blocks: None,
            lease_seconds: o.lease_seconds,
        },
        limits: offchain_as::Limits::default(),
        devices,
    };
    config.save(&dir.join(file)).expect("config");
}

/// Starts `slotpay-as serve` on `dir/as.toml` and waits until it answers at `as_url`.
pub fn start_as(dir: &Path, as_url: &str) -> Proc {
    start_as_with(&dir.join("as.toml"), &dir.join("as.log"), as_url)
}

/// [`start_as`] on the configuration `config`, logging to `log`.
pub fn start_as_with(config: &Path, log: &Path, as_url: &str) -> Proc {
    let mut proc = Proc::spawn(
        Command::new(bin("slotpay-as"))
            .arg("--config")
            .arg(config)
            .arg("serve"),
        log,
    );
    wait_until("the AS", Duration::from_secs(60), || {
        if let Ok(Some(status)) = proc.child.try_wait() {
            panic!(
                "the AS exited ({status}):\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        as_client(as_url).terms().is_ok()
    });
    // Serving terms needs no chain; answering for a channel does: wait until the AS
    // follows the chain (any answer but 503, e.g. 404 for a channel not opened yet).
    wait_until(
        "the AS to follow the chain",
        Duration::from_secs(60),
        || match as_client(as_url).channel(ChannelId(0)) {
            Ok(_) => true,
            Err(e) => !e.is_transient(),
        },
    );
    proc
}

/// A client of the AS at `as_url`.
pub fn as_client(as_url: &str) -> api::AsClient {
    api::AsClient::new(as_url, Duration::from_secs(15))
}

/// Waits until the AS sees `channel` open (its view follows finality, a moment after
/// the test's own transaction).
pub fn wait_for_channel(as_url: &str, channel: ChannelId) {
    wait_until("the AS to see the channel", Duration::from_secs(60), || {
        as_client(as_url).channel(channel).is_ok()
    });
}

/// Runs `slotpay-as close|settle <channel>` and parses its JSON answer.
pub fn as_now(dir: &Path, what: &str, channel: ChannelId) -> Value {
    let out = run(Command::new(bin("slotpay-as"))
        .arg("--config")
        .arg(dir.join("as.toml"))
        .args([what, &channel.0.to_string()]));
    serde_json::from_str(out.trim())
        .unwrap_or_else(|e| panic!("slotpay-as {what} printed {out:?}: {e}"))
}

/// Starts `slotpay-device` for device `id` (provisioning `dir/{id}.device.toml`) on `addr`.
pub fn start_device(dir: &Path, id: &str, addr: SocketAddr) -> Proc {
    let proc = Proc::spawn(
        Command::new(bin("slotpay-device"))
            .arg("--provision")
            .arg(dir.join(format!("{id}.device.toml")))
            .arg("--state-file")
            .arg(dir.join(format!("{id}.state")))
            .args(["--listen", &addr.to_string()]),
        &dir.join(format!("{id}.log")),
    );
    wait_until("the device", Duration::from_secs(10), || {
        device_client(addr).status().is_ok()
    });
    proc
}

/// The firmware image the whole-system tests boot: `SLOTPAY_FIRMWARE_ELF`, else the
/// Cortex-M0 build of the networked image in the cache (`scripts/firmware.sh check`,
/// which the test command runs first, builds it).
pub fn firmware_elf() -> PathBuf {
    let path = built(
        "SLOTPAY_FIRMWARE_ELF",
        "target/firmware/thumbv6m-none-eabi/release/networked",
    );
    assert!(
        path.exists(),
        "no firmware image at {}: run scripts/firmware.sh check",
        path.display()
    );
    path
}

/// Starts the device firmware for device `id` under QEMU in place of `slotpay-device`:
/// the Cortex-M0 image on mps2-an385, its LAN9118 on QEMU's user network with the
/// device's CoAP port forwarded from `addr` (a 127.0.0.1 UDP address), its flash the
/// file `dir/{id}.flash`, provisioned from `dir/{id}.device.toml` (the file the AS
/// reads) on the first start and kept across restarts. Killing it is a power cut.
pub fn start_firmware(dir: &Path, id: &str, addr: SocketAddr) -> Proc {
    let flash = dir.join(format!("{id}.flash"));
    if !flash.exists() {
        let p = Provision::read(dir.join(format!("{id}.device.toml"))).expect("provisioning");
        std::fs::write(&flash, p.flash_image()).expect("flash file");
    }
    let proc = Proc::spawn(
        Command::new("qemu-system-arm")
            .args(["-cpu", "cortex-m3", "-machine", "mps2-an385"])
            .args(["-nographic", "-monitor", "none"])
            .arg("-semihosting-config")
            .arg(format!(
                "enable=on,target=native,arg=networked,arg={}",
                flash.display()
            ))
            .arg("-nic")
            .arg(format!(
                "user,hostfwd=udp:127.0.0.1:{}-10.0.2.15:5683",
                addr.port()
            ))
            .arg("-kernel")
            .arg(firmware_elf())
            .stdin(Stdio::null()),
        &dir.join(format!("{id}.log")),
    );
    wait_until("the firmware", Duration::from_secs(30), || {
        device_client(addr).status().is_ok()
    });
    proc
}

/// A CoAP client of the device at `addr`, with short timeouts for tests.
pub fn device_client(addr: SocketAddr) -> DeviceClient {
    DeviceClient::new(
        addr,
        ClientConfig {
            ack_timeout: Duration::from_millis(300),
            max_retransmit: 2,
            max_throttle_wait: Duration::ZERO,
        },
    )
    .expect("client socket")
}

/// Presents one token (text form) to the device at `addr`.
pub fn present(addr: SocketAddr, token: &str) -> Result<Granted, PresentError> {
    let token = Token::parse(token).expect("a token");
    device_client(addr).present(&token)
}

/// The AS's chain account (//Bob), as `slotpay` names it.
pub fn as_account() -> String {
    slotpay(&["account", "--suri", "//Bob"])["account"]
        .as_str()
        .expect("an account")
        .to_owned()
}

/// `slotpay open` by //Alice on `deployment` at `url`, paying the AS (//Bob) `deposit`,
/// expiring in `expires_in` blocks with a rotation notice of `notice`; `authority` is the
/// command's authority arguments (`delegate --client KEY`, `group --group FILE`, ...).
/// Returns the command's JSON answer.
pub fn open_channel(
    url: &str,
    deployment: &Path,
    deposit: Balance,
    expires_in: u32,
    notice: u32,
    authority: &[&str],
) -> Value {
    let (payee, deposit) = (as_account(), deposit.to_string());
    let (expires_in, notice) = (expires_in.to_string(), notice.to_string());
    let deployment = deployment.display().to_string();
    let mut args = vec![
        "open",
        "--url",
        url,
        "--deployment",
        &deployment,
        "--suri",
        "//Alice",
        "--payee",
        &payee,
        "--deposit",
        &deposit,
        "--expires-in",
        &expires_in,
        "--notice",
        &notice,
    ];
    args.extend_from_slice(authority);
    slotpay(&args)
}

/// A purchase of `device` slots with a receipt of `channel`'s `epoch` for `amount`,
/// signed by `key`, with the request secret `slotpay pay` would send.
pub fn purchase_body(
    domain: &protocol::AnyDomain,
    device: &str,
    channel: ChannelId,
    epoch: u32,
    amount: Balance,
    key: &SecretKey,
    proof: Option<protocol::MembershipProof>,
) -> api::PurchaseBody {
    let receipt = protocol::Receipt {
        channel,
        epoch,
        amount,
    };
    api::PurchaseBody {
        device: device.to_owned(),
        signed: protocol::SignedReceipt::sign(receipt, domain, key, proof),
        request_secret: client::pay::request_secret(key, domain, &receipt),
    }
}

/// POSTs `body` to the AS at `as_url`: its answer, or the refusal's status and body (0 and
/// the error when nothing answered).
pub fn post_purchase(
    as_url: &str,
    body: &api::PurchaseBody,
) -> Result<api::PurchaseReply, (u16, String)> {
    match as_client(as_url).purchase(body) {
        Ok(reply) => Ok(reply),
        Err(api::AsClientError::Refused { status, error }) => {
            Err((status, serde_json::to_string(&error).unwrap_or_default()))
        }
        Err(api::AsClientError::Status { status, body }) => Err((status, body)),
        Err(e) => Err((0, e.to_string())),
    }
}

/// `GET /v1/terms` of the AS at `as_url`.
pub fn as_terms(as_url: &str) -> api::TermsReply {
    as_client(as_url).terms().expect("terms")
}

/// The contract named by `deployment`, through the node at `url`.
pub async fn contract(url: &str, deployment: &Path) -> Contract {
    let deployment = Deployment::load(deployment).expect("deployment");
    let node = Node::connect(url).await.expect("node");
    Contract::new(node, deployment.contract)
}

/// Opens one channel per authority with `deposit` each, paying `payee`, expiring at
/// `expires_at`, notice `notice`, all in one transaction signed by //Alice; returns their
/// ids in order.
pub async fn open_channels(
    contract: &Contract,
    payee: protocol::AccountId32,
    authorities: &[Authority],
    deposit: Balance,
    expires_at: u32,
    notice: u32,
) -> Vec<ChannelId> {
    let calls: Vec<Call> = authorities
        .iter()
        .map(|&authority| {
            Call::new(
                &Open {
                    payee,
                    authority,
                    expires_at,
                    notice,
                },
                deposit,
            )
        })
        .collect();
    let mut ids = Vec::new();
    for chunk in calls.chunks(64) {
        let done = contract
            .batch(
                &subxt_signer::sr25519::dev::alice(),
                chunk,
                Batch::All,
                Finality::Finalized,
            )
            .await
            .expect("open the channels");
        for item in done.items {
            match item {
                chain::ItemOutcome::Done(events) => match events.first() {
                    Some(SlotpayEvent::Opened(o)) => ids.push(o.channel),
                    other => panic!("no Opened event: {other:?}"),
                },
                other => panic!("open failed: {other:?}"),
            }
        }
    }
    ids
}

/// Delegate authorities of `secrets`.
pub fn delegates(secrets: &[SecretKey]) -> Vec<Authority> {
    secrets
        .iter()
        .map(|s| Authority::Delegate(keys::public_key(s)))
        .collect()
}

/// The best block number.
pub async fn best_block(contract: &Contract) -> u32 {
    contract.node().best().await.expect("best block").0
}

/// The anvil binary `scripts/evm.sh setup` installs (`SLOTPAY_ANVIL` names another).
pub fn anvil_bin() -> PathBuf {
    if let Ok(path) = std::env::var("SLOTPAY_ANVIL") {
        return PathBuf::from(path);
    }
    let cache = std::env::var("SLOTPAY_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/slotpay")
        });
    let path = cache.join("evm/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil");
    assert!(
        path.exists(),
        "no anvil at {}: run scripts/evm.sh setup",
        path.display()
    );
    path
}

/// The EVM contract's forge artifact (`scripts/evm.sh build` writes it;
/// `SLOTPAY_EVM_ARTIFACT` names another).
pub fn evm_artifact() -> PathBuf {
    let path = std::env::var("SLOTPAY_EVM_ARTIFACT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo_root().join("evm/out/SlotpayChannels.sol/SlotpayChannels.json"));
    assert!(
        path.exists(),
        "no EVM artifact at {}: run scripts/evm.sh build",
        path.display()
    );
    path
}

/// An anvil node on a free loopback port, stopped when dropped.
pub struct Anvil {
    /// Its process.
    pub proc: Proc,
    /// Its RPC URL (WebSocket and HTTP share the port).
    pub url: String,
}

impl Anvil {
    /// Starts anvil and waits until it answers: a block per transaction, or with
    /// `block_seconds` a block that often; with `slots_in_an_epoch`, its `finalized`
    /// block lags the best by twice that (else by 2).
    pub fn start(dir: &Path, block_seconds: Option<u32>, slots_in_an_epoch: Option<u32>) -> Self {
        let port = free_tcp_port();
        let mut cmd = Command::new(anvil_bin());
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--silent"]);
        if let Some(n) = block_seconds {
            cmd.args(["--block-time", &n.to_string()]);
        }
        if let Some(n) = slots_in_an_epoch {
            cmd.args(["--slots-in-an-epoch", &n.to_string()]);
        }
        let proc = Proc::spawn(&mut cmd, &dir.join("anvil.log"));
        let url = format!("ws://127.0.0.1:{port}");
        wait_until("anvil", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Self { proc, url }
    }
}

/// Deploys the EVM contract with `slotpay deploy --layer evm` (as //Alice, anvil's
/// account 0) on the node at `url`; returns the deployment file's path.
pub fn deploy_evm(dir: &Path, url: &str) -> PathBuf {
    let out = dir.join("deployment.json");
    slotpay(&[
        "deploy",
        "--layer",
        "evm",
        "--url",
        url,
        "--suri",
        "//Alice",
        "--bundle",
        &evm_artifact().display().to_string(),
        "--out",
        &out.display().to_string(),
    ]);
    out
}
