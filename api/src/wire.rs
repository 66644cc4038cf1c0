//! The AS's HTTP/JSON API, served by `offchain-as` and read by the `slotpay` CLI.
//!
//! | route | answer |
//! | --- | --- |
//! | `GET /v1/terms` | [`TermsReply`] |
//! | `GET /v1/channels/{id}` | [`ChannelReply`] |
//! | `POST /v1/purchase` ([`PurchaseBody`]) | [`PurchaseReply`] |
//! | any refusal | [`ApiError`] with a stable `code` |
//!
//! Balances travel as decimal strings, bytes as 0x-prefixed hex. A running total the AS
//! reports above what a client signed itself always comes with the receipt that set it
//! ([`SignedReceipt`]), so a client can check that an authorised key signed it before it
//! signs above it: the AS cannot invent a total.
use crate::codec::{from_hex, parse_amount, to_hex, CodecError};
use protocol::merkle::MAX_PROOF_DEPTH;
use protocol::{Balance, ChannelId, Epoch, MembershipProof, Receipt, Signature};
use serde::{Deserialize, Serialize};

/// Longest device name accepted.
pub const MAX_DEVICE_NAME: usize = 64;

/// A group member's cap and Merkle path, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofBody {
    pub cap: String,
    pub left_siblings: u32,
    pub siblings: Vec<String>,
}

impl ProofBody {
    pub fn new(proof: &MembershipProof) -> Self {
        Self {
            cap: proof.cap.to_string(),
            left_siblings: proof.left_siblings,
            siblings: proof.siblings.iter().map(|s| to_hex(s)).collect(),
        }
    }

    pub fn parse(&self) -> Result<MembershipProof, WireError> {
        if self.siblings.len() > MAX_PROOF_DEPTH {
            return Err(WireError::ProofTooLong);
        }
        Ok(MembershipProof {
            cap: parse_amount(&self.cap, "proof.cap")?,
            left_siblings: self.left_siblings,
            siblings: self
                .siblings
                .iter()
                .map(|s| from_hex::<32>(s, "proof.siblings"))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// A receipt with its signature (and membership proof for groups): what a purchase
/// offers, and what the AS shows to justify a running total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedReceipt {
    pub channel: u64,
    pub epoch: Epoch,
    pub amount: String,
    pub signature: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<ProofBody>,
}

impl SignedReceipt {
    pub fn new(receipt: &Receipt, signature: &Signature, proof: Option<&MembershipProof>) -> Self {
        Self {
            channel: receipt.channel.0,
            epoch: receipt.epoch,
            amount: receipt.amount.to_string(),
            signature: to_hex(&signature.0),
            proof: proof.map(ProofBody::new),
        }
    }

    pub fn parse(&self) -> Result<(Receipt, Signature, Option<MembershipProof>), WireError> {
        Ok((
            Receipt {
                channel: ChannelId(self.channel),
                epoch: self.epoch,
                amount: parse_amount(&self.amount, "amount")?,
            },
            Signature(from_hex::<65>(&self.signature, "signature")?),
            self.proof.as_ref().map(ProofBody::parse).transpose()?,
        ))
    }
}

/// `POST /v1/purchase`: a receipt offered for slots on one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurchaseBody {
    pub device: String,
    pub receipt: SignedReceipt,
}

/// A purchase body, checked and decoded.
#[derive(Debug, Clone)]
pub struct ParsedPurchase {
    pub device: String,
    pub receipt: Receipt,
    pub signature: Signature,
    pub proof: Option<MembershipProof>,
}

impl PurchaseBody {
    pub fn new(
        device: &str,
        receipt: &Receipt,
        signature: &Signature,
        proof: Option<&MembershipProof>,
    ) -> Self {
        Self {
            device: device.to_owned(),
            receipt: SignedReceipt::new(receipt, signature, proof),
        }
    }

    pub fn parse(&self) -> Result<ParsedPurchase, WireError> {
        if self.device.is_empty() || self.device.len() > MAX_DEVICE_NAME {
            return Err(WireError::Device);
        }
        let (receipt, signature, proof) = self.receipt.parse()?;
        Ok(ParsedPurchase {
            device: self.device.clone(),
            receipt,
            signature,
            proof,
        })
    }
}

/// `200` answer to a purchase: one token per slot bought.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PurchaseReply {
    pub device: String,
    pub channel: u64,
    pub epoch: Epoch,
    /// The running total this purchase raised the channel's epoch to.
    pub total: String,
    pub slots: u64,
    pub first_counter: u64,
    /// `tokens[i]` opens the device for one slot (counter `first_counter + i`), in the
    /// device's text encoding.
    pub tokens: Vec<String>,
    /// Seconds of access each token grants.
    pub slot_seconds: u64,
    /// False when this repeated an earlier purchase: nothing was charged again.
    pub fresh: bool,
}

/// A pending change of a channel's authority.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RotationReply {
    /// "account", "delegate", "group" or "revoked".
    pub authority: String,
    pub effective_at: u32,
}

