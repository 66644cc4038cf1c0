//! slotpay end to end: the real binaries as separate processes on loopback against a real
//! substrate-contracts-node. A channel of each construction; purchases, refusals, crashes
//! of the AS and of a device; closes; every balance checked to the unit.
//!
//! Needs `SLOTPAY_NODE_URL` (scripts/test.sh starts a node and sets it).
use coap_lite::ResponseType;
use protocol::signature::keys::SecretKey;
use protocol::{ChannelId, Domain, Receipt};
use serde_json::{json, Value};
use slotpay_as::api::{from_hex, PurchaseBody};
use slotpay_tests::*;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const PRICE: u128 = 1_000_000_000;

struct World {
    dir: PathBuf,
    url: String,
    as_url: String,
    as_proc: Proc,
    lock: (SocketAddr, Proc),
    pump: (SocketAddr, Proc),
}

impl World {
    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn chain_args(&self) -> Vec<String> {
        vec![
            "--url".into(),
            self.url.clone(),
            "--deployment".into(),
            self.path("deployment.json"),
        ]
    }

    fn restart_as(&mut self) {
        self.as_proc.kill9();
        self.as_proc = start_as(&self.dir, &self.as_url);
    }

    fn domain(&self) -> Domain {
        as_terms(&self.as_url).domain().expect("domain")
    }

    fn total(&self, channel: u64) -> u128 {
        let reply: Value = ureq::get(&format!("{}/v1/channels/{channel}", self.as_url))
            .call()
            .expect("channel")
            .into_json()
            .expect("json");
        reply["total"]
            .as_str()
            .expect("total")
            .parse()
            .expect("number")
    }

