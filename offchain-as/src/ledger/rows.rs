//! Rows of the ledger's SQLite tables: how amounts, ids and keys are stored, and the
//! queries and writes of one sale ([`SqliteTx`]), used inside [`super::Store`]'s
//! transactions.
use super::rule::{NewSale, SaleTx};
use super::store::SaleRecord;
use super::LedgerError;
use parity_scale_codec::{Decode, Encode};
use protocol::{
    Balance, ChannelId, Epoch, MembershipProof, PublicKey, Receipt, Signature, SignedReceipt,
};
use rusqlite::{params, Connection, OptionalExtension};

pub(super) fn amount_bytes(amount: Balance) -> [u8; 16] {
    amount.to_be_bytes()
}

pub(super) fn amount_from(bytes: Vec<u8>) -> Result<Balance, LedgerError> {
    let bytes: [u8; 16] = bytes
        .try_into()
        .map_err(|_| LedgerError::Corrupt("amount is not 16 bytes"))?;
    Ok(Balance::from_be_bytes(bytes))
}

// SQLite integers are i64; u64 ids and counters are stored as their bit pattern.
pub(super) fn to_sql(v: u64) -> i64 {
    v as i64
}

pub(super) fn from_sql(v: i64) -> u64 {
    v as u64
}

pub(super) fn key_from(bytes: Vec<u8>) -> Result<PublicKey, LedgerError> {
    Ok(PublicKey(bytes.try_into().map_err(|_| {
        LedgerError::Corrupt("signer is not 33 bytes")
    })?))
}

pub(super) fn digest_from(bytes: Option<Vec<u8>>) -> Result<Option<[u8; 32]>, LedgerError> {
    bytes
        .map(|b| {
            b.try_into()
                .map_err(|_| LedgerError::Corrupt("secret digest is not 32 bytes"))
        })
        .transpose()
}

/// A sale's reads and writes on SQLite, inside the batch's `IMMEDIATE` transaction (which
/// holds the database's one write lock: every other writer waits).
pub(super) struct SqliteTx<'a>(pub(super) &'a Connection);

impl SaleTx for SqliteTx<'_> {
    fn sale(
        &mut self,
        channel: ChannelId,
        epoch: Epoch,
        amount: Balance,
    ) -> Result<Option<SaleRecord>, LedgerError> {
        sale_in(self.0, channel, epoch, amount)
    }

    fn stops(&mut self, channel: ChannelId) -> Result<(bool, Option<Epoch>), LedgerError> {
        Ok(self
            .0
            .prepare_cached("SELECT closing, stopped_epoch FROM channels WHERE channel = ?1")?
            .query_row(params![to_sql(channel.0)], |row| {
                Ok((row.get::<_, bool>(0)?, row.get::<_, Option<u32>>(1)?))
            })
            .optional()?
            .unwrap_or((false, None)))
    }

    fn total(&mut self, channel: ChannelId, epoch: Epoch) -> Result<Balance, LedgerError> {
        Ok(best_in(self.0, channel, epoch)?.map_or(0, |b| b.receipt.amount))
    }

    fn spent(
        &mut self,
        channel: ChannelId,
        epoch: Epoch,
        signer: &PublicKey,
    ) -> Result<Balance, LedgerError> {
        self.0
            .prepare_cached(
                "SELECT amount FROM spent WHERE channel = ?1 AND epoch = ?2 AND signer = ?3",
            )?
            .query_row(
                params![to_sql(channel.0), epoch, signer.0.as_slice()],
                |row| row.get::<_, Vec<u8>>(0),
            )
            .optional()?
            .map(amount_from)
            .transpose()
            .map(Option::unwrap_or_default)
    }

    fn counter(&mut self, device: &str) -> Result<Option<u64>, LedgerError> {
        Ok(self
            .0
            .prepare_cached("SELECT next_counter FROM devices WHERE device = ?1")?
            .query_row(params![device], |row| row.get::<_, i64>(0))
            .optional()?
            .map(from_sql))
    }

    fn record(&mut self, sale: &NewSale) -> Result<(), LedgerError> {
        let tx = self.0;
        let r = &sale.record;
        let channel = to_sql(r.channel.0);
        tx.prepare_cached("UPDATE devices SET next_counter = ?2 WHERE device = ?1")?
            .execute(params![r.device, to_sql(sale.next_counter)])?;
        tx.prepare_cached("INSERT OR IGNORE INTO channels (channel) VALUES (?1)")?
            .execute(params![channel])?;
        tx.prepare_cached(
            "INSERT INTO epochs (channel, epoch, total, signature, proof) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (channel, epoch) DO UPDATE SET
                 total = excluded.total, signature = excluded.signature, proof = excluded.proof",
        )?
        .execute(params![
            channel,
            r.epoch,
            amount_bytes(r.new_total).as_slice(),
            sale.signature.0.as_slice(),
            sale.proof.as_ref().map(|p| p.encode()),
        ])?;
        tx.prepare_cached(
            "INSERT INTO spent (channel, epoch, signer, amount) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (channel, epoch, signer) DO UPDATE SET amount = excluded.amount",
        )?
        .execute(params![
            channel,
            r.epoch,
            r.signer.0.as_slice(),
            amount_bytes(sale.spent).as_slice(),
        ])?;
        tx.prepare_cached(
            "INSERT INTO sales
                 (channel, epoch, new_total, device, first_counter, slots, signer, secret_digest)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            channel,
            r.epoch,
            amount_bytes(r.new_total).as_slice(),
            r.device,
            to_sql(r.first_counter),
            to_sql(r.slots),
            r.signer.0.as_slice(),
            r.secret_digest.as_ref().map(|d| d.as_slice()),
        ])?;
        Ok(())
    }
}

