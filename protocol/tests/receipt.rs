//! Receipt signing, recovery, domain binding, canonical signatures, and agreement of the
//! two independent recovery backends.
use protocol::crypto::backend::{Libsecp256k1, SoftHasher, K256};
use protocol::crypto::Hasher;
use protocol::signature::keys::{self, SecretKey};
use protocol::{
    authorize, AuthError, Authority, ChannelId, Domain, Receipt, ReceiptError, Signature,
    SignatureError,
};

fn secret(seed: u8) -> SecretKey {
    SecretKey::from_slice(&[seed; 32]).expect("a valid scalar")
}

fn domain() -> Domain {
    Domain {
        genesis_hash: [0x11; 32],
        contract: [0x22; 32],
    }
}

fn receipt(channel: u64, amount: u128) -> Receipt {
    Receipt {
        channel: ChannelId(channel),
        amount,
    }
}

fn signer<R: protocol::crypto::EcdsaRecover>(
    r: &Receipt,
    d: &Domain,
    sig: &Signature,
) -> Result<protocol::PublicKey, ReceiptError> {
    r.recover_signer::<SoftHasher, R>(d, sig)
}

#[test]
fn independent_hash_references() {
    // Keccak-256("") and BLAKE2b-256("") as published.
    assert_eq!(
        hex::encode(SoftHasher::keccak256(b"")),
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    );
    assert_eq!(
        hex::encode(SoftHasher::blake2_256(b"")),
        "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
    );
}

#[test]
fn payload_layout_is_scale_of_all_bound_fields() {
    let payload = receipt(7, 1000).signing_payload(&domain());
    assert_eq!(payload.len(), 15 + 1 + 32 + 32 + 8 + 16);
    assert_eq!(&payload[..15], b"slotpay-receipt");
    assert_eq!(payload[15], 1);
    assert_eq!(&payload[16..48], &[0x11; 32]);
    assert_eq!(&payload[48..80], &[0x22; 32]);
    assert_eq!(&payload[80..88], &7u64.to_le_bytes());
    assert_eq!(&payload[88..], &1000u128.to_le_bytes());
}

#[test]
fn sign_recover_round_trip_on_both_backends() {
    for seed in 1..=20u8 {
        let sk = secret(seed);
        let r = receipt(u64::from(seed), u128::from(seed) * 1_000_000_007);
        let sig = r.sign(&domain(), &sk);
        assert!(sig.0[64] <= 1);
        let expected = keys::public_key(&sk);
        assert_eq!(signer::<Libsecp256k1>(&r, &domain(), &sig), Ok(expected));
        assert_eq!(signer::<K256>(&r, &domain(), &sig), Ok(expected));
        // Independent check: plain ECDSA verification (not recovery) with k256.
        use k256::ecdsa::signature::hazmat::PrehashVerifier;
        let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(&expected.0).unwrap();
        let plain = k256::ecdsa::Signature::from_slice(&sig.0[..64]).unwrap();
        vk.verify_prehash(&r.signing_hash::<SoftHasher>(&domain()), &plain)
            .expect("k256 verifies libsecp256k1's signature");
    }
}

fn delegate_rejects(r: &Receipt, d: &Domain, sig: &Signature, key: protocol::PublicKey) {
    let result = authorize::<SoftHasher, Libsecp256k1>(&Authority::Delegate(key), d, r, sig, None);
    assert!(result.is_err(), "accepted {r:?} in {d:?}");
}

#[test]
fn replay_on_other_channel_contract_chain_or_amount_is_rejected() {
    let sk = secret(3);
    let key = keys::public_key(&sk);
    let d = domain();
    let r = receipt(5, 500);
    let sig = r.sign(&d, &sk);
    assert_eq!(
        authorize::<SoftHasher, Libsecp256k1>(&Authority::Delegate(key), &d, &r, &sig, None),
        Ok(key)
    );
    delegate_rejects(&receipt(6, 500), &d, &sig, key);
    delegate_rejects(&receipt(5, 501), &d, &sig, key);
    let other_contract = Domain {
        contract: [0x23; 32],
        ..d
    };
    delegate_rejects(&r, &other_contract, &sig, key);
    let other_chain = Domain {
        genesis_hash: [0x12; 32],
        ..d
    };
    delegate_rejects(&r, &other_chain, &sig, key);
}

#[test]
fn every_flipped_bit_is_rejected() {
    let sk = secret(4);
    let key = keys::public_key(&sk);
    let d = domain();
    let r = receipt(9, 12345);
    let sig = r.sign(&d, &sk);
    for bit in 0..65 * 8 {
        let mut bad = sig;
        bad.0[bit / 8] ^= 1 << (bit % 8);
        delegate_rejects(&r, &d, &bad, key);
    }
}

