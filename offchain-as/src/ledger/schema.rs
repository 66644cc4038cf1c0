//! The ledger's tables, the deployment it is bound to, and the migration from the
//! previous layout.
use super::LedgerError;
use protocol::Domain;
use rusqlite::{params, Connection, OptionalExtension};

/// The layout this code reads and writes. 3 added the request secret's digest to sales,
/// the ended epoch to channels, and the device counter floor; it dropped `rotation_at`.
pub(super) const SCHEMA_VERSION: i64 = 3;

const TABLES: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS devices (
    device       TEXT PRIMARY KEY,
    next_counter INTEGER NOT NULL  -- u64 bit pattern
) STRICT;
CREATE TABLE IF NOT EXISTS channels (
    channel       INTEGER PRIMARY KEY,
    closing       INTEGER NOT NULL DEFAULT 0, -- a close is under way: sell no more
    stopped_epoch INTEGER,                    -- sales of this epoch and earlier stopped
    closed_at     INTEGER                     -- finalized block without the channel
) STRICT;
CREATE TABLE IF NOT EXISTS epochs (
    channel   INTEGER NOT NULL REFERENCES channels(channel),
    epoch     INTEGER NOT NULL,
    total     BLOB NOT NULL,  -- u128 big-endian: BLOB order is numeric order
    signature BLOB NOT NULL,  -- of the receipt for `total`
    proof     BLOB,           -- SCALE MembershipProof, group channels only
    PRIMARY KEY (channel, epoch)
) STRICT;
CREATE TABLE IF NOT EXISTS settlements (
    channel INTEGER NOT NULL,
    epoch   INTEGER NOT NULL,
    amount  BLOB NOT NULL,     -- u128 big-endian: the receipt amount the settle claimed
    block   INTEGER NOT NULL,  -- the best block it was included in
    PRIMARY KEY (channel, epoch, amount)
) STRICT;
CREATE TABLE IF NOT EXISTS spent (
    channel INTEGER NOT NULL,
    epoch   INTEGER NOT NULL,
    signer  BLOB NOT NULL,
    amount  BLOB NOT NULL,
    PRIMARY KEY (channel, epoch, signer)
) STRICT;
CREATE TABLE IF NOT EXISTS sales (
    channel       INTEGER NOT NULL,
    epoch         INTEGER NOT NULL,
    new_total     BLOB NOT NULL,
    device        TEXT NOT NULL REFERENCES devices(device),
    first_counter INTEGER NOT NULL,
    slots         INTEGER NOT NULL,
    signer        BLOB NOT NULL,
    secret_digest BLOB,          -- of the buyer's request secret (NULL: sold before 3)
    PRIMARY KEY (channel, epoch, new_total)
) STRICT;
";

/// Creates or migrates the tables and binds an empty ledger to `domain`; refuses a
/// ledger of another deployment. `floor` is where a new ledger starts device counters.
pub(super) fn init(conn: &Connection, domain: &Domain, floor: u64) -> Result<(), LedgerError> {
    let tables: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
        [],
        |row| row.get(0),
    )?;
    let has_meta: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'meta'",
        [],
        |row| row.get(0),
    )?;
    if tables > 0 && !has_meta {
        return Err(LedgerError::Incompatible(
            "it was written by an older slotpay-as (no deployment recorded)".into(),
        ));
    }
    if has_meta {
        if meta(conn, MIGRATED)?.is_some() {
            return Err(LedgerError::Incompatible(
                "it was moved to PostgreSQL by `slotpay-as migrate`: serve from the database_url it was moved to"
                    .into(),
            ));
        }
        migrate(conn)?;
    }
    conn.execute_batch(TABLES)?;
    let version = SCHEMA_VERSION.to_be_bytes().to_vec();
    bind(conn, "schema", &version)?;
    bind(conn, "genesis_hash", &domain.genesis_hash)?;
    bind(conn, "contract", &domain.contract)?;
    bind(conn, "counter_floor", &floor.to_be_bytes())?;
    Ok(())
}

/// The key `slotpay-as migrate` sets once the ledger is in PostgreSQL: the SQLite file
/// then sells nothing more (its counters and receipts live on in the database).
const MIGRATED: &str = "migrated_to_postgres";

/// Marks the ledger moved (inside the caller's write transaction).
pub(super) fn mark_migrated(conn: &Connection) -> Result<(), LedgerError> {
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
        rusqlite::params![MIGRATED, b"1".as_slice()],
    )?;
    Ok(())
}

/// The floor recorded when the ledger was created.
pub(super) fn counter_floor(conn: &Connection) -> Result<u64, LedgerError> {
    let bytes = meta(conn, "counter_floor")?.ok_or(LedgerError::Corrupt("no counter floor"))?;
    let bytes: [u8; 8] = bytes
        .try_into()
        .map_err(|_| LedgerError::Corrupt("counter floor is not 8 bytes"))?;
    Ok(u64::from_be_bytes(bytes))
}

fn meta(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>, LedgerError> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
            r.get(0)
        })
        .optional()?)
}

/// Records `key` on first use; refuses a ledger whose `key` differs.
fn bind(conn: &Connection, key: &str, value: &[u8]) -> Result<(), LedgerError> {
    match meta(conn, key)? {
        None => {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                params![key, value],
            )?;
            Ok(())
        }
        Some(found) if found == value || key == "counter_floor" => Ok(()),
        Some(found) => Err(LedgerError::Incompatible(format!(
            "it belongs to another deployment: its {key} is 0x{}, this AS serves 0x{}",
            hex::encode(found),
            hex::encode(value)
        ))),
    }
}

/// Brings a ledger of an older layout to this one, in one transaction.
fn migrate(conn: &Connection) -> Result<(), LedgerError> {
    let Some(version) = meta(conn, "schema")? else {
        return Err(LedgerError::Corrupt("no schema version recorded"));
    };
    let version = i64::from_be_bytes(
        version
            .try_into()
            .map_err(|_| LedgerError::Corrupt("schema version is not 8 bytes"))?,
    );
    match version {
        SCHEMA_VERSION => Ok(()),
        2 => {
            // Sales of version 2 had no request secret: their retries cannot prove their
            // buyer and are refused (the sale itself, and its money, stay).
            // One transaction, the version included: a crash leaves version 2 or 3 whole.
            conn.execute_batch(
                "BEGIN IMMEDIATE;
                 ALTER TABLE sales ADD COLUMN secret_digest BLOB;
                 ALTER TABLE channels DROP COLUMN rotation_at;
                 ALTER TABLE channels ADD COLUMN stopped_epoch INTEGER;
                 UPDATE meta SET value = X'0000000000000003' WHERE key = 'schema';
                 COMMIT;",
            )?;
            debug_assert_eq!(SCHEMA_VERSION, 3, "the migration writes version 3");
            Ok(())
        }
        v => Err(LedgerError::Incompatible(format!(
            "its layout is version {v}; this slotpay-as reads version {SCHEMA_VERSION} (and migrates 2)"
        ))),
    }
}
