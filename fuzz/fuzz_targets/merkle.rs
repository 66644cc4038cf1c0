//! Merkle membership: proofs of any shape (absurd depths, non-canonical direction bits,
//! raw SCALE bytes, caps other than the committed one) never verify for a (key, cap) that
//! is not in the group, and every member's own proof always does, with its own cap only.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use parity_scale_codec::Decode;
use protocol::crypto::backend::SoftHasher;
use protocol::{Member, MerkleTree};
use protocol::{MembershipProof, PublicKey};

#[derive(Debug, Arbitrary)]
struct Case {
    members: Vec<([u8; 33], u128)>,
    candidate: [u8; 33],
    candidate_cap: u128,
    cap: u128,
    left_siblings: u32,
    siblings: Vec<[u8; 32]>,
    raw_proof: Vec<u8>,
    /// Use siblings taken from the real tree (member proofs), rearranged.
    borrow_from: Option<u8>,
}

fuzz_target!(|case: Case| {
    let members: Vec<Member> = case
        .members
        .iter()
        .take(64)
        .map(|(key, cap)| Member {
            key: PublicKey(*key),
            cap: *cap,
        })
        .collect();
    let Ok(tree) = MerkleTree::build::<SoftHasher>(protocol::Substrate, &members) else {
        return;
    };
    let root = tree.root();
    for (i, member) in members.iter().enumerate() {
        let proof = tree.proof(i).expect("member proof");
        assert_eq!(proof.cap, member.cap);
        assert_eq!(
            proof.verify::<SoftHasher>(protocol::Substrate, &member.key, &root),
            Ok(()),
            "member {i}"
        );
        // The leaf binds the cap: the same path with another cap proves nothing (a key
        // appears once in a group, so (key, other cap) is not a member).
        let inflated = MembershipProof {
            cap: member.cap ^ (1 | case.cap),
            ..proof
        };
        assert!(
            inflated.verify::<SoftHasher>(protocol::Substrate, &member.key, &root).is_err(),
            "member {i} with cap {}",
            inflated.cap
        );
    }
    let candidate = PublicKey(case.candidate);
    let mut proofs = vec![MembershipProof {
        cap: case.candidate_cap,
        left_siblings: case.left_siblings,
        siblings: case.siblings,
    }];
    if let Ok(p) = MembershipProof::decode(&mut case.raw_proof.as_slice()) {
        proofs.push(p);
    }
    if let Some(i) = case.borrow_from {
        if !members.is_empty() {
            let mut p = tree.proof(usize::from(i) % members.len()).expect("proof");
            p.left_siblings ^= case.left_siblings;
            p.cap ^= case.cap;
            proofs.push(p);
        }
    }
    for proof in proofs {
        if proof.verify::<SoftHasher>(protocol::Substrate, &candidate, &root).is_ok() {
            let claimed = Member {
                key: candidate,
                cap: proof.cap,
            };
            assert!(
                members.contains(&claimed),
                "a non-member {claimed:?} verified with {proof:?}"
            );
        }
    }
});
