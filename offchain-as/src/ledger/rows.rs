//! Rows of the ledger's tables: how amounts, ids and keys are stored, and the queries
//! and writes of one sale, used inside [`super::Store`]'s transactions.
use super::store::{Refused, SaleRecord, SellOutcome};
use super::{LedgerError, Offer};
use parity_scale_codec::{Decode, Encode};
use protocol::{
    Balance, ChannelId, Epoch, MembershipProof, PublicKey, Purchase, Receipt, Signature,
    SignedReceipt, Spent,
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

fn key_from(bytes: Vec<u8>) -> Result<PublicKey, LedgerError> {
    Ok(PublicKey(bytes.try_into().map_err(|_| {
        LedgerError::Corrupt("signer is not 33 bytes")
    })?))
}

fn digest_from(bytes: Option<Vec<u8>>) -> Result<Option<[u8; 32]>, LedgerError> {
    bytes
        .map(|b| {
            b.try_into()
                .map_err(|_| LedgerError::Corrupt("secret digest is not 32 bytes"))
        })
        .transpose()
}

/// The epoch up to which sales of `channel` have stopped, and whether it is closing.
fn stops(tx: &Connection, channel: ChannelId) -> Result<(bool, Option<Epoch>), LedgerError> {
    Ok(tx
        .prepare_cached("SELECT closing, stopped_epoch FROM channels WHERE channel = ?1")?
        .query_row(params![to_sql(channel.0)], |row| {
            Ok((row.get::<_, bool>(0)?, row.get::<_, Option<u32>>(1)?))
        })
        .optional()?
        .unwrap_or((false, None)))
}

/// One sale inside an open transaction (see [`super::Store::sell_batch`]). The outer
/// `Err` is a database failure, which may leave this request half written: the caller
/// must abort the transaction. Every refusal (inner `Err`) is decided before the first
/// write.
pub(super) fn sell_in<E>(
    tx: &Connection,
    offer: &Offer,
    decide: impl FnOnce(Spent) -> Result<Purchase, E>,
) -> Result<Result<SellOutcome, Refused<E>>, LedgerError> {
    let refuse = |e: LedgerError| Ok(Err(Refused::Ledger(e)));
    let receipt = *offer.authorized.receipt();
    let channel = to_sql(receipt.channel.0);
    if let Some(earlier) = sale_in(tx, receipt.channel, receipt.epoch, receipt.amount)? {
        return Ok(Ok(SellOutcome::AlreadySold(earlier)));
    }
    let (closing, stopped) = stops(tx, receipt.channel)?;
    if closing {
        return refuse(LedgerError::Closing(receipt.channel));
    }
    if stopped.is_some_and(|e| receipt.epoch <= e) {
        return refuse(LedgerError::EpochEnded {
            channel: receipt.channel,
            epoch: receipt.epoch,
        });
    }
    let total = best_in(tx, receipt.channel, receipt.epoch)?.map_or(0, |b| b.receipt.amount);
    let signer = offer.authorized.signer();
    let by_signer = tx
        .prepare_cached(
            "SELECT amount FROM spent WHERE channel = ?1 AND epoch = ?2 AND signer = ?3",
        )?
        .query_row(
            params![channel, receipt.epoch, signer.0.as_slice()],
            |row| row.get::<_, Vec<u8>>(0),
        )
        .optional()?
        .map(amount_from)
        .transpose()?
        .unwrap_or(0);
    let purchase = match decide(Spent { total, by_signer }) {
        Ok(purchase) => purchase,
        Err(e) => return Ok(Err(Refused::Rule(e))),
    };
    let Some(first_counter) = tx
        .prepare_cached("SELECT next_counter FROM devices WHERE device = ?1")?
        .query_row(params![offer.device], |row| row.get::<_, i64>(0))
        .optional()?
        .map(from_sql)
    else {
        return refuse(LedgerError::UnknownDevice(offer.device.clone()));
    };
    let Some(next) = first_counter.checked_add(purchase.slots) else {
        return refuse(LedgerError::CountersExhausted {
            device: offer.device.clone(),
        });
    };
    // Writes from here on: any error aborts the batch.
    tx.prepare_cached("UPDATE devices SET next_counter = ?2 WHERE device = ?1")?
        .execute(params![offer.device, to_sql(next)])?;
    tx.prepare_cached("INSERT OR IGNORE INTO channels (channel) VALUES (?1)")?
        .execute(params![channel])?;
    let signed = offer.authorized.signed();
    tx.prepare_cached(
        "INSERT INTO epochs (channel, epoch, total, signature, proof) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (channel, epoch) DO UPDATE SET
             total = excluded.total, signature = excluded.signature, proof = excluded.proof",
    )?
    .execute(params![
        channel,
        receipt.epoch,
        amount_bytes(purchase.new_total).as_slice(),
        signed.signature.0.as_slice(),
        signed.proof.as_ref().map(|p| p.encode()),
    ])?;
    tx.prepare_cached(
        "INSERT INTO spent (channel, epoch, signer, amount) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (channel, epoch, signer) DO UPDATE SET amount = excluded.amount",
    )?
    .execute(params![
        channel,
        receipt.epoch,
        signer.0.as_slice(),
        amount_bytes(by_signer.saturating_add(purchase.added())).as_slice(),
    ])?;
    tx.prepare_cached(
        "INSERT INTO sales
             (channel, epoch, new_total, device, first_counter, slots, signer, secret_digest)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        channel,
        receipt.epoch,
        amount_bytes(purchase.new_total).as_slice(),
        offer.device,
        to_sql(first_counter),
        to_sql(purchase.slots),
        signer.0.as_slice(),
        offer.secret_digest.as_slice(),
    ])?;
    Ok(Ok(SellOutcome::Sold(SaleRecord {
        channel: receipt.channel,
        epoch: receipt.epoch,
        new_total: purchase.new_total,
        device: offer.device.clone(),
        first_counter,
        slots: purchase.slots,
        signer,
        secret_digest: Some(offer.secret_digest),
    })))
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
