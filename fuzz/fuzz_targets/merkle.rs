//! Merkle membership: proofs of any shape (absurd depths, non-canonical direction bits,
//! raw SCALE bytes) never verify for a key that is not in the group, and every member's
//! own proof always does.
#![no_main]
use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use parity_scale_codec::Decode;
use protocol::crypto::backend::SoftHasher;
use protocol::merkle::MerkleTree;
use protocol::{MembershipProof, PublicKey};

#[derive(Debug, Arbitrary)]
struct Case {
    members: Vec<[u8; 33]>,
    candidate: [u8; 33],
    left_siblings: u32,
    siblings: Vec<[u8; 32]>,
    raw_proof: Vec<u8>,
    /// Use siblings taken from the real tree (member proofs), rearranged.
    borrow_from: Option<u8>,
}

fuzz_target!(|case: Case| {
    let members: Vec<PublicKey> = case
        .members
        .iter()
        .take(64)
        .map(|k| PublicKey(*k))
        .collect();
    let Ok(tree) = MerkleTree::build::<SoftHasher>(&members) else {
        return;
    };
    let root = tree.root();
    for (i, key) in members.iter().enumerate() {
        let proof = tree.proof(i).expect("member proof");
        assert_eq!(proof.verify::<SoftHasher>(key, &root), Ok(()), "member {i}");
    }
    let candidate = PublicKey(case.candidate);
    let is_member = members.contains(&candidate);
    let mut proofs = vec![MembershipProof {
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
            proofs.push(p);
        }
    }
    for proof in proofs {
        if proof.verify::<SoftHasher>(&candidate, &root).is_ok() {
            assert!(is_member, "a non-member verified with {proof:?}");
        }
    }
});
