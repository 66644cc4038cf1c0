//! The ledger's SQLite store: per channel and authority epoch the best receipt accepted so
//! far and what each signer added to it, per device the next token counter, and every
//! sale. Bound to one deployment (chain and contract), so a database can never be applied
//! to another contract's channels.
//!
//! WAL with `synchronous=FULL`: once a write returns, it survives a crash or power loss.
use super::rows::{amount_from, best_in, from_sql, sale_in, sell_in, to_sql};
use super::LedgerError;
use protocol::{Balance, ChannelId, Domain, Epoch, MembershipProof, PublicKey, Signature, Spent};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

/// The layout this code reads and writes.
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS devices (
    device       TEXT PRIMARY KEY,
    next_counter INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS channels (
    channel     INTEGER PRIMARY KEY,
    closing     INTEGER NOT NULL DEFAULT 0, -- a close is under way: sell no more
    closed_at   INTEGER,                    -- block at which the chain no longer had it
    rotation_at INTEGER                     -- effective block of an announced rotation
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
    amount  BLOB NOT NULL,     -- u128 big-endian: the receipt total the settle claimed
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
    PRIMARY KEY (channel, epoch, new_total)
) STRICT;
";

/// One sale: `slots` consecutive counters of `device` from `first_counter`, bought by
/// raising `channel`'s running total in `epoch` to `new_total`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleRecord {
    pub channel: ChannelId,
    pub epoch: Epoch,
    pub new_total: Balance,
    pub device: String,
    pub first_counter: u64,
    pub slots: u64,
    pub signer: PublicKey,
}

/// The receipt that set a channel's running total in an epoch: what the AS settles or
/// closes with, and what it shows a client to justify the total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BestReceipt {
    pub channel: ChannelId,
    pub epoch: Epoch,
    pub amount: Balance,
    pub signature: Signature,
    pub proof: Option<MembershipProof>,
}

impl BestReceipt {
    pub fn claim(&self) -> protocol::Claim {
        protocol::Claim {
            epoch: self.epoch,
            amount: self.amount,
            signature: self.signature,
            membership: self.proof.clone(),
        }
    }
}

/// What the AS holds of a channel it has sold on and not seen closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub channel: ChannelId,
    /// The best receipt of the latest epoch with a sale.
    pub best: BestReceipt,
    pub closing: bool,
    pub rotation_at: Option<u32>,
}

/// What a new sale records besides the decision.
#[derive(Debug, Clone)]
pub struct SaleRequest<'a> {
    pub channel: ChannelId,
    pub epoch: Epoch,
    pub amount: Balance,
    pub device: &'a str,
    pub signature: &'a Signature,
    pub proof: Option<&'a MembershipProof>,
    pub signer: PublicKey,
}

/// What [`Store::sell_batch`] did with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SellOutcome {
    /// A new sale, now durable.
    Sold(SaleRecord),
    /// This channel, epoch and amount were sold before: that sale, nothing charged again.
    AlreadySold(SaleRecord),
}

/// Why one request of a batch sold nothing.
#[derive(Debug)]
pub enum Refused<E> {
    /// The purchase rule refused.
    Rule(E),
    /// The ledger did (closing channel, unknown device, counters used up).
    Ledger(LedgerError),
}

