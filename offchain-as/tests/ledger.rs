//! The AS's ledger through its interface and the protocol's purchase rule, on both
//! backends (real SQLite files; a real PostgreSQL server the tests start): durability
//! across reopen, refusals that change nothing, retries answered only to their buyer,
//! group races, member caps, closes that stop sales before the claim is read, counters
//! that outlive the ledger, and the deployment it belongs to.
mod support;

use api::RequestSecret;
use offchain_as::{Fence, LedgerError, Offer, OfferError, SaleError, Store};
use protocol::crypto::backend::SoftHasher;
use protocol::keys::SecretKey;
use protocol::MerkleTree;
use protocol::{Authority, Channel, ChannelId, Domain, Member, PurchaseError};
use support::*;

const ID: ChannelId = ChannelId(7);

fn offer(
    channel: &Channel,
    now: u32,
    amount: u128,
    signer: &SecretKey,
    proof: Option<protocol::MembershipProof>,
) -> Result<Offer, OfferError> {
    seller(64).check(
        body("lock", ID, channel.epoch, amount, signer, proof),
        Some(channel),
        now,
        0,
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().expect("runtime")
}

on_both_backends!(
    sales_survive_reopening_and_retries_get_the_same_counters,
    a_sold_receipt_reposted_without_its_secret_gets_nothing,
    refusals_change_nothing,
    a_member_signing_the_winners_amount_loses_the_race,
    a_member_cannot_spend_past_its_cap,
    a_close_under_way_stops_sales_but_answers_retries,
    an_ended_epoch_sells_nothing_more_but_answers_retries,
    concurrent_sales_commit_in_groups_in_order,
    counters_carry_over_from_an_older_ledger,
);

fn sales_survive_reopening_and_retries_get_the_same_counters(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = secret(1);
    let ch = channel(delegate(&client), 100);
    rt().block_on(async {
        let ledger = backend.ledger(dir.path(), 64).await;
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
    rt().block_on(async {
        let ledger = backend.ledger(dir.path(), 64).await;
        assert_eq!(ledger.next_counter("lock").await.expect("counter"), 3);
        assert_eq!(
            ledger
                .best(ID, 0)
                .await
                .expect("read")
                .expect("held")
                .receipt
                .amount,
            30
        );
        assert!(ledger.sale_for(ID, 0, 30).await.expect("read").is_some());
    });
}

/// The receipt of a sale is public (the channel view shows it, a stale answer shows it):
/// posting it again with any other request secret gets nothing, not the buyer's tokens.
fn a_sold_receipt_reposted_without_its_secret_gets_nothing(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = secret(11);
    let ch = channel(delegate(&client), 100);
    rt().block_on(async {
        let ledger = backend.ledger(dir.path(), 64).await;
        let sold = ledger
            .sell(offer(&ch, 1, 30, &client, None).expect("valid"))
            .await
            .expect("sold");
        // A third party holding the receipt, with a secret of its own.
        let mut stolen = offer(&ch, 1, 30, &client, None).expect("a valid receipt");
        stolen.secret_digest = RequestSecret([0xEE; 32]).digest();
        assert!(matches!(
            ledger.sell(stolen).await,
            Err(SaleError::NotTheBuyer)
        ));
        // The buyer's own retry still gets its tokens.
        let again = ledger
            .sell(offer(&ch, 1, 30, &client, None).expect("valid"))
            .await
            .expect("the buyer's retry");
        assert_eq!(
            (again.sale.first_counter, again.fresh),
            (sold.sale.first_counter, false)
        );
    });
}

fn refusals_change_nothing(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = secret(2);
    let ch = channel(delegate(&client), 100);
    rt().block_on(async {
        let ledger = backend.ledger(dir.path(), 64).await;
        ledger
            .sell(offer(&ch, 1, 20, &client, None).unwrap())
            .await
            .expect("sold");
        assert!(matches!(
            ledger.sell(offer(&ch, 1, 15, &client, None).unwrap()).await,
            Err(SaleError::Purchase(PurchaseError::StaleTotal { .. }))
        ));
        assert!(matches!(
            ledger.sell(offer(&ch, 1, 25, &client, None).unwrap()).await,
            Err(SaleError::Purchase(PurchaseError::NotWholeSlots { .. }))
        ));
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
fn a_member_signing_the_winners_amount_loses_the_race(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (secret(4), secret(5));
    let tree = MerkleTree::build_uniform::<SoftHasher>(
        protocol::Substrate,
        &[
            protocol::keys::public_key(&a),
            protocol::keys::public_key(&b),
        ],
        protocol::UNLIMITED,
    )
    .expect("tree");
    let ch = channel(Authority::Group(tree.root()), 100);
    rt().block_on(async {
        let ledger = backend.ledger(dir.path(), 64).await;
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
fn a_member_cannot_spend_past_its_cap(backend: Backend) {
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
    let tree = MerkleTree::build::<SoftHasher>(protocol::Substrate, &members).expect("tree");
    let ch = channel(Authority::Group(tree.root()), 1_000);
    rt().block_on(async {
        let ledger = backend.ledger(dir.path(), 64).await;
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

fn a_close_under_way_stops_sales_but_answers_retries(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = secret(8);
    let ch = channel(delegate(&client), 100);
    rt().block_on(async {
        let ledger = backend.ledger(dir.path(), 64).await;
        ledger
            .sell(offer(&ch, 1, 10, &client, None).unwrap())
            .await
            .expect("sold");
        let fence = ledger
            .lease("closer", None, std::time::Duration::from_secs(10))
            .await
            .expect("lease")
            .expect("no other closer");
        let held = ledger.begin_close(ID, fence).await.expect("closing");
        assert_eq!(held.expect("held").best.receipt.amount, 10);
        assert!(matches!(
            ledger.sell(offer(&ch, 1, 20, &client, None).unwrap()).await,
            Err(SaleError::Ledger(LedgerError::Closing(_)))
        ));
        let retry = ledger
            .sell(offer(&ch, 1, 10, &client, None).unwrap())
            .await
            .expect("retry");
        assert!(!retry.fresh);
        let watched = ledger.watched().await.expect("watched");
        assert!(watched[0].closing);
        ledger.mark_closed(ID, 9, fence).await.expect("closed");
        assert!(ledger.watched().await.expect("watched").is_empty());
        let state = ledger.state(ID).await.expect("state");
        assert!(state.closing && state.closed);
    });
}

/// A settle ahead of a rotation stops the epoch's sales first, then reads its best
/// receipt: a later sale of that epoch is refused (a retry still answered), the next
/// epoch sells.
fn an_ended_epoch_sells_nothing_more_but_answers_retries(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = secret(9);
    let ch = channel(delegate(&client), 100);
    rt().block_on(async {
        let ledger = backend.ledger(dir.path(), 64).await;
        ledger
            .sell(offer(&ch, 1, 20, &client, None).unwrap())
            .await
            .expect("sold");
        let fence = ledger
            .lease("closer", None, std::time::Duration::from_secs(10))
            .await
            .expect("lease")
            .expect("no other closer");
        let best = ledger.end_epoch(ID, 0, fence).await.expect("ended");
        assert_eq!(best.expect("held").receipt.amount, 20);
        assert!(matches!(
            ledger.sell(offer(&ch, 1, 30, &client, None).unwrap()).await,
            Err(SaleError::Ledger(LedgerError::EpochEnded { epoch: 0, .. }))
        ));
        assert!(
            !ledger
                .sell(offer(&ch, 1, 20, &client, None).unwrap())
                .await
                .expect("retry")
                .fresh
        );
        // The settle landed: recorded once, a retry of the record keeps the first.
        let receipt = protocol::Receipt {
            channel: ID,
            epoch: 0,
            amount: 20,
        };
        ledger
            .record_settlement(receipt, 12, fence)
            .await
            .expect("recorded");
        ledger
            .record_settlement(receipt, 13, fence)
            .await
            .expect("again");
        assert_eq!(
            ledger.settlements(ID).await.expect("settlements"),
            [(0, 20, 12)]
        );
        let mut next = ch;
        next.epoch = 1;
        let sold = ledger
            .sell(offer(&next, 1, 10, &client, None).unwrap())
            .await
            .expect("epoch 1 sells");
        assert_eq!((sold.sale.epoch, sold.sale.first_counter), (1, 2));
        assert!(!ledger.state(ID).await.expect("state").closing);
        let _: Fence = fence;
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

/// A ledger of the previous layout (version 2) opens migrated: its sales, totals and
/// counters kept; a retry of one of its sales cannot prove its buyer (it recorded no
/// secret) and is refused, never answered to whoever posts the receipt.
#[test]
fn a_version_2_ledger_is_migrated_and_keeps_its_money() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v2.db");
    version_2_ledger(&path);
    let mut store = Store::open(&path, &DOMAIN).expect("migrated");
    assert_eq!(store.next_counter("lock").expect("counter"), 5);
    assert_eq!(
        store
            .best(ID, 0)
            .expect("read")
            .expect("held")
            .receipt
            .amount,
        50
    );
    let sale = store.sale_for(ID, 0, 50).expect("read").expect("kept");
    assert_eq!(sale.secret_digest, None);
    assert!(matches!(
        offchain_as::answer_retry(sale, &RequestSecret([0; 32]).digest()),
        Err(SaleError::NotTheBuyer)
    ));
    // Migrated once: opening again changes nothing.
    store.register_device("pump").expect("a new device");
    drop(store);
    Store::open(&path, &DOMAIN).expect("opens again");
}

fn version_2_ledger(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).expect("db");
    conn.execute_batch(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT;
         CREATE TABLE devices (device TEXT PRIMARY KEY, next_counter INTEGER NOT NULL) STRICT;
         CREATE TABLE channels (channel INTEGER PRIMARY KEY, closing INTEGER NOT NULL DEFAULT 0,
             closed_at INTEGER, rotation_at INTEGER) STRICT;
         CREATE TABLE epochs (channel INTEGER NOT NULL REFERENCES channels(channel),
             epoch INTEGER NOT NULL, total BLOB NOT NULL, signature BLOB NOT NULL, proof BLOB,
             PRIMARY KEY (channel, epoch)) STRICT;
         CREATE TABLE settlements (channel INTEGER NOT NULL, epoch INTEGER NOT NULL,
             amount BLOB NOT NULL, block INTEGER NOT NULL,
             PRIMARY KEY (channel, epoch, amount)) STRICT;
         CREATE TABLE spent (channel INTEGER NOT NULL, epoch INTEGER NOT NULL,
             signer BLOB NOT NULL, amount BLOB NOT NULL,
             PRIMARY KEY (channel, epoch, signer)) STRICT;
         CREATE TABLE sales (channel INTEGER NOT NULL, epoch INTEGER NOT NULL,
             new_total BLOB NOT NULL, device TEXT NOT NULL REFERENCES devices(device),
             first_counter INTEGER NOT NULL, slots INTEGER NOT NULL, signer BLOB NOT NULL,
             PRIMARY KEY (channel, epoch, new_total)) STRICT;
         INSERT INTO devices VALUES ('lock', 5);
         INSERT INTO channels (channel) VALUES (7);",
    )
    .expect("version 2 tables");
    let amount = 50u128.to_be_bytes().to_vec();
    conn.execute(
        "INSERT INTO epochs VALUES (7, 0, ?1, ?2, NULL)",
        rusqlite::params![amount, vec![1u8; 65]],
    )
    .expect("epoch");
    conn.execute(
        "INSERT INTO sales VALUES (7, 0, ?1, 'lock', 0, 5, ?2)",
        rusqlite::params![amount, vec![2u8; 33]],
    )
    .expect("sale");
    for (key, value) in [
        ("schema", 2i64.to_be_bytes().to_vec()),
        ("genesis_hash", DOMAIN.genesis_hash.to_vec()),
        ("contract", DOMAIN.contract.to_vec()),
    ] {
        conn.execute(
            "INSERT INTO meta VALUES (?1, ?2)",
            rusqlite::params![key, value],
        )
        .expect("meta");
    }
}

/// A ledger made to replace a lost one (or for a new deployment) starts every device's
/// counters above any the lost one could have sold: its generation is the second it was
/// made, in the counters' high bits. And a ledger can take over another's counters.
#[test]
fn a_new_ledger_never_sells_a_counter_an_earlier_one_sold() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = dir.path().join("first.db");
    let mut old = Store::open(&first, &DOMAIN).expect("a ledger");
    old.register_device("lock").expect("device");
    let sold_up_to = old.next_counter("lock").expect("counter") + (1 << 20);
    drop(old);
    rusqlite::Connection::open(&first)
        .and_then(|c| {
            c.execute(
                "UPDATE devices SET next_counter = ?1",
                rusqlite::params![sold_up_to as i64],
            )
        })
        .expect("a million slots sold");
    // The disk is lost; a new ledger is made a second later.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = dir.path().join("second.db");
    let mut new = Store::open(&second, &DOMAIN).expect("a new ledger");
    new.register_device("lock").expect("device");
    assert!(
        new.next_counter("lock").expect("counter") > sold_up_to,
        "the new ledger starts below counters already sold"
    );
    // Or it takes over the old one's counters (a redeploy, the old file at hand).
    let third = dir.path().join("third.db");
    let mut carried = Store::open_at(&third, &DOMAIN, 0).expect("a ledger");
    carried.register_device("lock").expect("device");
    assert_eq!(
        carried.carry_counters_from(&first).expect("carry"),
        ["lock".to_owned()]
    );
    assert_eq!(carried.next_counter("lock").expect("counter"), sold_up_to);
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
fn concurrent_sales_commit_in_groups_in_order(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = secret(10);
    let ch = channel(delegate(&client), 10_000);
    rt().block_on(async {
        let ledger = backend.ledger(dir.path(), 64).await;
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
            .best(ID, 0)
            .await
            .expect("read")
            .expect("held")
            .receipt
            .amount;
        let counter = ledger.next_counter("lock").await.expect("counter");
        assert!(sold >= 1);
        assert_eq!(u128::from(counter) * PRICE, store_total);
    });
}

/// A ledger takes over an older SQLite ledger's counters (a redeploy, the old file at
/// hand): every device's counter rises to the older one's, never falls.
fn counters_carry_over_from_an_older_ledger(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let older = dir.path().join("older.db");
    let mut old = Store::open_at(&older, &DOMAIN, 0).expect("a ledger");
    old.register_device("lock").expect("device");
    old.register_device("vending").expect("device");
    drop(old);
    let sold_up_to: u64 = (1 << 20) + 7;
    rusqlite::Connection::open(&older)
        .and_then(|c| {
            c.execute(
                "UPDATE devices SET next_counter = ?1 WHERE device = 'lock'",
                rusqlite::params![sold_up_to as i64],
            )
        })
        .expect("a million slots sold");
    rt().block_on(async {
        let ledger = backend.ledger(dir.path(), 64).await;
        assert_eq!(ledger.next_counter("lock").await.expect("counter"), FLOOR);
        assert_eq!(
            ledger.carry_counters_from(&older).await.expect("carry"),
            ["lock".to_owned()]
        );
        assert_eq!(
            ledger.next_counter("lock").await.expect("counter"),
            sold_up_to
        );
        assert!(ledger
            .carry_counters_from(&older)
            .await
            .expect("again")
            .is_empty());
        // Sales go on above it.
        let client = secret(12);
        let ch = channel(delegate(&client), 100);
        let sold = ledger
            .sell(offer(&ch, 1, 10, &client, None).unwrap())
            .await
            .expect("sold");
        assert_eq!(sold.sale.first_counter, sold_up_to);
    });
}

/// The PostgreSQL ledger is bound to one deployment as the SQLite one is: connecting for
/// another chain or contract is refused.
#[test]
fn a_postgres_ledger_belongs_to_one_deployment() {
    let Backend::Postgres(url) = Backend::postgres("one_deployment") else {
        unreachable!()
    };
    let rules = offchain_as::Rules {
        our_account: AS,
        tariff: tariff(64),
    };
    rt().block_on(async {
        let metrics = std::sync::Arc::new(offchain_as::Metrics::default());
        offchain_as::Ledger::connect(&url, &DOMAIN, FLOOR, rules, metrics.clone())
            .await
            .expect("first use binds it");
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
            match offchain_as::Ledger::connect(&url, &other, FLOOR, rules, metrics.clone()).await {
                Err(LedgerError::Incompatible(why)) => {
                    assert!(why.contains("another deployment"), "{why}")
                }
                Ok(_) => panic!("opened for another deployment"),
                Err(e) => panic!("{e}"),
            }
        }
        offchain_as::Ledger::connect(&url, &DOMAIN, FLOOR, rules, metrics)
            .await
            .expect("its own deployment opens");
    });
}

/// A new PostgreSQL ledger starts every device's counters at the second it was made (in
/// the counters' high bits), as a new SQLite ledger does; the floor stays the one it was
/// made with.
#[test]
fn a_new_postgres_ledger_starts_counters_at_its_creation_second() {
    let Backend::Postgres(url) = Backend::postgres("creation_second") else {
        unreachable!()
    };
    let rules = offchain_as::Rules {
        our_account: AS,
        tariff: tariff(64),
    };
    let before = offchain_as::counter_floor_now().expect("clock");
    rt().block_on(async {
        let metrics = std::sync::Arc::new(offchain_as::Metrics::default());
        let database = offchain_as::Database::Postgres(url.clone());
        let ledger = offchain_as::Ledger::open(
            &database,
            &DOMAIN,
            &["lock".to_owned()],
            rules,
            metrics.clone(),
        )
        .await
        .expect("a new ledger");
        let first = ledger.next_counter("lock").await.expect("counter");
        assert!(first >= before, "{first} < {before}");
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let again = offchain_as::Ledger::open(
            &database,
            &DOMAIN,
            &["lock".to_owned(), "pump".to_owned()],
            rules,
            metrics,
        )
        .await
        .expect("reopened");
        assert_eq!(again.next_counter("lock").await.expect("counter"), first);
        assert_eq!(again.next_counter("pump").await.expect("counter"), first);
    });
}

/// On PostgreSQL a sale locks its channel's row before it decides, inserting the row if
/// the channel never sold: a refused first sale must take it out again (a refusal
/// changes nothing).
#[test]
fn a_refused_first_sale_leaves_no_row_on_postgres() {
    let backend = Backend::postgres("refused_first_sale");
    let Backend::Postgres(url) = &backend else {
        unreachable!()
    };
    let db = url.rsplit('/').next().expect("database name").to_owned();
    let dir = tempfile::tempdir().expect("tempdir");
    let client = secret(13);
    let ch = channel(delegate(&client), 100);
    rt().block_on(async {
        let ledger = backend.ledger(dir.path(), 64).await;
        assert!(matches!(
            ledger.sell(offer(&ch, 1, 25, &client, None).unwrap()).await,
            Err(SaleError::Purchase(PurchaseError::NotWholeSlots { .. }))
        ));
    });
    let count = |table: &str| {
        cluster()
            .sql_ok(&db, &format!("SELECT count(*) FROM {table}"))
            .parse::<u64>()
            .expect("a count")
    };
    for table in ["channels", "epochs", "spent", "sales"] {
        assert_eq!(count(table), 0, "{table} changed by a refusal");
    }
}
