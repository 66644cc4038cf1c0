//! Receipt signing, recovery, domain and epoch binding, canonical signatures, agreement of
//! the two independent recovery backends, and what each authority construction authorizes.
use protocol::crypto::backend::{Libsecp256k1, SoftHasher, K256};
use protocol::crypto::Hasher;
use protocol::keys::{self, SecretKey};
use protocol::{
    authorize, AuthError, Authority, Authorized, ChannelId, Domain, Epoch, MembershipProof,
    PublicKey, Receipt, ReceiptError, Signature, SignatureError,
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

fn receipt(channel: u64, epoch: Epoch, amount: u128) -> Receipt {
    Receipt {
        channel: ChannelId(channel),
        epoch,
        amount,
    }
}

fn signer<R: protocol::crypto::EcdsaRecover>(
    r: &Receipt,
    d: &Domain,
    sig: &Signature,
) -> Result<PublicKey, ReceiptError> {
    r.recover_signer::<SoftHasher, R>(d, sig)
}

fn as_delegate(
    r: &Receipt,
    d: &Domain,
    sig: &Signature,
    key: PublicKey,
) -> Result<Authorized, AuthError> {
    authorize::<SoftHasher, Libsecp256k1>(
        &Authority::Delegate(key),
        d,
        protocol::SignedReceipt {
            receipt: *r,
            signature: *sig,
            proof: None,
        },
    )
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

/// The payload of version 2, written out byte by byte from the layout (not with SCALE),
/// and its keccak256 as an independent implementation (a from-the-spec Keccak in Python)
/// computed it. Every field has distinct bytes, so a swapped, dropped or re-encoded field
/// (a compact-encoded epoch, a big-endian amount, the version-1 layout without the epoch)
/// changes the bytes.
#[test]
fn payload_layout_version_2_matches_hand_built_bytes_and_an_independent_hash() {
    let d = Domain {
        genesis_hash: core::array::from_fn(|i| i as u8),
        contract: core::array::from_fn(|i| 0x20 + i as u8),
    };
    let r = receipt(
        0x0102_0304_0506_0708,
        0x0a0b_0c0d,
        0x1112_1314_1516_1718_191a_1b1c_1d1e_1f20,
    );
    let mut expected = Vec::new();
    expected.extend_from_slice(b"slotpay-receipt");
    expected.push(2);
    expected.extend(0x00u8..0x20);
    expected.extend(0x20u8..0x40);
    expected.extend([0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01]);
    expected.extend([0x0d, 0x0c, 0x0b, 0x0a]);
    expected.extend((0x11u8..=0x20).rev());
    assert_eq!(expected.len(), 15 + 1 + 32 + 32 + 8 + 4 + 16);
    assert_eq!(hex::encode(r.signing_payload(&d)), hex::encode(&expected));
    assert_eq!(
        hex::encode(r.signing_hash::<SoftHasher>(&d)),
        "81a6e4a2e582f961daf4503a03f26c37dcd61cad8a94052eab22475ecb9e8ee7"
    );
}

#[test]
fn sign_recover_round_trip_on_both_backends() {
    for seed in 1..=20u8 {
        let sk = secret(seed);
        let r = receipt(
            u64::from(seed),
            u32::from(seed) % 3,
            u128::from(seed) * 1_000_000_007,
        );
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

fn delegate_rejects(r: &Receipt, d: &Domain, sig: &Signature, key: PublicKey) {
    let result = as_delegate(r, d, sig, key);
    assert!(result.is_err(), "accepted {r:?} in {d:?}");
}

#[test]
fn replay_on_other_channel_contract_chain_epoch_or_amount_is_rejected() {
    let sk = secret(3);
    let key = keys::public_key(&sk);
    let d = domain();
    let r = receipt(5, 1, 500);
    let sig = r.sign(&d, &sk);
    let accepted = as_delegate(&r, &d, &sig, key).expect("its own receipt");
    assert_eq!(accepted.signer(), key);
    assert_eq!(*accepted.receipt(), r);
    delegate_rejects(&receipt(6, 1, 500), &d, &sig, key);
    delegate_rejects(&receipt(5, 1, 501), &d, &sig, key);
    delegate_rejects(&receipt(5, 0, 500), &d, &sig, key);
    delegate_rejects(&receipt(5, 2, 500), &d, &sig, key);
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

/// After a rotation the new authority starts again from zero in the next epoch; if the
/// epoch were not signed, a receipt the old key signed in epoch 0 would count again, above
/// the new base, in epoch 1 (and a new key's epoch-1 receipt could be pushed back into
/// epoch 0). Both directions are refused, for a key that is in force in both epochs.
#[test]
fn the_epoch_is_bound_a_receipt_of_one_epoch_does_not_verify_as_another() {
    let sk = secret(12);
    let key = keys::public_key(&sk);
    let d = domain();
    for (signed, presented) in [(0, 1), (1, 0), (1, 2), (0, u32::MAX), (u32::MAX, 0)] {
        let r = receipt(9, signed, 700);
        let sig = r.sign(&d, &sk);
        assert_eq!(as_delegate(&r, &d, &sig, key).map(|a| a.signer()), Ok(key));
        let moved = receipt(9, presented, 700);
        assert_eq!(
            as_delegate(&moved, &d, &sig, key),
            Err(AuthError::NotDelegate),
            "epoch {signed} signature accepted as epoch {presented}"
        );
        // Recovery itself yields some other key: the epoch is in the signed hash.
        assert_ne!(signer::<Libsecp256k1>(&moved, &d, &sig), Ok(key));
        assert_ne!(
            moved.signing_hash::<SoftHasher>(&d),
            r.signing_hash::<SoftHasher>(&d)
        );
    }
}

#[test]
fn every_flipped_bit_is_rejected() {
    let sk = secret(4);
    let key = keys::public_key(&sk);
    let d = domain();
    let r = receipt(9, 3, 12345);
    let sig = r.sign(&d, &sk);
    assert!(as_delegate(&r, &d, &sig, key).is_ok());
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
    let r = receipt(1, 0, 1);
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
    assert_eq!(
        as_delegate(&r, &d, &twin, keys::public_key(&sk)),
        Err(AuthError::Receipt(ReceiptError::Signature(
            SignatureError::HighS
        )))
    );
    assert_eq!(twin.malleate(), sig);
}

#[test]
fn recovery_ids_27_28_are_normalised_others_refused() {
    let sk = secret(6);
    let d = domain();
    let r = receipt(2, 0, 2);
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
    let mut sig = receipt(1, 0, 1).sign(&domain(), &secret(7));
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
        let r = receipt(i, (next() % 4) as u32, u128::from(next()));
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
    let r = receipt(3, 0, 30);
    let sig = r.sign(&d, &sk);
    let accepted = authorize::<SoftHasher, Libsecp256k1>(
        &Authority::Account(account),
        &d,
        protocol::SignedReceipt {
            receipt: r,
            signature: sig,
            proof: None,
        },
    )
    .expect("the payer's own key");
    assert_eq!(accepted.signer(), key);
    assert_eq!(*accepted.authority(), Authority::Account(account));
    // Only group members carry a cap.
    assert_eq!(accepted.cap(), None);
    let other = SoftHasher::blake2_256(&keys::public_key(&secret(9)).0);
    assert_eq!(
        authorize::<SoftHasher, Libsecp256k1>(
            &Authority::Account(other),
            &d,
            protocol::SignedReceipt {
                receipt: r,
                signature: sig,
                proof: None
            }
        ),
        Err(AuthError::NotPayerAccount)
    );
    // The raw key bytes are not an account id: only blake2_256 of them is.
    let mut raw = [0u8; 32];
    raw.copy_from_slice(&key.0[1..]);
    assert_eq!(
        authorize::<SoftHasher, Libsecp256k1>(
            &Authority::Account(raw),
            &d,
            protocol::SignedReceipt {
                receipt: r,
                signature: sig,
                proof: None
            }
        ),
        Err(AuthError::NotPayerAccount)
    );
    let proof = MembershipProof::default();
    assert_eq!(
        authorize::<SoftHasher, Libsecp256k1>(
            &Authority::Account(account),
            &d,
            protocol::SignedReceipt {
                receipt: r,
                signature: sig,
                proof: Some(proof)
            }
        ),
        Err(AuthError::UnexpectedProof)
    );
}

#[test]
fn a_delegate_authorizes_its_key_only_and_carries_no_cap() {
    let sk = secret(10);
    let key = keys::public_key(&sk);
    let d = domain();
    let r = receipt(4, 0, 40);
    let sig = r.sign(&d, &sk);
    let accepted = as_delegate(&r, &d, &sig, key).expect("the delegate's receipt");
    assert_eq!(accepted.cap(), None);
    assert_eq!(*accepted.authority(), Authority::Delegate(key));
    let stranger = r.sign(&d, &secret(11));
    assert_eq!(
        as_delegate(&r, &d, &stranger, key),
        Err(AuthError::NotDelegate)
    );
    assert_eq!(
        authorize::<SoftHasher, Libsecp256k1>(
            &Authority::Delegate(key),
            &d,
            protocol::SignedReceipt {
                receipt: r,
                signature: sig,
                proof: Some(MembershipProof::default())
            }
        ),
        Err(AuthError::UnexpectedProof)
    );
}

/// A payer revokes by rotating to `Revoked`: from then on no receipt counts, not even one
/// signed by the key that was in force before, or by the payer's own account key, with or
/// without a proof.
#[test]
fn revoked_authorizes_nothing() {
    let d = domain();
    for seed in [1u8, 8, 12, 200] {
        let sk = secret(seed);
        for r in [receipt(1, 0, 1), receipt(1, 1, 1000), receipt(7, 5, 0)] {
            let sig = r.sign(&d, &sk);
            // The same receipt is valid for its key: only the authority refuses it.
            assert!(as_delegate(&r, &d, &sig, keys::public_key(&sk)).is_ok());
            assert_eq!(
                authorize::<SoftHasher, Libsecp256k1>(
                    &Authority::Revoked,
                    &d,
                    protocol::SignedReceipt {
                        receipt: r,
                        signature: sig,
                        proof: None
                    }
                ),
                Err(AuthError::Revoked)
            );
            assert!(authorize::<SoftHasher, Libsecp256k1>(
                &Authority::Revoked,
                &d,
                protocol::SignedReceipt {
                    receipt: r,
                    signature: sig,
                    proof: Some((MembershipProof::default()).clone())
                }
            )
            .is_err());
        }
    }
    // Nor does garbage: nothing is recovered for it.
    let r = receipt(1, 0, 1);
    assert_eq!(
        authorize::<SoftHasher, Libsecp256k1>(
            &Authority::Revoked,
            &d,
            protocol::SignedReceipt {
                receipt: r,
                signature: Signature([0xff; 65]),
                proof: None
            }
        ),
        Err(AuthError::Revoked)
    );
}
