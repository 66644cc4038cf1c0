//! Merkle key groups: membership, non-membership, node/leaf separation, bounds.
use protocol::crypto::backend::{Libsecp256k1, SoftHasher};
use protocol::crypto::Hasher;
use protocol::merkle::{leaf_hash, node_hash, MerkleTree, MAX_PROOF_DEPTH};
use protocol::signature::keys::{self, SecretKey};
use protocol::{
    authorize, AuthError, Authority, ChannelId, Domain, MembershipProof, MerkleError, MerkleRoot,
    PublicKey, Receipt,
};

fn key(i: u32) -> PublicKey {
    let mut seed = [0x5au8; 32];
    seed[..4].copy_from_slice(&(i + 1).to_be_bytes());
    keys::public_key(&SecretKey::from_slice(&seed).expect("valid scalar"))
}

fn keys_n(n: u32) -> Vec<PublicKey> {
    (0..n).map(key).collect()
}

fn keccak_concat(parts: &[&[u8]]) -> [u8; 32] {
    SoftHasher::keccak256(&parts.concat())
}

#[test]
fn roots_match_a_hand_computed_reference() {
    let k = keys_n(3);
    let leaf = |p: &PublicKey| keccak_concat(&[&[0u8], &p.0]);
    let node = |l: &[u8; 32], r: &[u8; 32]| keccak_concat(&[&[1u8], l, r]);
    let one = MerkleTree::build::<SoftHasher>(&k[..1]).unwrap();
    assert_eq!(one.root(), MerkleRoot(leaf(&k[0])));
    let two = MerkleTree::build::<SoftHasher>(&k[..2]).unwrap();
    assert_eq!(two.root(), MerkleRoot(node(&leaf(&k[0]), &leaf(&k[1]))));
    // Three keys: the odd third leaf is promoted, not duplicated.
    let three = MerkleTree::build::<SoftHasher>(&k).unwrap();
    let expected = node(&node(&leaf(&k[0]), &leaf(&k[1])), &leaf(&k[2]));
    assert_eq!(three.root(), MerkleRoot(expected));
}

#[test]
fn every_member_proves_membership_for_1_2_3_5_and_1000_keys() {
    for n in [1u32, 2, 3, 5, 1000] {
        let k = keys_n(n);
        let tree = MerkleTree::build::<SoftHasher>(&k).unwrap();
        let depth = (32 - (n - 1).leading_zeros()) as usize;
        for (i, member) in k.iter().enumerate() {
            let proof = tree.proof(i).unwrap();
            assert!(proof.siblings.len() <= depth, "n={n} i={i}");
            assert_eq!(
                proof.verify::<SoftHasher>(member, &tree.root()),
                Ok(()),
                "n={n} i={i}"
            );
            assert_eq!(tree.proof_for(member).unwrap(), proof);
            // The proof belongs to its member only.
            let neighbour = &k[(i + 1) % k.len()];
            if n > 1 {
                assert_eq!(
                    proof.verify::<SoftHasher>(neighbour, &tree.root()),
                    Err(MerkleError::NotMember)
                );
            }
        }
    }
}

#[test]
fn non_member_is_rejected_with_every_members_proof() {
    let k = keys_n(5);
    let tree = MerkleTree::build::<SoftHasher>(&k).unwrap();
    let outsider = key(999);
    assert_eq!(tree.proof_for(&outsider), Err(MerkleError::NotMember));
    for i in 0..k.len() {
        let proof = tree.proof(i).unwrap();
        assert_eq!(
            proof.verify::<SoftHasher>(&outsider, &tree.root()),
            Err(MerkleError::NotMember)
        );
    }
}

