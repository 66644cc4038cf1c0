//! Revocation and settlement on a real chain, with the real binaries: a stolen delegate
//! key revoked while it spends; a group member removed while the others keep paying; an
//! AS settling twice, then closing. Every balance to the unit.
//!
//! Needs `SLOTPAY_NODE_URL` (scripts/test.sh starts a node and sets it).
use api::Deployment;
use protocol::ChannelId;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tests::*;

const PRICE: u128 = 1_000_000_000;
const NOTICE: u32 = 12;
/// The AS's `expiry_margin_blocks` in these tests (the harness's default).
const MARGIN: u64 = 5;

struct World {
    dir: PathBuf,
    url: String,
    as_url: String,
    _as_proc: Proc,
    lock: (SocketAddr, Proc),
}

fn setup(name: &str) -> World {
    let url = node_url();
    let dir = work_dir(name);
    deploy(&dir, &url);
    for k in ["client", "new-client", "m1", "m2", "m3"] {
        slotpay(&[
            "keygen",
            &dir.join(format!("{k}.key")).display().to_string(),
        ]);
    }
    let key = |k: &str| dir.join(format!("{k}.key")).display().to_string();
    slotpay(&[
        "group",
        "new",
        "--out",
        &dir.join("group.json").display().to_string(),
        &key("m1"),
        &key("m2"),
        &key("m3"),
    ]);
    slotpay(&[
        "group",
        "remove",
        "--group",
        &dir.join("group.json").display().to_string(),
        "--out",
        &dir.join("group-without-m2.json").display().to_string(),
        &key("m2"),
    ]);
    let port = free_tcp_port();
    write_as_config(
        &dir,
        &url,
        port,
        &["lock-1"],
        &AsOptions {
            price: PRICE,
            min_notice_blocks: 8,
            ..AsOptions::default()
        },
    );
    let as_url = format!("http://127.0.0.1:{port}");
    let as_proc = start_as(&dir, &as_url);
    let lock_addr = free_udp_addr();
    let lock = start_device(&dir, "lock-1", lock_addr);
    World {
        dir,
        url,
        as_url,
        _as_proc: as_proc,
        lock: (lock_addr, lock),
    }
}