/// `GET /v1/channels/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ChannelReply {
    pub channel: u64,
    /// The finalized block the channel was read at, and the best block the AS reasons with.
    pub block: u32,
    pub now: u32,
    pub deposit: String,
    pub settled: String,
    pub epoch: Epoch,
    pub expires_at: u32,
    pub notice: u32,
    /// "account", "delegate", "group" or "revoked".
    pub authority: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationReply>,
    /// The running total the AS has accepted in the current epoch: the next receipt signs
    /// total + k * price.
    pub total: String,
    /// The receipt that set `total` (absent while it is 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_receipt: Option<SignedReceipt>,
    pub price: String,
    pub closed: bool,
}

/// One device the AS sells.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DeviceTerms {
    pub id: String,
    pub slot_seconds: u64,
    pub digits: u8,
    /// A token stays good until the device has granted one issued this many counters after
    /// it (its anti-replay window).
    pub replay_window: u64,
}

/// `GET /v1/terms`: what this AS sells and where its receipts are valid.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TermsReply {
    /// The AS's account: the payee every channel must name.
    pub payee: String,
    pub contract: String,
    pub genesis_hash: String,
    pub price: String,
    pub max_slots: u64,
    pub expiry_margin_blocks: u32,
    pub min_notice_blocks: u32,
    pub devices: Vec<DeviceTerms>,
}

impl TermsReply {
    pub fn price(&self) -> Result<Balance, WireError> {
        Ok(parse_amount(&self.price, "price")?)
    }

    pub fn payee_account(&self) -> Result<protocol::AccountId32, WireError> {
        Ok(from_hex(&self.payee, "payee")?)
    }

    /// The chain and contract the AS says it serves. A client compares it with its own
    /// deployment file; it never signs for the AS's word alone.
    pub fn domain(&self) -> Result<protocol::Domain, WireError> {
        Ok(protocol::Domain {
            genesis_hash: from_hex(&self.genesis_hash, "genesis_hash")?,
            contract: from_hex(&self.contract, "contract")?,
        })
    }
}

/// Every non-2xx answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ApiError {
    pub code: String,
    pub message: String,
    /// For `stale_total`: the running total to sign above ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_total: Option<String>,
    /// ... and the receipt that set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<SignedReceipt>,
}

/// Why a request or answer is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("proof: more than {MAX_PROOF_DEPTH} siblings")]
    ProofTooLong,
    #[error("device: empty or longer than {MAX_DEVICE_NAME} bytes")]
    Device,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_purchase_round_trips_and_refuses_malformed_fields() {
        let receipt = Receipt {
            channel: ChannelId(3),
            epoch: 1,
            amount: 250,
        };
        let proof = MembershipProof {
            cap: 1000,
            left_siblings: 1,
            siblings: vec![[4; 32]],
        };
        let body = PurchaseBody::new("lock-1", &receipt, &Signature([5; 65]), Some(&proof));
        let json = serde_json::to_string(&body).unwrap();
        let parsed = serde_json::from_str::<PurchaseBody>(&json)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(parsed.receipt, receipt);
        assert_eq!(parsed.proof, Some(proof));
        let mut long = body.clone();
        long.receipt.proof.as_mut().unwrap().siblings = vec![to_hex(&[0; 32]); 33];
        assert_eq!(long.parse().unwrap_err(), WireError::ProofTooLong);
        let mut unnamed = body.clone();
        unnamed.device = String::new();
        assert_eq!(unnamed.parse().unwrap_err(), WireError::Device);
        let extra = json.replacen('{', "{\"extra\": 1, ", 1);
        assert!(serde_json::from_str::<PurchaseBody>(&extra).is_err());
    }
}
