//! One batch of sales on PostgreSQL, in one `READ COMMITTED` transaction of four round
//! trips: `BEGIN`; the batch's channel rows and device rows locked (`FOR UPDATE`, each in
//! key order, channels before devices, so batches of several instances never deadlock)
//! and what the rule needs read, pipelined; the decisions, made in memory by the same
//! steps as on SQLite ([`super::super::rule::sell_in`]); the writes, pipelined, and
//! `COMMIT`. Every other writer of a channel (a sale on any instance, a closer's stop)
//! holds its row's lock, so what is read after the lock is what the channel holds: no
//! counter is sold twice and no total or cap is passed, whichever instance sells.
use super::super::rows::{amount_bytes, amount_from, digest_from, from_sql, key_from, to_sql};
use super::super::rule::{sell_in, NewSale, SaleTx};
use super::super::store::{Refused, SaleRecord, SellOutcome};
use super::super::thread::retry;
use super::super::{LedgerError, Offer, Rules, SaleError, Sold};
use super::pg;
use parity_scale_codec::Encode;
use protocol::{check_terms, Balance, ChannelId, Epoch, PublicKey};
use std::collections::{BTreeMap, BTreeSet, HashMap};

const LOCK_CHANNELS: &str = "
INSERT INTO channels (channel) SELECT c FROM unnest($1::int8[]) AS u(c) ORDER BY c
ON CONFLICT (channel) DO UPDATE SET closing = channels.closing
RETURNING channel, closing, stopped_epoch, (xmax = 0) AS inserted";
const LOCK_DEVICES: &str = "
SELECT device, next_counter FROM devices WHERE device = ANY($1) ORDER BY device FOR UPDATE";
const READ_EPOCHS: &str = "
SELECT e.channel, e.epoch, e.total FROM epochs e
JOIN unnest($1::int8[], $2::int8[]) AS k(channel, epoch)
  ON e.channel = k.channel AND e.epoch = k.epoch";
const READ_SPENT: &str = "
SELECT s.channel, s.epoch, s.signer, s.amount FROM spent s
JOIN unnest($1::int8[], $2::int8[], $3::bytea[]) AS k(channel, epoch, signer)
  ON s.channel = k.channel AND s.epoch = k.epoch AND s.signer = k.signer";
const READ_SALES: &str = "
SELECT s.channel, s.epoch, s.new_total, s.device, s.first_counter, s.slots, s.signer,
       s.secret_digest
FROM sales s
JOIN unnest($1::int8[], $2::int8[], $3::bytea[]) AS k(channel, epoch, new_total)
  ON s.channel = k.channel AND s.epoch = k.epoch AND s.new_total = k.new_total";
const WRITE_EPOCHS: &str = "
INSERT INTO epochs (channel, epoch, total, signature, proof)
SELECT * FROM unnest($1::int8[], $2::int8[], $3::bytea[], $4::bytea[], $5::bytea[])
ON CONFLICT (channel, epoch) DO UPDATE SET
    total = excluded.total, signature = excluded.signature, proof = excluded.proof";
const WRITE_SPENT: &str = "
INSERT INTO spent (channel, epoch, signer, amount)
SELECT * FROM unnest($1::int8[], $2::int8[], $3::bytea[], $4::bytea[])
ON CONFLICT (channel, epoch, signer) DO UPDATE SET amount = excluded.amount";
const WRITE_SALES: &str = "
INSERT INTO sales
    (channel, epoch, new_total, device, first_counter, slots, signer, secret_digest)
SELECT * FROM unnest($1::int8[], $2::int8[], $3::bytea[], $4::text[], $5::int8[],
                     $6::int8[], $7::bytea[], $8::bytea[])";
const WRITE_DEVICES: &str = "
UPDATE devices d SET next_counter = u.next_counter
FROM unnest($1::text[], $2::int8[]) AS u(device, next_counter) WHERE d.device = u.device";
/// A channel row this batch inserted only to lock it, and sold nothing on: removed, so
/// that a refusal changes nothing.
const DROP_UNUSED: &str = "DELETE FROM channels WHERE channel = ANY($1::int8[])";

