//! The AS's HTTP/JSON bodies, served by `offchain-as` and read by the `slotpay` CLI (see
//! [`crate::routes`] for where each is served).
//!
//! Balances travel as decimal strings, bytes as 0x-prefixed hex. The receipt in a body is
//! the protocol's own [`SignedReceipt`], so the AS decodes what the client signed, no copy
//! of it field by field. A running total the AS reports above what a client signed itself
//! always comes with the receipt that set it, so a client can check that an authorised
//! key signed it before it signs above it: the AS cannot invent a total.
use crate::codec::{from_hex, parse_amount};
use crate::error::ErrorCode;
use protocol::{Authority, Balance, ChannelId, Epoch, SignedReceipt};
use serde::{Deserialize, Serialize};

/// Longest device name accepted.
pub const MAX_DEVICE_NAME: usize = 64;

/// A secret the buyer sends with a purchase, of which the AS keeps only the digest. A
/// retry of the purchase (its answer lost) gets the sale's tokens only with the same
/// secret: a receipt alone, which the AS publishes to justify running totals, gets a
/// third party nothing.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestSecret(#[serde(with = "hex32")] pub [u8; 32]);

impl RequestSecret {
    /// What the AS stores: SHA-256 of the secret under a domain tag.
    pub fn digest(&self) -> [u8; 32] {
        use sha2::Digest as _;
        let mut hash = sha2::Sha256::new();
        hash.update(b"slotpay-request-secret-digest");
        hash.update(self.0);
        hash.finalize().into()
    }
}

impl std::fmt::Debug for RequestSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A secret is not logged.
        write!(f, "RequestSecret(..)")
    }
}

mod hex32 {
    use crate::codec::{from_hex, to_hex};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_hex(v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        from_hex(&text, "request_secret").map_err(serde::de::Error::custom)
    }
}

/// `POST /v1/purchase`: a signed receipt offered for slots on one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurchaseBody {
    /// The device the slots are for.
    pub device: String,
    /// The receipt, its signature and (group channels) the signer's proof.
    pub signed: SignedReceipt,
    /// Proves a retry comes from the buyer (see [`RequestSecret`]).
    pub request_secret: RequestSecret,
}

impl PurchaseBody {
    /// Checks what serde cannot: the device name's length.
    pub fn validate(&self) -> Result<(), WireError> {
        if self.device.is_empty() || self.device.len() > MAX_DEVICE_NAME {
            return Err(WireError::Device);
        }
        Ok(())
    }
}

/// `200` answer to a purchase: one token per slot bought.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PurchaseReply {
    /// The device the tokens open.
    pub device: String,
    /// The channel the receipt pays from.
    pub channel: ChannelId,
    /// The receipt's authority epoch.
    pub epoch: Epoch,
    /// The running total this purchase raised the channel's epoch to.
    pub total: String,
    /// Slots bought.
    pub slots: u64,
    /// The device counter of the first token.
    pub first_counter: u64,
    /// `tokens[i]` opens the device for one slot (counter `first_counter + i`), in the
    /// device's text encoding.
    pub tokens: Vec<String>,
    /// Seconds of access each token grants.
    pub slot_seconds: u64,
    /// False when this repeated an earlier purchase: nothing was charged again.
    pub fresh: bool,
}

/// What kind of key signs a channel's receipts (the key itself is on chain).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorityKind {
    /// The payer's own account key.
    Account,
    /// A delegated client key.
    Delegate,
    /// Any member of a key group.
    Group,
    /// Nobody: the keys are revoked.
    Revoked,
}

impl From<&Authority> for AuthorityKind {
    fn from(authority: &Authority) -> Self {
        match authority {
            Authority::Account(_) => AuthorityKind::Account,
            Authority::Delegate(_) | Authority::DelegateAccount(_) => AuthorityKind::Delegate,
            Authority::Group(_) => AuthorityKind::Group,
            Authority::Revoked => AuthorityKind::Revoked,
        }
    }
}

/// A pending change of a channel's authority.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RotationReply {
    /// Who signs from `effective_at` on.
    pub authority: AuthorityKind,
    /// The first block of the new authority.
    pub effective_at: u32,
}

/// `GET /v1/channels/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ChannelReply {
    /// The channel's id.
    pub channel: ChannelId,
    /// The finalized block the channel was read at ...
    pub block: u32,
    /// ... and the best block the AS reasons with.
    pub now: u32,
    /// Everything deposited.
    pub deposit: String,
    /// Paid to the AS so far.
    pub settled: String,
    /// The authority epoch in force.
    pub epoch: Epoch,
    /// The first expired block.
    pub expires_at: u32,
    /// Blocks from a rotation's announcement to its effect.
    pub notice: u32,
    /// Who signs the current epoch's receipts.
    pub authority: AuthorityKind,
    /// An announced rotation, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationReply>,
    /// The running total the AS has accepted in the current epoch: the next receipt signs
    /// total + k * price.
    pub total: String,
    /// The receipt that set `total` (absent while it is 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_receipt: Option<SignedReceipt>,
    /// The price of a slot.
    pub price: String,
    /// Whether the AS has seen the channel closed.
    pub closed: bool,
}

