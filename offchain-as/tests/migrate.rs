//! `slotpay-as migrate`: an SQLite ledger with every kind of row (sales with and without
//! a request secret, group proofs, spending, settlements, channels closing, ended, closed)
//! moved into PostgreSQL by the real binary, checked row by row; the PostgreSQL ledger
//! then answers as the SQLite one did and sells on from the same counters; a second
//! migration into the same database is refused.
mod support;

use offchain_as::{Fence, Ledger, Metrics, Rules, Stop, Store};
use protocol::crypto::backend::SoftHasher;
use protocol::{Authority, ChannelId, MerkleTree, Receipt};
use std::process::Command;
use std::sync::Arc;
use support::*;

fn rules() -> Rules {
    Rules {
        our_account: AS,
        tariff: tariff(64),
    }
}

fn offer(
    id: ChannelId,
    channel: &protocol::Channel,
    amount: u128,
    key: &protocol::keys::SecretKey,
    proof: Option<protocol::MembershipProof>,
) -> offchain_as::Offer {
    seller(64)
        .check(
            body("lock", id, channel.epoch, amount, key, proof),
            Some(channel),
            1,
            0,
        )
        .expect("valid")
}

fn migrate(from: &std::path::Path, to: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_slotpay-as"))
        .args(["migrate", "--from"])
        .arg(from)
        .args(["--to", to])
        .output()
        .expect("run slotpay-as migrate")
}

#[test]
fn an_sqlite_ledger_moves_to_postgres_checked_row_by_row() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("as.db");
    let Backend::Postgres(url) = Backend::postgres("migrate") else {
        unreachable!()
    };
    let (a, b, c) = (secret(31), secret(32), secret(33));
    let tree = MerkleTree::build_uniform::<SoftHasher>(
        protocol::Substrate,
        &[
            protocol::keys::public_key(&b),
            protocol::keys::public_key(&c),
        ],
        30 * PRICE,
    )
    .expect("tree");
    let delegate_ch = channel(delegate(&a), 1_000);
    let group = channel(Authority::Group(tree.root()), 1_000);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let expected = runtime.block_on(async {
        let mut store = Store::open_at(&db, &DOMAIN, 1 << 40).expect("ledger");
        for d in ["lock", "pump", "spare"] {
            store.register_device(d).expect("device");
        }
        let ledger = Ledger::start(store, rules(), Arc::new(Metrics::default())).expect("ledger");
        for (id, ch) in [(ChannelId(1), &delegate_ch), (ChannelId(2), &delegate_ch)] {
            for k in 1..=3u128 {
                ledger
                    .sell(offer(id, ch, k * 2 * PRICE, &a, None))
                    .await
                    .expect("sold");
            }
        }
        ledger
            .sell(offer(ChannelId(3), &group, PRICE, &b, tree.proof(0).ok()))
            .await
            .expect("b");
        ledger
            .sell(offer(
                ChannelId(3),
                &group,
                3 * PRICE,
                &c,
                tree.proof(1).ok(),
            ))
            .await
            .expect("c");
        let fence = Fence::SOLE;
        ledger
            .stop(
                vec![Stop::Close(ChannelId(1)), Stop::EndEpoch(ChannelId(3), 0)],
                fence,
            )
            .await
            .expect("stops");
        ledger
            .mark_closed(ChannelId(1), 77, fence)
            .await
            .expect("closed");
        let settled = Receipt {
            channel: ChannelId(2),
            epoch: 0,
            amount: 4 * PRICE,
        };
        ledger
            .record_settlement(settled, 50, fence)
            .await
            .expect("settled");
        (
            ledger.watched().await.expect("watched"),
            ledger.next_counter("lock").await.expect("counter"),
            ledger
                .sale_for(ChannelId(3), 0, 3 * PRICE)
                .await
                .expect("sale"),
        )
    });
    // A sale of the previous layout, with no request secret recorded (NULLs copy too).
    rusqlite::Connection::open(&db)
        .and_then(|conn| {
            conn.execute(
                "INSERT INTO sales VALUES (9, 0, ?1, 'spare', 0, 1, ?2, NULL)",
                rusqlite::params![PRICE.to_be_bytes().to_vec(), vec![2u8; 33]],
            )
        })
        .expect("an old sale");

    let out = migrate(&db, &url);
    assert!(
        out.status.success(),
        "migrate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!(report["contract"], hex::encode(DOMAIN.contract));
    assert_eq!(report["rows"]["sales"], 9);
    assert_eq!(report["rows"]["devices"], 3);
    assert_eq!(report["rows"]["settlements"], 1);
    assert_eq!(report["rows"]["channels"], 3);

    runtime.block_on(async {
        let ledger = Ledger::connect(&url, &DOMAIN, 0, rules(), Arc::new(Metrics::default()))
            .await
            .expect("the PostgreSQL ledger");
        let (watched, counter, group_sale) = &expected;
        assert_eq!(&ledger.watched().await.expect("watched"), watched);
        assert_eq!(
            &ledger.next_counter("lock").await.expect("counter"),
            counter
        );
        assert_eq!(
            &ledger
                .sale_for(ChannelId(3), 0, 3 * PRICE)
                .await
                .expect("sale"),
            group_sale
        );
        assert_eq!(
            ledger.settlements(ChannelId(2)).await.expect("settled"),
            [(0, 4 * PRICE, 50)]
        );
        let state = ledger.state(ChannelId(1)).await.expect("state");
        assert!(state.closing && state.closed);
        let old = ledger
            .sale_for(ChannelId(9), 0, PRICE)
            .await
            .expect("read")
            .expect("the old sale");
        assert_eq!(old.secret_digest, None);
        // It sells on from the same counters (the floor kept: not the migration's second).
        let sold = ledger
            .sell(offer(ChannelId(2), &delegate_ch, 8 * PRICE, &a, None))
            .await
            .expect("sold on PostgreSQL");
        assert_eq!(sold.sale.first_counter, *counter);
        ledger.register_device("new").await.expect("device");
        assert_eq!(ledger.next_counter("new").await.expect("counter"), 1 << 40);
    });
    // The file is marked moved: no AS serves from it again (its counters would be sold
    // twice, beside the database's), nor is it moved twice.
    let serve_again = Store::open(&db, &DOMAIN)
        .err()
        .expect("the moved file is refused");
    assert!(
        serve_again.to_string().contains("moved to PostgreSQL"),
        "{serve_again}"
    );
    let again = migrate(&db, &url);
    assert!(!again.status.success());
    let why = String::from_utf8_lossy(&again.stderr);
    assert!(why.contains("moved to PostgreSQL"), "{why}");
    // The database holds a ledger: another file moved into it is refused, nothing changed.
    let other = dir.path().join("other.db");
    drop(Store::open_at(&other, &DOMAIN, 1 << 40).expect("another ledger"));
    let into_full = migrate(&other, &url);
    assert!(!into_full.status.success());
    let why = String::from_utf8_lossy(&into_full.stderr);
    assert!(why.contains("already holds a ledger"), "{why}");
}

