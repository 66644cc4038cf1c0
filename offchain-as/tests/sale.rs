//! The AS's sale path against a real SQLite file: durability across reopen, no change on
//! refusal, idempotent retries, serialised races, and OTPs that the device core accepts.
use device_sim::core::{CounterStore, Device, DeviceConfig, DeviceState, Throttle};
use protocol::crypto::backend::SoftHasher;
use protocol::hotp::Digits;
use protocol::merkle::MerkleTree;
use protocol::signature::keys::{self, SecretKey};
use protocol::{
    Authority, ChannelId, ChannelView, Domain, MembershipProof, PurchaseError, Receipt, Tariff,
};
use slotpay_as::ledger::Ledger;
use slotpay_as::sale::{DeviceKey, Offer, SaleError, Seller, SoldSlots};
use std::collections::BTreeMap;

const AS: [u8; 32] = [0xA5; 32];
const PRICE: u128 = 10;
const DEVICE_KEY: [u8; 32] = [0x42; 32];
const DOMAIN: Domain = Domain {
    genesis_hash: [1; 32],
    contract: [2; 32],
};

fn seller() -> Seller {
    let mut devices = BTreeMap::new();
    for name in ["lock-1", "pump-2"] {
        devices.insert(
            name.to_owned(),
            DeviceKey {
                key: DEVICE_KEY.to_vec(),
                digits: Digits::new(8).expect("8 digits"),
            },
        );
    }
    Seller {
        our_account: AS,
        domain: DOMAIN,
        tariff: Tariff {
            price: PRICE,
            expiry_margin: 5,
        },
        devices,
    }
}

fn ledger_at(path: &std::path::Path) -> Ledger {
    let mut ledger = Ledger::open(path).expect("open ledger");
    ledger.register_device("lock-1").expect("register");
    ledger.register_device("pump-2").expect("register");
    ledger
}

fn secret(seed: u8) -> SecretKey {
    SecretKey::from_slice(&[seed; 32]).expect("valid scalar")
}

fn delegate_channel(client: &SecretKey) -> ChannelView {
    ChannelView {
        payee: AS,
        authority: Authority::Delegate(keys::public_key(client)),
        deposit: 100,
        expires_at: 1000,
    }
}

fn offer(
    seller: &Seller,
    ledger: &mut Ledger,
    view: &ChannelView,
    device: &str,
    amount: u128,
    signer: &SecretKey,
    proof: Option<&MembershipProof>,
) -> Result<SoldSlots, SaleError> {
    let receipt = Receipt {
        channel: ChannelId(7),
        amount,
    };
    let signature = receipt.sign(&DOMAIN, signer);
    seller.sell(
        ledger,
        Some(view),
        10,
        &Offer {
            device,
            receipt: &receipt,
            signature: &signature,
            proof,
        },
    )
}

#[derive(Default)]
struct RamCounter(Option<DeviceState>);

impl CounterStore for RamCounter {
    type Error = ();
    fn load(&mut self) -> Result<Option<DeviceState>, ()> {
        Ok(self.0)
    }
    fn save(&mut self, state: &DeviceState) -> Result<(), ()> {
        self.0 = Some(*state);
        Ok(())
    }
}

fn device() -> Device<RamCounter> {
    Device::boot(
        DeviceConfig {
            key: DEVICE_KEY,
            digits: Digits::new(8).expect("8 digits"),
            window: 16,
            throttle: Throttle::default(),
        },
        RamCounter::default(),
    )
    .expect("boot")
}

#[test]
fn sold_otps_open_the_device_once_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ledger = ledger_at(&dir.path().join("as.db"));
    let seller = seller();
    let client = secret(1);
    let view = delegate_channel(&client);
    let first = offer(&seller, &mut ledger, &view, "lock-1", 10, &client, None).expect("one slot");
    let second = offer(&seller, &mut ledger, &view, "lock-1", 40, &client, None).expect("three");
    assert!(first.fresh && second.fresh);
    assert_eq!((first.sale.first_counter, first.sale.slots), (0, 1));
    assert_eq!((second.sale.first_counter, second.sale.slots), (1, 3));
    let mut lock = device();
    for otp in first.otps.iter().chain(&second.otps) {
        lock.present(&otp.to_string(), 0)
            .expect("device grants the slot");
    }
    // Used once, never again.
    assert!(lock.present(&first.otps[0].to_string(), 0).is_err());
    assert_eq!(ledger.total(ChannelId(7)).expect("total"), 40);
    assert_eq!(ledger.next_counter("lock-1").expect("counter"), 4);
    assert_eq!(ledger.next_counter("pump-2").expect("counter"), 0);
}

