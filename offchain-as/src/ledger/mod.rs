//! The AS's durable ledger behind one interface, on one of two backends.
//!
//! [`Ledger`] is a cheap handle whose methods are the ledger's whole interface: sales
//! ([`Ledger::sell`]), what the closer reads and writes, the devices' counters. Callers
//! never see the backend:
//!
//! - **SQLite** (the default, one machine): one thread owns the [`Store`]; every operation
//!   is a message to it. Sales are group-committed: the thread takes every sale waiting in
//!   its queue, decides them in order with the protocol's purchase rule
//!   ([`protocol::check_terms`]) inside one transaction, and answers each only after that
//!   transaction's single fsync (`synchronous=FULL`). While one batch syncs the next
//!   gathers, so batches grow with load.
//! - **PostgreSQL** (`database_url`, several machines): each AS instance group-commits its
//!   own sales the same way, through a pool; the database serializes instances per
//!   channel and per device with row locks, so several instances serve the same channels
//!   and devices at once. A synchronous standby makes a commit survive the primary.
//!
//! Either way a sale (receipt, signer's spending, device counters) is durable before any
//! token for it is derived, let alone sent, and a refusal changes nothing. The closer's
//! writes that stop sales or record what landed carry a [`Fence`]: the number of the
//! closer's lease, checked in the same transaction as the write, so a closer that lost its
//! lease cannot write. On SQLite, one process's ledger, the lease is always held.
mod migrate;
mod postgres;
mod rows;
mod rule;
mod schema;
mod store;
mod thread;

pub use migrate::{migrate, Migrated};
pub use store::{
    counter_floor_now, ChannelState, Refused, SaleRecord, SellOutcome, Store, Watched, COUNTER_BITS,
};
pub use thread::answer_retry;
#[cfg(feature = "_test_utils")]
pub use thread::sell_now;

use crate::metrics::Metrics;
use protocol::{
    AccountId32, Authorized, Balance, Channel, ChannelId, Epoch, PurchaseError, Receipt,
    SignedReceipt, Tariff,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A ledger failure. Nothing is changed by a failed call.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The database failed.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The PostgreSQL database failed (or could not be reached).
    #[error("database: {0}")]
    Postgres(String),
    /// The file is another deployment's, or of a layout this build does not read.
    #[error("the ledger cannot be used: {0}")]
    Incompatible(String),
    /// No such device.
    #[error("unknown device {0:?}")]
    UnknownDevice(String),
    /// A row this code did not write.
    #[error("corrupt ledger row: {0}")]
    Corrupt(&'static str),
    /// A close is under way: nothing more is sold.
    #[error("channel {0} is being closed: it sells nothing more")]
    Closing(ChannelId),
    /// The epoch's last settle is under way (a rotation is near).
    #[error("channel {channel}'s epoch {epoch} is being settled before its authority rotates: it sells nothing more")]
    EpochEnded {
        /// The channel.
        channel: ChannelId,
        /// The epoch that ended.
        epoch: Epoch,
    },
    /// The ledger thread is gone.
    #[error("ledger unavailable: {0}")]
    Unavailable(String),
    /// A device's 64-bit counter space is used up.
    #[error("device {device:?} has used up its counters")]
    CountersExhausted {
        /// The device.
        device: String,
    },
    /// A closer's write carried the number of a lease that is no longer the current one:
    /// another closer has taken over, and this one must not write.
    #[error("the closer's lease {fence} is no longer held: another closer took over")]
    Fenced {
        /// The lease number the write carried.
        fence: u64,
    },
}

/// Why a sale did not happen. Nothing changed in the ledger.
#[derive(Debug, thiserror::Error)]
pub enum SaleError {
    /// The purchase rule refused.
    #[error(transparent)]
    Purchase(#[from] PurchaseError),
    /// The ledger refused or failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A retry of a recorded sale without the request secret that made it: the tokens go
    /// to their buyer only.
    #[error("this receipt was sold to the holder of another request secret")]
    NotTheBuyer,
}

/// An offer whose signature [`protocol::authorize`] has checked, against `channel` as it
/// stood at block `now`: everything the purchase rule needs inside the ledger.
#[derive(Debug, Clone)]
pub struct Offer {
    /// The device the slots are for.
    pub device: String,
    /// The checked receipt (with its signature, proof and signer).
    pub authorized: Authorized,
    /// The channel as the AS read it, brought to `now`.
    pub channel: Channel,
    /// The best block.
    pub now: u32,
    /// The digest of the buyer's request secret.
    pub secret_digest: [u8; 32],
}

/// A sale, new or repeated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sold {
    /// The sale.
    pub sale: SaleRecord,
    /// False when this repeats an earlier sale (a retried request): nothing was charged.
    pub fresh: bool,
}

/// Who the AS is and what it charges: the part of the purchase rule that is configuration.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// The AS's account: the payee of every channel it sells on.
    pub our_account: AccountId32,
    /// What it charges.
    pub tariff: Tariff,
}

