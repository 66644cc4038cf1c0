//! The AS's ledger on real SQLite files, through its thread and the protocol's purchase
//! rule: durability across reopen, refusals that change nothing, idempotent retries,
//! group races, member caps, closes that stop sales, and the deployment it belongs to.
mod support;

use offchain_as::ledger::{LedgerError, Offer, SaleError, Store};
use offchain_as::sale::{OfferError, Request};
use protocol::crypto::backend::SoftHasher;
use protocol::MerkleTree;
use protocol::keys::SecretKey;
use protocol::{Authority, Channel, ChannelId, Domain, Member, PurchaseError, Receipt};
use support::*;

const ID: ChannelId = ChannelId(7);

fn offer(
    channel: &Channel,
    now: u32,
    amount: u128,
    signer: &SecretKey,
    proof: Option<protocol::MembershipProof>,
) -> Result<Offer, OfferError> {
    let receipt = Receipt {
        channel: ID,
        epoch: channel.epoch,
        amount,
    };
    seller(64).check(
        Request {
            device: "lock".into(),
            receipt,
            signature: receipt.sign(&DOMAIN, signer),
            proof,
        },
        Some(channel),
        now,
        0,
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("runtime")
}

#[test]
fn sales_survive_reopening_and_retries_get_the_same_counters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = secret(1);
    let ch = channel(delegate(&client), 100);
    rt().block_on(async {
        let ledger = ledger(dir.path(), 64);
        let sold = ledger
            .sell(offer(&ch, 1, 30, &client, None).expect("valid"))
            .await
            .expect("sold");
        assert_eq!(
            (sold.sale.first_counter, sold.sale.slots, sold.fresh),
            (0, 3, true)
        );
        let again = ledger
            .sell(offer(&ch, 1, 30, &client, None).expect("valid"))
            .await
            .expect("retry");
        assert_eq!((again.sale.first_counter, again.fresh), (0, false));
    });
    // A new process: the sale, the counters and the best receipt are all there.
    let store = Store::open(&dir.path().join("as.db"), &DOMAIN).expect("reopen");
    assert_eq!(store.next_counter("lock").expect("counter"), 3);
    assert_eq!(store.best(ID, 0).expect("read").expect("held").amount, 30);
    assert!(store.sale_for(ID, 0, 30).expect("read").is_some());
}

#[test]
fn refusals_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = secret(2);
    let ch = channel(delegate(&client), 100);
    rt().block_on(async {
        let ledger = ledger(dir.path(), 64);
        ledger
            .sell(offer(&ch, 1, 20, &client, None).unwrap())
            .await
            .expect("sold");
        for (amount, code) in [(15, "stale_total"), (25, "not_whole_slots")] {
            match ledger
                .sell(offer(&ch, 1, amount, &client, None).unwrap())
                .await
            {
                Err(SaleError::Purchase(e)) => assert_eq!(e.code(), code),
                other => panic!("{amount}: {other:?}"),
            }
        }
        assert!(matches!(
            offer(&ch, 1, 30, &secret(3), None),
            Err(OfferError::Purchase(PurchaseError::Unauthorized(_)))
        ));
        let next = ledger
            .sell(offer(&ch, 1, 30, &client, None).unwrap())
            .await
            .expect("sold");
        assert_eq!((next.sale.first_counter, next.sale.slots), (2, 1));
    });
}

/// Two members sign the same running total + price: one wins, the other hears the new
/// total and must not get the winner's tokens.
#[test]
fn a_member_signing_the_winners_amount_loses_the_race() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (secret(4), secret(5));
    let tree = MerkleTree::build_uniform::<SoftHasher>(
        &[
            protocol::keys::public_key(&a),
            protocol::keys::public_key(&b),
        ],
        protocol::UNLIMITED,
    )
    .expect("tree");
    let ch = channel(Authority::Group(tree.root()), 100);
    rt().block_on(async {
        let ledger = ledger(dir.path(), 64);
        ledger
            .sell(offer(&ch, 1, 10, &a, tree.proof(0).ok()).unwrap())
            .await
            .expect("a wins");
        match ledger
            .sell(offer(&ch, 1, 10, &b, tree.proof(1).ok()).unwrap())
            .await
        {
            Err(SaleError::Purchase(PurchaseError::StaleTotal { current_total })) => {
                assert_eq!(current_total, 10)
            }
            other => panic!("b must lose: {other:?}"),
        }
        let b_next = ledger
            .sell(offer(&ch, 1, 20, &b, tree.proof(1).ok()).unwrap())
            .await
            .expect("b above");
        assert_eq!(b_next.sale.first_counter, 1);
    });
}