/// The SQLite ledger, used by one thread (see [`super::Ledger`]).
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the ledger at `path` for `domain`'s deployment.
    pub fn open(path: &Path, domain: &Domain) -> Result<Self, LedgerError> {
        Self::init(Connection::open(path)?, domain)
    }

    /// A ledger in memory, for tests.
    pub fn in_memory(domain: &Domain) -> Result<Self, LedgerError> {
        Self::init(Connection::open_in_memory()?, domain)
    }

    fn init(conn: Connection, domain: &Domain) -> Result<Self, LedgerError> {
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: with WAL, NORMAL may lose the last commits on power loss; a sale must not.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let existing: bool = conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table'",
            [],
            |row| row.get(0),
        )?;
        let has_meta: bool = conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'meta'",
            [],
            |row| row.get(0),
        )?;
        if existing && !has_meta {
            return Err(LedgerError::Incompatible(
                "it was written by an older slotpay-as (no deployment recorded)".into(),
            ));
        }
        conn.execute_batch(SCHEMA)?;
        let store = Self { conn };
        store.bind(domain)?;
        Ok(store)
    }

    /// Records the deployment on first use; refuses a ledger of another one.
    fn bind(&self, domain: &Domain) -> Result<(), LedgerError> {
        let expect = [
            ("schema", SCHEMA_VERSION.to_be_bytes().to_vec()),
            ("genesis_hash", domain.genesis_hash.to_vec()),
            ("contract", domain.contract.to_vec()),
        ];
        for (key, value) in expect {
            let found: Option<Vec<u8>> = self
                .conn
                .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                    r.get(0)
                })
                .optional()?;
            match found {
                None => {
                    self.conn.execute(
                        "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                        params![key, value],
                    )?;
                }
                Some(found) if found == value => {}
                Some(found) => {
                    return Err(LedgerError::Incompatible(format!(
                        "it belongs to another deployment: its {key} is 0x{}, this AS serves 0x{}",
                        hex::encode(found),
                        hex::encode(value)
                    )))
                }
            }
        }
        Ok(())
    }

    /// Makes `device` known (counter 0) if it is not yet; keeps its counter if it is.
    pub fn register_device(&mut self, device: &str) -> Result<(), LedgerError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO devices (device, next_counter) VALUES (?1, 0)",
            params![device],
        )?;
        Ok(())
    }

    pub fn next_counter(&self, device: &str) -> Result<u64, LedgerError> {
        self.conn
            .query_row(
                "SELECT next_counter FROM devices WHERE device = ?1",
                params![device],
                |row| row.get::<_, i64>(0),
            )
            .optional()?
            .map(from_sql)
            .ok_or_else(|| LedgerError::UnknownDevice(device.to_owned()))
    }

    /// Sells against receipts, many under one commit (group commit). For each request,
    /// `decide` gets its index and what the ledger knows of the channel's epoch inside the
    /// transaction, and refuses or names the slots; the sale is then recorded with the new
    /// best receipt, the signer's spending and the device's counters. Requests are decided
    /// in order, so later ones see earlier ones' totals and counters. A refusal is decided
    /// before its request writes anything, so it changes nothing; a database error aborts
    /// the whole batch (`Err`: nothing in it happened). One fsync makes the batch durable;
    /// nothing in it may be answered before this returns.
    pub fn sell_batch<E>(
        &mut self,
        requests: &[SaleRequest<'_>],
        mut decide: impl FnMut(usize, Spent) -> Result<u64, E>,
    ) -> Result<Vec<Result<SellOutcome, Refused<E>>>, LedgerError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut outcomes = Vec::with_capacity(requests.len());
        for (i, request) in requests.iter().enumerate() {
            // `?`: a database error leaves `tx` to roll back when dropped.
            outcomes.push(sell_in(&tx, request, |spent| decide(i, spent))?);
        }
        tx.commit()?;
        Ok(outcomes)
    }

    /// The earlier sale of exactly this channel, epoch and amount, if any.
    pub fn sale_for(
        &self,
        channel: ChannelId,
        epoch: Epoch,
        amount: Balance,
    ) -> Result<Option<SaleRecord>, LedgerError> {
        sale_in(&self.conn, channel, epoch, amount)
    }

    /// The best receipt of `channel` in `epoch`, if it had a sale.
    pub fn best(
        &self,
        channel: ChannelId,
        epoch: Epoch,
    ) -> Result<Option<BestReceipt>, LedgerError> {
        best_in(&self.conn, channel, epoch)
    }

    /// Every running total, for the AS's in-memory view at start.
    pub fn totals(&self) -> Result<Vec<(ChannelId, Epoch, Balance)>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare("SELECT channel, epoch, total FROM epochs")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        rows.map(|row| {
            let (channel, epoch, total) = row?;
            Ok((ChannelId(from_sql(channel)), epoch, amount_from(total)?))
        })
        .collect()
    }

    /// Channels with a sale that the chain has not been seen to close yet: what the AS
    /// must settle or close, with the best receipt of each one's latest epoch.
    pub fn watched(&self) -> Result<Vec<Watched>, LedgerError> {
        let mut stmt = self.conn.prepare(
            "SELECT c.channel, c.closing, c.rotation_at, max(e.epoch) FROM channels c
             JOIN epochs e ON e.channel = c.channel
             WHERE c.closed_at IS NULL GROUP BY c.channel ORDER BY c.channel",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, Option<u32>>(2)?,
                r.get::<_, u32>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (channel, closing, rotation_at, epoch) = row?;
            let channel = ChannelId(from_sql(channel));
            let best = best_in(&self.conn, channel, epoch)?
                .ok_or(LedgerError::Corrupt("an epoch row vanished"))?;
            out.push(Watched {
                channel,
                best,
                closing,
                rotation_at,
            });
        }
        Ok(out)
    }

    /// Stops sales on `channel` (durably) before a close is submitted, so that the close
    /// claims everything ever sold.
    pub fn begin_close(&mut self, channel: ChannelId) -> Result<(), LedgerError> {
        self.conn.execute(
            "UPDATE channels SET closing = 1 WHERE channel = ?1",
            params![to_sql(channel.0)],
        )?;
        Ok(())
    }

    /// Records that the chain no longer has `channel` as of block `block`.
    pub fn mark_closed(&mut self, channel: ChannelId, block: u32) -> Result<(), LedgerError> {
        self.conn.execute(
            "UPDATE channels SET closing = 1, closed_at = ?2 WHERE channel = ?1",
            params![to_sql(channel.0), block],
        )?;
        Ok(())
    }

    /// Records a rotation announced on `channel`, taking effect at block `effective_at`.
    pub fn record_rotation(
        &mut self,
        channel: ChannelId,
        effective_at: u32,
    ) -> Result<(), LedgerError> {
        self.conn.execute(
            "UPDATE channels SET rotation_at = ?2 WHERE channel = ?1",
            params![to_sql(channel.0), effective_at],
        )?;
        Ok(())
    }

    /// Records that a settle of `channel` claiming `amount` of `epoch` was included at
    /// `block` (a retry of the same claim keeps the first record).
    pub fn record_settlement(
        &mut self,
        channel: ChannelId,
        epoch: Epoch,
        amount: Balance,
        block: u32,
    ) -> Result<(), LedgerError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO settlements (channel, epoch, amount, block)
             VALUES (?1, ?2, ?3, ?4)",
            params![to_sql(channel.0), epoch, amount.to_be_bytes(), block],
        )?;
        Ok(())
    }

    /// The settles of `channel` the AS saw included: (epoch, amount, block), in order.
    pub fn settlements(
        &self,
        channel: ChannelId,
    ) -> Result<Vec<(Epoch, Balance, u32)>, LedgerError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT epoch, amount, block FROM settlements WHERE channel = ?1
             ORDER BY epoch, amount",
        )?;
        let rows = statement.query_map(params![to_sql(channel.0)], |row| {
            Ok((
                row.get::<_, u32>(0)?,
                row.get::<_, Vec<u8>>(1)?,
                row.get::<_, u32>(2)?,
            ))
        })?;
        rows.map(|row| {
            let (epoch, amount, block) = row?;
            Ok((epoch, amount_from(amount)?, block))
        })
        .collect()
    }

    /// (closing, closed) of `channel`.
    pub fn state(&self, channel: ChannelId) -> Result<(bool, bool), LedgerError> {
        Ok(self
            .conn
            .query_row(
                "SELECT closing, closed_at IS NOT NULL FROM channels WHERE channel = ?1",
                params![to_sql(channel.0)],
                |row| Ok((row.get::<_, bool>(0)?, row.get::<_, bool>(1)?)),
            )
            .optional()?
            .unwrap_or((false, false)))
    }
}