pub(super) fn best_in(
    conn: &Connection,
    channel: ChannelId,
    epoch: Epoch,
) -> Result<Option<SignedReceipt>, LedgerError> {
    let row = conn
        .prepare_cached(
            "SELECT total, signature, proof FROM epochs WHERE channel = ?1 AND epoch = ?2",
        )?
        .query_row(params![to_sql(channel.0), epoch], |row| {
            Ok((
                row.get::<_, Vec<u8>>(0)?,
                row.get::<_, Vec<u8>>(1)?,
                row.get::<_, Option<Vec<u8>>>(2)?,
            ))
        })
        .optional()?;
    let Some((total, signature, proof)) = row else {
        return Ok(None);
    };
    receipt_from(channel, epoch, total, signature, proof).map(Some)
}

/// A best receipt from its `epochs` row.
pub(super) fn receipt_from(
    channel: ChannelId,
    epoch: Epoch,
    total: Vec<u8>,
    signature: Vec<u8>,
    proof: Option<Vec<u8>>,
) -> Result<SignedReceipt, LedgerError> {
    let signature: [u8; 65] = signature
        .try_into()
        .map_err(|_| LedgerError::Corrupt("signature is not 65 bytes"))?;
    let proof = proof
        .map(|bytes| MembershipProof::decode(&mut bytes.as_slice()))
        .transpose()
        .map_err(|_| LedgerError::Corrupt("undecodable membership proof"))?;
    Ok(SignedReceipt {
        receipt: Receipt {
            channel,
            epoch,
            amount: amount_from(total)?,
        },
        signature: Signature(signature),
        proof,
    })
}

pub(super) fn sale_in(
    conn: &Connection,
    channel: ChannelId,
    epoch: Epoch,
    amount: Balance,
) -> Result<Option<SaleRecord>, LedgerError> {
    let row = conn
        .prepare_cached(
            "SELECT device, first_counter, slots, signer, secret_digest FROM sales
             WHERE channel = ?1 AND epoch = ?2 AND new_total = ?3",
        )?
        .query_row(
            params![to_sql(channel.0), epoch, amount_bytes(amount).as_slice()],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, Vec<u8>>(3)?,
                    row.get::<_, Option<Vec<u8>>>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((device, first_counter, slots, signer, digest)) = row else {
        return Ok(None);
    };
    Ok(Some(SaleRecord {
        channel,
        epoch,
        new_total: amount,
        device,
        first_counter: from_sql(first_counter),
        slots: from_sql(slots),
        signer: key_from(signer)?,
        secret_digest: digest_from(digest)?,
    }))
}
