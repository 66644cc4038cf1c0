//! Plain data shared by every component.
use parity_scale_codec::{Decode, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

/// Chain balance unit (ink!'s default environment uses `u128`).
pub type Balance = u128;

/// A 32-byte account id, as Substrate's `AccountId32`.
pub type AccountId32 = [u8; 32];

/// A block height (ink!'s default environment uses `u32`).
pub type BlockNumber = u32;

/// How many times a channel's authority has been rotated: receipts count from zero in
/// each epoch (see [`crate::channel`]).
pub type Epoch = u32;

/// A channel id, assigned by the contract from a counter that only grows: an id is
/// never reused, so a receipt for a closed channel can never revive on a later one.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Encode,
    Decode,
    MaxEncodedLen,
    TypeInfo,
)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(transparent)
)]
pub struct ChannelId(pub u64);

impl core::fmt::Display for ChannelId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A 33-byte SEC1 compressed secp256k1 public key: what ink!'s `ecdsa_recover` returns.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Encode, Decode, MaxEncodedLen, TypeInfo,
)]
pub struct PublicKey(pub [u8; 33]);

/// Hex in JSON (`0x` + 66 digits).
#[cfg(feature = "serde")]
impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        crate::wire::hex_bytes::serialize(&self.0, s)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::wire::hex_bytes::deserialize(d).map(PublicKey)
    }
}

impl core::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PublicKey(0x")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// Where a receipt is valid: one chain and one contract instance. Bound into every
/// signing payload so a receipt cannot be replayed on another chain or contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct Domain {
    /// The chain's genesis block hash.
    pub genesis_hash: [u8; 32],
    /// The account of the contract instance.
    pub contract: AccountId32,
}