/// Running totals the ledger has committed, shared with request handlers so that a stale
/// receipt is refused before any key recovery. Totals only grow, so a stale read is safe
/// (with several AS instances on one database each keeps its own).
pub type SeenTotals = Arc<Mutex<HashMap<(ChannelId, Epoch), Balance>>>;

/// Most sales committed together: bounds one transaction's time and memory.
pub(crate) const MAX_BATCH: usize = 512;

/// What the closer stops before it reads the receipt it claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Every sale of the channel: a close follows ([`Ledger::begin_close`]).
    Close(ChannelId),
    /// Sales of the channel's epoch and earlier: a settle ahead of a rotation follows
    /// ([`Ledger::end_epoch`]).
    EndEpoch(ChannelId, Epoch),
}

/// The number of the closer's lease a write is made under: checked, in the write's own
/// transaction, to be the current lease's, so that a closer that lost its lease (paused,
/// partitioned) cannot write. Every acquisition of the lease gets a higher number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fence(u64);

impl Fence {
    /// What a one-process ledger (SQLite) gives every closer: its lease is always held.
    pub const SOLE: Fence = Fence(0);

    /// The lease's number.
    pub fn number(self) -> u64 {
        self.0
    }
}

/// Where the ledger is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file: one machine, one AS process.
    Sqlite(PathBuf),
    /// A PostgreSQL database (a libpq URL): several AS instances may share it.
    Postgres(String),
}

impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            // The URL without its password, if it has one.
            Database::Postgres(url) => match url.split_once("://") {
                Some((scheme, rest)) => match rest.split_once('@') {
                    Some((who, at)) => {
                        let user = who.split_once(':').map_or(who, |(user, _)| user);
                        write!(f, "{scheme}://{user}@{at}")
                    }
                    None => f.write_str(url),
                },
                None => f.write_str("(a PostgreSQL connection string)"),
            },
        }
    }
}

/// The ledger's backend behind the handle.
#[derive(Clone)]
enum Backend {
    Sqlite(thread::SqliteLedger),
    Postgres(postgres::PgLedger),
}

/// A handle on the ledger. Clone freely; the backend stops when every handle is gone.
#[derive(Clone)]
pub struct Ledger {
    backend: Backend,
    seen: SeenTotals,
}

impl Ledger {
    /// Starts the SQLite ledger's thread on `store`.
    pub fn start(store: Store, rules: Rules, metrics: Arc<Metrics>) -> Result<Self, LedgerError> {
        let seen = seen_from(store.totals()?);
        let backend = Backend::Sqlite(thread::SqliteLedger::start(
            store,
            rules,
            metrics,
            seen.clone(),
        )?);
        Ok(Self { backend, seen })
    }

    /// Opens (creating if needed) the ledger in `database` for `domain`'s deployment, with
    /// `devices` known, and starts it.
    pub async fn open(
        database: &Database,
        domain: &protocol::Domain,
        devices: &[String],
        rules: Rules,
        metrics: Arc<Metrics>,
    ) -> Result<Self, LedgerError> {
        match database {
            Database::Sqlite(path) => {
                let mut store = Store::open(path, domain)?;
                for device in devices {
                    store.register_device(device)?;
                }
                Self::start(store, rules, metrics)
            }
            Database::Postgres(url) => {
                let ledger =
                    Self::connect(url, domain, counter_floor_now()?, rules, metrics).await?;
                for device in devices {
                    ledger.register_device(device).await?;
                }
                Ok(ledger)
            }
        }
    }

    /// Connects to the PostgreSQL ledger at `url` (created for `domain` if it is empty,
    /// its device counters then starting at `floor`) and starts this instance's committer.
    pub async fn connect(
        url: &str,
        domain: &protocol::Domain,
        floor: u64,
        rules: Rules,
        metrics: Arc<Metrics>,
    ) -> Result<Self, LedgerError> {
        let seen = seen_from(Vec::new());
        let (ledger, totals) =
            postgres::PgLedger::connect(url, domain, floor, rules, metrics, seen.clone()).await?;
        if let Ok(mut seen) = seen.lock() {
            for (c, e, t) in totals {
                let total = seen.entry((c, e)).or_default();
                *total = (*total).max(t);
            }
        }
        Ok(Self {
            backend: Backend::Postgres(ledger),
            seen,
        })
    }

