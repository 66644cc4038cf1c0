//! One sale: the protocol's purchase rule, the ledger's durable commit, then the OTPs.
use crate::ledger::{
    Decision, Ledger, LedgerError, SaleRecord, SaleRequest, SellError, SellOutcome,
};
use protocol::crypto::backend::{Libsecp256k1, SoftHasher};
use protocol::hotp::{hotp, Digits, HmacSha256, Otp};
use protocol::{
    authorize, check_purchase, AccountId32, AuthError, ChannelView, Domain, MembershipProof,
    PurchaseError, PurchaseRequest, Receipt, Signature, Tariff,
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
    #[error("the retried receipt is not authorized: {0}")]
    RetryUnauthorized(AuthError),
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
            SaleError::RetryUnauthorized(_) => "unauthorized",
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

impl Seller {
    /// Sells slots for `offer`, given `channel` as read from the chain at block `now`.
    /// The receipt and consumed counters are durable before any OTP is computed.
    pub fn sell(
        &self,
        ledger: &mut Ledger,
        channel: Option<&ChannelView>,
        now: u32,
        offer: &Offer<'_>,
    ) -> Result<SoldSlots, SaleError> {
        if !self.devices.contains_key(offer.device) {
            return Err(SaleError::UnknownDevice(offer.device.to_owned()));
        }
        let purchase = PurchaseRequest {
            receipt: offer.receipt,
            signature: offer.signature,
            proof: offer.proof,
        };
        let request = SaleRequest {
            channel: offer.receipt.channel,
            amount: offer.receipt.amount,
            device: offer.device,
            signature: offer.signature,
            proof: offer.proof,
        };
        let outcome = ledger.sell(&request, |total| {
            check_purchase::<SoftHasher, Libsecp256k1>(
                &self.our_account,
                &self.domain,
                &self.tariff,
                channel,
                now,
                total,
                &purchase,
            )
            .map(|p| Decision {
                slots: p.slots,
                signer: p.signer,
            })
        });
        let (sale, fresh) = match outcome {
            Ok(SellOutcome::Sold(sale)) => (sale, true),
            Ok(SellOutcome::AlreadySold(sale)) => {
                // A retry returns the same OTPs, but only to a holder of a valid
                // signature over this receipt (never matched on signature bytes).
                let channel = channel.ok_or(PurchaseError::ChannelNotFound)?;
                let signer = authorize::<SoftHasher, Libsecp256k1>(
                    &channel.authority,
                    &self.domain,
                    offer.receipt,
                    offer.signature,
                    offer.proof,
                )
                .map_err(SaleError::RetryUnauthorized)?;
                // In a group every member signs "total + price": the same amount from
                // another member is a lost race, not a retry, and must not get the
                // winner's OTPs.
                if signer != sale.signer {
                    let current_total = ledger.total(offer.receipt.channel)?;
                    return Err(PurchaseError::StaleTotal { current_total }.into());
                }
                (sale, false)
            }
            Err(SellError::Refused(e)) => return Err(e.into()),
            Err(SellError::Ledger(e)) => return Err(e.into()),
        };
        let otps = self.otps(&sale)?;
        Ok(SoldSlots { sale, otps, fresh })
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
