//! Three `slotpay-as` instances on one PostgreSQL ledger behind HAProxy (both started by
//! the test on loopback), against a real node: delegate clients and group members racing
//! for their running total, spread over the instances (through the balancer and
//! directly, each purchase's retry sent to another instance). Afterwards the ledger, the
//! devices' grants and the chain agree to the unit: every counter sold once, every token
//! granted once, every channel closed by the lease holder paying exactly what was sold.
//!
//! Needs `SLOTPAY_NODE_URL` (scripts/test.sh starts a node) and PostgreSQL and HAProxy
//! (scripts/setup.sh installs them).
use protocol::crypto::backend::SoftHasher;
use protocol::keys::{self, SecretKey};
use protocol::{AnyDomain, Authority, ChannelId, Member, MerkleTree};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tests::services::{Haproxy, Postgres};
use tests::several::*;
use tests::*;

const PRICE: u128 = 1_000_000;
const DEPOSIT: u128 = 1_000 * PRICE;
const DEVICES: [&str; 2] = ["lock-1", "pump-2"];
const DELEGATES: usize = 6;
const PURCHASES: usize = 12;
const MEMBERS: usize = 3;
const CAP_SLOTS: u128 = 8;

/// An answered purchase.
#[derive(Debug, Clone)]
struct Bought {
    channel: ChannelId,
    total: u128,
    device: String,
    first_counter: u64,
    tokens: Vec<String>,
}

fn bought(channel: ChannelId, reply: api::PurchaseReply) -> Bought {
    Bought {
        channel,
        total: reply.total.parse().expect("total"),
        device: reply.device,
        first_counter: reply.first_counter,
        tokens: reply.tokens,
    }
}

/// A delegate client: purchases of one to three slots, alternately through the balancer
/// and straight to an instance; each purchase's retry (the same receipt, the same
/// request secret) goes to the next instance and must get the same tokens.
fn delegate_client(
    balancer: String,
    instances: Vec<String>,
    domain: AnyDomain,
    channel: ChannelId,
    key: SecretKey,
    n: usize,
) -> Vec<Bought> {
    let mut total = 0;
    let mut out = Vec::new();
    for k in 0..PURCHASES {
        let amount = total + PRICE * (1 + (k + n) as u128 % 3);
        let device = DEVICES[(k + n) % 2];
        let body = purchase_body(&domain, device, channel, 0, amount, &key, None);
        let first = if k % 2 == 0 {
            balancer.clone()
        } else {
            instances[(k + n) % instances.len()].clone()
        };
        let reply =
            post_purchase(&first, &body).unwrap_or_else(|e| panic!("{amount} on {channel}: {e:?}"));
        assert!(reply.fresh);
        let retry = post_purchase(&instances[(k + n + 1) % instances.len()], &body)
            .unwrap_or_else(|e| panic!("retry of {amount} on {channel}: {e:?}"));
        assert!(!retry.fresh, "a retry was sold again");
        assert_eq!(
            (retry.first_counter, &retry.tokens),
            (reply.first_counter, &reply.tokens),
            "another instance answered the retry with other tokens"
        );
        total = amount;
        out.push(bought(channel, reply));
    }
    out
}

/// A group member: reads the total through the balancer, signs one slot above it, buys
/// through the balancer; a lost race (409 with the new total) signs again above that; it
/// stops at its cap.
fn member(
    balancer: String,
    domain: AnyDomain,
    channel: ChannelId,
    key: SecretKey,
    proof: protocol::MembershipProof,
    device: &'static str,
) -> (Vec<Bought>, usize) {
    let mut out = Vec::new();
    let mut lost = 0;
    let mut total = total(&balancer, channel);
    loop {
        let body = purchase_body(
            &domain,
            device,
            channel,
            0,
            total + PRICE,
            &key,
            Some(proof.clone()),
        );
        match post_purchase(&balancer, &body) {
            Ok(reply) => {
                total = reply.total.parse().expect("total");
                out.push(bought(channel, reply));
            }
            Err((409, e)) => {
                lost += 1;
                let error: api::ApiError = serde_json::from_str(&e).expect("error body");
                total = error
                    .current_total
                    .expect("stale_total says the total")
                    .parse()
                    .expect("total");
            }
            Err((422, e)) if e.contains("over_cap") => return (out, lost),
            Err(e) => panic!("member: {e:?}"),
        }
    }
}

