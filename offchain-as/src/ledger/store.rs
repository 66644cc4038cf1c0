//! The ledger's SQLite store: per channel and authority epoch the best receipt accepted so
//! far and what each signer added to it, per device the next token counter, and every
//! sale. Bound to one deployment (chain and contract), so a database can never be applied
//! to another contract's channels.
//!
//! WAL with `synchronous=FULL`: once a write returns, it survives a crash or power loss.
use super::rows::{amount_from, best_in, from_sql, receipt_from, sale_in, to_sql, SqliteTx};
use super::rule::sell_in;
use super::schema;
use super::{LedgerError, Offer, Stop};
use protocol::{Balance, ChannelId, Domain, Epoch, PublicKey, Purchase, SignedReceipt, Spent};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

/// How many low bits of a device counter a ledger counts in; the bits above are the
/// ledger's generation, the second it was created. A ledger that replaces a lost one
/// starts above every counter the lost one could have sold (2^31 tokens per device per
/// ledger), so a device never sees a counter it has granted or left behind its window.
pub const COUNTER_BITS: u32 = 31;

/// No clock this build runs under reads earlier (2026-11-01 UTC): a ledger is not created
/// from a clock that does, since its device counters would start below those a lost
/// ledger may have sold.
const EARLIEST_CLOCK: u64 = 1_793_491_200;

/// Where a ledger created now starts its device counters; refused when the system clock
/// reads before this build could have run.
pub fn counter_floor_now() -> Result<u64, LedgerError> {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if seconds < EARLIEST_CLOCK {
        return Err(LedgerError::Incompatible(format!(
            "the system clock reads {seconds} s after 1970, before this build was made: \
             set the clock (a ledger's device counters start from it)"
        )));
    }
    Ok(seconds << COUNTER_BITS)
}

/// One sale: `slots` consecutive counters of `device` from `first_counter`, bought by
/// raising `channel`'s running total in `epoch` to `new_total`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleRecord {
    /// The channel paid from.
    pub channel: ChannelId,
    /// The receipt's authority epoch.
    pub epoch: Epoch,
    /// The running total after the sale: the receipt's amount.
    pub new_total: Balance,
    /// The device the counters are of.
    pub device: String,
    /// The first counter sold.
    pub first_counter: u64,
    /// How many.
    pub slots: u64,
    /// Who signed the receipt.
    pub signer: PublicKey,
    /// The digest of the buyer's request secret (`None`: sold by a ledger older than the
    /// secret; its retries are refused).
    pub secret_digest: Option<[u8; 32]>,
}

/// What the AS holds of a channel it has sold on and not seen closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    /// The channel.
    pub channel: ChannelId,
    /// The best receipt of the latest epoch with a sale.
    pub best: SignedReceipt,
    /// A close was begun: it sells nothing more and must be finished.
    pub closing: bool,
}

/// A channel's state in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChannelState {
    /// A close is under way (or done): it sells nothing.
    pub closing: bool,
    /// The finalized chain no longer has it.
    pub closed: bool,
}

/// What [`Store::sell_batch`] did with one offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SellOutcome {
    /// A new sale, now durable.
    Sold(SaleRecord),
    /// This channel, epoch and amount were sold before: that sale, nothing charged again.
    AlreadySold(SaleRecord),
}