/// The SQL every batch runs, prepared once per connection.
pub(super) const STATEMENTS: [&str; 10] = [
    LOCK_CHANNELS,
    LOCK_DEVICES,
    READ_EPOCHS,
    READ_SPENT,
    READ_SALES,
    WRITE_EPOCHS,
    WRITE_SPENT,
    WRITE_SALES,
    WRITE_DEVICES,
    DROP_UNUSED,
];

type SaleKey = (ChannelId, Epoch, Balance);
/// An `epochs` row to write: total, signature, proof.
type EpochRow = (Vec<u8>, Vec<u8>, Option<Vec<u8>>);
/// A statement's parameters.
type Params<'a, const N: usize> = [&'a (dyn tokio_postgres::types::ToSql + Sync); N];

/// What the batch's offers need of the ledger, read under the locks, and what the batch
/// decided, in memory: the [`SaleTx`] the shared rule runs on.
#[derive(Default)]
struct Preloaded {
    stops: HashMap<ChannelId, (bool, Option<Epoch>)>,
    inserted: BTreeSet<ChannelId>,
    totals: HashMap<(ChannelId, Epoch), Balance>,
    spent: HashMap<(ChannelId, Epoch, [u8; 33]), Balance>,
    sales: HashMap<SaleKey, SaleRecord>,
    counters: HashMap<String, u64>,
    new: Vec<NewSale>,
}

impl SaleTx for Preloaded {
    fn sale(
        &mut self,
        channel: ChannelId,
        epoch: Epoch,
        amount: Balance,
    ) -> Result<Option<SaleRecord>, LedgerError> {
        Ok(self.sales.get(&(channel, epoch, amount)).cloned())
    }

    fn stops(&mut self, channel: ChannelId) -> Result<(bool, Option<Epoch>), LedgerError> {
        Ok(self.stops.get(&channel).copied().unwrap_or((false, None)))
    }

    fn total(&mut self, channel: ChannelId, epoch: Epoch) -> Result<Balance, LedgerError> {
        Ok(self.totals.get(&(channel, epoch)).copied().unwrap_or(0))
    }

    fn spent(
        &mut self,
        channel: ChannelId,
        epoch: Epoch,
        signer: &PublicKey,
    ) -> Result<Balance, LedgerError> {
        Ok(self
            .spent
            .get(&(channel, epoch, signer.0))
            .copied()
            .unwrap_or(0))
    }

    fn counter(&mut self, device: &str) -> Result<Option<u64>, LedgerError> {
        Ok(self.counters.get(device).copied())
    }

    fn record(&mut self, sale: &NewSale) -> Result<(), LedgerError> {
        let r = &sale.record;
        self.totals.insert((r.channel, r.epoch), r.new_total);
        self.spent
            .insert((r.channel, r.epoch, r.signer.0), sale.spent);
        self.sales
            .insert((r.channel, r.epoch, r.new_total), r.clone());
        self.counters.insert(r.device.clone(), sale.next_counter);
        self.new.push(sale.clone());
        Ok(())
    }
}

fn epoch_sql(epoch: Epoch) -> i64 {
    i64::from(epoch)
}

fn epoch_from(v: i64) -> Result<Epoch, LedgerError> {
    Epoch::try_from(v).map_err(|_| LedgerError::Corrupt("epoch out of range"))
}