/// A migration that fails part way (here: a row PostgreSQL's constraints refuse, which
/// SQLite took with its foreign keys off) leaves no ledger behind. A ledger bound to the
/// deployment but without the file's device rows would start its devices at the old
/// floor, and an instance serving from it would sell counters the file already sold.
#[test]
fn a_migration_that_fails_part_way_leaves_no_ledger_to_sell_old_counters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("as.db");
    let Backend::Postgres(url) = Backend::postgres("migrate_fails") else {
        unreachable!()
    };
    let a = secret(34);
    let delegate_ch = channel(delegate(&a), 1_000);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let sold_up_to = runtime.block_on(async {
        let mut store = Store::open_at(&db, &DOMAIN, 1 << 40).expect("ledger");
        store.register_device("lock").expect("device");
        let ledger = Ledger::start(store, rules(), Arc::new(Metrics::default())).expect("ledger");
        let sold = ledger
            .sell(offer(ChannelId(1), &delegate_ch, 4 * PRICE, &a, None))
            .await
            .expect("sold");
        sold.sale.first_counter + sold.sale.slots
    });
    {
        let conn = rusqlite::Connection::open(&db).expect("open");
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO epochs (channel, epoch, total, signature) VALUES (999, 0, x'01', x'02');",
        )
        .expect("an orphan row");
    }
    let out = migrate(&db, &url);
    assert!(!out.status.success(), "the copy is refused");
    // The AS then started on the database, as an operator or a unit file might.
    runtime.block_on(async {
        let ledger = Ledger::open(
            &offchain_as::Database::Postgres(url.clone()),
            &DOMAIN,
            &["lock".to_owned()],
            rules(),
            Arc::new(Metrics::default()),
        )
        .await
        .expect("a ledger");
        let next = ledger.next_counter("lock").await.expect("counter");
        assert!(
            next >= sold_up_to,
            "the device's counters restart at {next}, below {sold_up_to} the file sold"
        );
    });
}