#[test]
fn high_s_twin_is_rejected_although_raw_recovery_accepts_it() {
    let sk = secret(5);
    let d = domain();
    let r = receipt(1, 1);
    let sig = r.sign(&d, &sk);
    let twin = sig.malleate();
    assert_ne!(twin, sig);
    // The raw backends accept the twin and recover the same key: that is the malleability
    // the canonical check exists to remove.
    let hash = r.signing_hash::<SoftHasher>(&d);
    use protocol::crypto::EcdsaRecover;
    assert_eq!(
        Libsecp256k1::recover_compressed(&twin.0, &hash),
        Some(keys::public_key(&sk).0)
    );
    assert_eq!(
        signer::<Libsecp256k1>(&r, &d, &twin),
        Err(ReceiptError::Signature(SignatureError::HighS))
    );
    assert_eq!(twin.malleate(), sig);
}

#[test]
fn recovery_ids_27_28_are_normalised_others_refused() {
    let sk = secret(6);
    let d = domain();
    let r = receipt(2, 2);
    let sig = r.sign(&d, &sk);
    let mut legacy = sig;
    legacy.0[64] += 27;
    assert_eq!(legacy.canonical(), Ok(sig));
    assert_eq!(
        signer::<Libsecp256k1>(&r, &d, &legacy),
        Ok(keys::public_key(&sk))
    );
    for v in [2u8, 3, 4, 26, 29, 30, 255] {
        let mut bad = sig;
        bad.0[64] = v;
        assert_eq!(
            signer::<Libsecp256k1>(&r, &d, &bad),
            Err(ReceiptError::Signature(SignatureError::InvalidRecoveryId(
                v
            )))
        );
    }
}

#[test]
fn out_of_range_r_and_s_are_refused() {
    let order =
        hex::decode("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141").unwrap();
    let mut sig = receipt(1, 1).sign(&domain(), &secret(7));
    let good = sig;
    sig.0[..32].fill(0);
    assert_eq!(sig.canonical(), Err(SignatureError::ROutOfRange));
    sig.0[..32].copy_from_slice(&order);
    assert_eq!(sig.canonical(), Err(SignatureError::ROutOfRange));
    sig = good;
    sig.0[32..64].fill(0);
    assert_eq!(sig.canonical(), Err(SignatureError::SOutOfRange));
    sig.0[32..64].copy_from_slice(&order);
    assert_eq!(sig.canonical(), Err(SignatureError::SOutOfRange));
    // n/2 is the largest low s; n/2 + 1 is high.
    let half =
        hex::decode("7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0").unwrap();
    sig = good;
    sig.0[32..64].copy_from_slice(&half);
    assert!(sig.canonical().is_ok());
    sig.0[63] += 1;
    assert_eq!(sig.canonical(), Err(SignatureError::HighS));
}

/// The AS recovers with libsecp256k1, the contract through the runtime's host function;
/// k256 is an independent implementation. Over valid, mutated and random signatures all
/// backends must agree on accept/reject and on the key.
#[test]
fn backends_agree_on_valid_mutated_and_random_signatures() {
    let d = domain();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut accepted = 0;
    let mut rejected = 0;
    for i in 0..600u64 {
        let sk = secret((i % 250 + 1) as u8);
        let r = receipt(i, u128::from(next()));
        let mut sig = r.sign(&d, &sk);
        match i % 4 {
            0 => {}
            1 => sig.0[(next() % 64) as usize] ^= 1 << (next() % 8),
            2 => {
                for b in sig.0[..64].iter_mut() {
                    *b = next() as u8;
                }
            }
            _ => sig = sig.malleate(),
        }
        let a = signer::<Libsecp256k1>(&r, &d, &sig);
        let b = signer::<K256>(&r, &d, &sig);
        assert_eq!(a, b, "backends disagree on {sig:?}");
        if a.is_ok() {
            accepted += 1;
        } else {
            rejected += 1;
        }
    }
    assert!(accepted > 100 && rejected > 100, "{accepted} / {rejected}");
}

#[test]
fn account_authority_matches_blake2_of_the_key() {
    let sk = secret(8);
    let key = keys::public_key(&sk);
    let account = SoftHasher::blake2_256(&key.0);
    let d = domain();
    let r = receipt(3, 30);
    let sig = r.sign(&d, &sk);
    assert_eq!(
        authorize::<SoftHasher, Libsecp256k1>(&Authority::Account(account), &d, &r, &sig, None),
        Ok(key)
    );
    let other = SoftHasher::blake2_256(&keys::public_key(&secret(9)).0);
    assert_eq!(
        authorize::<SoftHasher, Libsecp256k1>(&Authority::Account(other), &d, &r, &sig, None),
        Err(AuthError::NotPayerAccount)
    );
    let proof = protocol::MembershipProof::default();
    assert_eq!(
        authorize::<SoftHasher, Libsecp256k1>(
            &Authority::Account(account),
            &d,
            &r,
            &sig,
            Some(&proof)
        ),
        Err(AuthError::UnexpectedProof)
    );
}