/// Why one offer of a batch sold nothing.
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
    /// Opens (creating if needed) the ledger at `path` for `domain`'s deployment; a new
    /// ledger starts device counters at [`counter_floor_now`].
    pub fn open(path: &Path, domain: &Domain) -> Result<Self, LedgerError> {
        Self::init(Connection::open(path)?, domain, counter_floor_now()?)
    }

    /// A ledger in memory, starting device counters at `floor`: for tests and fuzzing.
    #[cfg(feature = "_test_utils")]
    pub fn in_memory(domain: &Domain, floor: u64) -> Result<Self, LedgerError> {
        Self::init(Connection::open_in_memory()?, domain, floor)
    }

    /// [`Self::open`] with a chosen counter floor for a new ledger: for tests.
    #[cfg(feature = "_test_utils")]
    pub fn open_at(path: &Path, domain: &Domain, floor: u64) -> Result<Self, LedgerError> {
        Self::init(Connection::open(path)?, domain, floor)
    }

    fn init(conn: Connection, domain: &Domain, floor: u64) -> Result<Self, LedgerError> {
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: with WAL, NORMAL may lose the last commits on power loss; a sale must not.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::init(&conn, domain, floor)?;
        Ok(Self { conn })
    }

    /// Makes `device` known (from the ledger's counter floor) if it is not yet; keeps its
    /// counter if it is.
    pub fn register_device(&mut self, device: &str) -> Result<(), LedgerError> {
        let floor = schema::counter_floor(&self.conn)?;
        self.conn.execute(
            "INSERT OR IGNORE INTO devices (device, next_counter) VALUES (?1, ?2)",
            params![device, to_sql(floor)],
        )?;
        Ok(())
    }

    /// The counter the next token of `device` gets.
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

    /// Raises every device counter to at least the one the ledger at `older` holds for
    /// the same device (any deployment's): how a ledger for a new deployment keeps the
    /// devices' counters. Returns the devices raised.
    pub fn carry_counters_from(&mut self, older: &Path) -> Result<Vec<String>, LedgerError> {
        let rows = read_counters(older)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut raised = Vec::new();
        for (device, counter) in rows {
            let floor = schema::counter_floor(&tx)?;
            let ours = tx
                .query_row(
                    "SELECT next_counter FROM devices WHERE device = ?1",
                    params![device],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?
                .map_or(floor, from_sql);
            if counter > ours {
                tx.execute(
                    "INSERT INTO devices (device, next_counter) VALUES (?1, ?2)
                     ON CONFLICT (device) DO UPDATE SET next_counter = excluded.next_counter",
                    params![device, to_sql(counter)],
                )?;
                raised.push(device);
            }
        }
        tx.commit()?;
        Ok(raised)
    }

    /// Sells against offers, many under one commit (group commit). For each offer,
    /// `decide` gets its index and what the ledger knows of the channel's epoch inside the
    /// transaction, and refuses or returns the [`Purchase`] the rule allows; the sale is
    /// then recorded with the new best receipt, the signer's spending and the device's
    /// counters. Offers are decided in order, so later ones see earlier ones' totals and
    /// counters. A refusal is decided before its offer writes anything, so it changes
    /// nothing; a database error aborts the whole batch (`Err`: nothing in it happened).
    /// One fsync makes the batch durable; nothing in it may be answered before this
    /// returns.
    pub fn sell_batch<E>(
        &mut self,
        offers: &[&Offer],
        mut decide: impl FnMut(usize, Spent) -> Result<Purchase, E>,
    ) -> Result<Vec<Result<SellOutcome, Refused<E>>>, LedgerError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut outcomes = Vec::with_capacity(offers.len());
        for (i, offer) in offers.iter().enumerate() {
            // `?`: a database error leaves `tx` to roll back when dropped.
            outcomes.push(sell_in(&mut SqliteTx(&tx), offer, |spent| {
                decide(i, spent)
            })?);
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
    ) -> Result<Option<SignedReceipt>, LedgerError> {
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
        // One query for all of them: the closer asks at every block.
        let mut stmt = self.conn.prepare_cached(
            "SELECT c.channel, c.closing, e.epoch, e.total, e.signature, e.proof
             FROM channels c JOIN epochs e ON e.channel = c.channel
             WHERE c.closed_at IS NULL
               AND e.epoch = (SELECT max(epoch) FROM epochs WHERE channel = c.channel)
             ORDER BY c.channel",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, u32>(2)?,
                r.get::<_, Vec<u8>>(3)?,
                r.get::<_, Vec<u8>>(4)?,
                r.get::<_, Option<Vec<u8>>>(5)?,
            ))
        })?;
        rows.map(|row| {
            let (channel, closing, epoch, total, signature, proof) = row?;
            let channel = ChannelId(from_sql(channel));
            Ok(Watched {
                channel,
                best: receipt_from(channel, epoch, total, signature, proof)?,
                closing,
            })
        })
        .collect()
    }

    /// Stops sales on `channel` (durably), then reads what the AS holds of it: the close
    /// that follows claims everything ever sold, because nothing can be sold between
    /// the stop and the read.
    pub fn begin_close(&mut self, channel: ChannelId) -> Result<Option<Watched>, LedgerError> {
        close_in(&self.conn, channel)?;
        watched_in(&self.conn, channel)
    }

    /// Stops sales of `channel`'s `epoch` and earlier (durably; before a settle that must
    /// land ahead of a rotation), then reads that epoch's best receipt.
    pub fn end_epoch(
        &mut self,
        channel: ChannelId,
        epoch: Epoch,
    ) -> Result<Option<SignedReceipt>, LedgerError> {
        end_epoch_in(&self.conn, channel, epoch)?;
        best_in(&self.conn, channel, epoch)
    }

    /// Stops sales as each of `stops` says, in one transaction, then reads what each
    /// claims: [`Self::begin_close`] or [`Self::end_epoch`] for many channels at once
    /// (a pass with many closes due commits once).
    pub fn stop(&mut self, stops: &[Stop]) -> Result<Vec<Option<SignedReceipt>>, LedgerError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut read = Vec::with_capacity(stops.len());
        for stop in stops {
            read.push(match *stop {
                Stop::Close(channel) => {
                    close_in(&tx, channel)?;
                    watched_in(&tx, channel)?.map(|w| w.best)
                }
                Stop::EndEpoch(channel, epoch) => {
                    end_epoch_in(&tx, channel, epoch)?;
                    best_in(&tx, channel, epoch)?
                }
            });
        }
        tx.commit()?;
        Ok(read)
    }

    /// Records that the finalized chain no longer has `channel` as of block `block`.
    pub fn mark_closed(&mut self, channel: ChannelId, block: u32) -> Result<(), LedgerError> {
        self.conn.execute(
            "INSERT INTO channels (channel, closing, closed_at) VALUES (?1, 1, ?2)
             ON CONFLICT (channel) DO UPDATE SET closing = 1, closed_at = excluded.closed_at",
            params![to_sql(channel.0), block],
        )?;
        Ok(())
    }

    /// Records that a settle claiming `receipt` was included at `block` (a retry of the
    /// same claim keeps the first record).
    pub fn record_settlement(
        &mut self,
        receipt: &protocol::Receipt,
        block: u32,
    ) -> Result<(), LedgerError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO settlements (channel, epoch, amount, block)
             VALUES (?1, ?2, ?3, ?4)",
            params![
                to_sql(receipt.channel.0),
                receipt.epoch,
                receipt.amount.to_be_bytes(),
                block
            ],
        )?;
        Ok(())
    }

    /// The settles of `channel` the AS saw included: (epoch, receipt amount, block), in
    /// order.
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

    /// The ledger's state of `channel` (default for a channel it never sold on).
    pub fn state(&self, channel: ChannelId) -> Result<ChannelState, LedgerError> {
        Ok(self
            .conn
            .query_row(
                "SELECT closing, closed_at IS NOT NULL FROM channels WHERE channel = ?1",
                params![to_sql(channel.0)],
                |row| {
                    Ok(ChannelState {
                        closing: row.get(0)?,
                        closed: row.get(1)?,
                    })
                },
            )
            .optional()?
            .unwrap_or_default())
    }
}