    /// The highest running total committed so far for `channel` in `epoch` (0 if none),
    /// as this process has seen it.
    pub fn seen_total(&self, channel: ChannelId, epoch: Epoch) -> Balance {
        self.seen
            .lock()
            .map(|m| m.get(&(channel, epoch)).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Sells `offer` in the next batch; returns once that batch is durable.
    pub async fn sell(&self, offer: Offer) -> Result<Sold, SaleError> {
        match &self.backend {
            Backend::Sqlite(l) => l.sell(offer).await,
            Backend::Postgres(l) => l.sell(offer).await,
        }
    }

    /// Makes `device` known (from the ledger's counter floor) if it is not yet; keeps its
    /// counter if it is.
    pub async fn register_device(&self, device: &str) -> Result<(), LedgerError> {
        let device = device.to_owned();
        match &self.backend {
            Backend::Sqlite(l) => l.run(move |s| s.register_device(&device)).await,
            Backend::Postgres(l) => l.register_device(&device).await,
        }
    }

    /// The counter the next token of `device` gets.
    pub async fn next_counter(&self, device: &str) -> Result<u64, LedgerError> {
        let device = device.to_owned();
        match &self.backend {
            Backend::Sqlite(l) => l.run(move |s| s.next_counter(&device)).await,
            Backend::Postgres(l) => l.next_counter(&device).await,
        }
    }

    /// Raises every device counter to at least the one the SQLite ledger at `older` holds
    /// for the same device (any deployment's): how a ledger for a new deployment keeps
    /// the devices' counters. Returns the devices raised.
    pub async fn carry_counters_from(&self, older: &Path) -> Result<Vec<String>, LedgerError> {
        let older = older.to_owned();
        match &self.backend {
            Backend::Sqlite(l) => l.run(move |s| s.carry_counters_from(&older)).await,
            Backend::Postgres(l) => l.raise_counters(&store::read_counters(&older)?).await,
        }
    }

    /// The earlier sale of exactly this channel, epoch and amount, if any.
    pub async fn sale_for(
        &self,
        channel: ChannelId,
        epoch: Epoch,
        amount: Balance,
    ) -> Result<Option<SaleRecord>, LedgerError> {
        match &self.backend {
            Backend::Sqlite(l) => l.run(move |s| s.sale_for(channel, epoch, amount)).await,
            Backend::Postgres(l) => l.sale_for(channel, epoch, amount).await,
        }
    }

    /// The best receipt of `channel` in `epoch`, if it had a sale.
    pub async fn best(
        &self,
        channel: ChannelId,
        epoch: Epoch,
    ) -> Result<Option<SignedReceipt>, LedgerError> {
        match &self.backend {
            Backend::Sqlite(l) => l.run(move |s| s.best(channel, epoch)).await,
            Backend::Postgres(l) => l.best(channel, epoch).await,
        }
    }

    /// Every running total.
    pub async fn totals(&self) -> Result<Vec<(ChannelId, Epoch, Balance)>, LedgerError> {
        match &self.backend {
            Backend::Sqlite(l) => l.run(|s| s.totals()).await,
            Backend::Postgres(l) => l.totals().await,
        }
    }

    /// Channels with a sale that the chain has not been seen to close yet: what the AS
    /// must settle or close, with the best receipt of each one's latest epoch.
    pub async fn watched(&self) -> Result<Vec<Watched>, LedgerError> {
        match &self.backend {
            Backend::Sqlite(l) => l.run(|s| s.watched()).await,
            Backend::Postgres(l) => l.watched().await,
        }
    }

    /// The ledger's state of `channel` (default for a channel it never sold on).
    pub async fn state(&self, channel: ChannelId) -> Result<ChannelState, LedgerError> {
        match &self.backend {
            Backend::Sqlite(l) => l.run(move |s| s.state(channel)).await,
            Backend::Postgres(l) => l.state(channel).await,
        }
    }

    /// The settles of `channel` the AS saw included: (epoch, receipt amount, block), in
    /// order.
    pub async fn settlements(
        &self,
        channel: ChannelId,
    ) -> Result<Vec<(Epoch, Balance, u32)>, LedgerError> {
        match &self.backend {
            Backend::Sqlite(l) => l.run(move |s| s.settlements(channel)).await,
            Backend::Postgres(l) => l.settlements(channel).await,
        }
    }

    /// The closer's lease for `holder`: renewed if `held` is the lease it holds, acquired
    /// (with a new, higher number) if no closer holds one or the holder's has run out for
    /// `duration` past; `None` while another closer holds it.
    pub async fn lease(
        &self,
        holder: &str,
        held: Option<Fence>,
        duration: Duration,
    ) -> Result<Option<Fence>, LedgerError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(Some(Fence::SOLE)),
            Backend::Postgres(l) => l.lease(holder, held, duration, false).await,
        }
    }

