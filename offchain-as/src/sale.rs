//! What the AS sells and how an offer becomes a sale: the protocol's cheap checks
//! ([`protocol::screen`]) first, then the signature ([`protocol::authorize`], the costly
//! part, run by each request in parallel), then the ledger thread's commit
//! ([`crate::ledger::Ledger::sell`]), then the tokens, derived outside the ledger thread
//! and at most `max_slots` of them.
use crate::ledger::{Offer, SaleError, SaleRecord};
use protocol::crypto::backend::{Libsecp256k1, SoftHasher};
use protocol::hotp::{DeviceKey, Digits, Token};
use protocol::{
    authorize, screen, AccountId32, Balance, Channel, Domain, MembershipProof, PurchaseError,
    Receipt, Signature, Tariff,
};
use std::collections::BTreeMap;

/// A device the AS sells slots of, with the key it shares with it.
#[derive(Clone)]
pub struct DeviceTerms {
    pub key: DeviceKey,
    pub digits: Digits,
    pub slot_seconds: u64,
    /// The device's anti-replay window: a token stays good until one issued this many
    /// counters after it has been granted.
    pub replay_window: u64,
}

/// The AS's side of every sale.
pub struct Seller {
    pub our_account: AccountId32,
    pub domain: Domain,
    pub tariff: Tariff,
    pub devices: BTreeMap<String, DeviceTerms>,
}

/// Why an offer was refused before the ledger saw it.
#[derive(Debug, thiserror::Error)]
pub enum OfferError {
    #[error("unknown device {0:?}")]
    UnknownDevice(String),
    #[error(transparent)]
    Purchase(#[from] PurchaseError),
}

/// A receipt offered for slots on one device.
#[derive(Debug, Clone)]
pub struct Request {
    pub device: String,
    pub receipt: Receipt,
    pub signature: Signature,
    pub proof: Option<MembershipProof>,
}

impl Seller {
    /// Checks an offer against `channel` as it stands at block `now` (`None`: no such
    /// channel): the cheap rules first, given the running total `seen` already committed,
    /// then the signature. What comes out goes to the ledger thread for the final rule.
    pub fn check(
        &self,
        request: Request,
        channel: Option<&Channel>,
        now: u32,
        seen: Balance,
    ) -> Result<Offer, OfferError> {
        if !self.devices.contains_key(&request.device) {
            return Err(OfferError::UnknownDevice(request.device));
        }
        let channel = channel.ok_or(PurchaseError::ChannelNotFound)?;
        screen(
            &self.our_account,
            &self.tariff,
            channel,
            now,
            &request.receipt,
            seen,
        )?;
        let authorized = authorize::<SoftHasher, Libsecp256k1>(
            &channel.authority,
            &self.domain,
            &request.receipt,
            &request.signature,
            request.proof.as_ref(),
        )
        .map_err(PurchaseError::Unauthorized)?;
        Ok(Offer {
            id: request.receipt.channel,
            channel: *channel,
            now,
            authorized,
            device: request.device,
            signature: request.signature,
            proof: request.proof,
        })
    }

    /// Whether `signature` over `receipt` is by `signer`: how a retry of a recorded sale is
    /// recognised when the channel itself is gone (closed since).
    pub fn signed_by(
        &self,
        receipt: &Receipt,
        signature: &Signature,
        signer: &protocol::PublicKey,
    ) -> bool {
        receipt
            .recover_signer::<SoftHasher, Libsecp256k1>(&self.domain, signature)
            .is_ok_and(|key| key == *signer)
    }

    /// The tokens of a sale: one per slot, for its device's consecutive counters.
    pub fn tokens(&self, sale: &SaleRecord) -> Result<Vec<String>, SaleError> {
        let device = self.devices.get(&sale.device).ok_or_else(|| {
            SaleError::Ledger(crate::ledger::LedgerError::UnknownDevice(
                sale.device.clone(),
            ))
        })?;
        Ok((0..sale.slots)
            .map(|i| Token::issue(&device.key, sale.first_counter + i, device.digits).to_string())
            .collect())
    }

    pub fn slot_seconds(&self, device: &str) -> u64 {
        self.devices.get(device).map_or(0, |d| d.slot_seconds)
    }
}
