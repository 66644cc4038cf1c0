//! `slotpay-as migrate --from as.db --to postgres://...`: an SQLite ledger moved into an
//! empty PostgreSQL database, checked row by row.
//!
//! The SQLite file is read in one read transaction (a consistent snapshot; stop the AS
//! first, so nothing is sold meanwhile), every table copied into the PostgreSQL database
//! in one transaction bound to the same deployment and counter floor, every table read
//! back inside that transaction and compared with the source, row by row, before it
//! commits; and read back once more, on a new connection, after it has.
use super::postgres;
use super::{store, LedgerError};
use protocol::Domain;
use rusqlite::types::ValueRef;
use std::collections::BTreeMap;
use std::path::Path;

/// What one column holds, in both databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// An integer (`INTEGER`; `BIGINT`).
    Int,
    /// A flag (`INTEGER` 0 or 1; `BOOLEAN`).
    Flag,
    /// Bytes (`BLOB`; `BYTEA`).
    Bytes,
    /// Text.
    Text,
}

/// One cell, as both databases give it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Cell {
    /// SQL NULL.
    Null,
    /// An integer or a flag (0, 1).
    Int(i64),
    /// Bytes.
    Bytes(Vec<u8>),
    /// Text.
    Text(String),
}

/// A ledger table: its name and columns (key columns first).
pub(super) struct Table {
    pub(super) name: &'static str,
    pub(super) columns: &'static [(&'static str, Kind)],
}

/// Every table the ledger keeps, in an order that satisfies the foreign keys.
pub(super) const TABLES: [Table; 6] = [
    Table {
        name: "devices",
        columns: &[("device", Kind::Text), ("next_counter", Kind::Int)],
    },
    Table {
        name: "channels",
        columns: &[
            ("channel", Kind::Int),
            ("closing", Kind::Flag),
            ("stopped_epoch", Kind::Int),
            ("closed_at", Kind::Int),
        ],
    },
    Table {
        name: "epochs",
        columns: &[
            ("channel", Kind::Int),
            ("epoch", Kind::Int),
            ("total", Kind::Bytes),
            ("signature", Kind::Bytes),
            ("proof", Kind::Bytes),
        ],
    },
    Table {
        name: "settlements",
        columns: &[
            ("channel", Kind::Int),
            ("epoch", Kind::Int),
            ("amount", Kind::Bytes),
            ("block", Kind::Int),
        ],
    },
    Table {
        name: "spent",
        columns: &[
            ("channel", Kind::Int),
            ("epoch", Kind::Int),
            ("signer", Kind::Bytes),
            ("amount", Kind::Bytes),
        ],
    },
    Table {
        name: "sales",
        columns: &[
            ("channel", Kind::Int),
            ("epoch", Kind::Int),
            ("new_total", Kind::Bytes),
            ("device", Kind::Text),
            ("first_counter", Kind::Int),
            ("slots", Kind::Int),
            ("signer", Kind::Bytes),
            ("secret_digest", Kind::Bytes),
        ],
    },
];

/// Every table's rows, sorted.
pub(super) type Dump = BTreeMap<&'static str, Vec<Vec<Cell>>>;

impl Table {
    pub(super) fn select(&self) -> String {
        let columns: Vec<&str> = self.columns.iter().map(|(c, _)| *c).collect();
        format!("SELECT {} FROM {}", columns.join(", "), self.name)
    }
}

/// What a migration moved: rows per table, all compared.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Migrated {
    /// The deployment's contract (hex).
    pub contract: String,
    /// Rows copied and compared, per table.
    pub rows: BTreeMap<String, usize>,
}

/// The deployment the SQLite ledger at `path` is bound to, and its counter floor.
fn binding(conn: &rusqlite::Connection) -> Result<(Domain, u64), LedgerError> {
    let meta = |key: &str| -> Result<Vec<u8>, LedgerError> {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| {
            r.get::<_, Vec<u8>>(0)
        })
        .map_err(|_| LedgerError::Incompatible(format!("no {key} recorded: not a slotpay ledger")))
    };
    let hash = |key: &str| -> Result<[u8; 32], LedgerError> {
        meta(key)?
            .try_into()
            .map_err(|_| LedgerError::Corrupt("a 32-byte hash is not 32 bytes"))
    };
    let floor: [u8; 8] = meta("counter_floor")?
        .try_into()
        .map_err(|_| LedgerError::Corrupt("counter floor is not 8 bytes"))?;
    Ok((
        Domain {
            genesis_hash: hash("genesis_hash")?,
            contract: hash("contract")?,
        },
        u64::from_be_bytes(floor),
    ))
}

fn sqlite_dump(conn: &rusqlite::Connection) -> Result<Dump, LedgerError> {
    let mut dump = Dump::new();
    for table in &TABLES {
        let mut statement = conn.prepare(&table.select())?;
        let mut rows = statement.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut cells = Vec::with_capacity(table.columns.len());
            for (i, _) in table.columns.iter().enumerate() {
                cells.push(match row.get_ref(i)? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(v) => Cell::Int(v),
                    ValueRef::Blob(b) => Cell::Bytes(b.to_vec()),
                    ValueRef::Text(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Real(_) => return Err(LedgerError::Corrupt("a real number")),
                });
            }
            out.push(cells);
        }
        out.sort();
        dump.insert(table.name, out);
    }
    Ok(dump)
}

/// The first difference between `want` (the source) and `got`, if any.
pub(super) fn compare(want: &Dump, got: &Dump) -> Result<(), LedgerError> {
    for table in &TABLES {
        let (w, g) = (&want[table.name], &got[table.name]);
        if w.len() != g.len() {
            return Err(LedgerError::Incompatible(format!(
                "migration check: {} has {} rows in the source and {} in the copy",
                table.name,
                w.len(),
                g.len()
            )));
        }
        if let Some((i, (a, b))) = w.iter().zip(g).enumerate().find(|(_, (a, b))| a != b) {
            return Err(LedgerError::Incompatible(format!(
                "migration check: {} row {i} differs: source {a:?}, copy {b:?}",
                table.name
            )));
        }
    }
    Ok(())
}

/// Moves the SQLite ledger at `from` into the empty PostgreSQL database at `to`, bound to
/// the same deployment and counter floor, checked row by row (inside the copy's
/// transaction before it commits, and again after).
pub async fn migrate(from: &Path, to: &str) -> Result<Migrated, LedgerError> {
    let (domain, floor) = {
        let conn = rusqlite::Connection::open_with_flags(
            from,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?;
        binding(&conn)?
    };
    // A ledger of an older layout is brought to this one first (as the AS would at its
    // next start), so that its rows are this layout's.
    drop(store::Store::open(from, &domain)?);
    // Held for writing for the whole move, so that an AS still serving from the file
    // cannot sell while it is copied; marked moved at the end, so that none serves from
    // it afterwards (its counters would be sold again beside the database's).
    let mut conn = rusqlite::Connection::open(from)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let held = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let source = sqlite_dump(&held)?;
    postgres::copy_checked(to, &domain, floor, &source).await?;
    let copy = postgres::dump(to).await?;
    compare(&source, &copy)?;
    super::schema::mark_migrated(&held)?;
    held.commit()?;
    Ok(Migrated {
        contract: hex::encode(domain.contract),
        rows: source
            .iter()
            .map(|(table, rows)| ((*table).to_owned(), rows.len()))
            .collect(),
    })
}