/// A greedy member cannot spend the shared deposit: its cap, committed in its leaf, bounds
/// what it adds to the running total; the others still buy.
#[test]
fn a_member_cannot_spend_past_its_cap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (greedy, other) = (secret(6), secret(7));
    let members = [
        Member {
            key: protocol::keys::public_key(&greedy),
            cap: 3 * PRICE,
        },
        Member {
            key: protocol::keys::public_key(&other),
            cap: 5 * PRICE,
        },
    ];
    let tree = MerkleTree::build::<SoftHasher>(&members).expect("tree");
    let ch = channel(Authority::Group(tree.root()), 1_000);
    rt().block_on(async {
        let ledger = ledger(dir.path(), 64);
        ledger
            .sell(offer(&ch, 1, 20, &greedy, tree.proof(0).ok()).unwrap())
            .await
            .expect("two");
        ledger
            .sell(offer(&ch, 1, 30, &other, tree.proof(1).ok()).unwrap())
            .await
            .expect("other");
        match ledger
            .sell(offer(&ch, 1, 50, &greedy, tree.proof(0).ok()).unwrap())
            .await
        {
            Err(SaleError::Purchase(PurchaseError::OverCap { cap, would_spend })) => {
                assert_eq!((cap, would_spend), (30, 40));
            }
            other => panic!("over the cap: {other:?}"),
        }
        ledger
            .sell(offer(&ch, 1, 40, &greedy, tree.proof(0).ok()).unwrap())
            .await
            .expect("third slot");
        // A proof claiming a bigger cap than the leaf commits is not a member's.
        let mut inflated = tree.proof(0).expect("proof");
        inflated.cap = 100 * PRICE;
        assert!(matches!(
            offer(&ch, 1, 50, &greedy, Some(inflated)),
            Err(OfferError::Purchase(PurchaseError::Unauthorized(_)))
        ));
        ledger
            .sell(offer(&ch, 1, 60, &other, tree.proof(1).ok()).unwrap())
            .await
            .expect("other again");
    });
}

#[test]
fn a_close_under_way_stops_sales_but_answers_retries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = secret(8);
    let ch = channel(delegate(&client), 100);
    rt().block_on(async {
        let ledger = ledger(dir.path(), 64);
        ledger
            .sell(offer(&ch, 1, 10, &client, None).unwrap())
            .await
            .expect("sold");
        ledger.run(|s| s.begin_close(ID)).await.expect("closing");
        assert!(matches!(
            ledger.sell(offer(&ch, 1, 20, &client, None).unwrap()).await,
            Err(SaleError::Ledger(LedgerError::Closing(_)))
        ));
        let retry = ledger
            .sell(offer(&ch, 1, 10, &client, None).unwrap())
            .await
            .expect("retry");
        assert!(!retry.fresh);
        let watched = ledger.run(|s| s.watched()).await.expect("watched");
        assert!(watched[0].closing);
        ledger.run(|s| s.mark_closed(ID, 9)).await.expect("closed");
        assert!(ledger
            .run(|s| s.watched())
            .await
            .expect("watched")
            .is_empty());
    });
}

/// Reusing a database after a redeploy would apply old rows to new channels: the ledger
/// belongs to one deployment and refuses to open for another.
#[test]
fn the_ledger_belongs_to_one_deployment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("as.db");
    drop(Store::open(&path, &DOMAIN).expect("first use binds it"));
    for other in [
        Domain {
            contract: [9; 32],
            ..DOMAIN
        },
        Domain {
            genesis_hash: [9; 32],
            ..DOMAIN
        },
    ] {
        match Store::open(&path, &other) {
            Err(LedgerError::Incompatible(why)) => {
                assert!(why.contains("another deployment"), "{why}")
            }
            Ok(_) => panic!("opened for another deployment"),
            Err(e) => panic!("{e}"),
        }
    }
    Store::open(&path, &DOMAIN).expect("its own deployment opens");
    // A database from before deployments were recorded is refused, not guessed at.
    let old = dir.path().join("old.db");
    rusqlite_old_ledger(&old);
    assert!(matches!(
        Store::open(&old, &DOMAIN),
        Err(LedgerError::Incompatible(_))
    ));
}

fn rusqlite_old_ledger(path: &std::path::Path) {
    // The previous layout's first table, as an old AS left it.
    rusqlite::Connection::open(path)
        .and_then(|c| {
            c.execute_batch(
                "CREATE TABLE channels (channel INTEGER PRIMARY KEY, total BLOB NOT NULL);",
            )
        })
        .expect("an old ledger");
}

/// Sales are grouped into one commit; within it later sales see earlier ones' totals.
#[test]
fn concurrent_sales_commit_in_groups_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = secret(10);
    let ch = channel(delegate(&client), 10_000);
    rt().block_on(async {
        let ledger = ledger(dir.path(), 64);
        let sales: Vec<_> = (1..=40u128)
            .map(|k| {
                let ledger = ledger.clone();
                let offer = offer(&ch, 1, k * PRICE, &client, None).unwrap();
                tokio::spawn(async move { ledger.sell(offer).await })
            })
            .collect();
        let mut sold = 0;
        for s in sales {
            if s.await.expect("task").is_ok() {
                sold += 1;
            }
        }
        // Every sale that went through bought whole slots above the one before it, and
        // the counters handed out are exactly the slots sold.
        let store_total = ledger
            .run(|s| s.best(ID, 0))
            .await
            .expect("read")
            .expect("held")
            .amount;
        let counter = ledger
            .run(|s| s.next_counter("lock"))
            .await
            .expect("counter");
        assert!(sold >= 1);
        assert_eq!(u128::from(counter) * PRICE, store_total);
    });
}