/// Decides and commits `offers` in order, in one transaction on `client`. `Err`: the
/// transaction failed and nothing in it happened (or, if the connection was lost at the
/// commit, may have: a retry finds those sales already made and answers them again).
pub(super) async fn sell_batch(
    client: &mut pg::Client,
    rules: &Rules,
    offers: &[&Offer],
) -> Result<Vec<Result<Sold, SaleError>>, pg::Error> {
    let statements = prepare(client).await?;
    let [lock_channels, lock_devices, read_epochs, read_spent, read_sales, write_epochs, write_spent, write_sales, write_devices, drop_unused] =
        &statements[..]
    else {
        unreachable!("one statement each");
    };
    let channels: Vec<i64> = offers
        .iter()
        .map(|o| to_sql(o.authorized.receipt().channel.0))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let devices: Vec<&str> = offers
        .iter()
        .map(|o| o.device.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (mut ec, mut ee) = (Vec::new(), Vec::new());
    let (mut sc, mut se, mut ss) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ac, mut ae, mut aa) = (Vec::new(), Vec::new(), Vec::new());
    for o in offers {
        let r = o.authorized.receipt();
        let (c, e) = (to_sql(r.channel.0), epoch_sql(r.epoch));
        ec.push(c);
        ee.push(e);
        sc.push(c);
        se.push(e);
        ss.push(o.authorized.signer().0.to_vec());
        ac.push(c);
        ae.push(e);
        aa.push(amount_bytes(r.amount).to_vec());
    }
    let tx = client.transaction().await?;
    // One round trip: the locks first (statements run in the order sent), then the
    // reads, each with a snapshot taken after the locks.
    let (p1, p2, p3, p4, p5): (
        Params<'_, 1>,
        Params<'_, 1>,
        Params<'_, 2>,
        Params<'_, 3>,
        Params<'_, 3>,
    ) = (
        [&channels],
        [&devices],
        [&ec, &ee],
        [&sc, &se, &ss],
        [&ac, &ae, &aa],
    );
    let (channel_rows, device_rows, epoch_rows, spent_rows, sale_rows) = futures::try_join!(
        tx.query(lock_channels, &p1),
        tx.query(lock_devices, &p2),
        tx.query(read_epochs, &p3),
        tx.query(read_spent, &p4),
        tx.query(read_sales, &p5),
    )?;
    let decided = (|| -> Result<_, LedgerError> {
        let mut held = Preloaded::default();
        for row in channel_rows {
            let channel = ChannelId(from_sql(row.get(0)));
            let stopped: Option<i64> = row.get(2);
            held.stops
                .insert(channel, (row.get(1), stopped.map(epoch_from).transpose()?));
            if row.get::<_, bool>(3) {
                held.inserted.insert(channel);
            }
        }
        for row in device_rows {
            held.counters
                .insert(row.get(0), from_sql(row.get::<_, i64>(1)));
        }
        for row in epoch_rows {
            held.totals.insert(
                (ChannelId(from_sql(row.get(0))), epoch_from(row.get(1))?),
                amount_from(row.get(2))?,
            );
        }
        for row in spent_rows {
            let signer = key_from(row.get(2))?;
            held.spent.insert(
                (
                    ChannelId(from_sql(row.get(0))),
                    epoch_from(row.get(1))?,
                    signer.0,
                ),
                amount_from(row.get(3))?,
            );
        }
        for row in sale_rows {
            let record = SaleRecord {
                channel: ChannelId(from_sql(row.get(0))),
                epoch: epoch_from(row.get(1))?,
                new_total: amount_from(row.get(2))?,
                device: row.get(3),
                first_counter: from_sql(row.get(4)),
                slots: from_sql(row.get(5)),
                signer: key_from(row.get(6))?,
                secret_digest: digest_from(row.get(7))?,
            };
            held.sales
                .insert((record.channel, record.epoch, record.new_total), record);
        }
        let mut outcomes = Vec::with_capacity(offers.len());
        for offer in offers {
            let id = offer.authorized.receipt().channel;
            outcomes.push(sell_in(&mut held, offer, |spent| {
                check_terms(
                    &rules.our_account,
                    &rules.tariff,
                    id,
                    &offer.channel,
                    offer.now,
                    spent,
                    &offer.authorized,
                )
            })?);
        }
        Ok((held, outcomes))
    })();
    let (mut held, outcomes) = match decided {
        Ok(decided) => decided,
        // A row this code did not write: nothing is sold, every offer hears why.
        Err(e) => {
            let reason = e.to_string();
            return Ok(offers
                .iter()
                .map(|_| Err(LedgerError::Unavailable(reason.clone()).into()))
                .collect());
        }
    };
    // The writes: the final best receipt, spending and counter of each key.
    let mut epochs: BTreeMap<(i64, i64), EpochRow> = BTreeMap::new();
    let mut spent: BTreeMap<(i64, i64, Vec<u8>), Vec<u8>> = BTreeMap::new();
    let mut counters: BTreeMap<String, i64> = BTreeMap::new();
    let mut sales = SalesColumns::default();
    for sale in &held.new {
        let r = &sale.record;
        let (c, e) = (to_sql(r.channel.0), epoch_sql(r.epoch));
        epochs.insert(
            (c, e),
            (
                amount_bytes(r.new_total).to_vec(),
                sale.signature.0.to_vec(),
                sale.proof.as_ref().map(Encode::encode),
            ),
        );
        spent.insert(
            (c, e, r.signer.0.to_vec()),
            amount_bytes(sale.spent).to_vec(),
        );
        counters.insert(r.device.clone(), to_sql(sale.next_counter));
        sales.push(r);
        held.inserted.remove(&r.channel);
    }
    let unused: Vec<i64> = held.inserted.iter().map(|c| to_sql(c.0)).collect();
    let (epoch_c, epoch_e, epoch_t, epoch_s, epoch_p) = epochs.into_iter().fold(
        (vec![], vec![], vec![], vec![], vec![]),
        |mut v, ((c, e), (t, s, p))| {
            v.0.push(c);
            v.1.push(e);
            v.2.push(t);
            v.3.push(s);
            v.4.push(p);
            v
        },
    );
    let (spent_c, spent_e, spent_s, spent_a) =
        spent
            .into_iter()
            .fold((vec![], vec![], vec![], vec![]), |mut v, ((c, e, s), a)| {
                v.0.push(c);
                v.1.push(e);
                v.2.push(s);
                v.3.push(a);
                v
            });
    let (device_names, device_counters): (Vec<String>, Vec<i64>) = counters.into_iter().unzip();
    if !held.new.is_empty() || !unused.is_empty() {
        let w1: Params<'_, 5> = [&epoch_c, &epoch_e, &epoch_t, &epoch_s, &epoch_p];
        let w2: Params<'_, 4> = [&spent_c, &spent_e, &spent_s, &spent_a];
        let w3: Params<'_, 8> = [
            &sales.channel,
            &sales.epoch,
            &sales.total,
            &sales.device,
            &sales.first,
            &sales.slots,
            &sales.signer,
            &sales.digest,
        ];
        let w4: Params<'_, 2> = [&device_names, &device_counters];
        let w5: Params<'_, 1> = [&unused];
        futures::try_join!(
            tx.execute(write_epochs, &w1),
            tx.execute(write_spent, &w2),
            tx.execute(write_sales, &w3),
            tx.execute(write_devices, &w4),
            tx.execute(drop_unused, &w5),
        )?;
    }
    tx.commit().await?;
    Ok(outcomes
        .into_iter()
        .zip(offers)
        .map(|(outcome, offer)| match outcome {
            Ok(SellOutcome::Sold(sale)) => Ok(Sold { sale, fresh: true }),
            Ok(SellOutcome::AlreadySold(sale)) => {
                let total = held
                    .totals
                    .get(&(sale.channel, sale.epoch))
                    .copied()
                    .unwrap_or(0);
                retry(sale, offer, || Ok(total))
            }
            Err(Refused::Rule(e)) => Err(e.into()),
            Err(Refused::Ledger(e)) => Err(e.into()),
        })
        .collect())
}

async fn prepare(client: &pg::Client) -> Result<Vec<pg::Statement>, pg::Error> {
    let mut statements = Vec::with_capacity(STATEMENTS.len());
    for sql in STATEMENTS {
        statements.push(client.prepare_cached(sql).await?);
    }
    Ok(statements)
}

/// The `sales` rows to insert, column by column (for `unnest`).
#[derive(Default)]
struct SalesColumns {
    channel: Vec<i64>,
    epoch: Vec<i64>,
    total: Vec<Vec<u8>>,
    device: Vec<String>,
    first: Vec<i64>,
    slots: Vec<i64>,
    signer: Vec<Vec<u8>>,
    digest: Vec<Option<Vec<u8>>>,
}

impl SalesColumns {
    fn push(&mut self, r: &SaleRecord) {
        self.channel.push(to_sql(r.channel.0));
        self.epoch.push(epoch_sql(r.epoch));
        self.total.push(amount_bytes(r.new_total).to_vec());
        self.device.push(r.device.clone());
        self.first.push(to_sql(r.first_counter));
        self.slots.push(to_sql(r.slots));
        self.signer.push(r.signer.0.to_vec());
        self.digest.push(r.secret_digest.map(|d| d.to_vec()));
    }
}