impl World {
    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn pay(&self, channel: u64, key: &str, group: Option<&str>) -> Result<Value, String> {
        let mut args = vec![
            "--json".to_string(),
            "pay".into(),
            "--as".into(),
            self.as_url.clone(),
            "--deployment".into(),
            self.path("deployment.json"),
            "--channel".into(),
            channel.to_string(),
            "--device".into(),
            "lock-1".into(),
            "--coap".into(),
            self.lock.0.to_string(),
            "--key".into(),
            self.path(key),
            "--max-price".into(),
            PRICE.to_string(),
        ];
        if let Some(g) = group {
            args.extend(["--group".into(), self.path(g)]);
        }
        let out = std::process::Command::new(bin("slotpay"))
            .args(&args)
            .output()
            .expect("run slotpay");
        if out.status.success() {
            Ok(serde_json::from_slice(&out.stdout).expect("json"))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    fn open(&self, authority: &[&str], deposit: u128) -> (u64, Value) {
        let opened = open_channel(
            &self.url,
            &self.dir.join("deployment.json"),
            deposit,
            400,
            NOTICE,
            authority,
        );
        (opened["channel"].as_u64().expect("id"), opened)
    }

    fn rotate(&self, channel: u64, to: &[&str]) -> Value {
        let deployment = self.path("deployment.json");
        let channel = channel.to_string();
        let mut args = vec![
            "rotate",
            "--url",
            &self.url,
            "--deployment",
            &deployment,
            "--suri",
            "//Alice",
            "--channel",
            &channel,
        ];
        args.extend_from_slice(to);
        slotpay(&args)
    }

    fn status(&self, channel: u64) -> Value {
        slotpay(&[
            "status",
            "--url",
            &self.url,
            "--deployment",
            &self.path("deployment.json"),
            "--channel",
            &channel.to_string(),
        ])
    }

    /// Makes blocks (the dev chain seals one per transaction) until the best block is at
    /// least `block`.
    fn advance_to(&self, block: u64) {
        let charlie = slotpay(&["account", "--suri", "//Charlie"])["account"]
            .as_str()
            .expect("charlie")
            .to_owned();
        loop {
            let now = self.status(0)["block"].as_u64().expect("block");
            if now >= block {
                return;
            }
            slotpay(&[
                "transfer",
                "--url",
                &self.url,
                "--suri",
                "//Dave",
                "--to",
                &charlie,
                "--amount",
                "1000000000",
            ]);
        }
    }
}

fn amount(v: &Value, field: &str) -> u128 {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {v}"))
        .parse()
        .expect("number")
}

/// What a transaction cost its signer beyond the value it moved: fee, and storage
/// deposit held less released.
fn cost(v: &Value) -> i128 {
    amount(v, "fee") as i128 + amount(v, "storage_deposit_held") as i128
        - amount(v, "storage_deposit_released") as i128
}

fn alice_and_bob(w: &World) -> (String, String) {
    let a = slotpay(&["account", "--suri", "//Alice"])["account"]
        .as_str()
        .expect("a")
        .to_owned();
    let b = slotpay(&["account", "--suri", "//Bob"])["account"]
        .as_str()
        .expect("b")
        .to_owned();
    let _ = w;
    (a, b)
}

fn balance(url: &str, who: &str) -> i128 {
    slotpay(&["balance", "--url", url, who])[who]
        .as_str()
        .expect("balance")
        .parse()
        .expect("number")
}

/// The payer learns its delegated key is stolen while the thief spends. It rotates to a
/// new key: the thief keeps buying only until the AS's margin before the effective block,
/// the AS settles everything it sold to the old key before it stops counting, and from
/// the effective block on only the new key buys (epoch 1, counting from zero above what
/// was settled). The AS settles twice and closes; every unit is accounted for.
#[test]
fn a_stolen_delegate_key_is_revoked_while_it_spends() {
    let w = setup("revoke");
    let (alice, bob) = alice_and_bob(&w);
    let (alice0, bob0) = (balance(&w.url, &alice), balance(&w.url, &bob));
    let deposit = 40 * PRICE;
    let (channel, opened) = w.open(&["delegate", "--client", &w.path("client.key")], deposit);
    // The thief (holding client.key) buys three slots; the AS settles them.
    for _ in 0..3 {
        w.pay(channel, "client.key", None).expect("the thief buys");
    }
    let settle1 = as_now(&w.dir, "settle", ChannelId(channel));
    assert_eq!(amount(&settle1, "paid"), 3 * PRICE);
    // On the AS's record too, durably, as its sales are.
    let domain = Deployment::load(Path::new(&w.path("deployment.json")))
        .expect("deployment")
        .identity();
    let store = offchain_as::Store::open(&w.dir.join("as.db"), &domain).expect("ledger");
    let settled: Vec<_> = store
        .settlements(ChannelId(channel))
        .expect("settlements")
        .into_iter()
        .map(|(epoch, amount, _)| (epoch, amount))
        .collect();
    assert_eq!(settled, vec![(0, 3 * PRICE)]);
    w.pay(channel, "client.key", None)
        .expect("the thief buys again");
    // The payer rotates to a new key.
    let rotated = w.rotate(
        channel,
        &["delegate", "--client", &w.path("new-client.key")],
    );
    let effective = rotated["effective_at"].as_u64().expect("effective_at");
    assert_eq!(rotated["epoch"], 1);
    let status = w.status(channel);
    assert_eq!(
        status["rotation"]["effective_at"].as_u64(),
        Some(effective),
        "status shows the pending rotation: {status}"
    );
    // The block the rotation was announced in, by the contract's own rule (the notice
    // counts from it), not a block read afterwards (which would loosen the bound below).
    let announced_at = effective - u64::from(NOTICE);
    // Until the margin the thief can still buy (the AS can settle it in time) ...
    let mut thief_slots = 4;
    let mut after_rotation = 0;
    loop {
        match w.pay(channel, "client.key", None) {
            Ok(_) => {
                thief_slots += 1;
                after_rotation += 1;
                // One block per purchase (blocks come only from transactions here), so
                // the AS's margin is reached one block at a time.
                let now = w.status(0)["block"].as_u64().expect("block");
                w.advance_to(now + 1);
            }
            Err(e) => {
                assert!(e.contains("rotation_pending"), "{e}");
                break;
            }
        }
        assert!(thief_slots < 30, "the thief was never stopped");
    }
    // The threat model's bound: one slot a block, from the announcement until the AS's
    // margin (5 blocks) before the effective block: NOTICE - 5 = 7 slots at most.
    let bound = effective.saturating_sub(MARGIN + announced_at);
    assert_eq!(bound, u64::from(NOTICE) - MARGIN);
    assert!(
        after_rotation <= bound,
        "the thief bought {after_rotation} slots after the rotation (bound {bound})"
    );
    // ... and the new key cannot buy before the effective block.
    let early = w
        .pay(channel, "new-client.key", None)
        .expect_err("too early");
    // Refused by the AS, or by the new key's own client: the total the AS shows is the
    // old key's (epoch 0), which the new key's client cannot verify as its own.
    assert!(
        early.contains("rotation_pending")
            || early.contains("unauthorized")
            || early.contains("not a valid receipt of an authorised key"),
        "{early}"
    );
    let settle2 = as_now(&w.dir, "settle", ChannelId(channel));
    assert_eq!(
        amount(&settle2, "settled"),
        thief_slots as u128 * PRICE,
        "everything sold to the old key is paid"
    );
    w.advance_to(effective);
    let thief_late = w.pay(channel, "client.key", None).expect_err("revoked");
    assert!(
        thief_late.contains("unauthorized") || thief_late.contains("wrong_epoch"),
        "{thief_late}"
    );
    let new = w
        .pay(channel, "new-client.key", None)
        .expect("the new key buys");
    assert_eq!(
        (new["epoch"].as_u64(), new["total"].as_str()),
        (Some(1), Some(PRICE.to_string().as_str()))
    );
    w.pay(channel, "new-client.key", None).expect("again");
    let closed = as_now(&w.dir, "close", ChannelId(channel));
    let paid_total = (thief_slots as u128 + 2) * PRICE;
    assert_eq!(
        amount(&closed, "paid"),
        2 * PRICE,
        "the close pays only the new epoch"
    );
    assert_eq!(amount(&closed, "refunded"), deposit - paid_total);
    // Every unit: the payer paid exactly what was sold, the AS received it.
    let alice_expected = -(paid_total as i128) - cost(&opened) - cost(&rotated);
    let bob_expected = paid_total as i128 - cost(&settle1) - cost(&settle2) - cost(&closed);
    assert_eq!(
        balance(&w.url, &alice) - alice0,
        alice_expected,
        "the payer, to the unit"
    );
    assert_eq!(
        balance(&w.url, &bob) - bob0,
        bob_expected,
        "the AS, to the unit"
    );
    let _ = std::fs::remove_dir_all(&w.dir);
}

/// A member is removed from a group by rotating to a root without it: from the effective
/// block on it is refused, the others keep paying through the same channel.
#[test]
fn a_group_member_removed_while_others_keep_paying() {
    let w = setup("remove-member");
    let (channel, _) = w.open(&["group", "--group", &w.path("group.json")], 40 * PRICE);
    for m in ["m1.key", "m2.key", "m3.key"] {
        w.pay(channel, m, Some("group.json"))
            .expect("a member buys");
    }
    let rotated = w.rotate(
        channel,
        &["group", "--group", &w.path("group-without-m2.json")],
    );
    let effective = rotated["effective_at"].as_u64().expect("effective_at");
    as_now(&w.dir, "settle", ChannelId(channel));
    w.advance_to(effective);
    let removed = w
        .pay(channel, "m2.key", Some("group.json"))
        .expect_err("removed");
    assert!(
        removed.contains("unauthorized") || removed.contains("not a valid receipt"),
        "{removed}"
    );
    let m1 = w
        .pay(channel, "m1.key", Some("group-without-m2.json"))
        .expect("m1 still pays");
    assert_eq!(m1["epoch"].as_u64(), Some(1));
    w.pay(channel, "m3.key", Some("group-without-m2.json"))
        .expect("m3 still pays");
    let closed = as_now(&w.dir, "close", ChannelId(channel));
    assert_eq!(amount(&closed, "paid"), 2 * PRICE);
    assert_eq!(amount(&closed, "refunded"), 40 * PRICE - 5 * PRICE);
    let _ = Path::new(&w.dir);
    let _ = std::fs::remove_dir_all(&w.dir);
}
