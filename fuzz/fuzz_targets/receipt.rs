//! Receipt and signature decoding and verification from raw bytes: SCALE-decoded
//! receipt (channel, epoch, amount), domain, authority and proof (with its cap), a 65-byte
//! signature. Never panics; whatever recovers must then verify as that key's delegate
//! receipt and nothing else's, and never for a revoked channel.
#![no_main]
use libfuzzer_sys::fuzz_target;
use parity_scale_codec::Decode;
use protocol::crypto::backend::{Libsecp256k1, SoftHasher};
use protocol::{authorize, AuthError, Authority, Domain, MembershipProof, Receipt, Signature};

fuzz_target!(|data: &[u8]| {
    let input = &mut &data[..];
    let (Ok(domain), Ok(receipt), Ok(signature)) = (
        <([u8; 32], [u8; 32])>::decode(input),
        Receipt::decode(input),
        <[u8; 65]>::decode(input),
    ) else {
        return;
    };
    let domain = Domain {
        genesis_hash: domain.0,
        contract: domain.1,
    };
    let signature = Signature(signature);
    let authority = Authority::decode(input).ok();
    let proof = Option::<MembershipProof>::decode(input).ok().flatten();
    let _ = signature.canonical();
    if let Some(authority) = authority {
        let _ = authorize::<SoftHasher, Libsecp256k1>(&authority, &domain, protocol::SignedReceipt { receipt: receipt, signature: signature, proof: (proof.as_ref()).cloned() });
    }
    if let Ok(signer) = receipt.recover_signer::<SoftHasher, Libsecp256k1>(&domain, &signature) {
        let ok = authorize::<SoftHasher, Libsecp256k1>(&Authority::Delegate(signer), &domain, protocol::SignedReceipt { receipt: receipt, signature: signature, proof: None });
        assert_eq!(
            ok.map(|a| a.signer()),
            Ok(signer),
            "a recovered signer is its own delegate"
        );
        let mut other = signer;
        other.0[32] ^= 1;
        let refused = authorize::<SoftHasher, Libsecp256k1>(&Authority::Delegate(other), &domain, protocol::SignedReceipt { receipt: receipt, signature: signature, proof: None });
        assert_eq!(refused, Err(AuthError::NotDelegate));
        // Nobody signs for a revoked channel, whatever the signature.
        let revoked = authorize::<SoftHasher, Libsecp256k1>(&Authority::Revoked, &domain, protocol::SignedReceipt { receipt: receipt, signature: signature, proof: None });
        assert_eq!(revoked, Err(AuthError::Revoked));
    }
});
