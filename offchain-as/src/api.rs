//! The AS's HTTP/JSON wire types, shared with the client CLI.
//!
//! Balances travel as decimal strings (JSON numbers lose precision above 2^53), bytes as
//! 0x-prefixed hex. Every refusal is an [`ApiError`] with a stable `code`.
use protocol::merkle::MAX_PROOF_DEPTH;
use protocol::{AccountId32, Balance, ChannelId, Domain, MembershipProof, Receipt, Signature};
use serde::{Deserialize, Serialize};

/// `POST /v1/purchase`: a receipt offered for slots on one device.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurchaseBody {
    pub device: String,
    pub channel: u64,
    pub amount: String,
    pub signature: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<ProofBody>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofBody {
    pub left_siblings: u32,
    pub siblings: Vec<String>,
}

/// A purchase body, checked and decoded.
#[derive(Debug, Clone)]
pub struct ParsedPurchase {
    pub device: String,
    pub receipt: Receipt,
    pub signature: Signature,
    pub proof: Option<MembershipProof>,
}

/// `200` answer to a purchase: one OTP per slot bought.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PurchaseReply {
    pub device: String,
    pub channel: u64,
    pub total: String,
    pub slots: u64,
    pub first_counter: u64,
    pub otps: Vec<String>,
    /// Seconds of access each OTP grants.
    pub slot_seconds: u64,
    /// False when this repeated an earlier purchase: nothing was charged again.
    pub fresh: bool,
}

/// `GET /v1/channels/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChannelReply {
    pub channel: u64,
    pub deposit: String,
    pub expires_at: u32,
    pub block: u32,
    /// "account", "delegate" or "group".
    pub authority: String,
    /// The running total the AS has accepted: the next receipt signs total + k * price.
    pub total: String,
    pub price: String,
    pub closed: bool,
}

/// `GET /v1/terms`: what this AS sells and where receipts are valid.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TermsReply {
    pub payee: String,
    pub contract: String,
    pub genesis_hash: String,
    pub price: String,
    pub slot_seconds: u64,
    pub expiry_margin_blocks: u32,
    pub devices: Vec<String>,
}

impl TermsReply {
    /// What receipts for this AS must be bound to: its chain and contract.
    pub fn domain(&self) -> Result<Domain, BodyError> {
        Ok(Domain {
            genesis_hash: from_hex(&self.genesis_hash, "genesis_hash")?,
            contract: from_hex(&self.contract, "contract")?,
        })
    }

    /// The AS's account: the payee every channel must name.
    pub fn payee_account(&self) -> Result<AccountId32, BodyError> {
        from_hex(&self.payee, "payee")
    }
}

/// Every non-2xx answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ApiError {
    pub code: String,
    pub message: String,
    /// For `stale_total`: the running total to sign above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_total: Option<String>,
}

/// Why a request body is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("{field}: not 0x-prefixed hex of {len} bytes")]
    Hex { field: &'static str, len: usize },
    #[error("amount: not a decimal integer below 2^128")]
    Amount,
    #[error("proof: more than {MAX_PROOF_DEPTH} siblings")]
    ProofTooLong,
    #[error("device: empty or longer than 64 bytes")]
    Device,
}

pub fn to_hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

pub fn from_hex<const N: usize>(text: &str, field: &'static str) -> Result<[u8; N], BodyError> {
    let bad = BodyError::Hex { field, len: N };
    let digits = text.strip_prefix("0x").ok_or(bad.clone())?;
    let bytes = hex::decode(digits).map_err(|_| bad.clone())?;
    bytes.try_into().map_err(|_| bad)
}

pub fn parse_amount(text: &str) -> Result<Balance, BodyError> {
    // Digits only: Rust's parser would also take a leading '+'.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BodyError::Amount);
    }
    text.parse().map_err(|_| BodyError::Amount)
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
            channel: receipt.channel.0,
            amount: receipt.amount.to_string(),
            signature: to_hex(&signature.0),
            proof: proof.map(|p| ProofBody {
                left_siblings: p.left_siblings,
                siblings: p.siblings.iter().map(|s| to_hex(s)).collect(),
            }),
        }
    }

    pub fn parse(&self) -> Result<ParsedPurchase, BodyError> {
        if self.device.is_empty() || self.device.len() > 64 {
            return Err(BodyError::Device);
        }
        let proof = match &self.proof {
            None => None,
            Some(p) => {
                if p.siblings.len() > MAX_PROOF_DEPTH {
                    return Err(BodyError::ProofTooLong);
                }
                let siblings = p
                    .siblings
                    .iter()
                    .map(|s| from_hex::<32>(s, "proof.siblings"))
                    .collect::<Result<_, _>>()?;
                Some(MembershipProof {
                    left_siblings: p.left_siblings,
                    siblings,
                })
            }
        };
        Ok(ParsedPurchase {
            device: self.device.clone(),
            receipt: Receipt {
                channel: ChannelId(self.channel),
                amount: parse_amount(&self.amount)?,
            },
            signature: Signature(from_hex::<65>(&self.signature, "signature")?),
            proof,
        })
    }
}
