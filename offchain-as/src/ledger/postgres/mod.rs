//! The PostgreSQL backend: several AS instances on one database.
//!
//! Each instance group-commits its own sales as the SQLite thread does (a task takes
//! every sale waiting, decides them in one transaction, answers after its commit), and
//! the database serializes instances per channel and per device with row locks
//! ([`sell`]). A batch that meets a serialization failure, a deadlock or a lost
//! connection is run again, on a fresh connection, for up to [`RETRY_FOR`]: retries are
//! idempotent (a sale already made is found and answered again), so a batch whose commit
//! was cut off is neither lost nor sold twice. The closer's writes check its lease's
//! number in their own transaction.
mod copy;
mod ops;
mod schema;
mod sell;

pub(super) use copy::{copy_checked, dump};

use super::{note_seen, LedgerError, Offer, Rules, SaleError, SeenTotals, Sold, MAX_BATCH};
use crate::metrics::Metrics;
use protocol::{Balance, ChannelId, Domain, Epoch};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// The driver, its pool, and what the backend names from them.
mod pg {
    pub(super) use deadpool_postgres::{Client, GenericClient, Pool, Transaction};
    pub(super) use tokio_postgres::{Error, Statement};
}

/// How long a batch (or a read) keeps being retried while the database is away: a
/// failover (primary lost, standby promoted) takes seconds.
pub(super) const RETRY_FOR: Duration = Duration::from_secs(30);
/// One attempt at most this long: a database that stopped answering is given up on and
/// the attempt retried on a new connection.
const ATTEMPT: Duration = Duration::from_secs(10);
const QUEUE: usize = 8 * MAX_BATCH;
/// The closer's lease row.
const LEASE: &str = "closer";

type SaleReply = oneshot::Sender<Result<Sold, SaleError>>;

/// A handle on one instance's PostgreSQL ledger: its pool and its committer task.
#[derive(Clone)]
pub(super) struct PgLedger {
    pool: pg::Pool,
    queue: mpsc::Sender<(Box<Offer>, SaleReply)>,
    floor: u64,
}

/// What went wrong, with the server's SQLSTATE and message when it said.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

impl From<tokio_postgres::Error> for LedgerError {
    fn from(e: tokio_postgres::Error) -> Self {
        LedgerError::Postgres(describe(&e))
    }
}

impl From<deadpool_postgres::PoolError> for LedgerError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        LedgerError::Postgres(format!("connect: {e}"))
    }
}

/// Whether running the transaction again may succeed: a serialization failure or
/// deadlock, or the connection (or the whole server) gone: a failover.
fn transient(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    match e.code() {
        Some(code) => [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::READ_ONLY_SQL_TRANSACTION,
        ]
        .contains(code),
        // No server error: the connection failed (or could not be made), or a bug here
        // (a type that does not convert), which no retry mends.
        None => {
            e.is_closed()
                || std::error::Error::source(e).is_some_and(|c| c.is::<std::io::Error>())
                || matches!(
                    e.to_string().as_str(),
                    "error connecting to server" | "timeout waiting for server"
                )
        }
    }
}

/// A failure of one attempt.
enum Attempt {
    /// Worth retrying (connection lost, serialization failure, timeout, pool empty).
    Again(String),
    /// Not.
    Fail(LedgerError),
}

impl From<tokio_postgres::Error> for Attempt {
    fn from(e: tokio_postgres::Error) -> Self {
        if transient(&e) {
            Attempt::Again(describe(&e))
        } else {
            Attempt::Fail(e.into())
        }
    }
}

impl From<deadpool_postgres::PoolError> for Attempt {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Attempt::Again(format!("connect: {e}"))
    }
}

impl From<LedgerError> for Attempt {
    fn from(e: LedgerError) -> Self {
        Attempt::Fail(e)
    }
}

/// Runs `attempt` until it succeeds, fails for good, or [`RETRY_FOR`] passes; returns
/// its value and how many times it was retried.
async fn retrying<T, F, Fut>(mut attempt: F) -> Result<(T, u32), LedgerError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Attempt>>,
{
    let start = Instant::now();
    let mut wait = Duration::from_millis(20);
    let mut retries = 0;
    loop {
        let outcome = match tokio::time::timeout(ATTEMPT, attempt()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Attempt::Again(format!(
                "no answer within {} s",
                ATTEMPT.as_secs()
            ))),
        };
        match outcome {
            Ok(value) => return Ok((value, retries)),
            Err(Attempt::Fail(e)) => return Err(e),
            Err(Attempt::Again(why)) if start.elapsed() + wait < RETRY_FOR => {
                tracing::warn!(reason = %why, retry_in_ms = wait.as_millis() as u64, "database: retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(1));
                retries += 1;
            }
            Err(Attempt::Again(why)) => {
                return Err(LedgerError::Unavailable(format!(
                    "the database did not answer for {} s: {why}",
                    RETRY_FOR.as_secs()
                )))
            }
        }
    }
}