    /// The closer's lease for `holder` now, whoever holds it (the operator's `close` and
    /// `settle`): the holder's later writes are refused.
    pub async fn take_lease(&self, holder: &str, duration: Duration) -> Result<Fence, LedgerError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(Fence::SOLE),
            Backend::Postgres(l) => {
                l.lease(holder, None, duration, true)
                    .await?
                    .ok_or(LedgerError::Corrupt(
                        "the lease was taken but no row came back",
                    ))
            }
        }
    }

    /// Gives up the lease `fence` (a closer that stops), so another closer takes over at
    /// once instead of when it runs out.
    pub async fn release_lease(&self, fence: Fence) -> Result<(), LedgerError> {
        match &self.backend {
            Backend::Sqlite(_) => Ok(()),
            Backend::Postgres(l) => l.release_lease(fence).await,
        }
    }

    /// Stops sales as each of `stops` says (durably, under the lease `fence`), then reads
    /// what each claims: nothing can be sold between the stop and the read, so the
    /// settle or close that follows claims everything sold.
    pub async fn stop(
        &self,
        stops: Vec<Stop>,
        fence: Fence,
    ) -> Result<Vec<Option<SignedReceipt>>, LedgerError> {
        match &self.backend {
            Backend::Sqlite(l) => l.run(move |s| s.stop(&stops)).await,
            Backend::Postgres(l) => l.stop(&stops, fence).await,
        }
    }

    /// Stops sales on `channel` (durably, under the lease `fence`), then reads what the
    /// AS holds of it: the close that follows claims everything ever sold.
    pub async fn begin_close(
        &self,
        channel: ChannelId,
        fence: Fence,
    ) -> Result<Option<Watched>, LedgerError> {
        match &self.backend {
            Backend::Sqlite(l) => l.run(move |s| s.begin_close(channel)).await,
            Backend::Postgres(l) => l.begin_close(channel, fence).await,
        }
    }

    /// Stops sales of `channel`'s `epoch` and earlier (durably, under `fence`; before a
    /// settle that must land ahead of a rotation), then reads that epoch's best receipt.
    pub async fn end_epoch(
        &self,
        channel: ChannelId,
        epoch: Epoch,
        fence: Fence,
    ) -> Result<Option<SignedReceipt>, LedgerError> {
        Ok(self
            .stop(vec![Stop::EndEpoch(channel, epoch)], fence)
            .await?
            .pop()
            .flatten())
    }

    /// Records (under `fence`) that the finalized chain no longer has `channel` as of
    /// block `block`.
    pub async fn mark_closed(
        &self,
        channel: ChannelId,
        block: u32,
        fence: Fence,
    ) -> Result<(), LedgerError> {
        match &self.backend {
            Backend::Sqlite(l) => l.run(move |s| s.mark_closed(channel, block)).await,
            Backend::Postgres(l) => l.mark_closed(channel, block, fence).await,
        }
    }

    /// Records (under `fence`) that a settle claiming `receipt` was included at `block`
    /// (a retry of the same claim keeps the first record).
    pub async fn record_settlement(
        &self,
        receipt: Receipt,
        block: u32,
        fence: Fence,
    ) -> Result<(), LedgerError> {
        match &self.backend {
            Backend::Sqlite(l) => l.run(move |s| s.record_settlement(&receipt, block)).await,
            Backend::Postgres(l) => l.record_settlement(receipt, block, fence).await,
        }
    }
}

fn seen_from(totals: Vec<(ChannelId, Epoch, Balance)>) -> SeenTotals {
    Arc::new(Mutex::new(
        totals.into_iter().map(|(c, e, t)| ((c, e), t)).collect(),
    ))
}

/// Notes a committed sale's total in `seen`.
fn note_seen(seen: &SeenTotals, sold: &Sold) {
    if sold.fresh {
        if let Ok(mut seen) = seen.lock() {
            let total = seen
                .entry((sold.sale.channel, sold.sale.epoch))
                .or_default();
            *total = (*total).max(sold.sale.new_total);
        }
    }
}
