//! The AS's durable ledger in SQLite: per channel the best receipt accepted so far, per
//! device the next HOTP counter, and every sale.
//!
//! A sale is one `BEGIN IMMEDIATE` transaction (so concurrent sales on one channel are
//! serialised and the running total cannot race) committed with WAL and
//! `synchronous=FULL`: once [`Ledger::sell_batch`] returns, the receipt and the counters it
//! consumed survive a crash or power loss, and only then may an OTP leave the AS.
use parity_scale_codec::{Decode, Encode};
use protocol::{Balance, ChannelId, MembershipProof, PublicKey, Signature};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

/// A ledger failure. Nothing is changed by a failed call.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("unknown device {0:?}")]
    UnknownDevice(String),
    #[error("corrupt ledger row: {0}")]
    Corrupt(&'static str),
    #[error("channel {0} is being closed: it sells nothing more")]
    Closing(ChannelId),
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
    #[error("device {device:?} has used up its HOTP counters")]
    CountersExhausted { device: String },
}

/// One sale: `slots` consecutive HOTP counters of `device` from `first_counter`, bought by
/// raising `channel`'s running total to `new_total`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleRecord {
    pub channel: ChannelId,
    pub new_total: Balance,
    pub device: String,
    pub first_counter: u64,
    pub slots: u64,
    pub signer: PublicKey,
}

/// The receipt a channel would be closed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BestReceipt {
    pub channel: ChannelId,
    pub amount: Balance,
    pub signature: Signature,
    pub proof: Option<MembershipProof>,
}

/// What [`Ledger::sell_batch`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SellOutcome {
    /// A new sale, now durable.
    Sold(SaleRecord),
    /// This channel and amount were sold before: the same sale again, nothing charged.
    AlreadySold(SaleRecord),
}

/// What a new sale needs besides the purchase decision.
#[derive(Debug, Clone)]
pub struct SaleRequest<'a> {
    pub channel: ChannelId,
    pub amount: Balance,
    pub device: &'a str,
    pub signature: &'a Signature,
    pub proof: Option<&'a MembershipProof>,
}

/// Why a sale did not happen: the purchase rule refused, or the ledger failed.
#[derive(Debug, thiserror::Error)]
pub enum SellError<E> {
    #[error(transparent)]
    Refused(E),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl<E> From<rusqlite::Error> for SellError<E> {
    fn from(e: rusqlite::Error) -> Self {
        SellError::Ledger(e.into())
    }
}

/// A decided purchase: how many slots, signed by whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub slots: u64,
    pub signer: PublicKey,
}