impl PgLedger {
    /// Connects to the database at `url` (a libpq URL; several hosts with
    /// `target_session_attrs=read-write` find the primary), creates or checks the tables
    /// for `domain`'s deployment (a new ledger starts device counters at `floor`), and
    /// starts this instance's committer.
    pub(super) async fn connect(
        url: &str,
        domain: &Domain,
        floor: u64,
        rules: Rules,
        metrics: Arc<Metrics>,
        seen: SeenTotals,
    ) -> Result<(Self, Vec<(ChannelId, Epoch, Balance)>), LedgerError> {
        let pool = pool(url)?;
        let (floor, _) = retrying(|| async {
            let mut client = pool.get().await?;
            Ok(schema::init(&mut client, domain, floor).await?)
        })
        .await?;
        let (queue, waiting) = mpsc::channel(QUEUE);
        let ledger = Self { pool, queue, floor };
        let totals = ledger.totals().await?;
        tokio::spawn(committer(
            ledger.pool.clone(),
            rules,
            metrics,
            seen,
            waiting,
        ));
        Ok((ledger, totals))
    }

    /// Sells `offer` in this instance's next batch; returns once that batch committed.
    pub(super) async fn sell(&self, offer: Offer) -> Result<Sold, SaleError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || LedgerError::Unavailable("the ledger's committer stopped".into());
        self.queue
            .send((Box::new(offer), reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Runs `$body` with `$c` a pooled connection of `$ledger`'s (`&mut` [`pg::Client`]),
/// retried as a batch is; its value, or the [`LedgerError`] that ended the retries.
macro_rules! with_client {
    ($ledger:expr, $c:ident => $body:expr) => {
        $crate::ledger::postgres::retrying(|| async {
            let mut client = $ledger.pool.get().await?;
            let $c = &mut client;
            $body
        })
        .await
        .map(|(value, _)| value)
    };
}
use with_client;

/// A pool of connections to the database at `url`.
fn pool(url: &str) -> Result<pg::Pool, LedgerError> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| LedgerError::Incompatible(format!("database_url: {e}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(3));
    }
    config.application_name("slotpay-as");
    // An answer waits for its commit to be durable, on the standby too where there is one:
    // set per session, so that a role's or database's `synchronous_commit = off` or a
    // `statement_timeout` (which ends the wait for the standby with a mere warning)
    // cannot make a commit answered before it is safe. Ours come last, so they win.
    let ours = "-c synchronous_commit=on -c statement_timeout=0";
    let options = match config.get_options() {
        Some(theirs) => format!("{theirs} {ours}"),
        None => ours.to_owned(),
    };
    config.options(&options);
    let manager = deadpool_postgres::Manager::from_config(
        config,
        tokio_postgres::NoTls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    pg::Pool::builder(manager)
        .max_size(16)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(ATTEMPT))
        .create_timeout(Some(ATTEMPT))
        .build()
        .map_err(|e| LedgerError::Unavailable(format!("database pool: {e}")))
}

/// This instance's group commit: every sale waiting, up to [`MAX_BATCH`], in one
/// transaction; the next batch gathers while one commits.
async fn committer(
    pool: pg::Pool,
    rules: Rules,
    metrics: Arc<Metrics>,
    seen: SeenTotals,
    mut waiting: mpsc::Receiver<(Box<Offer>, SaleReply)>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = waiting.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match waiting.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let (offers, replies): (Vec<Box<Offer>>, Vec<SaleReply>) = batch.drain(..).unzip();
        let refs: Vec<&Offer> = offers.iter().map(|o| &**o).collect();
        let started = Instant::now();
        let decided = retrying(|| async {
            let mut client = pool.get().await?;
            Ok(sell::sell_batch(&mut client, &rules, &refs).await?)
        })
        .await;
        match decided {
            Ok((outcomes, retries)) => {
                metrics.batch(refs.len(), started.elapsed(), retries);
                for (answer, reply) in outcomes.into_iter().zip(replies) {
                    if let Ok(sold) = &answer {
                        note_seen(&seen, sold);
                        metrics.sold(sold);
                    }
                    let _ = reply.send(answer);
                }
            }
            Err(e) => {
                // Nothing was sold (or, for a commit whose answer was lost, what was is
                // found and answered by the buyer's retry of the same receipt).
                let reason = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(LedgerError::Unavailable(reason.clone()).into()));
                }
            }
        }
    }
}
