//! Merkle key groups: leaves bind key and cap, membership, non-membership, node/leaf
//! separation, odd-node promotion, proof shape bounds, and the group authority.
use protocol::crypto::backend::{Libsecp256k1, SoftHasher};
use protocol::crypto::Hasher;
use protocol::keys::{self, SecretKey};
use protocol::{
    authorize, AuthError, Authority, Balance, ChannelId, Domain, Member, MembershipProof,
    MerkleError, MerkleRoot, PublicKey, Receipt, Signature,
};
use protocol::{leaf_hash, node_hash, MerkleTree, MAX_PROOF_DEPTH, UNLIMITED};

fn key(i: u32) -> PublicKey {
    let mut seed = [0x5au8; 32];
    seed[..4].copy_from_slice(&(i + 1).to_be_bytes());
    keys::public_key(&SecretKey::from_slice(&seed).expect("valid scalar"))
}

/// A different cap for every member, so a proof that carried a neighbour's cap, or none,
/// could not pass.
fn cap_of(i: u32) -> Balance {
    1_000 + Balance::from(i) * 7
}

fn members_n(n: u32) -> Vec<Member> {
    (0..n)
        .map(|i| Member {
            key: key(i),
            cap: cap_of(i),
        })
        .collect()
}

fn keccak_concat(parts: &[&[u8]]) -> [u8; 32] {
    SoftHasher::keccak256(&parts.concat())
}

/// Keys need not be curve points for the tree: fixed bytes keep the reference reproducible
/// outside Rust.
fn raw_key(i: u8) -> PublicKey {
    let mut k = [i; 33];
    k[0] = 2;
    PublicKey(k)
}

