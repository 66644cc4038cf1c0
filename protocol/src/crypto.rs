//! The two primitives the core needs from its environment.
//!
//! The contract implements these with ink!'s host functions; off-chain code uses
//! [`backend`]. Canonical-form checks on signatures are *not* the backend's job: they live
//! in [`crate::signature`], so every backend sees exactly the same pre-checked input.

/// 32-byte hashes used by the protocol.
pub trait Hasher {
    /// Keccak-256 (the original, pre-NIST padding), as Ethereum and ink!'s `Keccak256`.
    fn keccak256(data: &[u8]) -> [u8; 32];
    /// BLAKE2b with a 32-byte output, as Substrate's `blake2_256`.
    fn blake2_256(data: &[u8]) -> [u8; 32];
}

/// Raw secp256k1 public-key recovery.
pub trait EcdsaRecover {
    /// Recovers the compressed public key from a 65-byte `r || s || v` signature over a
    /// 32-byte message hash. Called only with signatures that already passed
    /// [`crate::signature::Signature::canonical`] (v in {0, 1}, low s, r and s in range).
    fn recover_compressed(signature: &[u8; 65], message_hash: &[u8; 32]) -> Option<[u8; 33]>;
}

/// Off-chain implementations.
pub mod backend {
    #[cfg(feature = "soft-hash")]
    /// Software keccak256 and blake2_256.
    pub struct SoftHasher;

    #[cfg(feature = "soft-hash")]
    impl super::Hasher for SoftHasher {
        fn keccak256(data: &[u8]) -> [u8; 32] {
            use tiny_keccak::Hasher as _;
            let mut keccak = tiny_keccak::Keccak::v256();
            let mut out = [0u8; 32];
            keccak.update(data);
            keccak.finalize(&mut out);
            out
        }

        fn blake2_256(data: &[u8]) -> [u8; 32] {
            use blake2::Digest as _;
            let mut out = [0u8; 32];
            out.copy_from_slice(&blake2::Blake2b::<blake2::digest::consts::U32>::digest(
                data,
            ));
            out
        }
    }

    /// libsecp256k1 through the `secp256k1` crate: the library (and version) the
    /// runtime's `ecdsa_recover` host function uses, and the fastest one available.
    #[cfg(feature = "std")]
    pub struct Libsecp256k1;

    #[cfg(feature = "std")]
    impl super::EcdsaRecover for Libsecp256k1 {
        fn recover_compressed(signature: &[u8; 65], message_hash: &[u8; 32]) -> Option<[u8; 33]> {
            use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
            let id = RecoveryId::from_i32(i32::from(signature[64])).ok()?;
            let sig = RecoverableSignature::from_compact(&signature[..64], id).ok()?;
            let msg = secp256k1::Message::from_digest(*message_hash);
            let key = secp256k1::SECP256K1.recover_ecdsa(&msg, &sig).ok()?;
            Some(key.serialize())
        }
    }

    /// Pure-Rust, no_std recovery (RustCrypto `k256`): an independent implementation,
    /// used to cross-check the others.
    #[cfg(feature = "k256")]
    pub struct K256;

    #[cfg(feature = "k256")]
    impl super::EcdsaRecover for K256 {
        fn recover_compressed(signature: &[u8; 65], message_hash: &[u8; 32]) -> Option<[u8; 33]> {
            use k256::ecdsa::{RecoveryId, Signature, VerifyingKey};
            let id = RecoveryId::from_byte(signature[64])?;
            let sig = Signature::from_slice(&signature[..64]).ok()?;
            let key = VerifyingKey::recover_from_prehash(message_hash, &sig, id).ok()?;
            let point = key.to_encoded_point(true);
            point.as_bytes().try_into().ok()
        }
    }
}
