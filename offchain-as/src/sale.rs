//! One sale: the protocol's purchase rule, the ledger's durable commit, then the OTPs.
use crate::ledger::{
    Decision, Ledger, LedgerError, SaleRecord, SaleRequest, SellError, SellOutcome,
};
use protocol::crypto::backend::{Libsecp256k1, SoftHasher};
use protocol::hotp::{hotp, Digits, HmacSha256, Otp};
use protocol::{
    authorize, check_terms, AccountId32, ChannelView, Domain, MembershipProof, PublicKey,
    PurchaseError, Receipt, Signature, Tariff,
};
use std::collections::BTreeMap;

/// The secret an AS shares with one device.
#[derive(Clone)]
pub struct DeviceKey {
    pub key: Vec<u8>,
    pub digits: Digits,
}

/// Why no OTP was issued. Nothing changed in the ledger.
#[derive(Debug, thiserror::Error)]
pub enum SaleError {
    #[error(transparent)]
    Purchase(#[from] PurchaseError),
    #[error("unknown device {0:?}")]
    UnknownDevice(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl SaleError {
    /// Stable machine-readable code for API clients.
    pub fn code(&self) -> &'static str {
        match self {
            SaleError::Purchase(e) => e.code(),
            SaleError::UnknownDevice(_) => "unknown_device",
            SaleError::Ledger(LedgerError::Closing(_)) => "channel_closing",
            SaleError::Ledger(_) => "internal",
        }
    }
}

/// The slots a receipt bought, with one OTP per slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoldSlots {
    pub sale: SaleRecord,
    /// `otps[i]` is the device's HOTP for counter `sale.first_counter + i`.
    pub otps: Vec<Otp>,
    /// False when this repeats an earlier sale (a retried request): nothing was charged.
    pub fresh: bool,
}

/// What the AS sells and to whom it is paid.
pub struct Seller {
    pub our_account: AccountId32,
    pub domain: Domain,
    pub tariff: Tariff,
    pub devices: BTreeMap<String, DeviceKey>,
}

/// One receipt offered for slots on one device.
#[derive(Debug, Clone, Copy)]
pub struct Offer<'a> {
    pub device: &'a str,
    pub receipt: &'a Receipt,
    pub signature: &'a Signature,
    pub proof: Option<&'a MembershipProof>,
}

/// An offer whose signature has been checked against its channel as read at block `now`:
/// what [`Seller::sell_checked`] needs, owned so it can wait in a commit queue.
#[derive(Debug, Clone)]
pub struct CheckedOffer {
    pub device: String,
    pub receipt: Receipt,
    pub signature: Signature,
    pub proof: Option<MembershipProof>,
    pub channel: ChannelView,
    pub now: u32,
    pub signer: PublicKey,
}

impl Seller {
    /// Checks what needs no ledger: the device is ours, the channel is open on chain and
    /// the signature is the channel's (a key recovery: the expensive part, run by each
    /// request in parallel before the ledger is touched).
    pub fn check(
        &self,
        channel: Option<&ChannelView>,
        now: u32,
        offer: &Offer<'_>,
    ) -> Result<CheckedOffer, SaleError> {
        if !self.devices.contains_key(offer.device) {
            return Err(SaleError::UnknownDevice(offer.device.to_owned()));
        }
        let channel = channel.ok_or(PurchaseError::ChannelNotFound)?;
        let signer = authorize::<SoftHasher, Libsecp256k1>(
            &channel.authority,
            &self.domain,
            offer.receipt,
            offer.signature,
            offer.proof,
        )
        .map_err(PurchaseError::Unauthorized)?;
        Ok(CheckedOffer {
            device: offer.device.to_owned(),
            receipt: *offer.receipt,
            signature: *offer.signature,
            proof: offer.proof.cloned(),
            channel: *channel,
            now,
            signer,
        })
    }

    /// Sells slots for `offer`, given `channel` as read from the chain at block `now`.
    /// The receipt and consumed counters are durable before any OTP is computed.
    pub fn sell(
        &self,
        ledger: &mut Ledger,
        channel: Option<&ChannelView>,
        now: u32,
        offer: &Offer<'_>,
    ) -> Result<SoldSlots, SaleError> {
        let checked = self.check(channel, now, offer)?;
        let mut sold = self.sell_checked(ledger, std::slice::from_ref(&checked))?;
        sold.pop().expect("one offer, one outcome")
    }

    /// Sells checked offers in order under one durable commit (see
    /// [`Ledger::sell_batch`]). `Err` means the commit failed and nothing was sold.
    pub fn sell_checked(
        &self,
        ledger: &mut Ledger,
        offers: &[CheckedOffer],
    ) -> Result<Vec<Result<SoldSlots, SaleError>>, SaleError> {
        let requests: Vec<SaleRequest<'_>> = offers
            .iter()
            .map(|o| SaleRequest {
                channel: o.receipt.channel,
                amount: o.receipt.amount,
                device: &o.device,
                signature: &o.signature,
                proof: o.proof.as_ref(),
            })
            .collect();
        let outcomes = ledger.sell_batch(&requests, |i, total| {
            let o = &offers[i];
            check_terms(
                &self.our_account,
                &self.tariff,
                &o.channel,
                o.now,
                total,
                o.receipt.amount,
            )
            .map(|slots| Decision {
                slots,
                signer: o.signer,
            })
        })?;
        Ok(outcomes
            .into_iter()
            .zip(offers)
            .map(|(outcome, offer)| {
                let (sale, fresh) = match outcome {
                    Ok(SellOutcome::Sold(sale)) => (sale, true),
                    // In a group every member signs "total + price": the same amount
                    // from another member is a lost race, not a retry, and must not get
                    // the winner's OTPs. A retry is matched on the recovered signer,
                    // never on signature bytes.
                    Ok(SellOutcome::AlreadySold(sale)) if sale.signer != offer.signer => {
                        let current_total = ledger.total(offer.receipt.channel)?;
                        return Err(PurchaseError::StaleTotal { current_total }.into());
                    }
                    Ok(SellOutcome::AlreadySold(sale)) => (sale, false),
                    Err(SellError::Refused(e)) => return Err(e.into()),
                    Err(SellError::Ledger(e)) => return Err(e.into()),
                };
                let otps = self.otps(&sale)?;
                Ok(SoldSlots { sale, otps, fresh })
            })
            .collect())
    }

    fn otps(&self, sale: &SaleRecord) -> Result<Vec<Otp>, SaleError> {
        let device = self
            .devices
            .get(&sale.device)
            .ok_or_else(|| SaleError::UnknownDevice(sale.device.clone()))?;
        Ok((0..sale.slots)
            .map(|i| hotp::<HmacSha256>(&device.key, sale.first_counter + i, device.digits))
            .collect())
    }
}