pub struct Ledger {
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS channels (
    channel   INTEGER PRIMARY KEY,
    total     BLOB NOT NULL,   -- u128 big-endian: BLOB order is numeric order
    signature BLOB NOT NULL,   -- of the receipt for `total`
    proof     BLOB,            -- SCALE MembershipProof, group channels only
    closing   INTEGER NOT NULL DEFAULT 0, -- a close is under way: sell no more
    closed_at INTEGER          -- block of the close transaction, once closed
) STRICT;
CREATE TABLE IF NOT EXISTS devices (
    device       TEXT PRIMARY KEY,
    next_counter INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS sales (
    channel       INTEGER NOT NULL,
    new_total     BLOB NOT NULL,
    device        TEXT NOT NULL REFERENCES devices(device),
    first_counter INTEGER NOT NULL,
    slots         INTEGER NOT NULL,
    signer        BLOB NOT NULL,
    PRIMARY KEY (channel, new_total)
) STRICT;
";

fn amount_bytes(amount: Balance) -> [u8; 16] {
    amount.to_be_bytes()
}

fn amount_from(bytes: Vec<u8>) -> Result<Balance, LedgerError> {
    let bytes: [u8; 16] = bytes
        .try_into()
        .map_err(|_| LedgerError::Corrupt("amount is not 16 bytes"))?;
    Ok(Balance::from_be_bytes(bytes))
}

// SQLite integers are i64; u64 ids and counters are stored as their bit pattern.
fn to_sql(v: u64) -> i64 {
    v as i64
}

fn from_sql(v: i64) -> u64 {
    v as u64
}

impl Ledger {
    /// Opens (creating if needed) the ledger at `path`.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    /// A ledger in memory, for tests.
    pub fn in_memory() -> Result<Self, LedgerError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, LedgerError> {
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: with WAL, NORMAL may lose the last commits on power loss; a sale must not.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self { conn })
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

    /// The running total accepted on `channel` (0 before the first sale).
    pub fn total(&self, channel: ChannelId) -> Result<Balance, LedgerError> {
        total_in(&self.conn, channel)
    }

    /// The earlier sale of exactly this channel and amount, if any.
    pub fn sale_for(
        &self,
        channel: ChannelId,
        amount: Balance,
    ) -> Result<Option<SaleRecord>, LedgerError> {
        sale_in(&self.conn, channel, amount)
    }

    /// Sells slots against receipts, many under one commit (group commit). For each
    /// request, `decide` gets its index and the channel's running total inside the
    /// transaction and either refuses or names the slots, which are then recorded with the
    /// new best receipt and the device's consumed counters. Requests are decided in order,
    /// so later ones see earlier ones' totals and counters. A refusal is always decided
    /// before its request writes anything, so it changes nothing; a database error aborts
    /// the whole batch (`Err`: nothing in it happened). One fsync makes the batch durable;
    /// nothing in it may be answered before this returns `Ok`.
    pub fn sell_batch<E>(
        &mut self,
        requests: &[SaleRequest<'_>],
        mut decide: impl FnMut(usize, Balance) -> Result<Decision, E>,
    ) -> Result<Vec<Result<SellOutcome, SellError<E>>>, LedgerError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut outcomes = Vec::with_capacity(requests.len());
        for (i, request) in requests.iter().enumerate() {
            // `?`: a database error leaves `tx` to roll back when dropped.
            outcomes.push(sell_in(&tx, request, |total| decide(i, total))?);
        }
        tx.commit()?;
        Ok(outcomes)
    }

    /// The best receipt held for `channel`, if it has had a sale.
    pub fn best_receipt(&self, channel: ChannelId) -> Result<Option<BestReceipt>, LedgerError> {
        let row = self
            .conn
            .query_row(
                "SELECT total, signature, proof FROM channels WHERE channel = ?1",
                params![to_sql(channel.0)],
                |row| {
                    Ok((
                        row.get::<_, Vec<u8>>(0)?,
                        row.get::<_, Vec<u8>>(1)?,
                        row.get::<_, Option<Vec<u8>>>(2)?,
                    ))
                },
            )
            .optional()?;
        let Some((total, signature, proof)) = row else {
            return Ok(None);
        };
        let signature: [u8; 65] = signature
            .try_into()
            .map_err(|_| LedgerError::Corrupt("signature is not 65 bytes"))?;
        let proof = proof
            .map(|bytes| MembershipProof::decode(&mut bytes.as_slice()))
            .transpose()
            .map_err(|_| LedgerError::Corrupt("undecodable membership proof"))?;
        Ok(Some(BestReceipt {
            channel,
            amount: amount_from(total)?,
            signature: Signature(signature),
            proof,
        }))
    }

    /// Channels with a receipt that are not yet closed: what the AS must close.
    pub fn unclosed_channels(&self) -> Result<Vec<ChannelId>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare("SELECT channel FROM channels WHERE closed_at IS NULL ORDER BY channel")?;
        let rows = stmt.query_map([], |row| row.get::<_, i64>(0))?;
        rows.map(|r| Ok(ChannelId(from_sql(r?)))).collect()
    }

    /// Stops sales on `channel` and returns the receipt to close it with, atomically: no
    /// sale can slip in between, so the close claims everything ever sold.
    pub fn begin_close(&mut self, channel: ChannelId) -> Result<Option<BestReceipt>, LedgerError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE channels SET closing = 1 WHERE channel = ?1",
            params![to_sql(channel.0)],
        )?;
        tx.commit()?;
        self.best_receipt(channel)
    }

    /// Records that `channel` was closed on chain at `block`.
    pub fn mark_closed(&mut self, channel: ChannelId, block: u32) -> Result<(), LedgerError> {
        self.conn.execute(
            "UPDATE channels SET closed_at = ?2 WHERE channel = ?1",
            params![to_sql(channel.0), block],
        )?;
        Ok(())
    }

    pub fn is_closing(&self, channel: ChannelId) -> Result<bool, LedgerError> {
        Ok(self
            .conn
            .query_row(
                "SELECT closing FROM channels WHERE channel = ?1",
                params![to_sql(channel.0)],
                |row| row.get::<_, bool>(0),
            )
            .optional()?
            .unwrap_or(false))
    }

    pub fn is_closed(&self, channel: ChannelId) -> Result<bool, LedgerError> {
        Ok(self
            .conn
            .query_row(
                "SELECT closed_at IS NOT NULL FROM channels WHERE channel = ?1",
                params![to_sql(channel.0)],
                |row| row.get::<_, bool>(0),
            )
            .optional()?
            .unwrap_or(false))
    }
}

