//! The PostgreSQL side of `slotpay-as migrate`: the copy, in one transaction checked
//! before it commits, and a dump of every table for the check after.
use super::super::migrate::{compare, Cell, Dump, Kind, TABLES};
use super::super::LedgerError;
use super::{pg, schema};
use protocol::Domain;
use tokio_postgres::types::ToSql;

/// Every ledger table of `client`'s database, sorted.
async fn dump_in(client: &impl pg::GenericClient) -> Result<Dump, LedgerError> {
    let mut dump = Dump::new();
    for table in &TABLES {
        let rows = client.query(&table.select(), &[]).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut cells = Vec::with_capacity(table.columns.len());
            for (i, (_, kind)) in table.columns.iter().enumerate() {
                cells.push(
                    match kind {
                        Kind::Int => row.try_get::<_, Option<i64>>(i)?.map(Cell::Int),
                        Kind::Flag => row
                            .try_get::<_, Option<bool>>(i)?
                            .map(|b| Cell::Int(i64::from(b))),
                        Kind::Bytes => row.try_get::<_, Option<Vec<u8>>>(i)?.map(Cell::Bytes),
                        Kind::Text => row.try_get::<_, Option<String>>(i)?.map(Cell::Text),
                    }
                    .unwrap_or(Cell::Null),
                );
            }
            out.push(cells);
        }
        out.sort();
        dump.insert(table.name, out);
    }
    Ok(dump)
}

/// Every ledger table of the database at `url`, read on a new connection.
pub(in super::super) async fn dump(url: &str) -> Result<Dump, LedgerError> {
    let pool = super::pool(url)?;
    let client = pool.get().await?;
    dump_in(&client).await
}

/// A cell as a parameter of its column's type.
fn param(cell: &Cell, kind: Kind) -> Result<Box<dyn ToSql + Sync + Send>, LedgerError> {
    Ok(match (cell, kind) {
        (Cell::Int(v), Kind::Int) => Box::new(*v),
        (Cell::Int(v), Kind::Flag) => Box::new(*v != 0),
        (Cell::Bytes(b), Kind::Bytes) => Box::new(b.clone()),
        (Cell::Text(t), Kind::Text) => Box::new(t.clone()),
        (Cell::Null, Kind::Int) => Box::new(None::<i64>),
        (Cell::Null, Kind::Flag) => Box::new(None::<bool>),
        (Cell::Null, Kind::Bytes) => Box::new(None::<Vec<u8>>),
        (Cell::Null, Kind::Text) => Box::new(None::<String>),
        _ => {
            return Err(LedgerError::Corrupt(
                "a cell of another type than its column",
            ))
        }
    })
}

/// Copies `source` into the empty ledger at `url` (created for `domain`, device counters
/// from `floor`), in one transaction that commits only if reading every table back in it
/// gives `source` again, row by row.
pub(in super::super) async fn copy_checked(
    url: &str,
    domain: &Domain,
    floor: u64,
    source: &Dump,
) -> Result<(), LedgerError> {
    let pool = super::pool(url)?;
    let mut client = pool.get().await?;
    // The ledger is created in the copy's own transaction: all of it, or nothing.
    let tx = client.transaction().await?;
    if schema::init_in(&tx, domain, floor).await? != floor {
        return Err(LedgerError::Incompatible(
            "the database's ledger was made with another counter floor: migrate into an empty database".into(),
        ));
    }
    for table in &TABLES {
        let held: i64 = tx
            .query_one(&format!("SELECT count(*) FROM {}", table.name), &[])
            .await?
            .get(0);
        if held > 0 {
            return Err(LedgerError::Incompatible(format!(
                "the database already holds a ledger ({} has {held} rows): migrate into an empty database",
                table.name
            )));
        }
    }
    for table in &TABLES {
        let names: Vec<&str> = table.columns.iter().map(|(c, _)| *c).collect();
        let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
        let insert = tx
            .prepare(&format!(
                "INSERT INTO {} ({}) VALUES ({})",
                table.name,
                names.join(", "),
                placeholders.join(", ")
            ))
            .await?;
        for chunk in source[table.name].chunks(256) {
            let mut rows = Vec::with_capacity(chunk.len());
            for row in chunk {
                let params = row
                    .iter()
                    .zip(table.columns)
                    .map(|(cell, (_, kind))| param(cell, *kind))
                    .collect::<Result<Vec<_>, _>>()?;
                rows.push(params);
            }
            // Pipelined: a chunk's inserts go out together.
            futures::future::try_join_all(rows.iter().map(|params| {
                let refs: Vec<&(dyn ToSql + Sync)> =
                    params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect();
                let (tx, insert) = (&tx, &insert);
                async move { tx.execute(insert, &refs).await }
            }))
            .await?;
        }
    }
    compare(source, &dump_in(&tx).await?)?;
    tx.commit().await?;
    Ok(())
}