/// Roots written out from the definition (leaf = keccak(0x00 || key || cap LE), node =
/// keccak(0x01 || left || right), odd node promoted), with the cap's little-endian bytes
/// spelled out by hand; and pinned digests from an independent Keccak (Python, from the
/// spec) over the same bytes.
#[test]
fn roots_match_a_hand_computed_reference_with_the_cap_little_endian() {
    let members = [
        Member {
            key: raw_key(1),
            cap: 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10,
        },
        Member {
            key: raw_key(2),
            cap: 300,
        },
        Member {
            key: raw_key(3),
            cap: 0,
        },
    ];
    let cap_bytes: [[u8; 16]; 3] = [
        [
            0x10, 0x0f, 0x0e, 0x0d, 0x0c, 0x0b, 0x0a, 0x09, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03,
            0x02, 0x01,
        ],
        // 300 = 0x012c
        [0x2c, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        [0; 16],
    ];
    let leaf = |i: usize| keccak_concat(&[&[0u8], &members[i].key.0, &cap_bytes[i]]);
    let node = |l: &[u8; 32], r: &[u8; 32]| keccak_concat(&[&[1u8], l, r]);
    for (i, member) in members.iter().enumerate() {
        assert_eq!(leaf_hash::<SoftHasher>(member), leaf(i), "leaf {i}");
    }
    let one = MerkleTree::build::<SoftHasher>(protocol::Substrate, &members[..1]).unwrap();
    assert_eq!(one.root(), MerkleRoot(leaf(0)));
    assert_eq!(
        hex::encode(one.root().0),
        "152d83898180ee3b05376a439a4c48d317c6a49ee07a72374e81f0780b6e0a5b"
    );
    let two = MerkleTree::build::<SoftHasher>(protocol::Substrate, &members[..2]).unwrap();
    assert_eq!(two.root(), MerkleRoot(node(&leaf(0), &leaf(1))));
    assert_eq!(
        hex::encode(two.root().0),
        "affc5aa693bfbaec3d94d526ff88a05d726f193306462b0aeccad0ba34a30795"
    );
    // Three members: the odd third leaf is promoted, not duplicated.
    let three = MerkleTree::build::<SoftHasher>(protocol::Substrate, &members).unwrap();
    assert_eq!(
        three.root(),
        MerkleRoot(node(&node(&leaf(0), &leaf(1)), &leaf(2)))
    );
    assert_eq!(
        hex::encode(three.root().0),
        "ab0823c88da190a2191c018662663b68183016c6f93914bf12531cb89e04049f"
    );
    assert_eq!(three.members(), &members);
}

/// The same keys with other caps make another group: the root commits to the caps.
#[test]
fn the_root_commits_to_every_cap() {
    let members = members_n(5);
    let root = MerkleTree::build::<SoftHasher>(protocol::Substrate, &members)
        .unwrap()
        .root();
    for i in 0..members.len() {
        for cap in [members[i].cap + 1, members[i].cap - 1, 0, UNLIMITED] {
            let mut changed = members.clone();
            changed[i].cap = cap;
            assert_ne!(
                MerkleTree::build::<SoftHasher>(protocol::Substrate, &changed)
                    .unwrap()
                    .root(),
                root,
                "member {i} with cap {cap}"
            );
        }
    }
}

/// A member that presents its proof with a bigger cap than the payer gave it (to spend
/// more), or a smaller one, or a neighbour's, is not a member.
#[test]
fn a_proof_presented_with_another_cap_fails() {
    let members = members_n(5);
    let tree = MerkleTree::build::<SoftHasher>(protocol::Substrate, &members).unwrap();
    for (i, member) in members.iter().enumerate() {
        let proof = tree.proof(i).unwrap();
        assert_eq!(proof.cap, member.cap);
        assert_eq!(
            proof.verify::<SoftHasher>(protocol::Substrate, &member.key, &tree.root()),
            Ok(())
        );
        let neighbour_cap = members[(i + 1) % members.len()].cap;
        for cap in [member.cap + 1, member.cap - 1, 0, UNLIMITED, neighbour_cap] {
            let forged = MembershipProof {
                cap,
                ..proof.clone()
            };
            assert_eq!(
                forged.verify::<SoftHasher>(protocol::Substrate, &member.key, &tree.root()),
                Err(MerkleError::NotMember),
                "member {i} presented cap {cap}"
            );
        }
    }
}

#[test]
fn every_member_proves_membership_for_1_2_3_5_and_1000_members() {
    for n in [1u32, 2, 3, 5, 1000] {
        let members = members_n(n);
        let tree = MerkleTree::build::<SoftHasher>(protocol::Substrate, &members).unwrap();
        assert_eq!(tree.len(), n as usize);
        assert_eq!(tree.members(), &members[..]);
        let depth = (32 - (n - 1).leading_zeros()) as usize;
        for (i, member) in members.iter().enumerate() {
            let proof = tree.proof(i).unwrap();
            assert!(proof.siblings.len() <= depth, "n={n} i={i}");
            assert_eq!(proof.cap, member.cap, "n={n} i={i}");
            assert_eq!(
                proof.verify::<SoftHasher>(protocol::Substrate, &member.key, &tree.root()),
                Ok(()),
                "n={n} i={i}"
            );
            assert_eq!(tree.proof_for(&member.key).unwrap(), proof);
            // The proof belongs to its member only.
            if n > 1 {
                let neighbour = &members[(i + 1) % members.len()];
                assert_eq!(
                    proof.verify::<SoftHasher>(protocol::Substrate, &neighbour.key, &tree.root()),
                    Err(MerkleError::NotMember)
                );
            }
        }
    }
}

/// Bitcoin's tree duplicated an odd last node, so [a, b, c] and [a, b, c, c] shared a root
/// (CVE-2012-2459). Here the odd node is promoted: the duplicated shape is another root,
/// and the promoted member's proof has no step for the level it skipped.
#[test]
fn an_odd_node_is_promoted_not_duplicated() {
    let m = members_n(5);
    let leaf = |i: usize| leaf_hash::<SoftHasher>(&m[i]);
    let node = |l: &[u8; 32], r: &[u8; 32]| node_hash::<SoftHasher>(l, r);
    let three = MerkleTree::build::<SoftHasher>(protocol::Substrate, &m[..3]).unwrap();
    let duplicated = node(&node(&leaf(0), &leaf(1)), &node(&leaf(2), &leaf(2)));
    assert_ne!(three.root().0, duplicated);
    let proof = three.proof(2).unwrap();
    assert_eq!(proof.siblings, vec![node(&leaf(0), &leaf(1))]);
    assert_eq!(proof.left_siblings, 0b1);
    // Five members: the fifth is promoted twice and is one step below the root.
    let five = MerkleTree::build::<SoftHasher>(protocol::Substrate, &m).unwrap();
    let left = node(&node(&leaf(0), &leaf(1)), &node(&leaf(2), &leaf(3)));
    assert_eq!(five.root().0, node(&left, &leaf(4)));
    let proof = five.proof(4).unwrap();
    assert_eq!(proof.siblings, vec![left]);
    assert_eq!(proof.left_siblings, 0b1);
    // The duplicating layout cannot be built: a key appears once.
    let mut dup = m[..3].to_vec();
    dup.push(m[2]);
    assert_eq!(
        MerkleTree::build::<SoftHasher>(protocol::Substrate, &dup).err(),
        Some(MerkleError::DuplicateKey { index: 3 })
    );
}

#[test]
fn non_member_is_rejected_with_every_members_proof() {
    let members = members_n(5);
    let tree = MerkleTree::build::<SoftHasher>(protocol::Substrate, &members).unwrap();
    let outsider = key(999);
    assert_eq!(tree.proof_for(&outsider), Err(MerkleError::NotMember));
    for i in 0..members.len() {
        let proof = tree.proof(i).unwrap();
        assert_eq!(
            proof.verify::<SoftHasher>(protocol::Substrate, &outsider, &tree.root()),
            Err(MerkleError::NotMember)
        );
    }
}

#[test]
fn inner_node_cannot_pass_as_a_leaf() {
    let m = members_n(4);
    let tree = MerkleTree::build::<SoftHasher>(protocol::Substrate, &m).unwrap();
    let left_leaves = (
        leaf_hash::<SoftHasher>(&m[0]),
        leaf_hash::<SoftHasher>(&m[1]),
    );
    let inner = node_hash::<SoftHasher>(&left_leaves.0, &left_leaves.1);
    let right_inner = node_hash::<SoftHasher>(
        &leaf_hash::<SoftHasher>(&m[2]),
        &leaf_hash::<SoftHasher>(&m[3]),
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
    // And a truncated (inner-level) proof never verifies for any member, whatever cap it
    // carries.
    for member in &m {
        for cap in [member.cap, 0, UNLIMITED] {
            let upper = MembershipProof {
                cap,
                left_siblings: 0,
                siblings: vec![right_inner],
            };
            assert!(upper
                .verify::<SoftHasher>(protocol::Substrate, &member.key, &tree.root())
                .is_err());
        }
    }
}

#[test]
fn proof_shape_is_bounded_and_canonical() {
    let member = Member {
        key: key(0),
        cap: 10,
    };
    let root = MerkleTree::build::<SoftHasher>(protocol::Substrate, &[member])
        .unwrap()
        .root();
    let too_long = MembershipProof {
        cap: 10,
        left_siblings: 0,
        siblings: vec![[0u8; 32]; MAX_PROOF_DEPTH + 1],
    };
    assert_eq!(
        too_long.verify::<SoftHasher>(protocol::Substrate, &member.key, &root),
        Err(MerkleError::ProofTooLong {
            len: MAX_PROOF_DEPTH + 1,
            max: MAX_PROOF_DEPTH
        })
    );
    // The deepest allowed shape is checked for membership, not refused for its shape,
    // whichever directions its 32 bits name.
    for left_siblings in [0, u32::MAX, 0x8000_0001] {
        let deepest = MembershipProof {
            cap: 10,
            left_siblings,
            siblings: vec![[0u8; 32]; MAX_PROOF_DEPTH],
        };
        assert_eq!(
            deepest.verify::<SoftHasher>(protocol::Substrate, &member.key, &root),
            Err(MerkleError::NotMember)
        );
    }
    // One path, one encoding: a direction bit beyond the proof's length is refused.
    for (len, bits) in [(0usize, 0b1u32), (1, 0b10), (5, 1 << 5), (31, 1 << 31)] {
        let stray_bits = MembershipProof {
            cap: 10,
            left_siblings: bits,
            siblings: vec![[0u8; 32]; len],
        };
        assert_eq!(
            stray_bits.verify::<SoftHasher>(protocol::Substrate, &member.key, &root),
            Err(MerkleError::NonCanonicalPath),
            "len {len} bits {bits:#b}"
        );
    }
    let m = members_n(8);
    let tree = MerkleTree::build::<SoftHasher>(protocol::Substrate, &m).unwrap();
    let mut flipped = tree.proof(2).unwrap();
    flipped.left_siblings ^= 1;
    assert_eq!(
        flipped.verify::<SoftHasher>(protocol::Substrate, &m[2].key, &tree.root()),
        Err(MerkleError::NotMember)
    );
    // A valid proof with a stray high bit set is refused for its shape, before hashing.
    let mut stray = tree.proof(2).unwrap();
    stray.left_siblings |= 1 << 3;
    assert_eq!(
        stray.verify::<SoftHasher>(protocol::Substrate, &m[2].key, &tree.root()),
        Err(MerkleError::NonCanonicalPath)
    );
}

/// A payer's group holds each key once: the same key with two caps would let its holder
/// present whichever proof carries the bigger one.
#[test]
fn builder_rejects_empty_groups_and_a_key_with_two_caps() {
    assert_eq!(
        MerkleTree::build::<SoftHasher>(protocol::Substrate, &[]).err(),
        Some(MerkleError::EmptyGroup)
    );
    assert_eq!(
        MerkleTree::build_uniform::<SoftHasher>(protocol::Substrate, &[], 5).err(),
        Some(MerkleError::EmptyGroup)
    );
    let mut m = members_n(3);
    m.push(Member {
        key: m[1].key,
        cap: m[1].cap * 2,
    });
    assert_eq!(
        MerkleTree::build::<SoftHasher>(protocol::Substrate, &m).err(),
        Some(MerkleError::DuplicateKey { index: 3 })
    );
    let mut same_cap = members_n(3);
    same_cap.insert(1, same_cap[0]);
    assert_eq!(
        MerkleTree::build::<SoftHasher>(protocol::Substrate, &same_cap).err(),
        Some(MerkleError::DuplicateKey { index: 1 })
    );
    let keys = [key(0), key(1), key(0)];
    assert_eq!(
        MerkleTree::build_uniform::<SoftHasher>(protocol::Substrate, &keys, 5).err(),
        Some(MerkleError::DuplicateKey { index: 2 })
    );
    assert_eq!(
        MerkleTree::build::<SoftHasher>(protocol::Substrate, &members_n(2))
            .unwrap()
            .proof(2),
        Err(MerkleError::NoSuchMember { index: 2 })
    );
}

#[test]
fn a_uniform_group_gives_every_member_the_same_cap() {
    let keys: Vec<PublicKey> = (0..6).map(key).collect();
    let tree = MerkleTree::build_uniform::<SoftHasher>(protocol::Substrate, &keys, 250).unwrap();
    let explicit: Vec<Member> = keys.iter().map(|&key| Member { key, cap: 250 }).collect();
    assert_eq!(
        tree.root(),
        MerkleTree::build::<SoftHasher>(protocol::Substrate, &explicit)
            .unwrap()
            .root()
    );
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(tree.proof(i).unwrap().cap, 250);
        assert_eq!(tree.proof_for(k).unwrap().member(k), explicit[i]);
    }
}

#[test]
fn group_authority_needs_a_members_signature_and_proof_and_carries_its_cap() {
    let secrets: Vec<SecretKey> = (1..=5u8)
        .map(|s| SecretKey::from_slice(&[s; 32]).unwrap())
        .collect();
    let members: Vec<Member> = secrets
        .iter()
        .enumerate()
        .map(|(i, s)| Member {
            key: keys::public_key(s),
            cap: 100 * (i as u128 + 1),
        })
        .collect();
    let tree = MerkleTree::build::<SoftHasher>(protocol::Substrate, &members).unwrap();
    let group = Authority::Group(tree.root());
    let d = Domain {
        genesis_hash: [1; 32],
        contract: [2; 32],
    };
    // Member 3 signs the running total plus its price.
    let r = Receipt {
        channel: ChannelId(4),
        epoch: 0,
        amount: 300 + 100,
    };
    let sig = r.sign(&d, &secrets[3]);
    let proof = tree.proof(3).unwrap();
    let auth = |sig: &Signature, proof: Option<&MembershipProof>| {
        authorize::<SoftHasher, Libsecp256k1>(
            &group,
            &d,
            protocol::SignedReceipt {
                receipt: r,
                signature: *sig,
                proof: (proof).cloned(),
            },
        )
    };
    let accepted = auth(&sig, Some(&proof)).expect("a member's receipt");
    assert_eq!(accepted.signer(), members[3].key);
    assert_eq!(accepted.cap(), Some(members[3].cap));
    assert_eq!(*accepted.authority(), group);
    // Every member's committed cap comes through, none other.
    for (i, s) in secrets.iter().enumerate() {
        let sig = r.sign(&d, s);
        let accepted = auth(&sig, Some(&tree.proof(i).unwrap())).expect("a member");
        assert_eq!(accepted.cap(), Some(members[i].cap));
    }
    assert_eq!(auth(&sig, None), Err(AuthError::MissingProof));
    assert_eq!(
        auth(&sig, Some(&tree.proof(2).unwrap())),
        Err(AuthError::NotMember(MerkleError::NotMember))
    );
    // Member 3 claims member 4's bigger cap with its own path: not a member.
    let inflated = MembershipProof {
        cap: members[4].cap,
        ..proof.clone()
    };
    assert_eq!(
        auth(&sig, Some(&inflated)),
        Err(AuthError::NotMember(MerkleError::NotMember))
    );
    let outsider = r.sign(&d, &SecretKey::from_slice(&[77; 32]).unwrap());
    assert_eq!(
        auth(&outsider, Some(&proof)),
        Err(AuthError::NotMember(MerkleError::NotMember))
    );
}
