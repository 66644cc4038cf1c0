//! One sale's steps, the same on every backend: what the ledger must know of the channel,
//! the signer and the device, in which order it asks, and what it writes. A backend
//! provides the reads and the write ([`SaleTx`]) inside its own transaction, with the
//! channel's and the device's rows serialized against every other writer; the rules are
//! written once, here.
use super::store::{Refused, SaleRecord, SellOutcome};
use super::{LedgerError, Offer};
use protocol::{Balance, ChannelId, Epoch, MembershipProof, PublicKey, Purchase, Signature, Spent};

/// Everything one new sale writes: the sale, the channel's new best receipt, the signer's
/// spending and the device's next counter.
#[derive(Debug, Clone)]
pub(super) struct NewSale {
    /// The sale as it is recorded.
    pub(super) record: SaleRecord,
    /// The receipt's signature (the new best receipt of the channel's epoch).
    pub(super) signature: Signature,
    /// Its membership proof (group channels).
    pub(super) proof: Option<MembershipProof>,
    /// What the signer has added to the epoch's total, this sale included.
    pub(super) spent: Balance,
    /// The device's next counter after it.
    pub(super) next_counter: u64,
}

/// What a sale reads and writes, inside a backend's transaction.
pub(super) trait SaleTx {
    /// The earlier sale of exactly this channel, epoch and amount.
    fn sale(
        &mut self,
        channel: ChannelId,
        epoch: Epoch,
        amount: Balance,
    ) -> Result<Option<SaleRecord>, LedgerError>;
    /// Whether `channel` is closing, and up to which epoch its sales stopped.
    fn stops(&mut self, channel: ChannelId) -> Result<(bool, Option<Epoch>), LedgerError>;
    /// The running total of `channel` in `epoch` (0 before its first sale).
    fn total(&mut self, channel: ChannelId, epoch: Epoch) -> Result<Balance, LedgerError>;
    /// What `signer` has added to that total.
    fn spent(
        &mut self,
        channel: ChannelId,
        epoch: Epoch,
        signer: &PublicKey,
    ) -> Result<Balance, LedgerError>;
    /// The next counter of `device` (`None`: no such device).
    fn counter(&mut self, device: &str) -> Result<Option<u64>, LedgerError>;
    /// Writes a decided sale. An error leaves the transaction to be aborted.
    fn record(&mut self, sale: &NewSale) -> Result<(), LedgerError>;
}

/// One sale inside an open transaction. The outer `Err` is a database failure, which may
/// leave this request half written: the caller must abort the transaction. Every refusal
/// (inner `Err`) is decided before the first write, so it changes nothing.
pub(super) fn sell_in<T: SaleTx, E>(
    tx: &mut T,
    offer: &Offer,
    decide: impl FnOnce(Spent) -> Result<Purchase, E>,
) -> Result<Result<SellOutcome, Refused<E>>, LedgerError> {
    let refuse = |e: LedgerError| Ok(Err(Refused::Ledger(e)));
    let receipt = *offer.authorized.receipt();
    if let Some(earlier) = tx.sale(receipt.channel, receipt.epoch, receipt.amount)? {
        return Ok(Ok(SellOutcome::AlreadySold(earlier)));
    }
    let (closing, stopped) = tx.stops(receipt.channel)?;
    if closing {
        return refuse(LedgerError::Closing(receipt.channel));
    }
    if stopped.is_some_and(|e| receipt.epoch <= e) {
        return refuse(LedgerError::EpochEnded {
            channel: receipt.channel,
            epoch: receipt.epoch,
        });
    }
    let total = tx.total(receipt.channel, receipt.epoch)?;
    let signer = offer.authorized.signer();
    let by_signer = tx.spent(receipt.channel, receipt.epoch, &signer)?;
    let purchase = match decide(Spent { total, by_signer }) {
        Ok(purchase) => purchase,
        Err(e) => return Ok(Err(Refused::Rule(e))),
    };
    let Some(first_counter) = tx.counter(&offer.device)? else {
        return refuse(LedgerError::UnknownDevice(offer.device.clone()));
    };
    let Some(next_counter) = first_counter.checked_add(purchase.slots) else {
        return refuse(LedgerError::CountersExhausted {
            device: offer.device.clone(),
        });
    };
    let signed = offer.authorized.signed();
    let sale = NewSale {
        record: SaleRecord {
            channel: receipt.channel,
            epoch: receipt.epoch,
            new_total: purchase.new_total,
            device: offer.device.clone(),
            first_counter,
            slots: purchase.slots,
            signer,
            secret_digest: Some(offer.secret_digest),
        },
        signature: signed.signature,
        proof: signed.proof.clone(),
        spent: by_signer.saturating_add(purchase.added()),
        next_counter,
    };
    // Writes from here on: any error aborts the batch.
    tx.record(&sale)?;
    Ok(Ok(SellOutcome::Sold(sale.record)))
}
