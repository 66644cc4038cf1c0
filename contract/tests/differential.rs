//! Differential: the AS's verifier against the compiled contract on pallet-contracts.
//!
//! The same inputs (a receipt's amount and epoch, signature bytes valid, bit-flipped,
//! malleated, random, with every recovery id 0..=31, or by a wrong key; an account,
//! delegate or group authority with valid, tampered, too long, non-canonical proofs and
//! wrong caps; a revoked channel) go through `protocol::authorize::<SoftHasher,
//! Libsecp256k1>` (what the AS runs before it sells) and through the contract's `settle`,
//! dry-run on a channel with that authority: the wasm executes with the runtime's own
//! `hash_bytes` and `ecdsa_recover` host functions. Accept/reject and the error variant
//! must be identical, for every case.
#![cfg(feature = "e2e-tests")]

mod support;

use slotpay_channels::interface::messages::Settle;
use slotpay_channels::interface::Error;
use slotpay_channels::protocol::crypto::backend::{Libsecp256k1, SoftHasher};
use slotpay_channels::protocol::keys::{self, SecretKey};
use slotpay_channels::protocol::{
    authorize, Authority, Balance, ChannelId, Domain, MembershipProof, PublicKey, Receipt,
    Signature, SignedReceipt,
};
use slotpay_channels::protocol::{Member, MerkleTree};
use std::collections::BTreeMap;
use support::*;

const CASES: u32 = 600;
const DEPOSIT: Balance = 1_000_000_000;

/// xorshift64: reproducible cases without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        out.iter_mut().for_each(|b| *b = self.next() as u8);
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// The signer's own account (the payer's key).
    SignerAccount,
    /// Another account: opened by that account, so the signer is not its key.
    OtherAccount,
    Delegate,
    /// A delegate key that is not a curve point.
    BogusDelegate,
    Group,
    Revoked,
}

const KINDS: [Kind; 6] = [
    Kind::SignerAccount,
    Kind::OtherAccount,
    Kind::Delegate,
    Kind::BogusDelegate,
    Kind::Group,
    Kind::Revoked,
];

/// A channel under test: its id, its authority, its epoch.
struct Target {
    kind: Kind,
    channel: ChannelId,
    authority: Authority,
    epoch: u32,
}

#[test]
fn the_as_verifier_and_the_compiled_contract_agree() {
    let signer = secret(0x21);
    let signer_account = ecdsa_account(&signer);
    let other = account(0x22);
    let opener = account(0x23);
    let payee = account(0x24);
    let mut chain = Chain::new(
        &contract_code(),
        &[&signer_account, &other, &opener, &payee],
    );
    let domain = chain.domain();

    // A group of the signer and three others, each with its own cap.
    let mut members = vec![Member {
        key: keys::public_key(&signer),
        cap: 5_000,
    }];
    for i in 0..3u8 {
        members.push(Member {
            key: keys::public_key(&secret(0x30 + i)),
            cap: 1_000 * u128::from(i + 1),
        });
    }
    let tree = MerkleTree::build::<SoftHasher>(protocol::Substrate, &members).expect("group");
    let mut bogus = [0xFFu8; 33];
    bogus[0] = 0x02;

    // Every authority in epoch 0 (opened with it) and in epoch 1 (rotated to it with no
    // notice, so in force at once).
    let mut targets = Vec::new();
    for kind in KINDS {
        let (payer, authority) = match kind {
            Kind::SignerAccount => (&signer_account, Authority::Account(raw(&signer_account))),
            Kind::OtherAccount => (&other, Authority::Account(raw(&other))),
            Kind::Delegate => (&opener, Authority::Delegate(keys::public_key(&signer))),
            Kind::BogusDelegate => (&opener, Authority::Delegate(PublicKey(bogus))),
            Kind::Group => (&opener, Authority::Group(tree.root())),
            Kind::Revoked => (&opener, Authority::Revoked),
        };
        let payer = payer.clone();
        let opened = chain.open_with_notice(&payer, &payee, authority, 1_000, 0, DEPOSIT);
        targets.push(Target {
            kind,
            channel: opened.value.expect("open"),
            authority,
            epoch: 0,
        });
        let placeholder = Authority::Delegate(keys::public_key(&secret(0x40)));
        let opened = chain.open_with_notice(&payer, &payee, placeholder, 1_000, 0, DEPOSIT);
        let channel = opened.value.expect("open");
        assert_eq!(
            chain.rotate(&payer, channel, authority).value,
            Ok(chain.block_number())
        );
        assert_eq!(chain.channel(channel).expect("open").epoch, 1);
        targets.push(Target {
            kind,
            channel,
            authority,
            epoch: 1,
        });
    }

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut outcomes: BTreeMap<String, u32> = BTreeMap::new();
    let mut per_kind: BTreeMap<(Kind, bool), u32> = BTreeMap::new();
    let started = std::time::Instant::now();
    for case in 0..CASES {
        let target = &targets[rng.below(targets.len() as u64) as usize];
        let (claim, note) = make_claim(&mut rng, target, &domain, &signer, &tree);
        let expected =
            authorize::<SoftHasher, Libsecp256k1>(&target.authority, &domain, claim.clone())
                .map(|_| ())
                .map_err(Error::from);
        let settle = Settle {
            receipt: claim.clone(),
        };
        let on_chain = chain.dry(&payee, &settle).value.map(|_| ());
        assert_eq!(
            on_chain, expected,
            "case {case} ({note}) on {:?} epoch {}: contract vs AS for {claim:?}",
            target.kind, target.epoch
        );
        *outcomes.entry(format!("{expected:?}")).or_default() += 1;
        *per_kind.entry((target.kind, expected.is_ok())).or_default() += 1;
    }
    let elapsed = started.elapsed();
    eprintln!(
        "{CASES} cases in {elapsed:?} ({:?} per contract call); outcomes {outcomes:?}",
        elapsed / CASES
    );
    // Not vacuous: accepted and refused cases of every kind that can accept, and every
    // refusal the inputs aim at.
    for kind in [Kind::SignerAccount, Kind::Delegate, Kind::Group] {
        assert!(
            per_kind.get(&(kind, true)).is_some_and(|n| *n >= 5),
            "{kind:?} accepted: {per_kind:?}"
        );
        assert!(
            per_kind.get(&(kind, false)).is_some_and(|n| *n >= 5),
            "{kind:?} refused: {per_kind:?}"
        );
    }
    for error in [
        Error::InvalidRecoveryId,
        Error::SignatureROutOfRange,
        Error::SignatureSOutOfRange,
        Error::SignatureHighS,
        Error::SignatureRecoveryFailed,
        Error::NotPayerAccount,
        Error::NotDelegate,
        Error::MissingProof,
        Error::UnexpectedProof,
        Error::ProofTooLong,
        Error::NonCanonicalProof,
        Error::NotMember,
        Error::Revoked,
    ] {
        let key = format!("{:?}", Err::<(), _>(error));
        assert!(
            outcomes.contains_key(&key),
            "no case ended in {error:?}: {outcomes:?}"
        );
    }
}