    fn pay(&self, channel: u64, device: &str, key: &str, slots: u64, group: bool) -> Value {
        let addr = if device == "lock-1" {
            self.lock.0
        } else {
            self.pump.0
        };
        let mut args = vec![
            "pay".to_string(),
            "--as".into(),
            self.as_url.clone(),
            "--channel".into(),
            channel.to_string(),
            "--device".into(),
            device.into(),
            "--coap".into(),
            addr.to_string(),
            "--key".into(),
            self.path(key),
            "--slots".into(),
            slots.to_string(),
        ];
        if group {
            args.extend(["--group".into(), self.path("group.json")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        slotpay(&args)
    }

    /// POSTs a purchase body; returns (status, JSON answer).
    fn post(&self, body: &str) -> (u16, Value) {
        match ureq::post(&format!("{}/v1/purchase", self.as_url))
            .set("content-type", "application/json")
            .send_string(body)
        {
            Ok(r) => (r.status(), r.into_json().expect("json")),
            Err(ureq::Error::Status(s, r)) => (s, r.into_json().expect("json")),
            Err(e) => panic!("POST: {e}"),
        }
    }

    fn offer(&self, device: &str, channel: u64, amount: u128, key: &str) -> (u16, Value) {
        let secret = read_key(&self.dir.join(key));
        let receipt = Receipt {
            channel: ChannelId(channel),
            amount,
        };
        let body = PurchaseBody::new(
            device,
            &receipt,
            &receipt.sign(&self.domain(), &secret),
            None,
        );
        self.post(&serde_json::to_string(&body).expect("json"))
    }
}

fn read_key(path: &Path) -> SecretKey {
    let text = std::fs::read_to_string(path).expect("key file");
    SecretKey::from_slice(&from_hex::<32>(text.trim(), "key").expect("hex")).expect("secret")
}

fn balances(url: &str, accounts: &[&str]) -> Vec<i128> {
    let mut args = vec!["balance", "--url", url];
    args.extend_from_slice(accounts);
    let reply = slotpay(&args);
    accounts
        .iter()
        .map(|a| {
            reply[*a]
                .as_str()
                .expect("balance")
                .parse()
                .expect("number")
        })
        .collect()
}

fn num(v: &Value, field: &str) -> i128 {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} missing in {v}"))
        .parse()
        .expect("number")
}

fn setup() -> World {
    let url = node_url().expect(
        "SLOTPAY_NODE_URL is not set: start a node with scripts/node.sh start (scripts/test.sh does)",
    );
    let dir = std::env::temp_dir().join(format!("slotpay-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("work dir");
    deploy(&dir, &url);
    // The CLI's own deploy path (upload + instantiate through subxt) on the same bundle.
    let deployment: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("deployment.json")).expect("deployment file"),
    )
    .expect("deployment JSON");
    let bundle = deployment["metadata"].as_str().expect("bundle path");
    let cli_deployment = dir.join("deployment-cli.json").display().to_string();
    let deployed = slotpay(&[
        "deploy",
        "--url",
        &url,
        "--suri",
        "//Alice",
        "--bundle",
        bundle,
        "--out",
        &cli_deployment,
    ]);
    assert_ne!(
        deployed["contract"], deployment["contract"],
        "a second instance"
    );
    assert_eq!(deployed["genesis_hash"], deployment["genesis_hash"]);
    let status = slotpay(&[
        "status",
        "--url",
        &url,
        "--deployment",
        &cli_deployment,
        "--channel",
        "0",
    ]);
    assert_eq!(status["open"], json!(false));
    for k in ["payer", "delegate", "g1", "g2", "g3", "outsider"] {
        slotpay(&[
            "keygen",
            &dir.join(format!("{k}.key")).display().to_string(),
        ]);
    }
    let member = |k: &str| dir.join(format!("{k}.key")).display().to_string();
    slotpay(&[
        "group",
        "--out",
        &dir.join("group.json").display().to_string(),
        &member("g1"),
        &member("g2"),
        &member("g3"),
    ]);
    let as_port = free_tcp_port();
    write_as_config(&dir, &url, as_port, PRICE, &["lock-1", "pump-2"]);
    let as_url = format!("http://127.0.0.1:{as_port}");
    let as_proc = start_as(&dir, &as_url);
    let (lock_addr, pump_addr) = (free_udp_addr(), free_udp_addr());
    let lock = start_device(&dir, "lock-1", lock_addr);
    let pump = start_device(&dir, "pump-2", pump_addr);
    World {
        dir,
        url,
        as_url,
        as_proc,
        lock: (lock_addr, lock),
        pump: (pump_addr, pump),
    }
}

#[test]
fn paid_slots_end_to_end_on_a_real_chain() {
    let mut w = setup();
    let account_of = |suri: &str| -> String {
        slotpay(&["account", "--suri", suri])["account"]
            .as_str()
            .expect("account")
            .to_owned()
    };
    let (alice, bob) = (account_of("//Alice"), account_of("//Bob"));
    let (alice_ss58, bob_ss58) = (alice.as_str(), bob.as_str());
    let chain = w.chain_args();
    let chain: Vec<&str> = chain.iter().map(String::as_str).collect();
    let payer = slotpay(&["show", &w.path("payer.key")])["account"]
        .as_str()
        .expect("account")
        .to_owned();
    let mut args = vec![
        "transfer",
        "--suri",
        "//Alice",
        "--to",
        &payer,
        "--amount",
        "100000000000000",
    ];
    args.extend_from_slice(&chain);
    slotpay(&args);
    let before = balances(&w.url, &[alice_ss58, bob_ss58, &payer]);

    let open = |name: &str, signer: &[&str], deposit: u128, authority: &[&str]| -> Value {
        let deposit = deposit.to_string();
        let mut args = vec!["open"];
        args.extend_from_slice(&chain);
        args.extend_from_slice(signer);
        args.extend_from_slice(&[
            "--payee",
            bob_ss58,
            "--deposit",
            &deposit,
            "--expires-in",
            "500",
        ]);
        args.extend_from_slice(authority);
        let opened = slotpay(&args);
        eprintln!("opened {name}: {opened}");
        opened
    };
    let payer_key = w.path("payer.key");
    let delegate_key = w.path("delegate.key");
    let group_file = w.path("group.json");
    let deposits = [20 * PRICE, 50 * PRICE, 100 * PRICE];
    let opened = [
        open(
            "account",
            &["--ecdsa-key", &payer_key],
            deposits[0],
            &["account"],
        ),
        open(
            "delegate",
            &["--suri", "//Alice"],
            deposits[1],
            &["delegate", "--client", &delegate_key],
        ),
        open(
            "group",
            &["--suri", "//Alice"],
            deposits[2],
            &["group", "--group", &group_file],
        ),
    ];
    let ids: Vec<u64> = opened
        .iter()
        .map(|o| o["channel"].as_u64().expect("id"))
        .collect();
    let (account, delegate, group) = (ids[0], ids[1], ids[2]);

    // Purchases of each construction.
    let first = w.pay(account, "lock-1", "payer.key", 1, false);
    assert_eq!(first["counters"], json!([0]));
    w.pay(account, "pump-2", "payer.key", 2, false);
    w.pay(delegate, "pump-2", "delegate.key", 3, false);
    // Group members buy concurrently on one channel: the losers of each race re-sign.
    let handles: Vec<_> = ["g1.key", "g2.key", "g3.key"]
        .into_iter()
        .map(|key| {
            let (as_url, lock, dir) = (w.as_url.clone(), w.lock.0, w.dir.clone());
            std::thread::spawn(move || {
                (0..3)
                    .map(|_| {
                        slotpay(&[
                            "pay",
                            "--as",
                            &as_url,
                            "--channel",
                            &group.to_string(),
                            "--device",
                            "lock-1",
                            "--coap",
                            &lock.to_string(),
                            "--key",
                            &dir.join(key).display().to_string(),
                            "--group",
                            &dir.join("group.json").display().to_string(),
                        ])
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let group_buys: Vec<Value> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("member"))
        .collect();
    assert_eq!(group_buys.len(), 9);
    assert_eq!(w.total(group), 9 * PRICE);

    // Refusals: documented code, nothing changes.
    let totals = |w: &World| [w.total(account), w.total(delegate), w.total(group)];
    let before_refusals = totals(&w);
    let (status, e) = w.post("{\"device\": \"lock-1\", \"channel\": ");
    assert_eq!((status, e["code"].as_str()), (400, Some("bad_request")));
    let (status, e) = w.offer("pump-2", delegate, 2 * PRICE, "delegate.key");
    assert_eq!((status, e["code"].as_str()), (409, Some("stale_total")));
    assert_eq!(e["current_total"], json!((3 * PRICE).to_string()));
    let (status, e) = w.offer("pump-2", delegate, deposits[1] + PRICE, "delegate.key");
    assert_eq!((status, e["code"].as_str()), (422, Some("exceeds_deposit")));
    // The delegate's key on the payer's-own-key channel: another channel's signer.
    let (status, e) = w.offer("pump-2", account, 4 * PRICE, "delegate.key");
    assert_eq!((status, e["code"].as_str()), (403, Some("unauthorized")));
    let (status, e) = w.offer("pump-2", 9_999, PRICE, "delegate.key");
    assert_eq!(
        (status, e["code"].as_str()),
        (404, Some("channel_not_found"))
    );
    let (status, e) = w.offer("vending-9", delegate, 4 * PRICE, "delegate.key");
    assert_eq!((status, e["code"].as_str()), (404, Some("unknown_device")));
    // An outsider cannot pay through the group, even with a member's proof.
    let stderr = slotpay_fails(&[
        "pay",
        "--as",
        &w.as_url,
        "--channel",
        &group.to_string(),
        "--device",
        "lock-1",
        "--coap",
        &w.lock.0.to_string(),
        "--key",
        &w.path("outsider.key"),
        "--group",
        &w.path("group.json"),
    ]);
    assert!(stderr.contains("not in the group"), "{stderr}");
    let outsider = read_key(&w.dir.join("outsider.key"));
    let group_json: Value =
        serde_json::from_str(&std::fs::read_to_string(w.dir.join("group.json")).expect("group"))
            .expect("json");
    let receipt = Receipt {
        channel: ChannelId(group),
        amount: 10 * PRICE,
    };
    let mut body = serde_json::to_value(PurchaseBody::new(
        "lock-1",
        &receipt,
        &receipt.sign(&w.domain(), &outsider),
        None,
    ))
    .expect("json");
    body["proof"] = group_json["members"][0]["proof"].clone();
    let (status, e) = w.post(&body.to_string());
    assert_eq!((status, e["code"].as_str()), (403, Some("unauthorized")));
    assert_eq!(totals(&w), before_refusals, "refusals changed nothing");

    // SIGKILL the AS right after each purchase: every receipt whose OTPs came back is kept,
    // and the retried request returns the same OTPs without charging again.
    for round in 0..5u128 {
        let amount = (4 + round) * PRICE;
        let (status, sold) = w.offer("pump-2", delegate, amount, "delegate.key");
        assert_eq!(status, 200, "{sold}");
        w.restart_as();
        assert_eq!(w.total(delegate), amount);
        let (status, again) = w.offer("pump-2", delegate, amount, "delegate.key");
        assert_eq!(status, 200);
        assert_eq!(again["otps"], sold["otps"]);
        assert_eq!(again["fresh"], json!(false));
        // Present it so the device's counter keeps up.
        let otp = sold["otps"][0].as_str().expect("otp");
        assert_eq!(
            present_otp(w.pump.0, otp).expect("answer").0,
            ResponseType::Changed
        );
    }

    // The device: a replayed OTP, another device's OTP, a reboot, and guessing.
    let (_, sold) = w.offer("lock-1", delegate, 9 * PRICE, "delegate.key");
    let otp = sold["otps"][0].as_str().expect("otp").to_owned();
    assert_eq!(
        present_otp(w.pump.0, &otp).expect("answer").0,
        ResponseType::Unauthorized,
        "lock-1's OTP on pump-2"
    );
    assert_eq!(
        present_otp(w.lock.0, &otp).expect("answer").0,
        ResponseType::Changed
    );
    assert_eq!(
        present_otp(w.lock.0, &otp).expect("answer").0,
        ResponseType::Unauthorized,
        "replay"
    );
    w.lock.1.kill9();
    w.lock.1 = start_device(&w.dir, "lock-1", w.lock.0);
    assert_eq!(
        present_otp(w.lock.0, &otp).expect("answer").0,
        ResponseType::Unauthorized,
        "replay after reboot"
    );
    let (_, next) = w.offer("lock-1", delegate, 10 * PRICE, "delegate.key");
    let next_otp = next["otps"][0].as_str().expect("otp").to_owned();
    // The replay above was failure 1; three guesses make 4, past the 3 free ones, so a
    // delay starts: even the right OTP must wait.
    for guess in ["00000000", "12345678", "87654321"] {
        assert_eq!(
            present_otp(w.lock.0, guess).expect("answer").0,
            ResponseType::Unauthorized
        );
    }
    assert_eq!(
        present_otp(w.lock.0, &next_otp).expect("answer").0,
        ResponseType::TooManyRequests
    );
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(
        present_otp(w.lock.0, &next_otp).expect("answer").0,
        ResponseType::Changed
    );

    // Close every channel, one transaction each, and check every balance to the unit.
    let closes: Vec<Value> = ids
        .iter()
        .map(|id| {
            let out = run(Command::new(bin("slotpay-as"))
                .arg("--config")
                .arg(w.dir.join("as.toml"))
                .args(["close", &id.to_string()]));
            serde_json::from_str(out.trim()).expect("close JSON")
        })
        .collect();
    let expected_paid = [3 * PRICE, 10 * PRICE, 9 * PRICE];
    let after = balances(&w.url, &[alice_ss58, bob_ss58, &payer]);
    let mut expected = [0i128; 3];
    for i in 0..3 {
        let (paid, refunded) = (num(&closes[i], "paid"), num(&closes[i], "refunded"));
        assert_eq!(
            paid as u128, expected_paid[i],
            "channel {} claimed the best receipt",
            ids[i]
        );
        assert_eq!((paid + refunded) as u128, deposits[i]);
        let payer_index = if i == 0 { 2 } else { 0 };
        expected[payer_index] += -(deposits[i] as i128)
            - num(&opened[i], "fee")
            - num(&opened[i], "storage_deposit_held")
            + refunded;
        expected[1] += paid - num(&closes[i], "fee") + num(&closes[i], "storage_deposit_released");
        let status = slotpay(
            &[
                &["status"][..],
                &chain[..],
                &["--channel", &ids[i].to_string()],
            ]
            .concat(),
        );
        assert_eq!(status["open"], json!(false));
    }
    for (i, who) in ["Alice", "the AS", "the ECDSA payer"].iter().enumerate() {
        assert_eq!(
            after[i] - before[i],
            expected[i],
            "{who}'s balance, to the unit"
        );
    }
    // A second close of the same channel is refused by the contract and changes nothing.
    let again = run(Command::new(bin("slotpay-as"))
        .arg("--config")
        .arg(w.dir.join("as.toml"))
        .args(["close", &ids[0].to_string()]));
    assert!(again.contains("\"closed\":false"), "{again}");
    assert_eq!(balances(&w.url, &[bob_ss58])[0], after[1]);
    let _ = std::fs::remove_dir_all(&w.dir);
}
