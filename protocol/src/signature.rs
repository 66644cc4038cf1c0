//! 65-byte recoverable secp256k1 signatures and the one canonical form every verifier
//! accepts.
//!
//! The chain's `ecdsa_recover` accepts v in {0..=3, 27..=30} and high-s signatures, so a
//! signature has several encodings that all recover to the same key. slotpay accepts
//! exactly one per settlement layer: 1 <= r < n, 1 <= s <= n/2, and the layer's `v`
//! ([`crate::Layer::recovery_id`]: 0 or 1 on Substrate, where 27/28 are mapped to 0/1
//! here, once, explicitly; 27 or 28 on an EVM, as its contract takes them). The AS and
//! the contract both run this check before recovery, so they accept exactly the same
//! set of signatures.
use crate::crypto::EcdsaRecover;
use crate::layer::{Layer, Substrate};
use crate::types::PublicKey;
use parity_scale_codec::{Decode, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

/// The secp256k1 group order n, big-endian.
const CURVE_ORDER: [u8; 32] = [
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE,
    0xBA, 0xAE, 0xDC, 0xE6, 0xAF, 0x48, 0xA0, 0x3B, 0xBF, 0xD2, 0x5E, 0x8C, 0xD0, 0x36, 0x41, 0x41,
];

/// floor(n / 2), big-endian: the largest s of a low-s signature.
const HALF_CURVE_ORDER: [u8; 32] = [
    0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0x5D, 0x57, 0x6E, 0x73, 0x57, 0xA4, 0x50, 0x1D, 0xDF, 0xE9, 0x2F, 0x46, 0x68, 0x1B, 0x20, 0xA0,
];

/// Why a signature was refused before or during recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// A `v` byte that is not a recovery id of the layer: outside {0, 1, 27, 28} on
    /// Substrate (the chain would accept 2, 3, 29 and 30 too; slotpay does not), outside
    /// {27, 28} on an EVM.
    #[error("recovery id {0} is not one this settlement layer accepts")]
    InvalidRecoveryId(u8),
    /// `r` is 0 or at least the curve order n.
    #[error("r is zero or not below the curve order")]
    ROutOfRange,
    /// `s` is 0 or at least the curve order n.
    #[error("s is zero or not below the curve order")]
    SOutOfRange,
    /// `s` above n/2: the malleated twin of a valid signature, refused so each
    /// signature has one encoding.
    #[error("s is in the upper half of the curve order (malleated signature)")]
    HighS,
    /// Canonical in form, but the recovery backend found no key for it.
    #[error("no public key recovers from this signature")]
    RecoveryFailed,
}

/// A recoverable signature: `r (32) || s (32) || v (1)`.
#[derive(Clone, Copy, PartialEq, Eq, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct Signature(pub [u8; 65]);

/// Hex in JSON (`0x` + 130 digits), exactly the 65 bytes: whether they are canonical is
/// [`Signature::canonical`]'s to say, at recovery.
#[cfg(feature = "serde")]
impl serde::Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::wire::hex_bytes::serialize(&self.0, s)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::wire::hex_bytes::deserialize(d).map(Signature)
    }
}

impl core::fmt::Debug for Signature {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Signature(0x")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

fn is_zero(x: &[u8; 32]) -> bool {
    x.iter().all(|b| *b == 0)
}

impl Signature {
    /// The canonical encoding of this signature on the ink! layer ([`Substrate`]), or why
    /// it has none.
    pub fn canonical(&self) -> Result<Signature, SignatureError> {
        self.canonical_for(Substrate)
    }

    /// This signature as a recovery backend takes it (v in {0, 1}), if it is the one
    /// encoding `layer` accepts; or why it is not.
    pub fn canonical_for(&self, layer: impl Layer) -> Result<Signature, SignatureError> {
        let mut out = self.0;
        out[64] = layer.recovery_id(self.0[64])?;
        let mut r = [0u8; 32];
        let mut s = [0u8; 32];
        r.copy_from_slice(&self.0[..32]);
        s.copy_from_slice(&self.0[32..64]);
        // Arrays compare lexicographically, which is numeric order for big-endian bytes.
        if is_zero(&r) || r >= CURVE_ORDER {
            return Err(SignatureError::ROutOfRange);
        }
        if is_zero(&s) || s >= CURVE_ORDER {
            return Err(SignatureError::SOutOfRange);
        }
        if s > HALF_CURVE_ORDER {
            return Err(SignatureError::HighS);
        }
        Ok(Signature(out))
    }

    /// Recovers the signer of `message_hash` through backend `R`, after `layer`'s
    /// canonical check.
    pub fn recover<R: EcdsaRecover>(
        &self,
        layer: impl Layer,
        message_hash: &[u8; 32],
    ) -> Result<PublicKey, SignatureError> {
        let canonical = self.canonical_for(layer)?;
        R::recover_compressed(&canonical.0, message_hash)
            .map(PublicKey)
            .ok_or(SignatureError::RecoveryFailed)
    }

    /// The same signature with s replaced by n - s and the recovery id flipped: the
    /// malleated twin that raw ECDSA recovery also accepts. For tests and fuzzing.
    #[cfg(feature = "_test_utils")]
    pub fn malleate(&self) -> Signature {
        let mut out = self.0;
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let d = i16::from(CURVE_ORDER[i]) - i16::from(self.0[32 + i]) - borrow;
            out[32 + i] = (d & 0xff) as u8;
            borrow = i16::from(d < 0);
        }
        out[64] = match self.0[64] {
            0 => 1,
            1 => 0,
            27 => 28,
            28 => 27,
            other => other,
        };
        Signature(out)
    }
}

/// Off-chain key handling.
#[cfg(feature = "std")]
pub(crate) mod keys {
    use super::Signature;
    use crate::types::PublicKey;
    pub use secp256k1::SecretKey;

    /// A fresh random secret key.
    pub fn generate() -> SecretKey {
        SecretKey::new(&mut rand::thread_rng())
    }

    /// The compressed public key of `secret`.
    pub fn public_key(secret: &SecretKey) -> PublicKey {
        PublicKey(secret.public_key(secp256k1::SECP256K1).serialize())
    }

    /// RFC 6979 deterministic, low-s signature of a 32-byte hash, v in {0, 1} (what the
    /// ink! layer takes; [`crate::Layer::v_byte`] gives another layer's).
    pub fn sign_hash(secret: &SecretKey, message_hash: &[u8; 32]) -> Signature {
        let msg = secp256k1::Message::from_digest(*message_hash);
        let (id, compact) = secp256k1::SECP256K1
            .sign_ecdsa_recoverable(&msg, secret)
            .serialize_compact();
        let mut out = [0u8; 65];
        out[..64].copy_from_slice(&compact);
        // to_i32() is 0..=3 by construction; libsecp256k1 never emits 2 or 3 for a
        // hash-derived nonce in practice, and canonical() rejects them if it did.
        out[64] = id.to_i32() as u8;
        Signature(out)
    }
}
