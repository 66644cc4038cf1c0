//! What the AS sells and how an offer becomes a sale: the protocol's cheap checks
//! ([`protocol::screen`]) first, then the signature ([`protocol::authorize`], the costly
//! part, run by each request in parallel), then the ledger thread's commit
//! ([`crate::ledger::Ledger::sell`]), then the tokens, derived outside the ledger thread
//! and at most `max_slots` of them.
use crate::ledger::{LedgerError, Offer, SaleError, SaleRecord};
use api::PurchaseBody;
use protocol::crypto::backend::{Libsecp256k1, SoftHasher};
use protocol::hotp::{DeviceKey, Digits, Token};
use protocol::{
    authorize, screen, AccountId32, AnyDomain, Balance, Channel, Domain, PurchaseError, Tariff,
};
use std::collections::BTreeMap;

/// A device the AS sells slots of, with the key it shares with it.
#[derive(Clone)]
pub struct DeviceTerms {
    /// The key the device checks tokens with.
    pub key: DeviceKey,
    /// Digits of its one-time passwords.
    pub digits: Digits,
    /// Seconds of access per slot.
    pub slot_seconds: u64,
    /// The device's anti-replay window: a token stays good until one issued this many
    /// counters after it has been granted.
    pub replay_window: u64,
}

/// The AS's side of every sale.
pub struct Seller {
    /// The AS's account: every channel it sells on pays it.
    pub our_account: AccountId32,
    /// What receipts are bound to, on the deployment's layer.
    pub domain: AnyDomain,
    /// The deployment's identity: its chain's genesis hash and its contract's account
    /// (on the ink! layer the receipt domain itself).
    pub identity: Domain,
    /// What it charges.
    pub tariff: Tariff,
    /// What it sells, by device name.
    pub devices: BTreeMap<String, DeviceTerms>,
}

/// Why an offer was refused before the ledger saw it.
#[derive(Debug, thiserror::Error)]
pub enum OfferError {
    /// The AS sells nothing for this device.
    #[error("unknown device {0:?}")]
    UnknownDevice(String),
    /// The purchase rule refused it.
    #[error(transparent)]
    Purchase(#[from] PurchaseError),
}

impl Seller {
    /// Checks `body` against `channel` as it stands at block `now` (`None`: no such
    /// channel): the cheap rules first, given the running total `seen` already committed,
    /// then the signature. What comes out goes to the ledger thread for the final rule.
    pub fn check(
        &self,
        body: PurchaseBody,
        channel: Option<&Channel>,
        now: u32,
        seen: Balance,
    ) -> Result<Offer, OfferError> {
        if !self.devices.contains_key(&body.device) {
            return Err(OfferError::UnknownDevice(body.device));
        }
        let channel = channel.ok_or(PurchaseError::ChannelNotFound)?;
        screen(
            &self.our_account,
            &self.tariff,
            channel,
            now,
            &body.signed.receipt,
            seen,
        )?;
        let authorized =
            authorize::<SoftHasher, Libsecp256k1>(&channel.authority, &self.domain, body.signed)
                .map_err(PurchaseError::Unauthorized)?;
        Ok(Offer {
            device: body.device,
            authorized,
            channel: *channel,
            now,
            secret_digest: body.request_secret.digest(),
        })
    }

    /// `sale` again for `body`, if `body` is a retry of it: `None` when its receipt is
    /// another signer's (in a group, another member who signed the same total lost a
    /// race: it is not a retry); the sale's tokens when the request secret is its
    /// buyer's; [`SaleError::NotTheBuyer`] when it is not (the receipt is public, the
    /// secret is not). How a retry is recognised when the offer path cannot run (the
    /// channel closed since, or the total moved past it).
    pub fn retry_of(
        &self,
        body: &PurchaseBody,
        sale: SaleRecord,
    ) -> Option<Result<crate::ledger::Sold, SaleError>> {
        let signer = body
            .signed
            .signer::<SoftHasher, Libsecp256k1>(&self.domain)
            .ok()?;
        (signer == sale.signer)
            .then(|| crate::ledger::answer_retry(sale, &body.request_secret.digest()))
    }

    /// The tokens of a sale: one per slot, for its device's consecutive counters.
    pub fn tokens(&self, sale: &SaleRecord) -> Result<Vec<String>, SaleError> {
        let device = self
            .devices
            .get(&sale.device)
            .ok_or_else(|| SaleError::Ledger(LedgerError::UnknownDevice(sale.device.clone())))?;
        Ok((0..sale.slots)
            .map(|i| Token::issue(&device.key, sale.first_counter + i, device.digits).to_string())
            .collect())
    }

    /// Seconds of access per slot of `device` (0 if unknown).
    pub fn slot_seconds(&self, device: &str) -> u64 {
        self.devices.get(device).map_or(0, |d| d.slot_seconds)
    }
}
