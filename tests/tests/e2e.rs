//! slotpay end to end: the real binaries as separate processes on loopback against a real
//! substrate-contracts-node. A channel of each construction; purchases, refusals, crashes
//! of the AS and of a device; closes; every balance checked to the unit.
//!
//! Needs `SLOTPAY_NODE_URL` (scripts/test.sh starts a node and sets it).
use device::PresentError;
use interface::messages::Close;
use protocol::keys::SecretKey;
use protocol::ChannelId;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tests::*;

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

    fn domain(&self) -> protocol::AnyDomain {
        api::Deployment::load(&self.dir.join("deployment.json"))
            .expect("deployment")
            .domain()
    }

    fn total(&self, channel: u64) -> u128 {
        as_client(&self.as_url)
            .channel(ChannelId(channel))
            .expect("channel")
            .total
            .parse()
            .expect("number")
    }

    fn device(&self, name: &str) -> SocketAddr {
        if name == "lock-1" {
            self.lock.0
        } else {
            self.pump.0
        }
    }

    fn pay(&self, channel: u64, device: &str, key: &str, slots: u64, group: bool) -> Value {
        let mut args = pay_args(
            &self.dir,
            &self.as_url,
            channel,
            device,
            self.device(device),
            key,
            slots,
        );
        if group {
            args.extend(["--group".into(), self.path("group.json")]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        slotpay(&args)
    }

    /// POSTs a purchase body; returns (status, JSON answer).
    fn post(&self, body: &str) -> (u16, Value) {
        match ureq::post(&format!("{}{}", self.as_url, api::routes::PURCHASE))
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
        let body = purchase_body(
            &self.domain(),
            device,
            ChannelId(channel),
            0,
            amount,
            &secret,
            None,
        );
        self.post(&serde_json::to_string(&body).expect("json"))
    }
}

/// `slotpay pay` arguments: the deployment the payer handed over and the user's limits.
pub fn pay_args(
    dir: &Path,
    as_url: &str,
    channel: u64,
    device: &str,
    addr: SocketAddr,
    key: &str,
    slots: u64,
) -> Vec<String> {
    vec![
        "pay".into(),
        "--as".into(),
        as_url.into(),
        "--deployment".into(),
        dir.join("deployment.json").display().to_string(),
        "--channel".into(),
        channel.to_string(),
        "--device".into(),
        device.into(),
        "--coap".into(),
        addr.to_string(),
        "--key".into(),
        dir.join(key).display().to_string(),
        "--slots".into(),
        slots.to_string(),
        "--max-price".into(),
        PRICE.to_string(),
    ]
}

fn read_key(path: &Path) -> SecretKey {
    let text = std::fs::read_to_string(path).expect("key file");
    SecretKey::from_slice(&api::from_hex::<32>(text.trim(), "key").expect("hex")).expect("secret")
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
    let url = node_url();
    let dir = work_dir("e2e");
    deploy(&dir, &url);
    let status = slotpay(&[
        "status",
        "--url",
        &url,
        "--deployment",
        &dir.join("deployment.json").display().to_string(),
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
    let member = |k: &str| format!("{}={}", dir.join(format!("{k}.key")).display(), 5 * PRICE);
    slotpay(&[
        "group",
        "new",
        "--out",
        &dir.join("group.json").display().to_string(),
        &member("g1"),
        &member("g2"),
        &member("g3"),
    ]);
    let as_port = free_tcp_port();
    write_as_config(
        &dir,
        &url,
        as_port,
        &["lock-1", "pump-2"],
        &AsOptions {
            price: PRICE,
            ..AsOptions::default()
        },
    );
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
    slotpay(&[
        "transfer",
        "--url",
        &w.url,
        "--suri",
        "//Alice",
        "--to",
        &payer,
        "--amount",
        "100000000000000",
    ]);
    let before = balances(&w.url, &[alice_ss58, bob_ss58, &payer]);

    let open = |signer: &[&str], deposit: u128, authority: &[&str]| -> Value {
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
            "--notice",
            "20",
        ]);
        args.extend_from_slice(authority);
        slotpay(&args)
    };
    let payer_key = w.path("payer.key");
    let delegate_key = w.path("delegate.key");
    let group_file = w.path("group.json");
    let deposits = [20 * PRICE, 50 * PRICE, 100 * PRICE];
    let opened = [
        open(&["--ecdsa-key", &payer_key], deposits[0], &["account"]),
        open(
            &["--suri", "//Alice"],
            deposits[1],
            &["delegate", "--client", &delegate_key],
        ),
        open(
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
    // The ledger's first counter of lock-1: its generation (the second it was made) in
    // the counters' top bits.
    let counter = first["counters"][0].as_u64().expect("a counter granted");
    assert_eq!(
        counter & ((1 << offchain_as::COUNTER_BITS) - 1),
        0,
        "{first}"
    );
    assert!(
        counter >> offchain_as::COUNTER_BITS > 1_700_000_000,
        "{first}"
    );
    w.pay(account, "pump-2", "payer.key", 2, false);
    w.pay(delegate, "pump-2", "delegate.key", 3, false);
    // Group members buy concurrently on one channel: the losers of each race re-sign
    // above the winner's receipt, which the AS shows them.
    let handles: Vec<_> = ["g1.key", "g2.key", "g3.key"]
        .into_iter()
        .map(|key| {
            let (as_url, lock, dir) = (w.as_url.clone(), w.lock.0, w.dir.clone());
            std::thread::spawn(move || {
                (0..3)
                    .map(|_| {
                        let mut args = pay_args(&dir, &as_url, group, "lock-1", lock, key, 1);
                        args.extend([
                            "--group".into(),
                            dir.join("group.json").display().to_string(),
                        ]);
                        let args: Vec<&str> = args.iter().map(String::as_str).collect();
                        slotpay(&args)
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
    // Each member's cap is 5 slots: a sixth for g1 (3 bought) is still fine, then the cap.
    w.pay(group, "lock-1", "g1.key", 2, true);
    let mut args = pay_args(&w.dir, &w.as_url, group, "lock-1", w.lock.0, "g1.key", 1);
    args.extend(["--group".into(), w.path("group.json")]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stderr = slotpay_fails(&args);
    assert!(stderr.contains("over_cap"), "{stderr}");
    assert_eq!(w.total(group), 11 * PRICE);

    // Refusals: documented code, nothing changes.
    let totals = |w: &World| [w.total(account), w.total(delegate), w.total(group)];
    let before_refusals = totals(&w);
    let (status, e) = w.post("{\"device\": \"lock-1\", \"signed\": ");
    assert_eq!((status, e["code"].as_str()), (400, Some("bad_request")));
    let (status, e) = w.offer("pump-2", delegate, 2 * PRICE, "delegate.key");
    assert_eq!((status, e["code"].as_str()), (409, Some("stale_total")));
    assert_eq!(e["current_total"], json!((3 * PRICE).to_string()));
    assert!(
        e["justification"].is_object(),
        "a stale total comes with its receipt: {e}"
    );
    let (status, e) = w.offer("pump-2", delegate, deposits[1] + PRICE, "delegate.key");
    assert_eq!((status, e["code"].as_str()), (422, Some("exceeds_deposit")));
    let (status, e) = w.offer("pump-2", delegate, 70 * PRICE, "delegate.key");
    assert_eq!((status, e["code"].as_str()), (422, Some("exceeds_deposit")));
    let (status, e) = w.offer("pump-2", delegate, 3 * PRICE + 65 * PRICE, "delegate.key");
    assert!(
        matches!(
            e["code"].as_str(),
            Some("too_many_slots" | "exceeds_deposit")
        ),
        "{status} {e}"
    );
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
    let mut args = pay_args(
        &w.dir,
        &w.as_url,
        group,
        "lock-1",
        w.lock.0,
        "outsider.key",
        1,
    );
    args.extend(["--group".into(), w.path("group.json")]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let stderr = slotpay_fails(&args);
    assert!(stderr.contains("not in the group"), "{stderr}");
    assert_eq!(totals(&w), before_refusals, "refusals changed nothing");

    // SIGKILL the AS right after each purchase: every receipt whose tokens came back is
    // kept, and the retried request returns the same tokens without charging again.
    for round in 0..5u128 {
        let amount = (4 + round) * PRICE;
        let (status, sold) = w.offer("pump-2", delegate, amount, "delegate.key");
        assert_eq!(status, 200, "{sold}");
        w.restart_as();
        assert_eq!(w.total(delegate), amount);
        let (status, again) = w.offer("pump-2", delegate, amount, "delegate.key");
        assert_eq!(status, 200);
        assert_eq!(again["tokens"], sold["tokens"]);
        assert_eq!(again["fresh"], json!(false));
        let token = sold["tokens"][0].as_str().expect("token");
        present(w.pump.0, token).expect("granted");
    }

    // The device: a replayed token, another device's token, a reboot, and tokens sold but
    // never presented, which must not block later ones.
    let (_, sold) = w.offer("lock-1", delegate, 9 * PRICE, "delegate.key");
    let token = sold["tokens"][0].as_str().expect("token").to_owned();
    assert!(
        matches!(present(w.pump.0, &token), Err(PresentError::Invalid)),
        "lock-1's token on pump-2"
    );
    present(w.lock.0, &token).expect("granted");
    assert!(
        matches!(present(w.lock.0, &token), Err(PresentError::Used(_))),
        "replay"
    );
    w.lock.1.kill9();
    w.lock.1 = start_device(&w.dir, "lock-1", w.lock.0);
    assert!(
        matches!(present(w.lock.0, &token), Err(PresentError::Used(_))),
        "replay after reboot"
    );
    let (status, jam) = w.offer("lock-1", delegate, 49 * PRICE, "delegate.key");
    assert_eq!(status, 200, "{jam}");
    assert_eq!(
        jam["tokens"].as_array().expect("tokens").len(),
        40,
        "40 tokens sold, none presented"
    );
    let (_, later) = w.offer("lock-1", delegate, 50 * PRICE, "delegate.key");
    present(w.lock.0, later["tokens"][0].as_str().expect("token"))
        .expect("a later token is not jammed");
    present(w.lock.0, jam["tokens"][7].as_str().expect("token"))
        .expect("an earlier one is still good");

    // Close every channel, one transaction each, and check every balance to the unit.
    let closes: Vec<Value> = ids
        .iter()
        .map(|id| as_now(&w.dir, "close", ChannelId(*id)))
        .collect();
    let expected_paid = [3 * PRICE, 50 * PRICE, 11 * PRICE];
    let after = balances(&w.url, &[alice_ss58, bob_ss58, &payer]);
    for i in 0..3 {
        let (paid, refunded) = (num(&closes[i], "paid"), num(&closes[i], "refunded"));
        assert_eq!(
            paid as u128, expected_paid[i],
            "channel {} claimed the best receipt",
            ids[i]
        );
        assert_eq!((paid + refunded) as u128, deposits[i]);
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
    // Every balance to the unit, by the one balance check the demo uses.
    let records: Vec<accounting::ChannelRecord> = (0..3)
        .map(|i| accounting::ChannelRecord {
            name: format!("channel {}", ids[i]),
            payer: if i == 0 { payer.clone() } else { alice.clone() },
            deposit: deposits[i],
            open: opened[i].clone(),
            rotations: Vec::new(),
            settles: Vec::new(),
            close: closes[i].clone(),
            slots: (expected_paid[i] / PRICE) as u64,
        })
        .collect();
    let statement = accounting::statement(&records, PRICE, &bob).expect("statement");
    let changes: std::collections::BTreeMap<String, i128> = [alice.clone(), bob.clone(), payer]
        .into_iter()
        .zip([0, 1, 2])
        .map(|(who, i)| (who, after[i] - before[i]))
        .collect();
    let problems = statement.against(&changes);
    assert!(problems.is_empty(), "balances, to the unit: {problems:?}");
    // A second close of the same channel reaches the contract, which refuses it.
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let refusal = runtime.block_on(async {
        let contract = contract(&w.url, &w.dir.join("deployment.json")).await;
        contract
            .call(
                &subxt_signer::sr25519::dev::bob(),
                0,
                &Close {
                    channel: ChannelId(ids[0]),
                    receipt: None,
                },
                chain::Finality::Best,
            )
            .await
            .err()
    });
    assert!(
        matches!(
            refusal,
            Some(chain::ChainError::Refused {
                error: interface::Error::ChannelNotFound,
                ..
            })
        ),
        "{refusal:?}"
    );
    assert_eq!(balances(&w.url, &[bob_ss58])[0], after[1]);
    std::thread::sleep(Duration::from_millis(10));
    let _ = std::fs::remove_dir_all(&w.dir);
}

/// The AS's disk is lost (or a redeploy needs a new ledger): a new ledger must never sell
/// a counter the device has already granted or left behind its window. A device granted
/// past its window of 1,024; the database is replaced; the next token bought is granted
/// (a new ledger's counters start at its own generation, above every earlier one).
#[test]
fn a_replaced_ledger_sells_counters_the_device_still_grants() {
    let mut w = setup();
    let delegate = w.path("delegate.key");
    let (url, deployment) = (w.url.clone(), w.dir.join("deployment.json"));
    let open = |deposit: u128| -> u64 {
        open_channel(
            &url,
            &deployment,
            deposit,
            500,
            20,
            &["delegate", "--client", &delegate],
        )["channel"]
            .as_u64()
            .expect("id")
    };
    let first = open(2_000 * PRICE);
    wait_for_channel(&w.as_url, ChannelId(first));
    // 1,100 slots on lock-1, 64 at a time; the last token granted: the device's window
    // now starts above the first 76 counters of this ledger.
    let mut total: u64 = 0;
    let mut last = None;
    while total < 1_100 {
        let slots = (1_100 - total).min(64);
        total += slots;
        let (status, sold) = w.offer("lock-1", first, u128::from(total) * PRICE, "delegate.key");
        assert_eq!(status, 200, "{sold}");
        last = sold["tokens"].as_array().and_then(|t| t.last()).cloned();
    }
    present(w.lock.0, last.expect("tokens").as_str().expect("token")).expect("granted");
    // The ledger is lost: a new one, a second later (its generation).
    w.as_proc.kill9();
    for file in ["as.db", "as.db-wal", "as.db-shm"] {
        let _ = std::fs::remove_file(w.dir.join(file));
    }
    std::thread::sleep(Duration::from_millis(1_100));
    w.as_proc = start_as(&w.dir, &w.as_url);
    let second = open(10 * PRICE);
    wait_for_channel(&w.as_url, ChannelId(second));
    let (status, sold) = w.offer("lock-1", second, PRICE, "delegate.key");
    assert_eq!(status, 200, "{sold}");
    let token = sold["tokens"][0].as_str().expect("token").to_owned();
    present(w.lock.0, &token).expect("the new ledger's token is granted");
    let _ = std::fs::remove_dir_all(&w.dir);
}
