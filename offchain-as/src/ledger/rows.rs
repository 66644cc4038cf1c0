//! Rows of the ledger's tables: how amounts, ids and keys are stored, and the queries
//! and writes of one sale, used inside [`super::store::Store`]'s transactions.
use super::store::{BestReceipt, Refused, SaleRecord, SaleRequest, SellOutcome};
use super::LedgerError;
use parity_scale_codec::{Decode, Encode};
use protocol::{Balance, ChannelId, Epoch, MembershipProof, PublicKey, Signature, Spent};
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

/// One sale inside an open transaction (see [`Store::sell_batch`]). The outer `Err` is a
/// database failure, which may leave this request half written: the caller must abort the
/// transaction. Every refusal (inner `Err`) is decided before the first write.
pub(super) fn sell_in<E>(
    tx: &Connection,
    request: &SaleRequest<'_>,
    decide: impl FnOnce(Spent) -> Result<u64, E>,
) -> Result<Result<SellOutcome, Refused<E>>, LedgerError> {
    let refuse = |e: LedgerError| Ok(Err(Refused::Ledger(e)));
    let channel = to_sql(request.channel.0);
    if let Some(earlier) = sale_in(tx, request.channel, request.epoch, request.amount)? {
        return Ok(Ok(SellOutcome::AlreadySold(earlier)));
    }
    let closing = tx
        .prepare_cached("SELECT closing FROM channels WHERE channel = ?1")?
        .query_row(params![channel], |row| row.get::<_, bool>(0))
        .optional()?
        .unwrap_or(false);
    if closing {
        return refuse(LedgerError::Closing(request.channel));
    }
    let total = best_in(tx, request.channel, request.epoch)?.map_or(0, |b| b.amount);
    let by_signer = tx
        .prepare_cached(
            "SELECT amount FROM spent WHERE channel = ?1 AND epoch = ?2 AND signer = ?3",
        )?
        .query_row(
            params![channel, request.epoch, request.signer.0.as_slice()],
            |row| row.get::<_, Vec<u8>>(0),
        )
        .optional()?
        .map(amount_from)
        .transpose()?
        .unwrap_or(0);
    let slots = match decide(Spent { total, by_signer }) {
        Ok(slots) => slots,
        Err(e) => return Ok(Err(Refused::Rule(e))),
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
        .checked_add(slots)
        .filter(|n| *n <= i64::MAX as u64)
    else {
        return refuse(LedgerError::CountersExhausted {
            device: request.device.to_owned(),
        });
    };
    let added = request.amount.saturating_sub(total);
    // Writes from here on: any error aborts the batch.
    tx.prepare_cached("UPDATE devices SET next_counter = ?2 WHERE device = ?1")?
        .execute(params![request.device, to_sql(next)])?;
    tx.prepare_cached("INSERT OR IGNORE INTO channels (channel) VALUES (?1)")?
        .execute(params![channel])?;
    tx.prepare_cached(
        "INSERT INTO epochs (channel, epoch, total, signature, proof) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (channel, epoch) DO UPDATE SET
             total = excluded.total, signature = excluded.signature, proof = excluded.proof",
    )?
    .execute(params![
        channel,
        request.epoch,
        amount_bytes(request.amount).as_slice(),
        request.signature.0.as_slice(),
        request.proof.map(|p| p.encode()),
    ])?;
    tx.prepare_cached(
        "INSERT INTO spent (channel, epoch, signer, amount) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (channel, epoch, signer) DO UPDATE SET amount = excluded.amount",
    )?
    .execute(params![
        channel,
        request.epoch,
        request.signer.0.as_slice(),
        amount_bytes(by_signer.saturating_add(added)).as_slice(),
    ])?;
    tx.prepare_cached(
        "INSERT INTO sales (channel, epoch, new_total, device, first_counter, slots, signer)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        channel,
        request.epoch,
        amount_bytes(request.amount).as_slice(),
        request.device,
        to_sql(first_counter),
        to_sql(slots),
        request.signer.0.as_slice(),
    ])?;
    Ok(Ok(SellOutcome::Sold(SaleRecord {
        channel: request.channel,
        epoch: request.epoch,
        new_total: request.amount,
        device: request.device.to_owned(),
        first_counter,
        slots,
        signer: request.signer,
    })))
}

pub(super) fn best_in(
    conn: &Connection,
    channel: ChannelId,
    epoch: Epoch,
) -> Result<Option<BestReceipt>, LedgerError> {
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
    let signature: [u8; 65] = signature
        .try_into()
        .map_err(|_| LedgerError::Corrupt("signature is not 65 bytes"))?;
    let proof = proof
        .map(|bytes| MembershipProof::decode(&mut bytes.as_slice()))
        .transpose()
        .map_err(|_| LedgerError::Corrupt("undecodable membership proof"))?;
    Ok(Some(BestReceipt {
        channel,
        epoch,
        amount: amount_from(total)?,
        signature: Signature(signature),
        proof,
    }))
}

pub(super) fn sale_in(
    conn: &Connection,
    channel: ChannelId,
    epoch: Epoch,
    amount: Balance,
) -> Result<Option<SaleRecord>, LedgerError> {
    let row = conn
        .prepare_cached(
            "SELECT device, first_counter, slots, signer FROM sales
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
                ))
            },
        )
        .optional()?;
    let Some((device, first_counter, slots, signer)) = row else {
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
    }))
}