#[test]
fn the_ledger_survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("as.db");
    let seller = seller();
    let client = secret(1);
    let view = delegate_channel(&client);
    let sold = {
        let mut ledger = ledger_at(&path);
        offer(&seller, &mut ledger, &view, "pump-2", 20, &client, None).expect("sold")
    };
    let mut ledger = ledger_at(&path);
    assert_eq!(ledger.total(ChannelId(7)).expect("total"), 20);
    assert_eq!(ledger.next_counter("pump-2").expect("counter"), 2);
    let best = ledger
        .best_receipt(ChannelId(7))
        .expect("read")
        .expect("held");
    assert_eq!(best.amount, 20);
    let receipt = Receipt {
        channel: ChannelId(7),
        amount: 20,
    };
    assert_eq!(best.signature, receipt.sign(&DOMAIN, &client));
    // The retry after a restart gets the very same OTPs and pays nothing more.
    let again = offer(&seller, &mut ledger, &view, "pump-2", 20, &client, None).expect("retry");
    assert!(!again.fresh);
    assert_eq!(again.otps, sold.otps);
    assert_eq!(ledger.next_counter("pump-2").expect("counter"), 2);
}

#[test]
fn refusals_change_nothing() {
    let mut ledger = ledger_at(&tempfile::tempdir().expect("tempdir").path().join("as.db"));
    let seller = seller();
    let client = secret(1);
    let view = delegate_channel(&client);
    offer(&seller, &mut ledger, &view, "lock-1", 10, &client, None).expect("sold");
    let refusals = [
        offer(&seller, &mut ledger, &view, "lock-1", 15, &client, None),
        offer(&seller, &mut ledger, &view, "lock-1", 110, &client, None),
        offer(&seller, &mut ledger, &view, "lock-1", 20, &secret(2), None),
        offer(&seller, &mut ledger, &view, "nowhere", 20, &client, None),
    ];
    let codes: Vec<_> = refusals
        .iter()
        .map(|r| r.as_ref().expect_err("refused").code())
        .collect();
    assert_eq!(
        codes,
        [
            "not_whole_slots",
            "exceeds_deposit",
            "unauthorized",
            "unknown_device"
        ]
    );
    assert_eq!(ledger.total(ChannelId(7)).expect("total"), 10);
    assert_eq!(ledger.next_counter("lock-1").expect("counter"), 1);
    // A retry of the sold amount signed by someone else gets nothing.
    let stolen = offer(&seller, &mut ledger, &view, "lock-1", 10, &secret(2), None);
    assert!(matches!(
        stolen,
        Err(SaleError::Purchase(PurchaseError::Unauthorized(_)))
    ));
}

#[test]
fn group_members_racing_get_the_new_total_and_retry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("as.db");
    let members: Vec<SecretKey> = (20..24).map(secret).collect();
    let keys: Vec<_> = members.iter().map(keys::public_key).collect();
    let tree = MerkleTree::build::<SoftHasher>(&keys).expect("tree");
    let view = ChannelView {
        payee: AS,
        authority: Authority::Group(tree.root()),
        deposit: 1_000,
        expires_at: 1000,
    };
    // Four members on four threads, each with its own connection, each buying five
    // slots by signing "running total + price" and retrying on a stale total.
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let (path, member, proof, view) = (
                path.clone(),
                members[i],
                tree.proof(i).expect("proof"),
                view,
            );
            std::thread::spawn(move || {
                let seller = seller();
                let mut ledger = ledger_at(&path);
                let mut bought = Vec::new();
                while bought.len() < 5 {
                    let total = ledger.total(ChannelId(7)).expect("total");
                    match offer(
                        &seller,
                        &mut ledger,
                        &view,
                        "lock-1",
                        total + PRICE,
                        &member,
                        Some(&proof),
                    ) {
                        Ok(sold) => {
                            assert!(sold.fresh);
                            bought.push(sold.sale.first_counter);
                        }
                        Err(SaleError::Purchase(PurchaseError::StaleTotal { .. })) => continue,
                        Err(e) => panic!("unexpected refusal: {e}"),
                    }
                }
                bought
            })
        })
        .collect();
    let mut counters: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("member thread"))
        .collect();
    counters.sort_unstable();
    // Twenty slots: every counter sold exactly once, the total is twenty prices.
    assert_eq!(counters, (0..20).collect::<Vec<_>>());
    let ledger = ledger_at(&path);
    assert_eq!(ledger.total(ChannelId(7)).expect("total"), 20 * PRICE);
    let best = ledger
        .best_receipt(ChannelId(7))
        .expect("read")
        .expect("held");
    assert_eq!(best.amount, 20 * PRICE);
    assert!(best.proof.is_some());
}

#[test]
fn closing_marks_channels_done() {
    let mut ledger = ledger_at(&tempfile::tempdir().expect("tempdir").path().join("as.db"));
    let seller = seller();
    let client = secret(1);
    let view = delegate_channel(&client);
    offer(&seller, &mut ledger, &view, "lock-1", 10, &client, None).expect("sold");
    assert_eq!(
        ledger.unclosed_channels().expect("list"),
        vec![ChannelId(7)]
    );
    ledger.mark_closed(ChannelId(7), 55).expect("mark");
    assert!(ledger.is_closed(ChannelId(7)).expect("read"));
    assert!(ledger.unclosed_channels().expect("list").is_empty());
}

