//! Differential: the same receipt, signature, authority and proof through the AS's
//! verifier (libsecp256k1 and software hashing) and through the contract's path
//! (`slotpay_channels::host::InkHost`: ink!'s hash and ecdsa_recover, here run by ink!'s
//! off-chain engine), plus the independent pure-Rust k256 backend. Any disagreement is a
//! crash: the AS would sell against a receipt the contract refuses, or the reverse.
//! Inputs either carry raw signature bytes or a key to sign with and bytes to flip, so
//! valid and almost-valid signatures are reached, not only garbage.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use protocol::crypto::backend::{Libsecp256k1, SoftHasher, K256};
use protocol::merkle::MerkleTree;
use protocol::signature::keys::{self, SecretKey};
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
    /// A group of the signer and `others` keys; `proof_index` picks whose proof is sent.
    Group {
        others: u8,
        proof_index: u8,
        tamper: Option<(u8, u8)>,
    },
}

#[derive(Debug, Arbitrary)]
struct Case {
    genesis: [u8; 32],
    contract: [u8; 32],
    channel: u64,
    amount: u128,
    sig: Sig,
    auth: Auth,
    sign_other_amount: bool,
}

fuzz_target!(|case: Case| {
    let domain = Domain {
        genesis_hash: case.genesis,
        contract: case.contract,
    };
    let receipt = Receipt {
        channel: ChannelId(case.channel),
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
            let signed = if case.sign_other_amount {
                Receipt {
                    amount: case.amount.wrapping_add(1),
                    ..receipt
                }
            } else {
                receipt
            };
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
            protocol::authority::account_id_of::<SoftHasher>(&signer_key),
        ),
        Auth::Delegate(k) => Authority::Delegate(protocol::PublicKey(k)),
        Auth::Signer => Authority::Delegate(signer_key),
        Auth::Group {
            others,
            proof_index,
            tamper,
        } => {
            let mut members = vec![signer_key];
            for i in 0..(others % 8) {
                let mut k = [3u8; 33];
                k[1] = i;
                members.push(protocol::PublicKey(k));
            }
            let Ok(tree) = MerkleTree::build::<SoftHasher>(&members) else {
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
            proof = Some(p);
            Authority::Group(tree.root())
        }
    };
    let as_side = authorize::<SoftHasher, Libsecp256k1>(
        &authority,
        &domain,
        &receipt,
        &signature,
        proof.as_ref(),
    );
    let contract_side =
        authorize::<InkHost, InkHost>(&authority, &domain, &receipt, &signature, proof.as_ref());
    let k256_side =
        authorize::<SoftHasher, K256>(&authority, &domain, &receipt, &signature, proof.as_ref());
    assert_eq!(
        as_side, contract_side,
        "AS and contract disagree on {receipt:?} {signature:?}"
    );
    assert_eq!(as_side, k256_side, "libsecp256k1 and k256 disagree");
});
