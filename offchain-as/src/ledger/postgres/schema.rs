//! The PostgreSQL ledger's tables: SQLite's layout in PostgreSQL's types (amounts are 16
//! big-endian bytes, so byte order is numeric order; u64 ids and counters are stored as
//! their bit pattern in a `bigint`), plus the closer's lease. Bound to one deployment as
//! the SQLite ledger is.
use super::super::LedgerError;
use super::pg;
use protocol::Domain;

/// The layout this code reads and writes: the same version as the SQLite ledger's.
const SCHEMA_VERSION: i64 = super::super::schema::SCHEMA_VERSION;

/// Serializes schema creation among AS instances starting at once (concurrent
/// `CREATE TABLE IF NOT EXISTS` can collide in the catalog).
const INIT_LOCK: i64 = 0x510_7BA7;

pub(super) const TABLES: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    device       TEXT PRIMARY KEY,
    next_counter BIGINT NOT NULL  -- u64 bit pattern
);
CREATE TABLE IF NOT EXISTS channels (
    channel       BIGINT PRIMARY KEY,          -- u64 bit pattern
    closing       BOOLEAN NOT NULL DEFAULT false, -- a close is under way: sell no more
    stopped_epoch BIGINT,                      -- sales of this epoch and earlier stopped
    closed_at     BIGINT                       -- finalized block without the channel
);
CREATE TABLE IF NOT EXISTS epochs (
    channel   BIGINT NOT NULL REFERENCES channels(channel),
    epoch     BIGINT NOT NULL,
    total     BYTEA NOT NULL,  -- u128 big-endian
    signature BYTEA NOT NULL,  -- of the receipt for `total`
    proof     BYTEA,           -- SCALE MembershipProof, group channels only
    PRIMARY KEY (channel, epoch)
);
CREATE TABLE IF NOT EXISTS settlements (
    channel BIGINT NOT NULL,
    epoch   BIGINT NOT NULL,
    amount  BYTEA NOT NULL,
    block   BIGINT NOT NULL,
    PRIMARY KEY (channel, epoch, amount)
);
CREATE TABLE IF NOT EXISTS spent (
    channel BIGINT NOT NULL,
    epoch   BIGINT NOT NULL,
    signer  BYTEA NOT NULL,
    amount  BYTEA NOT NULL,
    PRIMARY KEY (channel, epoch, signer)
);
CREATE TABLE IF NOT EXISTS sales (
    channel       BIGINT NOT NULL,
    epoch         BIGINT NOT NULL,
    new_total     BYTEA NOT NULL,
    device        TEXT NOT NULL REFERENCES devices(device),
    first_counter BIGINT NOT NULL,
    slots         BIGINT NOT NULL,
    signer        BYTEA NOT NULL,
    secret_digest BYTEA,
    PRIMARY KEY (channel, epoch, new_total)
);
-- One closer at a time: whoever holds the row's unexpired lease; `fence` grows with
-- every acquisition and every closer write checks it in its own transaction.
CREATE TABLE IF NOT EXISTS lease (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    fence      BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
";

/// Creates the tables if needed and binds an empty ledger to `domain` (device counters
/// from `floor`); refuses a ledger of another deployment or layout. Returns the ledger's
/// counter floor.
pub(super) async fn init(
    client: &mut pg::Client,
    domain: &Domain,
    floor: u64,
) -> Result<u64, LedgerError> {
    let tx = client.transaction().await?;
    let floor = init_in(&tx, domain, floor).await?;
    tx.commit().await?;
    Ok(floor)
}

/// [`init`] inside `tx`, which the caller commits: `migrate` creates the ledger and copies
/// into it in one transaction, so a copy that fails leaves no ledger behind (one bound to
/// the deployment but holding none of the devices' counters would sell them again).
pub(super) async fn init_in(
    tx: &pg::Transaction<'_>,
    domain: &Domain,
    floor: u64,
) -> Result<u64, LedgerError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&INIT_LOCK])
        .await?;
    tx.batch_execute(TABLES).await?;
    bind(tx, "schema", &SCHEMA_VERSION.to_be_bytes()).await?;
    bind(tx, "genesis_hash", &domain.genesis_hash).await?;
    bind(tx, "contract", &domain.contract).await?;
    bind(tx, "counter_floor", &floor.to_be_bytes()).await?;
    counter_floor(tx).await
}

/// The floor recorded when the ledger was created.
pub(super) async fn counter_floor(tx: &impl pg::GenericClient) -> Result<u64, LedgerError> {
    let bytes = meta(tx, "counter_floor")
        .await?
        .ok_or(LedgerError::Corrupt("no counter floor"))?;
    let bytes: [u8; 8] = bytes
        .try_into()
        .map_err(|_| LedgerError::Corrupt("counter floor is not 8 bytes"))?;
    Ok(u64::from_be_bytes(bytes))
}

pub(super) async fn meta(
    tx: &impl pg::GenericClient,
    key: &str,
) -> Result<Option<Vec<u8>>, LedgerError> {
    Ok(tx
        .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
        .await?
        .map(|row| row.get(0)))
}

/// Records `key` on first use; refuses a ledger whose `key` differs.
async fn bind(tx: &pg::Transaction<'_>, key: &str, value: &[u8]) -> Result<(), LedgerError> {
    match meta(tx, key).await? {
        None => {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2)",
                &[&key, &value],
            )
            .await?;
            Ok(())
        }
        Some(found) if found == value || key == "counter_floor" => Ok(()),
        Some(found) if key == "schema" => Err(LedgerError::Incompatible(format!(
            "its layout is version {}; this slotpay-as reads version {SCHEMA_VERSION}",
            found.try_into().map(i64::from_be_bytes).unwrap_or_default()
        ))),
        Some(found) => Err(LedgerError::Incompatible(format!(
            "it belongs to another deployment: its {key} is 0x{}, this AS serves 0x{}",
            hex::encode(found),
            hex::encode(value)
        ))),
    }
}