/// Marks `channel` closing (inserted if it never had a sale: it must not get one now).
fn close_in(conn: &Connection, channel: ChannelId) -> Result<(), LedgerError> {
    conn.prepare_cached(
        "INSERT INTO channels (channel, closing) VALUES (?1, 1)
         ON CONFLICT (channel) DO UPDATE SET closing = 1",
    )?
    .execute(params![to_sql(channel.0)])?;
    Ok(())
}

/// Stops sales of `channel`'s `epoch` and earlier.
fn end_epoch_in(conn: &Connection, channel: ChannelId, epoch: Epoch) -> Result<(), LedgerError> {
    conn.prepare_cached(
        "INSERT INTO channels (channel, stopped_epoch) VALUES (?1, ?2)
         ON CONFLICT (channel) DO UPDATE SET
             stopped_epoch = max(coalesce(stopped_epoch, 0), excluded.stopped_epoch)",
    )?
    .execute(params![to_sql(channel.0), epoch])?;
    Ok(())
}

/// What the AS holds of `channel` if it is not seen closed.
fn watched_in(conn: &Connection, channel: ChannelId) -> Result<Option<Watched>, LedgerError> {
    let row = conn
        .prepare_cached(
            "SELECT c.closing, max(e.epoch) FROM channels c
             JOIN epochs e ON e.channel = c.channel
             WHERE c.channel = ?1 AND c.closed_at IS NULL GROUP BY c.channel",
        )?
        .query_row(params![to_sql(channel.0)], |r| {
            Ok((r.get::<_, bool>(0)?, r.get::<_, u32>(1)?))
        })
        .optional()?;
    let Some((closing, epoch)) = row else {
        return Ok(None);
    };
    let best =
        best_in(conn, channel, epoch)?.ok_or(LedgerError::Corrupt("an epoch row vanished"))?;
    Ok(Some(Watched {
        channel,
        best,
        closing,
    }))
}

/// Every device's next counter in the SQLite ledger at `path` (opened read-only).
pub(super) fn read_counters(path: &Path) -> Result<Vec<(String, u64)>, LedgerError> {
    let old = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut statement = old.prepare("SELECT device, next_counter FROM devices")?;
    let rows = statement
        .query_map([], |r| {
            Ok((r.get::<_, String>(0)?, from_sql(r.get::<_, i64>(1)?)))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