#[test]
fn inner_node_cannot_pass_as_a_leaf() {
    let k = keys_n(4);
    let tree = MerkleTree::build::<SoftHasher>(&k).unwrap();
    let left_leaves = (
        leaf_hash::<SoftHasher>(&k[0]),
        leaf_hash::<SoftHasher>(&k[1]),
    );
    let inner = node_hash::<SoftHasher>(&left_leaves.0, &left_leaves.1);
    let right_inner = node_hash::<SoftHasher>(
        &leaf_hash::<SoftHasher>(&k[2]),
        &leaf_hash::<SoftHasher>(&k[3]),
    );
    assert_eq!(tree.root().0, node_hash::<SoftHasher>(&inner, &right_inner));
    // The attacker presents the inner node's preimage (left || right) as leaf material
    // with the one-step proof above it. Without prefixes, keccak(left || right) would be
    // the inner node and the forged proof would verify; with them it cannot.
    let forged_leaf = keccak_concat(&[&[0u8], &left_leaves.0, &left_leaves.1]);
    assert_ne!(forged_leaf, inner);
    assert_ne!(
        node_hash::<SoftHasher>(&forged_leaf, &right_inner),
        tree.root().0
    );
    let unprefixed_inner = keccak_concat(&[&left_leaves.0, &left_leaves.1]);
    assert_eq!(
        unprefixed_inner,
        SoftHasher::keccak256(&[left_leaves.0, left_leaves.1].concat()),
        "without domain separation the forgery would hash to the inner node"
    );
    // And a truncated (inner-level) proof never verifies for any member key.
    let upper = MembershipProof {
        left_siblings: 0,
        siblings: vec![right_inner],
    };
    for member in &k {
        assert!(upper.verify::<SoftHasher>(member, &tree.root()).is_err());
    }
}

#[test]
fn proof_shape_is_bounded_and_canonical() {
    let member = key(0);
    let root = MerkleTree::build::<SoftHasher>(&[member]).unwrap().root();
    let too_long = MembershipProof {
        left_siblings: 0,
        siblings: vec![[0u8; 32]; MAX_PROOF_DEPTH + 1],
    };
    assert_eq!(
        too_long.verify::<SoftHasher>(&member, &root),
        Err(MerkleError::ProofTooLong {
            len: MAX_PROOF_DEPTH + 1,
            max: MAX_PROOF_DEPTH
        })
    );
    let stray_bits = MembershipProof {
        left_siblings: 0b10,
        siblings: vec![[0u8; 32]],
    };
    assert_eq!(
        stray_bits.verify::<SoftHasher>(&member, &root),
        Err(MerkleError::NonCanonicalPath)
    );
    let k = keys_n(8);
    let tree = MerkleTree::build::<SoftHasher>(&k).unwrap();
    let mut flipped = tree.proof(2).unwrap();
    flipped.left_siblings ^= 1;
    assert_eq!(
        flipped.verify::<SoftHasher>(&k[2], &tree.root()),
        Err(MerkleError::NotMember)
    );
}

#[test]
fn builder_rejects_empty_and_duplicate_groups() {
    assert_eq!(
        MerkleTree::build::<SoftHasher>(&[]).err(),
        Some(MerkleError::EmptyGroup)
    );
    let mut k = keys_n(3);
    k.push(k[1]);
    assert_eq!(
        MerkleTree::build::<SoftHasher>(&k).err(),
        Some(MerkleError::DuplicateKey { index: 3 })
    );
    assert_eq!(
        MerkleTree::build::<SoftHasher>(&keys_n(2))
            .unwrap()
            .proof(2),
        Err(MerkleError::NoSuchMember { index: 2 })
    );
}

#[test]
fn group_authority_needs_a_members_signature_and_proof() {
    let secrets: Vec<SecretKey> = (1..=5u8)
        .map(|s| SecretKey::from_slice(&[s; 32]).unwrap())
        .collect();
    let members: Vec<PublicKey> = secrets.iter().map(keys::public_key).collect();
    let tree = MerkleTree::build::<SoftHasher>(&members).unwrap();
    let group = Authority::Group(tree.root());
    let d = Domain {
        genesis_hash: [1; 32],
        contract: [2; 32],
    };
    // Member 3 signs the running total plus its price.
    let r = Receipt {
        channel: ChannelId(4),
        amount: 300 + 100,
    };
    let sig = r.sign(&d, &secrets[3]);
    let proof = tree.proof(3).unwrap();
    let auth = |sig, proof: Option<&MembershipProof>| {
        authorize::<SoftHasher, Libsecp256k1>(&group, &d, &r, sig, proof)
    };
    assert_eq!(auth(&sig, Some(&proof)), Ok(members[3]));
    assert_eq!(auth(&sig, None), Err(AuthError::MissingProof));
    assert_eq!(
        auth(&sig, Some(&tree.proof(2).unwrap())),
        Err(AuthError::NotMember(MerkleError::NotMember))
    );
    let outsider = r.sign(&d, &SecretKey::from_slice(&[77; 32]).unwrap());
    assert_eq!(
        auth(&outsider, Some(&proof)),
        Err(AuthError::NotMember(MerkleError::NotMember))
    );
}
