//! Differential: the same receipt (channel, epoch, amount), signature, authority (account,
//! delegate, group with caps, revoked) and proof through the AS's verifier (libsecp256k1
//! and software hashing) and through the contract's path (`slotpay_channels::host::InkHost`:
//! ink!'s hash and ecdsa_recover, here run by ink!'s off-chain engine), plus the independent
//! pure-Rust k256 backend. Any disagreement is a crash: the AS would sell against a receipt
//! the contract refuses, or the reverse. The compiled contract on the runtime's own host
//! functions is compared with the AS in `contract/tests/differential.rs` (a sandbox call
//! per input is too slow for fuzzing, see there).
//! Inputs either carry raw signature bytes or a key to sign with and bytes to flip, so
//! valid and almost-valid signatures are reached, not only garbage.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use protocol::crypto::backend::{Libsecp256k1, SoftHasher, K256};
use protocol::{Member, MerkleTree};
use protocol::keys::{self, SecretKey};
use protocol::{authorize, Authority, ChannelId, Domain, MembershipProof, Receipt, Signature};
use slotpay_channels::host::InkHost;

#[derive(Debug, Arbitrary)]
enum Sig {
    Raw([u8; 32], [u8; 32], u8),
    Signed {
        seed: [u8; 32],
        flip: Option<(u8, u8)>,
        malleate: bool,
    },
}

#[derive(Debug, Arbitrary)]
enum Auth {
    Account([u8; 32]),
    SignerAccount,
    Delegate([u8; 33]),
    Signer,
    /// A group of the signer and `others` keys, each with a cap; `proof_index` picks
    /// whose proof is sent, `cap_delta` changes the cap it presents, `too_long` pads it
    /// past the maximum depth.
    Group {
        others: u8,
        caps: [u64; 8],
        proof_index: u8,
        tamper: Option<(u8, u8)>,
        cap_delta: Option<u64>,
        too_long: bool,
    },
    Revoked,
}

#[derive(Debug, Arbitrary)]
struct Case {
    genesis: [u8; 32],
    contract: [u8; 32],
    channel: u64,
    epoch: u32,
    amount: u128,
    sig: Sig,
    auth: Auth,
    sign_other_amount: bool,
    sign_other_epoch: bool,
    /// A proof where none belongs.
    stray_proof: bool,
}

fuzz_target!(|case: Case| {
    let domain = Domain {
        genesis_hash: case.genesis,
        contract: case.contract,
    };
    let receipt = Receipt {
        channel: ChannelId(case.channel),
        epoch: case.epoch,
        amount: case.amount,
    };
    let (signature, signer) = match case.sig {
        Sig::Raw(r, s, v) => {
            let mut bytes = [0u8; 65];
            bytes[..32].copy_from_slice(&r);
            bytes[32..64].copy_from_slice(&s);
            bytes[64] = v;
            (Signature(bytes), None)
        }
        Sig::Signed {
            seed,
            flip,
            malleate,
        } => {
            let Ok(secret) = SecretKey::from_slice(&seed) else {
                return;
            };
            let mut signed = receipt;
            if case.sign_other_amount {
                signed.amount = case.amount.wrapping_add(1);
            }
            if case.sign_other_epoch {
                signed.epoch = case.epoch ^ 1;
            }
            let mut signature = signed.sign(&domain, &secret);
            if malleate {
                signature = signature.malleate();
            }
            if let Some((i, x)) = flip {
                signature.0[usize::from(i) % 65] ^= x;
            }
            (signature, Some(keys::public_key(&secret)))
        }
    };
    let signer_key = signer.unwrap_or(protocol::PublicKey([2; 33]));
    let mut proof = None;
    let authority = match case.auth {
        Auth::Account(a) => Authority::Account(a),
        Auth::SignerAccount => Authority::Account(
            protocol::account_id_of::<SoftHasher>(protocol::Substrate, &signer_key),
        ),
        Auth::Delegate(k) => Authority::Delegate(protocol::PublicKey(k)),
        Auth::Signer => Authority::Delegate(signer_key),
        Auth::Group {
            others,
            caps,
            proof_index,
            tamper,
            cap_delta,
            too_long,
        } => {
            let mut members = vec![Member {
                key: signer_key,
                cap: u128::from(caps[0]),
            }];
            for i in 0..(others % 8) {
                let mut k = [3u8; 33];
                k[1] = i;
                members.push(Member {
                    key: protocol::PublicKey(k),
                    cap: u128::from(caps[usize::from(i)]),
                });
            }
            let Ok(tree) = MerkleTree::build::<SoftHasher>(protocol::Substrate, &members) else {
                return;
            };
            let mut p: MembershipProof = match tree.proof(usize::from(proof_index) % members.len())
            {
                Ok(p) => p,
                Err(_) => return,
            };
            if let Some((i, x)) = tamper {
                if !p.siblings.is_empty() {
                    let n = p.siblings.len();
                    p.siblings[usize::from(i) % n][usize::from(x) % 32] ^= 1;
                } else {
                    p.left_siblings ^= u32::from(x);
                }
            }
            if let Some(delta) = cap_delta {
                p.cap = p.cap.wrapping_add(u128::from(delta));
            }
            if too_long {
                p.siblings.resize(protocol::MAX_PROOF_DEPTH + 1, [0x11; 32]);
            }
            proof = Some(p);
            Authority::Group(tree.root())
        }
        Auth::Revoked => Authority::Revoked,
    };
    if case.stray_proof && proof.is_none() {
        proof = Some(MembershipProof::default());
    }
    let as_side = authorize::<SoftHasher, Libsecp256k1>(&authority, &domain, protocol::SignedReceipt { receipt: receipt, signature: signature, proof: (proof.as_ref()).cloned() });
    let contract_side =
        authorize::<InkHost, InkHost>(&authority, &domain, protocol::SignedReceipt { receipt: receipt, signature: signature, proof: (proof.as_ref()).cloned() });
    let k256_side =
        authorize::<SoftHasher, K256>(&authority, &domain, protocol::SignedReceipt { receipt: receipt, signature: signature, proof: (proof.as_ref()).cloned() });
    assert_eq!(
        as_side, contract_side,
        "AS and contract disagree on {receipt:?} {signature:?}"
    );
    assert_eq!(as_side, k256_side, "libsecp256k1 and k256 disagree");
});