#[test]
fn three_instances_behind_haproxy_agree_with_the_devices_and_the_chain() {
    assert!(
        services::postgres_available(),
        "PostgreSQL is not installed: run scripts/setup.sh"
    );
    let url = node_url();
    let dir = work_dir("instances");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let pg = Postgres::start();
    let database_url = pg.create_database("slotpay");
    let deployment = deploy(&dir, &url);
    let contract = runtime.block_on(contract(&url, &deployment));
    let domain = api::Deployment::load(&deployment)
        .expect("deployment")
        .domain();
    // Margins cover a closer takeover (lease 2 s + interval) on top of inclusion.
    let options = AsOptions {
        price: PRICE,
        blocks_before_expiry: 10,
        expiry_margin_blocks: 10,
        min_notice_blocks: 12,
        database_url: Some(database_url),
        lease_seconds: 2.0,
        ..AsOptions::default()
    };
    let instances: Vec<Instance> = ["as-a", "as-b", "as-c"]
        .iter()
        .map(|name| Instance::start(&dir, name, &url, &DEVICES, &options))
        .collect();
    let proxy = Haproxy::start(&instances.iter().map(|i| i.port).collect::<Vec<_>>());
    let balancer = proxy.url();
    let direct: Vec<String> = instances.iter().map(Instance::url).collect();
    let devices: Vec<_> = DEVICES
        .iter()
        .map(|d| {
            let addr = free_udp_addr();
            (addr, start_device(&dir, d, addr))
        })
        .collect();

    let keys: Vec<SecretKey> = (0..DELEGATES).map(|_| keys::generate()).collect();
    let member_keys: Vec<SecretKey> = (0..MEMBERS).map(|_| keys::generate()).collect();
    let tree = MerkleTree::build::<SoftHasher>(
        protocol::Substrate,
        &member_keys
            .iter()
            .map(|k| Member {
                key: keys::public_key(k),
                cap: CAP_SLOTS * PRICE,
            })
            .collect::<Vec<_>>(),
    )
    .expect("tree");
    let bob = subxt_signer::sr25519::dev::bob().public_key().0;
    let start = runtime.block_on(best_block(&contract));
    // Expiring well after the load (blocks come only with transactions here).
    let expires_at = start + 80;
    let mut authorities = delegates(&keys);
    authorities.push(Authority::Group(tree.root()));
    let ids = runtime.block_on(open_channels(
        &contract,
        bob,
        &authorities,
        DEPOSIT,
        expires_at,
        12,
    ));
    let group = *ids.last().expect("the group");
    for instance in &instances {
        wait_for_channel(&instance.url(), group);
    }

    let load_started = Instant::now();
    let clients: Vec<_> = keys
        .iter()
        .zip(&ids)
        .enumerate()
        .map(|(n, (key, id))| {
            let (balancer, direct, key, id) = (balancer.clone(), direct.clone(), *key, *id);
            std::thread::spawn(move || delegate_client(balancer, direct, domain, id, key, n))
        })
        .collect();
    let members: Vec<_> = member_keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let (balancer, key, proof) = (balancer.clone(), *key, tree.proof(i).expect("proof"));
            std::thread::spawn(move || member(balancer, domain, group, key, proof, DEVICES[i % 2]))
        })
        .collect();
    let mut answered: Vec<Bought> = Vec::new();
    for c in clients {
        answered.extend(c.join().expect("client"));
    }
    let mut races_lost = 0;
    for m in members {
        let (bought, lost) = m.join().expect("member");
        let spent: u128 = bought.iter().map(|b| b.tokens.len() as u128 * PRICE).sum();
        assert_eq!(
            spent,
            CAP_SLOTS * PRICE,
            "a member stopped short of its cap"
        );
        races_lost += lost;
        answered.extend(bought);
    }
    eprintln!(
        "{} purchases answered in {:.1} s over three instances; group members lost {races_lost} races",
        answered.len(),
        load_started.elapsed().as_secs_f64()
    );
    // Every instance sold: the balancer spread the load.
    for instance in &instances {
        let sold = instance.metric("slotpay_purchases_total").unwrap_or(0.0);
        assert!(sold > 0.0, "{} sold nothing", instance.name);
    }

    // The ledger: every answered sale as answered; each device's counters sold once.
    let db = "slotpay";
    let sales = ledger_sales(&pg, db);
    assert_eq!(
        sales.len(),
        answered.len(),
        "the ledger holds other sales than answered"
    );
    for a in &answered {
        let held = sales
            .iter()
            .find(|s| s.0 == a.channel.0 && s.1 == a.total)
            .unwrap_or_else(|| panic!("answered, not in the ledger: {a:?}"));
        assert_eq!(
            (held.2.as_str(), held.3, held.4),
            (a.device.as_str(), a.first_counter, a.tokens.len() as u64)
        );
    }
    let mut by_device: BTreeMap<&str, Vec<(u64, u64)>> = BTreeMap::new();
    for (_, _, device, first, slots) in &sales {
        by_device.entry(device).or_default().push((*first, *slots));
    }
    for (device, ranges) in &mut by_device {
        ranges.sort_unstable();
        for pair in ranges.windows(2) {
            assert!(
                pair[0].0 + pair[0].1 <= pair[1].0,
                "device {device}: counters {pair:?} overlap"
            );
        }
    }

    // The devices: every token granted, each exactly once, in counter order.
    let mut tokens: BTreeMap<&str, Vec<(u64, &str)>> = BTreeMap::new();
    for a in &answered {
        for (i, t) in a.tokens.iter().enumerate() {
            tokens
                .entry(a.device.as_str())
                .or_default()
                .push((a.first_counter + i as u64, t));
        }
    }
    let mut granted = 0;
    for (i, device) in DEVICES.iter().enumerate() {
        let addr = devices[i].0;
        let mine = tokens.get_mut(device).expect("tokens for the device");
        mine.sort_unstable();
        for (counter, token) in mine.iter() {
            present(addr, token).unwrap_or_else(|e| panic!("{device} {counter}: {e:?}"));
            granted += 1;
        }
        let (_, first) = mine[0];
        assert!(present(addr, first).is_err(), "a token granted twice");
    }
    let slots: usize = answered.iter().map(|a| a.tokens.len()).sum();
    assert_eq!(granted, slots);

    // The chain: blocks until every channel has expired; the lease holder closed each
    // once, in time, paying its ledger total; the payer got the rest.
    let finals: BTreeMap<ChannelId, u128> = answered.iter().fold(BTreeMap::new(), |mut m, a| {
        let t = m.entry(a.channel).or_insert(0);
        *t = (*t).max(a.total);
        m
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    while runtime.block_on(best_block(&contract)) <= expires_at {
        assert!(Instant::now() < deadline, "blocks did not pass");
        runtime.block_on(make_block(&contract));
        std::thread::sleep(Duration::from_millis(500));
    }
    let end = runtime.block_on(best_block(&contract));
    let (closed, _) = runtime.block_on(close_and_settle_events(&contract, start, end));
    for id in &ids {
        let sold = finals.get(id).copied().unwrap_or(0);
        let closes = closed.get(id).cloned().unwrap_or_default();
        assert_eq!(closes.len(), 1, "channel {id}: closes {closes:?}");
        let (block, paid, refunded) = closes[0];
        assert!(
            block < expires_at,
            "channel {id} closed at {block}, expiry {expires_at}"
        );
        assert_eq!((paid, refunded), (sold, DEPOSIT - sold), "channel {id}");
    }
    let total_sold: u128 = finals.values().sum();
    assert_eq!(total_sold, slots as u128 * PRICE);
    let leaders = instances
        .iter()
        .filter(|i| i.log_count("submitting settles and closes") > 0)
        .count();
    assert_eq!(leaders, 1, "more than one instance submitted closes");
    drop(proxy);
    drop(instances);
    drop(devices);
    drop(pg);
    let _ = std::fs::remove_dir_all(&dir);
}
