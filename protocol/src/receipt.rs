//! Cumulative payment receipts and their signing payload.
use crate::crypto::{EcdsaRecover, Hasher};
use crate::layer::{Layer, ReceiptDomain};
use crate::merkle::MembershipProof;
use crate::signature::{Signature, SignatureError};
use crate::types::{Balance, ChannelId, Domain, Epoch, PublicKey};
use alloc::vec::Vec;
use parity_scale_codec::{Decode, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

/// Domain tag at the head of every receipt payload, so a receipt signature can never be
/// mistaken for a signature over anything else (an extrinsic, an Ethereum message, ...).
pub const RECEIPT_TAG: [u8; 15] = *b"slotpay-receipt";
/// Payload format version; bump on any change to the payload. Version 2 added the epoch.
pub const RECEIPT_VERSION: u8 = 2;

/// Why a receipt was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// The signature is not canonical or recovers no key.
    #[error("bad signature: {0}")]
    Signature(#[from] SignatureError),
}

/// "The channel's payee may take `amount` in total from channel `channel`, counted from the
/// start of authority epoch `epoch`". Receipts are cumulative within an epoch: a later
/// receipt replaces, never adds to, an earlier one. The epoch changes only when the payer
/// rotates the channel's authority (see [`crate::channel`]), so a new key starts at zero
/// without having to know what the keys before it spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, MaxEncodedLen, TypeInfo)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct Receipt {
    /// The channel it pays from.
    pub channel: ChannelId,
    /// The authority epoch whose keys sign it.
    pub epoch: Epoch,
    /// The running total it allows, counted from the start of the epoch.
    #[cfg_attr(feature = "serde", serde(with = "crate::wire::decimal"))]
    pub amount: Balance,
}

impl Receipt {
    /// The exact bytes that are hashed and signed on the ink! layer:
    /// SCALE(tag, version, genesis hash, contract, channel id, epoch, amount).
    pub fn signing_payload(&self, domain: &Domain) -> Vec<u8> {
        (
            RECEIPT_TAG,
            RECEIPT_VERSION,
            domain.genesis_hash,
            domain.contract,
            self.channel.0,
            self.epoch,
            self.amount,
        )
            .encode()
    }

    /// What a signer signs for `domain`, on the domain's layer ([`Layer::signing_hash`]):
    /// keccak256 of [`Self::signing_payload`] on the ink! layer, the EIP-712 digest on an
    /// EVM.
    pub fn signing_hash<H: Hasher>(&self, domain: &impl ReceiptDomain) -> [u8; 32] {
        domain.layer().signing_hash::<H>(self, domain)
    }

    /// Signs this receipt for `domain`, with the `v` its layer takes.
    #[cfg(feature = "std")]
    pub fn sign(
        &self,
        domain: &impl ReceiptDomain,
        secret: &crate::signature::keys::SecretKey,
    ) -> Signature {
        let mut signature = crate::signature::keys::sign_hash(
            secret,
            &self.signing_hash::<crate::crypto::backend::SoftHasher>(domain),
        );
        signature.0[64] = domain.layer().v_byte(signature.0[64]);
        signature
    }

    /// The key that signed this receipt for `domain`. The hash is always computed here
    /// from the receipt itself: no verifier ever takes a caller's hash.
    pub fn recover_signer<H: Hasher, R: EcdsaRecover>(
        &self,
        domain: &impl ReceiptDomain,
        signature: &Signature,
    ) -> Result<PublicKey, ReceiptError> {
        Ok(signature.recover::<R>(domain.layer(), &self.signing_hash::<H>(domain))?)
    }
}

/// A receipt with what makes it count: the signature of a key the channel admits and, on a
/// group channel, the signer's membership proof. This one value travels unchanged: the
/// client signs it, the AS checks it, commits it and shows it to justify a running total,
/// and settles or closes with it; the contract checks it again.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct SignedReceipt {
    /// What is signed.
    pub receipt: Receipt,
    /// The signature over [`Receipt::signing_hash`].
    pub signature: Signature,
    /// The signer's membership proof (with its cap), for group channels only.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub proof: Option<MembershipProof>,
}

impl SignedReceipt {
    /// Signs `receipt` for `domain` (with the signer's `proof` on a group channel).
    #[cfg(feature = "std")]
    pub fn sign(
        receipt: Receipt,
        domain: &impl ReceiptDomain,
        secret: &crate::signature::keys::SecretKey,
        proof: Option<MembershipProof>,
    ) -> Self {
        Self {
            signature: receipt.sign(domain, secret),
            receipt,
            proof,
        }
    }

    /// The key that signed it for `domain` (the proof aside).
    pub fn signer<H: Hasher, R: EcdsaRecover>(
        &self,
        domain: &impl ReceiptDomain,
    ) -> Result<PublicKey, ReceiptError> {
        self.receipt.recover_signer::<H, R>(domain, &self.signature)
    }
}