/// A claim that passes the channel's cheap rules (its epoch, an amount within the
/// deposit, nothing settled yet), with a signature and proof drawn from the attacks.
fn make_claim(
    rng: &mut Rng,
    target: &Target,
    domain: &Domain,
    signer: &SecretKey,
    tree: &MerkleTree,
) -> (SignedReceipt, String) {
    let amount = 1 + Balance::from(rng.next()) % DEPOSIT;
    let mut signed = Receipt {
        channel: target.channel,
        epoch: target.epoch,
        amount,
    };
    let mut note = Vec::new();
    // What the signature covers: mostly the claim itself, sometimes another amount,
    // epoch, channel or domain.
    let mut sign_domain = *domain;
    match rng.below(10) {
        0 => {
            signed.amount += 1;
            note.push("signed another amount");
        }
        1 => {
            signed.epoch ^= 1;
            note.push("signed another epoch");
        }
        2 => {
            signed.channel = ChannelId(signed.channel.0 + 1);
            note.push("signed another channel");
        }
        3 => {
            sign_domain.genesis_hash[0] ^= 1;
            note.push("signed for another chain");
        }
        _ => {}
    }
    let key = if rng.below(6) == 0 {
        note.push("wrong key");
        secret(0x50 + rng.below(40) as u8)
    } else {
        *signer
    };
    let mut signature = signed.sign(&sign_domain, &key);
    match rng.below(12) {
        0 => {
            signature.0[rng.below(65) as usize] ^= 1 << rng.below(8);
            note.push("bit flipped");
        }
        1 => {
            signature = signature.malleate();
            note.push("malleated");
        }
        2 => {
            signature = Signature(rng.bytes());
            note.push("random bytes");
        }
        3 => {
            // Random r and s in range with a low s: recovery runs, and may fail.
            let mut bytes: [u8; 65] = rng.bytes();
            bytes[0] &= 0x7F;
            bytes[32] &= 0x7F;
            bytes[64] = rng.below(2) as u8;
            signature = Signature(bytes);
            note.push("random in range");
        }
        4 | 5 => {
            signature.0[64] = rng.below(32) as u8;
            note.push("recovery id 0..=31");
        }
        6 => {
            signature.0[64] += 27;
            note.push("legacy recovery id");
        }
        7 => {
            // r or s zero, or at least the curve order.
            let half = if rng.below(2) == 0 { 0..32 } else { 32..64 };
            let fill = if rng.below(2) == 0 { 0x00 } else { 0xFF };
            signature.0[half].fill(fill);
            note.push("r or s out of range");
        }
        _ => {}
    }
    let membership = proof_for(rng, target, tree, &mut note);
    (
        SignedReceipt {
            receipt: Receipt {
                channel: target.channel,
                epoch: target.epoch,
                amount,
            },
            signature,
            proof: membership,
        },
        note.join(", "),
    )
}

fn proof_for(
    rng: &mut Rng,
    target: &Target,
    tree: &MerkleTree,
    note: &mut Vec<&'static str>,
) -> Option<MembershipProof> {
    if target.kind != Kind::Group {
        // Now and then a proof where none belongs.
        return (rng.below(8) == 0).then(|| {
            note.push("unexpected proof");
            tree.proof(0).expect("proof")
        });
    }
    let mut proof = tree.proof(0).expect("the signer's proof");
    match rng.below(10) {
        0 => {
            note.push("no proof");
            return None;
        }
        1 => {
            let i = rng.below(proof.siblings.len() as u64) as usize;
            proof.siblings[i][rng.below(32) as usize] ^= 1 << rng.below(8);
            note.push("tampered sibling");
        }
        2 => {
            proof.siblings = vec![rng.bytes(); 33];
            note.push("too long");
        }
        3 => {
            proof.left_siblings |= 1 << (proof.siblings.len() as u64 + rng.below(8));
            note.push("non-canonical bits");
        }
        4 => {
            proof.cap += 1 + Balance::from(rng.next());
            note.push("bigger cap");
        }
        5 => {
            proof = tree
                .proof(1 + rng.below(3) as usize)
                .expect("another's proof");
            note.push("another member's proof");
        }
        _ => {}
    }
    Some(proof)
}