#[test]
fn a_close_under_way_stops_sales_and_claims_the_best_receipt() {
    let mut ledger = ledger_at(&tempfile::tempdir().expect("tempdir").path().join("as.db"));
    let seller = seller();
    let client = secret(1);
    let view = delegate_channel(&client);
    offer(&seller, &mut ledger, &view, "lock-1", 30, &client, None).expect("sold");
    let best = ledger
        .begin_close(ChannelId(7))
        .expect("begin")
        .expect("held");
    assert_eq!(best.amount, 30);
    let late = offer(&seller, &mut ledger, &view, "lock-1", 40, &client, None);
    assert_eq!(late.expect_err("closing").code(), "channel_closing");
    assert_eq!(ledger.total(ChannelId(7)).expect("total"), 30);
}

#[test]
fn another_member_signing_the_same_amount_loses_the_race_not_gets_the_otps() {
    let mut ledger = ledger_at(&tempfile::tempdir().expect("tempdir").path().join("as.db"));
    let seller = seller();
    let members = [secret(30), secret(31)];
    let keys: Vec<_> = members.iter().map(keys::public_key).collect();
    let tree = MerkleTree::build::<SoftHasher>(&keys).expect("tree");
    let view = ChannelView {
        payee: AS,
        authority: Authority::Group(tree.root()),
        deposit: 100,
        expires_at: 1000,
    };
    let (p0, p1) = (tree.proof(0).expect("proof"), tree.proof(1).expect("proof"));
    let won = offer(
        &seller,
        &mut ledger,
        &view,
        "lock-1",
        10,
        &members[0],
        Some(&p0),
    )
    .expect("won");
    let lost = offer(
        &seller,
        &mut ledger,
        &view,
        "lock-1",
        10,
        &members[1],
        Some(&p1),
    );
    assert!(
        matches!(
            lost,
            Err(SaleError::Purchase(PurchaseError::StaleTotal {
                current_total: 10
            }))
        ),
        "{lost:?}"
    );
    // The winner's own retry still gets its OTPs back.
    let again = offer(
        &seller,
        &mut ledger,
        &view,
        "lock-1",
        10,
        &members[0],
        Some(&p0),
    )
    .expect("retry");
    assert_eq!(again.otps, won.otps);
    let next = offer(
        &seller,
        &mut ledger,
        &view,
        "lock-1",
        20,
        &members[1],
        Some(&p1),
    )
    .expect("next");
    assert_eq!(next.sale.first_counter, 1);
}

/// A group commit decides its offers in order: a refusal in the middle undoes only itself,
/// later offers see the totals and counters of earlier ones, and all of it survives a
/// reopen of the database (it was one durable commit).
#[test]
fn one_batch_commits_in_order_and_a_refusal_changes_only_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("as.db");
    let seller = seller();
    let client = secret(1);
    let view = delegate_channel(&client);
    let checked = |amount: u128, device: &str| {
        let receipt = Receipt {
            channel: ChannelId(7),
            amount,
        };
        let signature = receipt.sign(&DOMAIN, &client);
        seller
            .check(
                Some(&view),
                10,
                &Offer {
                    device,
                    receipt: &receipt,
                    signature: &signature,
                    proof: None,
                },
            )
            .expect("signature checks")
    };
    // 10: 1 slot; 15: not whole slots (refused); 30: 2 more slots on top of 10;
    // 30 again: the same sale (a retry); 20: stale below 30.
    let batch = [
        checked(10, "lock-1"),
        checked(15, "lock-1"),
        checked(30, "lock-1"),
        checked(30, "lock-1"),
        checked(20, "pump-2"),
    ];
    {
        let mut ledger = ledger_at(&path);
        let outcomes = seller.sell_checked(&mut ledger, &batch).expect("commit");
        let summary: Vec<Result<(u64, u64, bool), &str>> = outcomes
            .iter()
            .map(|o| match o {
                Ok(s) => Ok((s.sale.first_counter, s.sale.slots, s.fresh)),
                Err(e) => Err(e.code()),
            })
            .collect();
        assert_eq!(
            summary,
            [
                Ok((0, 1, true)),
                Err("not_whole_slots"),
                Ok((1, 2, true)),
                Ok((1, 2, false)),
                Err("stale_total"),
            ]
        );
    }
    let ledger = ledger_at(&path);
    assert_eq!(ledger.total(ChannelId(7)).expect("total"), 30);
    assert_eq!(ledger.next_counter("lock-1").expect("counter"), 3);
    assert_eq!(ledger.next_counter("pump-2").expect("counter"), 0);
    assert!(ledger.sale_for(ChannelId(7), 15).expect("read").is_none());
}
