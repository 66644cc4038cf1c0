//! A Merkle tree of client keys with their spending caps (keccak256), for many-to-one
//! channels.
//!
//! Each leaf binds a member's key *and* its cap, so the root the payer puts on chain
//! commits to both: a member proves membership by presenting its cap with its proof, and
//! cannot claim a larger cap than the payer gave it. The contract only checks membership;
//! the AS enforces the cap on each member's own spending (see [`crate::purchase`]).
//!
//! Leaves and inner nodes are hashed under different one-byte prefixes (as RFC 6962 does),
//! so an inner node can never be presented as a leaf. A level with an odd number of nodes
//! promotes its last node unpaired instead of duplicating it, so no two different key sets
//! share a root through duplication (the CVE-2012-2459 pitfall).
use crate::crypto::Hasher;
use crate::layer::{Layer, Substrate};
use crate::types::{Balance, PublicKey};
use alloc::vec::Vec;
use parity_scale_codec::{Decode, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

/// Prefix of a leaf hash: keccak256(0x00 || the member as its layer names it || cap), see
/// [`Layer::leaf_hash`].
pub const LEAF_PREFIX: u8 = 0x00;
/// Prefix of an inner node hash: keccak256(0x01 || left || right).
pub const NODE_PREFIX: u8 = 0x01;
/// Deepest proof accepted: groups of up to 2^32 keys. Bounds the contract's work.
pub const MAX_PROOF_DEPTH: usize = 32;

/// The root of a key group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode, MaxEncodedLen, TypeInfo)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(transparent)
)]
pub struct MerkleRoot(
    #[cfg_attr(feature = "serde", serde(with = "crate::wire::hex_bytes"))] pub [u8; 32],
);

/// Why a membership proof, or a tree, was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// A proof deeper than [`MAX_PROOF_DEPTH`]: refused before any hashing, so a long
    /// proof costs the contract nothing.
    #[error("proof has {len} steps, more than the maximum {max}")]
    ProofTooLong {
        /// The proof's number of sibling hashes.
        len: usize,
        /// [`MAX_PROOF_DEPTH`].
        max: usize,
    },
    /// Direction bits set at or above the proof's length: a second encoding of the same
    /// path, refused so a proof has exactly one.
    #[error("proof direction bits are set beyond its length")]
    NonCanonicalPath,
    /// The key and cap do not hash up to the channel's root (wrong key, wrong cap, or a
    /// proof for another group).
    #[error("the key is not a member of the group")]
    NotMember,
    /// A tree over no keys: a group root must commit to someone.
    #[error("a group needs at least one key")]
    EmptyGroup,
    /// The same key twice in one group, which would give it two caps.
    #[error("key {index} appears twice in the group")]
    DuplicateKey {
        /// The position, in the given order, of the key's second appearance.
        index: usize,
    },
    /// More keys than a proof of [`MAX_PROOF_DEPTH`] steps can reach.
    #[error("a group holds at most 2^32 keys")]
    TooManyKeys,
    /// A proof asked for a position past the tree's last member.
    #[error("no member at index {index}")]
    NoSuchMember {
        /// The position asked for.
        index: usize,
    },
}

/// The most a member may spend when its payer sets no limit.
pub const UNLIMITED: Balance = Balance::MAX;

/// One member of a key group: its key and the most it may spend on a channel (in the
/// channel's current authority epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct Member {
    /// The client key whose receipts the member signs.
    pub key: PublicKey,
    /// The most this member may add to the channel's running total in one epoch, summed
    /// over its own receipts, in the chain's smallest unit; [`UNLIMITED`] for no limit.
    /// Bound into the leaf; the AS enforces it (the contract only checks membership).
    pub cap: Balance,
}

/// A member's cap and the path from its leaf to the root: sibling hashes bottom-up, and
/// for each step whether the sibling is on the left (bit i of `left_siblings` set) or on
/// the right.
#[derive(Debug, Clone, PartialEq, Eq, Default, Encode, Decode, TypeInfo)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct MembershipProof {
    /// The member's spending cap, as committed in its leaf.
    #[cfg_attr(feature = "serde", serde(with = "crate::wire::decimal"))]
    pub cap: Balance,
    /// Bit i set: sibling i is on the left of the path.
    pub left_siblings: u32,
    /// Sibling hashes, leaf level first.
    #[cfg_attr(feature = "serde", serde(with = "crate::wire::siblings"))]
    pub siblings: Vec<[u8; 32]>,
}

/// The ink! layer's leaf, keccak256(0x00 || key || cap little-endian):
/// [`Substrate`]'s [`Layer::leaf_hash`].
pub fn leaf_hash<H: Hasher>(member: &Member) -> [u8; 32] {
    Substrate.leaf_hash::<H>(member)
}

/// keccak256(0x01 || left || right).
pub fn node_hash<H: Hasher>(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut buf = [0u8; 65];
    buf[0] = NODE_PREFIX;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    H::keccak256(&buf)
}

impl MembershipProof {
    /// The member this proof speaks for, when presented with `key`.
    pub fn member(&self, key: &PublicKey) -> Member {
        Member {
            key: *key,
            cap: self.cap,
        }
    }