/// One device the AS sells.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DeviceTerms {
    /// The device's name.
    pub id: String,
    /// Seconds of access per slot.
    pub slot_seconds: u64,
    /// Digits of its one-time passwords.
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
    /// The contract receipts are bound to (on an EVM its 20-byte address).
    pub contract: String,
    /// The chain receipts are bound to (on an EVM: block 0's hash, beside `chain_id`).
    pub genesis_hash: String,
    /// On an EVM: the chain id of the receipts' EIP-712 domain (absent on the ink! layer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_id: Option<u64>,
    /// The price of a slot.
    pub price: String,
    /// The most slots one purchase buys.
    pub max_slots: u64,
    /// Nothing sells within this many blocks of a channel's expiry or rotation.
    pub expiry_margin_blocks: u32,
    /// The shortest rotation notice of a channel the AS sells on.
    pub min_notice_blocks: u32,
    /// The devices sold.
    pub devices: Vec<DeviceTerms>,
}

impl TermsReply {
    /// The price, decoded.
    pub fn price(&self) -> Result<Balance, WireError> {
        Ok(parse_amount(&self.price, "price")?)
    }

    /// The payee's account, decoded.
    pub fn payee_account(&self) -> Result<protocol::AccountId32, WireError> {
        Ok(from_hex(&self.payee, "payee")?)
    }

    /// The receipt domain the AS says it serves. A client compares it with its own
    /// deployment file's; it never signs for the AS's word alone.
    pub fn domain(&self) -> Result<protocol::AnyDomain, WireError> {
        Ok(match self.chain_id {
            None => protocol::AnyDomain::Substrate(protocol::Domain {
                genesis_hash: from_hex(&self.genesis_hash, "genesis_hash")?,
                contract: from_hex(&self.contract, "contract")?,
            }),
            Some(chain_id) => protocol::AnyDomain::Evm(protocol::EvmDomain {
                chain_id,
                contract: from_hex(&self.contract, "contract")?,
            }),
        })
    }
}

/// Every non-2xx answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ApiError {
    /// Stable, machine-readable.
    pub code: ErrorCode,
    /// For people.
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
    /// A field's bytes or amount.
    #[error(transparent)]
    Codec(#[from] crate::codec::CodecError),
    /// A device name.
    #[error("device: empty or longer than {MAX_DEVICE_NAME} bytes")]
    Device,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::to_hex;
    use protocol::{MembershipProof, Receipt, Signature, MAX_PROOF_DEPTH};

    fn body() -> PurchaseBody {
        PurchaseBody {
            device: "lock-1".into(),
            signed: SignedReceipt {
                receipt: Receipt {
                    channel: ChannelId(3),
                    epoch: 1,
                    amount: 250,
                },
                signature: Signature([5; 65]),
                proof: Some(MembershipProof {
                    cap: 1000,
                    left_siblings: 1,
                    siblings: vec![[4; 32]],
                }),
            },
            request_secret: RequestSecret([9; 32]),
        }
    }

    #[test]
    fn a_purchase_round_trips_and_refuses_malformed_fields() {
        let body = body();
        let json = serde_json::to_string(&body).unwrap();
        assert!(json.contains(r#""amount":"250""#), "{json}");
        assert!(json.contains(r#""cap":"1000""#), "{json}");
        let parsed: PurchaseBody = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed, body);
        // A reader that cannot lend strings (an HTTP body) decodes it too.
        let read: PurchaseBody = serde_json::from_reader(json.as_bytes()).unwrap();
        assert_eq!(read, body);
        let siblings = vec![format!("\"{}\"", to_hex(&[0; 32])); MAX_PROOF_DEPTH + 1].join(",");
        let long = json.replace(
            &format!("\"siblings\":[\"{}\"]", to_hex(&[4; 32])),
            &format!("\"siblings\":[{siblings}]"),
        );
        assert_ne!(long, json);
        let e = serde_json::from_str::<PurchaseBody>(&long).unwrap_err();
        assert!(e.to_string().contains("at most 32 siblings"), "{e}");
        for (from, to) in [
            (r#""amount":"250""#, r#""amount":"+250""#),
            (r#""amount":"250""#, r#""amount":250"#),
            (
                r#""amount":"250""#,
                r#""amount":"340282366920938463463374607431768211456""#,
            ),
            ("\"signature\":\"0x05", "\"signature\":\"0x5"),
            ("\"device\"", "\"extra\":1,\"device\""),
        ] {
            let bad = json.replacen(from, to, 1);
            assert_ne!(bad, json, "{from}");
            assert!(serde_json::from_str::<PurchaseBody>(&bad).is_err(), "{to}");
        }
        assert!(!format!("{:?}", body.request_secret).contains("09"));
        let mut unnamed = body;
        unnamed.device = String::new();
        assert_eq!(unnamed.validate(), Err(WireError::Device));
    }
}
