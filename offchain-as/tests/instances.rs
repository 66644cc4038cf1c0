//! Several AS instances on one PostgreSQL database (each its own connection pool and
//! group-commit task, as separate processes have), serving the same channels and devices
//! at once: clients spread over them, retries sent to another instance, group members
//! racing for the running total through different instances. No counter is sold twice,
//! no total or cap is passed, every answered sale is in the ledger, and a retry gets the
//! same tokens whichever instance answers it.
mod support;

use offchain_as::{Ledger, SaleError, SaleRecord, Sold};
use protocol::crypto::backend::SoftHasher;
use protocol::keys::SecretKey;
use protocol::{Authority, Balance, Channel, ChannelId, Member, MerkleTree, PurchaseError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use support::*;

const INSTANCES: usize = 3;
const DELEGATES: u64 = 12;
const PURCHASES: usize = 15;
const MEMBERS: usize = 4;
/// Each group member may spend this many slots' worth.
const CAP_SLOTS: u128 = 12;
const GROUP: ChannelId = ChannelId(100);

/// SplitMix64: which instance each request goes to, replayable from the seed printed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

fn seed() -> u64 {
    let seed = std::env::var("SLOTPAY_INSTANCES_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("SLOTPAY_INSTANCES_SEED={seed}");
    seed
}

/// `signer`'s offer of `amount` on `id` (as `channel` stands) for `device`.
fn offer(
    id: ChannelId,
    channel: &Channel,
    device: &str,
    amount: Balance,
    signer: &SecretKey,
    proof: Option<protocol::MembershipProof>,
) -> offchain_as::Offer {
    seller(64)
        .check(
            body(device, id, channel.epoch, amount, signer, proof),
            Some(channel),
            1,
            0,
        )
        .expect("a valid offer")
}

/// Every answered sale, by who asked.
type Answered = Arc<Mutex<Vec<SaleRecord>>>;

/// A client of its own delegate channel: one to three slots at a time on a random
/// instance, each purchase then resent to another instance (its retry), which must
/// answer the same sale.
async fn delegate_client(
    ledgers: Arc<Vec<Ledger>>,
    id: ChannelId,
    key: SecretKey,
    mut rng: Rng,
    answered: Answered,
) -> Balance {
    let channel = channel(delegate(&key), 10_000);
    let mut total = 0;
    for k in 0..PURCHASES {
        let slots = 1 + rng.below(3) as u128;
        let device = ["lock", "pump"][k % 2];
        let amount = total + slots * PRICE;
        let first = rng.below(INSTANCES);
        let sold = ledgers[first]
            .sell(offer(id, &channel, device, amount, &key, None))
            .await
            .expect("sold");
        assert!(sold.fresh);
        let other = (first + 1 + rng.below(INSTANCES - 1)) % INSTANCES;
        let again = ledgers[other]
            .sell(offer(id, &channel, device, amount, &key, None))
            .await
            .expect("the retry");
        assert_eq!(
            again,
            Sold {
                sale: sold.sale.clone(),
                fresh: false
            },
            "instance {other} answered instance {first}'s sale otherwise"
        );
        answered.lock().expect("lock").push(sold.sale);
        total = amount;
    }
    total
}

/// A member of the group: reads the running total from a random instance, signs one
/// slot above it and offers it to another, for a device of its own (so that only the
/// channel's row orders the members' sales); a lost race (stale total) is read again;
/// stops at its cap.
async fn member(
    ledgers: Arc<Vec<Ledger>>,
    group: Channel,
    device: String,
    key: SecretKey,
    proof: protocol::MembershipProof,
    mut rng: Rng,
    answered: Answered,
) -> (Balance, usize) {
    let mut spent = 0;
    let mut lost = 0;
    loop {
        let reader = &ledgers[rng.below(INSTANCES)];
        let total = reader
            .best(GROUP, 0)
            .await
            .expect("read")
            .map_or(0, |b| b.receipt.amount);
        let seller = &ledgers[rng.below(INSTANCES)];
        let mut offer = offer(
            GROUP,
            &group,
            "lock",
            total + PRICE,
            &key,
            Some(proof.clone()),
        );
        offer.device.clone_from(&device);
        match seller.sell(offer).await {
            Ok(sold) => {
                assert!(sold.fresh, "a member's new total was answered as a retry");
                spent += PRICE;
                answered.lock().expect("lock").push(sold.sale);
            }
            Err(SaleError::Purchase(PurchaseError::StaleTotal { .. })) => lost += 1,
            Err(SaleError::Purchase(PurchaseError::OverCap { .. })) => return (spent, lost),
            Err(e) => panic!("member: {e}"),
        }
    }
}

#[test]
fn instances_on_one_postgres_database_never_sell_a_counter_twice_nor_pass_a_total_or_cap() {
    let backend = Backend::postgres("instances");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(seed());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut ledgers = Vec::new();
        for _ in 0..INSTANCES {
            ledgers.push(backend.ledger(dir.path(), 64).await);
        }
        for i in 0..MEMBERS {
            ledgers[0]
                .register_device(&format!("member-{i}"))
                .await
                .expect("device");
        }
        let ledgers = Arc::new(ledgers);
        let answered: Answered = Arc::default();
        let keys: Vec<SecretKey> = (0..MEMBERS).map(|i| secret(40 + i as u8)).collect();
        let members: Vec<Member> = keys
            .iter()
            .map(|k| Member {
                key: protocol::keys::public_key(k),
                cap: CAP_SLOTS * PRICE,
            })
            .collect();
        let tree = MerkleTree::build::<SoftHasher>(protocol::Substrate, &members).expect("tree");
        let group = channel(Authority::Group(tree.root()), 10_000);
        let mut clients = Vec::new();
        for c in 0..DELEGATES {
            clients.push(tokio::spawn(delegate_client(
                ledgers.clone(),
                ChannelId(c),
                secret(10 + c as u8),
                Rng(rng.below(usize::MAX) as u64),
                answered.clone(),
            )));
        }
        let mut racers = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            racers.push(tokio::spawn(member(
                ledgers.clone(),
                group,
                format!("member-{i}"),
                *key,
                tree.proof(i).expect("proof"),
                Rng(rng.below(usize::MAX) as u64),
                answered.clone(),
            )));
        }
        let mut totals = BTreeMap::new();
        for (c, client) in clients.into_iter().enumerate() {
            totals.insert(ChannelId(c as u64), client.await.expect("client"));
        }
        let mut group_spent = 0;
        let mut races_lost = 0;
        for racer in racers {
            let (spent, lost) = racer.await.expect("member");
            assert_eq!(
                spent,
                CAP_SLOTS * PRICE,
                "a member stopped short of its cap"
            );
            group_spent += spent;
            races_lost += lost;
        }
        eprintln!("group members lost {races_lost} races for the running total");
        let sales = answered.lock().expect("lock").clone();

        // Every device's counters: each sold once, none skipped, as the ledger counts them.
        let mut by_device: BTreeMap<&str, Vec<(u64, u64)>> = BTreeMap::new();
        for sale in &sales {
            by_device
                .entry(sale.device.as_str())
                .or_default()
                .push((sale.first_counter, sale.slots));
        }
        for (device, mut ranges) in by_device {
            ranges.sort_unstable();
            let mut next = FLOOR;
            for (first, slots) in &ranges {
                assert_eq!(
                    *first, next,
                    "device {device}: counter {first} sold twice or {next} skipped"
                );
                next = first + slots;
            }
            for ledger in ledgers.iter() {
                assert_eq!(ledger.next_counter(device).await.expect("counter"), next);
            }
        }
        // Every answered sale is in the ledger, as every instance reads it.
        for (i, sale) in sales.iter().enumerate() {
            let held = ledgers[i % INSTANCES]
                .sale_for(sale.channel, sale.epoch, sale.new_total)
                .await
                .expect("read");
            assert_eq!(held.as_ref(), Some(sale), "an answered sale is not held");
        }
        // Running totals: each channel's best receipt is what its client paid in all; the
        // group's is what its members spent, none above its cap.
        for (id, total) in totals {
            let best = ledgers[0].best(id, 0).await.expect("read").expect("sold");
            assert_eq!(best.receipt.amount, total, "channel {id}");
        }
        let group_best = ledgers[1]
            .best(GROUP, 0)
            .await
            .expect("read")
            .expect("sold");
        assert_eq!(group_best.receipt.amount, group_spent);
        assert_eq!(group_spent, MEMBERS as u128 * CAP_SLOTS * PRICE);
        let group_slots: u64 = sales
            .iter()
            .filter(|s| s.channel == GROUP)
            .map(|s| s.slots)
            .sum();
        assert_eq!(u128::from(group_slots) * PRICE, group_spent);
    });
}