    /// The root this proof leads to from `key` (with the proof's cap, its leaf as
    /// `layer` encodes it), checking the proof's shape first.
    pub fn root_from<H: Hasher>(
        &self,
        layer: impl Layer,
        key: &PublicKey,
    ) -> Result<MerkleRoot, MerkleError> {
        let len = self.siblings.len();
        if len > MAX_PROOF_DEPTH {
            return Err(MerkleError::ProofTooLong {
                len,
                max: MAX_PROOF_DEPTH,
            });
        }
        // One encoding per path: unused direction bits must be zero.
        if len < 32 && self.left_siblings >> len != 0 {
            return Err(MerkleError::NonCanonicalPath);
        }
        let mut acc = layer.leaf_hash::<H>(&self.member(key));
        for (i, sibling) in self.siblings.iter().enumerate() {
            acc = if (self.left_siblings >> i) & 1 == 1 {
                node_hash::<H>(sibling, &acc)
            } else {
                node_hash::<H>(&acc, sibling)
            };
        }
        Ok(MerkleRoot(acc))
    }

    /// Ok if `key`, with this proof's cap, is a member of the group with `root` (its
    /// leaves as `layer` encodes them).
    pub fn verify<H: Hasher>(
        &self,
        layer: impl Layer,
        key: &PublicKey,
        root: &MerkleRoot,
    ) -> Result<(), MerkleError> {
        if self.root_from::<H>(layer, key)? == *root {
            Ok(())
        } else {
            Err(MerkleError::NotMember)
        }
    }
}

#[cfg(feature = "std")]
pub use tree::MerkleTree;

#[cfg(feature = "std")]
mod tree {
    use super::*;
    use std::collections::HashMap;

    /// A whole key group, kept to hand out membership proofs.
    pub struct MerkleTree {
        /// levels[0] are the leaf hashes, the last level is the root alone.
        levels: Vec<Vec<[u8; 32]>>,
        index_of: HashMap<PublicKey, usize>,
        members: Vec<Member>,
    }

    impl MerkleTree {
        /// Builds the tree over `members` in the given order, its leaves as `layer`
        /// encodes them. A key may appear once only, so no member holds two caps.
        pub fn build<H: Hasher>(
            layer: impl Layer,
            members: &[Member],
        ) -> Result<Self, MerkleError> {
            if members.is_empty() {
                return Err(MerkleError::EmptyGroup);
            }
            if members.len() as u64 > 1u64 << MAX_PROOF_DEPTH {
                return Err(MerkleError::TooManyKeys);
            }
            let mut index_of = HashMap::with_capacity(members.len());
            for (index, member) in members.iter().enumerate() {
                if index_of.insert(member.key, index).is_some() {
                    return Err(MerkleError::DuplicateKey { index });
                }
            }
            let mut levels = vec![members
                .iter()
                .map(|m| layer.leaf_hash::<H>(m))
                .collect::<Vec<_>>()];
            while levels[levels.len() - 1].len() > 1 {
                let below = &levels[levels.len() - 1];
                let above = below
                    .chunks(2)
                    .map(|pair| match pair {
                        [left, right] => node_hash::<H>(left, right),
                        [odd] => *odd,
                        _ => unreachable!("chunks(2) yields one or two items"),
                    })
                    .collect();
                levels.push(above);
            }
            Ok(Self {
                levels,
                index_of,
                members: members.to_vec(),
            })
        }

        /// Builds a group of `keys`, each with the same `cap`.
        pub fn build_uniform<H: Hasher>(
            layer: impl Layer,
            keys: &[PublicKey],
            cap: Balance,
        ) -> Result<Self, MerkleError> {
            let members: Vec<Member> = keys.iter().map(|&key| Member { key, cap }).collect();
            Self::build::<H>(layer, &members)
        }

        /// The members, in tree order.
        pub fn members(&self) -> &[Member] {
            &self.members
        }

        /// The root the payer puts on chain as the channel's group authority.
        pub fn root(&self) -> MerkleRoot {
            MerkleRoot(self.levels[self.levels.len() - 1][0])
        }

        /// How many members the group has (at least one).
        pub fn len(&self) -> usize {
            self.levels[0].len()
        }

        /// Always false: [`Self::build`] refuses an empty group.
        pub fn is_empty(&self) -> bool {
            false
        }

        /// The proof for the member at `index`.
        pub fn proof(&self, index: usize) -> Result<MembershipProof, MerkleError> {
            if index >= self.len() {
                return Err(MerkleError::NoSuchMember { index });
            }
            let mut proof = MembershipProof {
                cap: self.members[index].cap,
                ..MembershipProof::default()
            };
            let mut position = index;
            for level in &self.levels[..self.levels.len() - 1] {
                let sibling = position ^ 1;
                // A promoted odd node has no sibling on this level: no step.
                if sibling < level.len() {
                    if sibling < position {
                        proof.left_siblings |= 1 << proof.siblings.len();
                    }
                    proof.siblings.push(level[sibling]);
                }
                position /= 2;
            }
            Ok(proof)
        }

        /// The proof for `key`, if it is a member.
        pub fn proof_for(&self, key: &PublicKey) -> Result<MembershipProof, MerkleError> {
            let index = *self.index_of.get(key).ok_or(MerkleError::NotMember)?;
            self.proof(index)
        }
    }
}