/// One sale inside an open transaction (see [`Ledger::sell_batch`]). The outer `Err` is a
/// database failure, which may leave this request half written: the caller must abort the
/// transaction. Every refusal (inner `Err`) is decided before the first write.
fn sell_in<E>(
    tx: &Connection,
    request: &SaleRequest<'_>,
    decide: impl FnOnce(Balance) -> Result<Decision, E>,
) -> Result<Result<SellOutcome, SellError<E>>, LedgerError> {
    let refuse = |e: LedgerError| Ok(Err(SellError::Ledger(e)));
    if let Some(earlier) = sale_in(tx, request.channel, request.amount)? {
        return Ok(Ok(SellOutcome::AlreadySold(earlier)));
    }
    let (total, closing) = tx
        .prepare_cached("SELECT total, closing FROM channels WHERE channel = ?1")?
        .query_row(params![to_sql(request.channel.0)], |row| {
            Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, bool>(1)?))
        })
        .optional()?
        .map(|(total, closing)| Ok::<_, LedgerError>((amount_from(total)?, closing)))
        .transpose()?
        .unwrap_or((0, false));
    if closing {
        return refuse(LedgerError::Closing(request.channel));
    }
    let decision = match decide(total) {
        Ok(decision) => decision,
        Err(e) => return Ok(Err(SellError::Refused(e))),
    };
    let Some(first_counter) = tx
        .prepare_cached("SELECT next_counter FROM devices WHERE device = ?1")?
        .query_row(params![request.device], |row| row.get::<_, i64>(0))
        .optional()?
        .map(from_sql)
    else {
        return refuse(LedgerError::UnknownDevice(request.device.to_owned()));
    };
    let Some(next) = first_counter
        .checked_add(decision.slots)
        .filter(|n| *n <= i64::MAX as u64)
    else {
        return refuse(LedgerError::CountersExhausted {
            device: request.device.to_owned(),
        });
    };
    // Writes from here on: any error aborts the batch.
    tx.prepare_cached("UPDATE devices SET next_counter = ?2 WHERE device = ?1")?
        .execute(params![request.device, to_sql(next)])?;
    tx.prepare_cached(
        "INSERT INTO channels (channel, total, signature, proof) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (channel) DO UPDATE SET
             total = excluded.total, signature = excluded.signature, proof = excluded.proof",
    )?
    .execute(params![
        to_sql(request.channel.0),
        amount_bytes(request.amount).as_slice(),
        request.signature.0.as_slice(),
        request.proof.map(|p| p.encode()),
    ])?;
    tx.prepare_cached(
        "INSERT INTO sales (channel, new_total, device, first_counter, slots, signer)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        to_sql(request.channel.0),
        amount_bytes(request.amount).as_slice(),
        request.device,
        to_sql(first_counter),
        to_sql(decision.slots),
        decision.signer.0.as_slice(),
    ])?;
    Ok(Ok(SellOutcome::Sold(SaleRecord {
        channel: request.channel,
        new_total: request.amount,
        device: request.device.to_owned(),
        first_counter,
        slots: decision.slots,
        signer: decision.signer,
    })))
}

fn total_in(conn: &Connection, channel: ChannelId) -> Result<Balance, LedgerError> {
    conn.prepare_cached("SELECT total FROM channels WHERE channel = ?1")?
        .query_row(params![to_sql(channel.0)], |row| row.get::<_, Vec<u8>>(0))
        .optional()?
        .map(amount_from)
        .transpose()
        .map(|t| t.unwrap_or(0))
}

fn sale_in(
    conn: &Connection,
    channel: ChannelId,
    amount: Balance,
) -> Result<Option<SaleRecord>, LedgerError> {
    let row = conn
        .prepare_cached(
            "SELECT device, first_counter, slots, signer FROM sales
             WHERE channel = ?1 AND new_total = ?2",
        )?
        .query_row(
            params![to_sql(channel.0), amount_bytes(amount).as_slice()],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, Vec<u8>>(3)?,
                ))
            },
        )
        .optional()?;
    let Some((device, first_counter, slots, signer)) = row else {
        return Ok(None);
    };
    let signer: [u8; 33] = signer
        .try_into()
        .map_err(|_| LedgerError::Corrupt("signer is not 33 bytes"))?;
    Ok(Some(SaleRecord {
        channel,
        new_total: amount,
        device,
        first_counter: from_sql(first_counter),
        slots: from_sql(slots),
        signer: PublicKey(signer),
    }))
}
