//! slotpay end to end on the EVM layer: the real binaries against anvil (a block a
//! second, finality two blocks behind: `--block-time 1 --slots-in-an-epoch 1`), the
//! Solidity contract deployed with `slotpay deploy --layer evm`. Each test starts its own
//! anvil on a free loopback port and stops it when it ends.
//!
//! Needs anvil (`scripts/evm.sh setup`), the artifact (`scripts/evm.sh build`) and the
//! workspace's binaries (`cargo build --workspace`).
use chain::evm::{EvmContract, EvmNode, EvmSigner};
use chain::SlotpayEvent;
use protocol::ChannelId;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tests::*;

const PRICE: u128 = 1_000_000_000_000;

struct World {
    dir: PathBuf,
    anvil: Anvil,
    as_url: String,
    _as_proc: Proc,
    lock: (SocketAddr, Proc),
}

impl World {
    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn chain(&self) -> Vec<String> {
        vec!["--deployment".into(), self.path("deployment.json")]
    }

    fn pay(
        &self,
        channel: u64,
        key: &str,
        slots: u64,
        group: Option<&str>,
    ) -> Result<Value, String> {
        let mut args = vec![
            "--json".to_owned(),
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
            "--slots".into(),
            slots.to_string(),
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

    fn cli(&self, args: &[&str]) -> Value {
        slotpay(args)
    }

    fn status(&self, channel: u64) -> Value {
        let chain = self.chain();
        let mut args: Vec<&str> = vec!["status"];
        args.extend(chain.iter().map(String::as_str));
        let id = channel.to_string();
        args.extend(["--channel", &id]);
        slotpay(&args)
    }

    fn balances(&self, accounts: &[&str]) -> Vec<i128> {
        let mut args = vec!["balance", "--layer", "evm", "--url", &self.anvil.url];
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

    /// Waits until the chain is past block `block` (a block a second).
    fn wait_for_block(&self, block: u64) {
        wait_until("the block", Duration::from_secs(120), || {
            self.status(0)["block"].as_u64().unwrap_or(0) > block
        });
    }
}

fn evm_address(dir: &Path, key: &str) -> String {
    slotpay(&["show", &dir.join(key).display().to_string()])["evm_address"]
        .as_str()
        .expect("address")
        .to_owned()
}

fn dev_address(name: &str) -> String {
    slotpay(&["account", "--layer", "evm", "--suri", name])["account"]
        .as_str()
        .expect("address")
        .to_owned()
}

fn options() -> AsOptions {
    AsOptions {
        price: PRICE,
        max_slots: 64,
        expiry_margin_blocks: 6,
        min_notice_blocks: 8,
        // A block a second; finality 2 s behind; a close lands in the next block.
        block_seconds: 1.0,
        blocks_before_expiry: 5,
        interval_seconds: 0.2,
        inclusion_seconds: 1.5,
        ..AsOptions::default()
    }
}

fn setup(name: &str, options: AsOptions) -> World {
    let dir = work_dir(name);
    let anvil = Anvil::start(&dir, Some(1), Some(1));
    deploy_evm(&dir, &anvil.url);
    for k in ["payer", "delegate", "g1", "g2", "g3"] {
        slotpay(&[
            "keygen",
            &dir.join(format!("{k}.key")).display().to_string(),
        ]);
    }
    let member = |k: &str| format!("{}={}", dir.join(format!("{k}.key")).display(), 5 * PRICE);
    let group = |out: &str, members: &[&str]| {
        let mut args = vec![
            "group".to_owned(),
            "new".into(),
            "--layer".into(),
            "evm".into(),
            "--out".into(),
            dir.join(out).display().to_string(),
        ];
        args.extend(members.iter().map(|m| member(m)));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        slotpay(&args);
    };
    group("group.json", &["g1", "g2", "g3"]);
    group("group-without-g2.json", &["g1", "g3"]);
    let as_port = free_tcp_port();
    write_as_config(&dir, &anvil.url, as_port, &["lock-1"], &options);
    let as_url = format!("http://127.0.0.1:{as_port}");
    let as_proc = start_as(&dir, &as_url);
    let lock_addr = free_udp_addr();
    let lock = start_device(&dir, "lock-1", lock_addr);
    World {
        dir,
        anvil,
        as_url,
        _as_proc: as_proc,
        lock: (lock_addr, lock),
    }
}

fn open(
    w: &World,
    signer: &[&str],
    payee: &str,
    deposit: u128,
    expires_in: u32,
    authority: &[&str],
) -> Value {
    let deposit = deposit.to_string();
    let expires = expires_in.to_string();
    let chain = w.chain();
    let mut args: Vec<&str> = vec!["open"];
    args.extend(chain.iter().map(String::as_str));
    args.extend_from_slice(signer);
    args.extend_from_slice(&[
        "--payee",
        payee,
        "--deposit",
        &deposit,
        "--expires-in",
        &expires,
        "--notice",
        "10",
    ]);
    args.extend_from_slice(authority);
    slotpay(&args)
}

/// Every construction on anvil: the payer's own key, a delegate, a group of three with
/// caps; purchases (the members racing), a greedy member refused at its cap, a settle
/// that keeps the channel open, a member removed by rotation with notice (refused from
/// the effective block on, the others served), every channel closed by the AS; then
/// every party's balance to the wei, gas included (`gasUsed × effectiveGasPrice` of
/// every transaction, from the commands' own reports), by the demo's balance check.
#[test]
fn every_construction_on_anvil_every_balance_to_the_wei() {
    let w = setup("evm-e2e", options());
    let started = Instant::now();
    let alice = dev_address("//Alice");
    let bob = dev_address("//Bob");
    let payer = evm_address(&w.dir, "payer.key");
    slotpay(&[
        "transfer",
        "--layer",
        "evm",
        "--url",
        &w.anvil.url,
        "--suri",
        "//Alice",
        "--to",
        &payer,
        "--amount",
        "1000000000000000000",
    ]);
    let before = w.balances(&[&alice, &bob, &payer]);
    let deposits = [20 * PRICE, 50 * PRICE, 100 * PRICE];
    let payer_key = w.path("payer.key");
    let delegate_key = w.path("delegate.key");
    let group_file = w.path("group.json");
    let opened = [
        open(
            &w,
            &["--ecdsa-key", &payer_key],
            &bob,
            deposits[0],
            400,
            &["account"],
        ),
        open(
            &w,
            &["--suri", "//Alice"],
            &bob,
            deposits[1],
            400,
            &["delegate", "--client", &delegate_key],
        ),
        open(
            &w,
            &["--suri", "//Alice"],
            &bob,
            deposits[2],
            400,
            &["group", "--group", &group_file],
        ),
    ];
    let ids: Vec<u64> = opened
        .iter()
        .map(|o| o["channel"].as_u64().expect("id"))
        .collect();
    for o in &opened {
        assert!(o["gas_used"].as_str().is_some(), "gas reported: {o}");
    }
    let (account, delegate, group) = (ids[0], ids[1], ids[2]);
    for id in &ids {
        wait_for_channel(&w.as_url, ChannelId(*id));
    }

    // Purchases of each construction.
    assert_eq!(
        w.pay(account, "payer.key", 1, None).expect("pay")["counters"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    w.pay(account, "payer.key", 2, None).expect("pay");
    w.pay(delegate, "delegate.key", 3, None).expect("pay");
    // The group's members at once: the losers re-sign above the winner's receipt.
    std::thread::scope(|s| {
        let handles: Vec<_> = ["g1.key", "g2.key", "g3.key"]
            .into_iter()
            .map(|k| {
                s.spawn(|| {
                    for _ in 0..2 {
                        w.pay(group, k, 1, Some("group.json")).expect("member");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("member");
        }
    });
    // A greedy member: g1 has 2 slots of its cap of 5; 3 more, then the cap.
    w.pay(group, "g1.key", 3, Some("group.json"))
        .expect("within the cap");
    let greedy = w
        .pay(group, "g1.key", 1, Some("group.json"))
        .expect_err("over the cap");
    assert!(greedy.contains("over_cap"), "{greedy}");

    // The AS settles the delegate channel; it stays open and the client buys on.
    let settle_delegate = as_now(&w.dir, "settle", ChannelId(delegate));
    assert_eq!(
        settle_delegate["paid"],
        json!((3 * PRICE).to_string()),
        "{settle_delegate}"
    );
    assert_eq!(w.status(delegate)["open"], json!(true));
    w.pay(delegate, "delegate.key", 1, None)
        .expect("pay after the settle");

    // g2 removed: the payer rotates the group to a root without it; after the notice the
    // AS refuses g2 and serves the others in epoch 1.
    let rotate = {
        let chain = w.chain();
        let mut args: Vec<&str> = vec!["rotate"];
        args.extend(chain.iter().map(String::as_str));
        let id = group.to_string();
        let without = w.path("group-without-g2.json");
        args.extend([
            "--suri",
            "//Alice",
            "--channel",
            &id,
            "group",
            "--group",
            &without,
        ]);
        w.cli(&args)
    };
    let effective = rotate["effective_at"].as_u64().expect("effective");
    let settle_group = as_now(&w.dir, "settle", ChannelId(group));
    assert_eq!(
        settle_group["paid"],
        json!((9 * PRICE).to_string()),
        "{settle_group}"
    );
    w.wait_for_block(effective);
    wait_until("epoch 1", Duration::from_secs(60), || {
        w.status(group)["epoch"] == json!(1)
    });
    // The AS sees the new epoch once final (two blocks).
    wait_until("the AS in epoch 1", Duration::from_secs(60), || {
        as_client(&w.as_url)
            .channel(ChannelId(group))
            .is_ok_and(|c| c.epoch == 1)
    });
    let removed = w
        .pay(group, "g2.key", 1, Some("group.json"))
        .expect_err("g2 is out");
    assert!(
        removed.contains("not a member") || removed.contains("unauthorized"),
        "{removed}"
    );
    w.pay(group, "g1.key", 1, Some("group-without-g2.json"))
        .expect("g1 in epoch 1");
    w.pay(group, "g3.key", 1, Some("group-without-g2.json"))
        .expect("g3 in epoch 1");

    // Every channel closed by the AS.
    let closes: Vec<Value> = ids
        .iter()
        .map(|id| as_now(&w.dir, "close", ChannelId(*id)))
        .collect();
    let slots = [3u64, 4, 11];
    for (i, close) in closes.iter().enumerate() {
        assert_eq!(close["closed"], json!(true), "{close}");
        let settled: u128 = [&settle_delegate, &settle_group]
            .iter()
            .filter(|s| s["channel"] == json!(ids[i]))
            .map(|s| s["paid"].as_str().unwrap().parse::<u128>().unwrap())
            .sum();
        let paid: u128 = close["paid"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            paid + settled,
            u128::from(slots[i]) * PRICE,
            "channel {}: {close}",
            ids[i]
        );
        assert_eq!(w.status(ids[i])["open"], json!(false));
    }
    let after = w.balances(&[&alice, &bob, &payer]);
    let records: Vec<accounting::ChannelRecord> = (0..3)
        .map(|i| accounting::ChannelRecord {
            name: format!("channel {}", ids[i]),
            payer: if i == 0 { payer.clone() } else { alice.clone() },
            deposit: deposits[i],
            open: opened[i].clone(),
            rotations: if i == 2 {
                vec![rotate.clone()]
            } else {
                Vec::new()
            },
            settles: match i {
                1 => vec![settle_delegate.clone()],
                2 => vec![settle_group.clone()],
                _ => Vec::new(),
            },
            close: closes[i].clone(),
            slots: slots[i],
        })
        .collect();
    let statement = accounting::statement(&records, PRICE, &bob).expect("statement");
    let changes: BTreeMap<String, i128> = [alice, bob, payer]
        .into_iter()
        .zip(0..)
        .map(|(who, i)| (who, after[i] - before[i]))
        .collect();
    let problems = statement.against(&changes);
    assert!(problems.is_empty(), "balances, to the wei: {problems:?}");
    println!(
        "every construction on anvil in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&w.dir);
}

/// A payer account that is a contract reverting on receive (a 57-byte proxy: a call
/// with data is forwarded to the address in its first 20 bytes, with the value; a plain
/// transfer reverts). It opens a channel through the proxy; the AS's close goes through,
/// the refund is kept as owed to the proxy (`PaymentDeferred`), and the proxy's owner
/// withdraws it to itself with `withdrawTo`; every balance to the wei.
#[test]
fn a_reverting_payer_cannot_block_the_close_and_withdraws_later() {
    reverting_payer(
        "evm-reverting-payer",
        concat!(
            "603980600b6000396000f3",
            "3615602e57601436038060146000376000356060",
            "1c6000600083600034855af115602e573d600060",
            "003e3d6000f35b3d600060003e3d6000fd"
        ),
    );
}

/// The same with a payer that tells the AS's gas estimate from the real transaction: its
/// plain transfer is accepted at gas price 0 (as `eth_estimateGas` runs it) and reverts
/// at any other (a 69-byte proxy: the first one with `GASPRICE ISZERO` before its
/// revert). The estimate sees the refund paid; the close as sent must still have room
/// for the refund refused and owed, or it runs out of gas at every retry until the
/// payer claims the channel back after its expiry.
#[test]
fn a_payer_that_accepts_only_in_the_estimate_cannot_starve_the_close_of_gas() {
    reverting_payer(
        "evm-estimate-payer",
        concat!(
            "604580600b6000396000f3",
            "3615603957601436038060146000376000356060",
            "1c6000600083600034855af115602e573d600060",
            "003e3d6000f35b3d600060003e3d6000fd",
            "5b3a15604357600080fd5b00"
        ),
    );
}

/// Opens a channel from the proxy whose creation code is `init` (hex), buys two slots,
/// has the AS close it (the refund refused and owed), then withdraws through the proxy.
fn reverting_payer(name: &str, init: &str) {
    use alloy::network::TransactionBuilder as _;
    use alloy::primitives::{Address, Bytes, U256};
    use alloy::rpc::types::TransactionRequest;
    use alloy::sol_types::SolCall as _;
    use chain::evm::SlotpayChannels;

    let w = setup(name, options());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let deployment = api::Deployment::load(&w.dir.join("deployment.json")).expect("deployment");
    let slotpay_address = deployment.evm_contract().expect("EVM");
    let bob = dev_address("//Bob");
    let owner = EvmSigner::from_suri("//Dave").expect("key");
    let owner_text = api::to_hex(&owner.address());
    let deposit = 10 * PRICE;
    let (node, proxy) = runtime.block_on(async {
        let node = EvmNode::connect(&w.anvil.url).await.expect("anvil");
        // init: copy the runtime and return it; runtime: see the tests' docs.
        let init = hex::decode(init).expect("hex");
        let tx = TransactionRequest::default().with_deploy_code(init);
        let created = node
            .send_all(&owner, vec![(tx, 200_000)])
            .await
            .expect("send")
            .pop()
            .unwrap();
        let proxy = created.expect("proxy").created.expect("an address");
        (node, proxy)
    });
    let before = w.balances(&[&owner_text, &bob]);
    let best = w.status(0)["block"].as_u64().expect("block") as u32;
    let client = protocol::keys::public_key(&read_key(&w.dir.join("delegate.key")));
    let open_call = SlotpayChannels::openCall {
        payee: Address::from(protocol::evm_address(&api::parse_account(&bob).unwrap()).unwrap()),
        authority: chain::evm::authority_to_evm(&protocol::Authority::Delegate(client)).unwrap(),
        expiresAt: best + 400,
        notice: 10,
    }
    .abi_encode();
    let through = |data: Vec<u8>, value: u128| {
        let mut payload = slotpay_address.to_vec();
        payload.extend(data);
        TransactionRequest::default()
            .with_to(Address::from(proxy))
            .with_input(Bytes::from(payload))
            .with_value(U256::from(value))
    };
    let opened = runtime.block_on(async {
        node.send_all(&owner, vec![(through(open_call, deposit), 400_000)])
            .await
            .expect("send")
            .pop()
            .unwrap()
            .expect("open through the proxy")
    });
    let channel = match opened.events.first() {
        Some(SlotpayEvent::Opened(o)) => o.channel,
        other => panic!("no Opened: {other:?}"),
    };
    assert_eq!(
        opened
            .events
            .iter()
            .filter(|e| matches!(e, SlotpayEvent::Opened(_)))
            .count(),
        1
    );
    wait_for_channel(&w.as_url, channel);
    w.pay(channel.0, "delegate.key", 2, None).expect("pay");
    // The close: the payee paid, the refund refused by the proxy and owed to it.
    let close = as_now(&w.dir, "close", channel);
    assert_eq!(close["closed"], json!(true), "{close}");
    assert_eq!(close["paid"], json!((2 * PRICE).to_string()));
    let refund = deposit - 2 * PRICE;
    let proxy_text = api::to_hex(&proxy);
    assert_eq!(
        close["deferred"],
        json!([[proxy_text, refund.to_string()]]),
        "the refund is owed: {close}"
    );
    let contract = runtime.block_on(async {
        EvmContract::bind(
            node.clone(),
            &match deployment.domain() {
                protocol::AnyDomain::Evm(d) => d,
                _ => unreachable!(),
            },
            None,
        )
        .await
        .expect("bind")
    });
    let owed = runtime.block_on(contract.read(
        &interface::messages::Owed {
            account: protocol::evm_account(&proxy),
        },
        chain::At::Best,
    ));
    assert_eq!(owed.expect("owed").1, refund);
    // The proxy's owner takes it: withdrawTo(owner), called through the proxy.
    let withdraw = SlotpayChannels::withdrawToCall {
        to: Address::from(owner.address()),
    }
    .abi_encode();
    let withdrawn = runtime.block_on(async {
        node.send_all(&owner, vec![(through(withdraw, 0), 200_000)])
            .await
            .expect("send")
            .pop()
            .unwrap()
            .expect("withdraw")
    });
    assert!(withdrawn
        .events
        .iter()
        .any(|e| matches!(e, SlotpayEvent::Withdrawn(x) if x.amount == refund)));
    let after = w.balances(&[&owner_text, &bob]);
    assert_eq!(
        after[0] - before[0],
        -(deposit as i128) - opened.fee as i128 + refund as i128 - withdrawn.fee as i128,
        "the owner, to the wei"
    );
    let close_fee: i128 = close["fee"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        after[1] - before[1],
        (2 * PRICE) as i128 - close_fee,
        "the AS, to the wei"
    );
    let _ = std::fs::remove_dir_all(&w.dir);
}

/// Tens of channels with one expiry block (opened together, one slot bought on each):
/// the AS plans their closes against the block gas limit over a close's measured gas,
/// sends them with consecutive nonces, and every one is closed before the expiry, paid
/// exactly.
#[test]
fn tens_of_channels_with_one_expiry_are_closed_in_time() {
    use interface::messages::Open;
    const CHANNELS: usize = 40;
    let w = setup("evm-crowd", options());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let deployment = api::Deployment::load(&w.dir.join("deployment.json")).expect("deployment");
    let domain = deployment.domain();
    let protocol::AnyDomain::Evm(evm_domain) = domain else {
        unreachable!()
    };
    let alice = EvmSigner::from_suri("//Alice").expect("key");
    let bob = EvmSigner::from_suri("//Bob").expect("key");
    let secrets: Vec<_> = (0..CHANNELS).map(|_| protocol::keys::generate()).collect();
    let (contract, ids, expires_at) = runtime.block_on(async {
        let node = EvmNode::connect(&w.anvil.url).await.expect("anvil");
        let contract = EvmContract::bind(node, &evm_domain, None)
            .await
            .expect("bind");
        let best = contract.node().best().await.expect("best").0;
        let expires_at = best + 30;
        let calls: Vec<_> = secrets
            .iter()
            .map(|s| {
                let open = Open {
                    payee: bob.account(),
                    authority: protocol::Authority::Delegate(protocol::keys::public_key(s)),
                    expires_at,
                    notice: 10,
                };
                use chain::evm::EvmMessage as _;
                ("open", 10 * PRICE, open.evm_data().expect("data"))
            })
            .collect();
        let sent = contract.send_many(&alice, &calls).await.expect("send");
        let ids: Vec<ChannelId> = sent
            .into_iter()
            .map(|r| match r.expect("opened").events.first() {
                Some(SlotpayEvent::Opened(o)) => o.channel,
                other => panic!("{other:?}"),
            })
            .collect();
        (contract, ids, expires_at)
    });
    for id in &ids {
        wait_for_channel(&w.as_url, *id);
    }
    for (id, secret) in ids.iter().zip(&secrets) {
        let body = purchase_body(&domain, "lock-1", *id, 0, PRICE, secret, None);
        post_purchase(&w.as_url, &body).unwrap_or_else(|e| panic!("buy on {id}: {e:?}"));
    }
    // The closer closes every one by itself before the expiry.
    let from = contract.node().clone();
    let closed = runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let best = from.best().await.expect("best").0;
            let events = from
                .events_in(contract.address(), 0, best)
                .await
                .expect("logs");
            let closes: Vec<(u32, SlotpayEvent)> = events
                .into_iter()
                .filter(|(_, e)| matches!(e, SlotpayEvent::Closed(_)))
                .collect();
            if closes.len() == CHANNELS || Instant::now() > deadline {
                break closes;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    assert_eq!(closed.len(), CHANNELS, "every channel closed");
    let mut blocks = BTreeMap::new();
    for (block, e) in &closed {
        let SlotpayEvent::Closed(c) = e else {
            unreachable!()
        };
        assert!(
            *block < expires_at,
            "channel {} closed at block {block}, expiry {expires_at}",
            c.channel
        );
        assert_eq!(c.paid, PRICE);
        assert_eq!(c.refunded, 9 * PRICE);
        *blocks.entry(*block).or_insert(0) += 1;
    }
    println!("{CHANNELS} closes before block {expires_at}, per block: {blocks:?}");
    let _ = std::fs::remove_dir_all(&w.dir);
}

fn read_key(path: &Path) -> protocol::keys::SecretKey {
    let text = std::fs::read_to_string(path).expect("key file");
    protocol::keys::SecretKey::from_slice(&api::from_hex::<32>(text.trim(), "key").expect("hex"))
        .expect("secret")
}
