//! Settlement layers: one set of rules, an encoding per chain.
//!
//! Every rule of this crate (the channel's, the purchase's, [`crate::authorize`]'s) is
//! the same on every chain that settles slotpay channels; what differs is how a chain
//! names and hashes things. A [`Layer`] supplies exactly that, and nothing else:
//!
//! | | [`Substrate`] (the ink! contract) | [`Evm`] (`evm/src/SlotpayChannels.sol`) |
//! | --- | --- | --- |
//! | receipt domain | [`Domain`]: genesis hash, contract account | [`EvmDomain`]: chain id, contract address |
//! | signing hash | keccak256 of the SCALE payload ([`crate::Receipt::signing_payload`]) | the EIP-712 digest of `Receipt(uint64 channel,uint32 epoch,uint128 amount)` |
//! | a key's account | blake2_256(compressed key) | its 20-byte address ‖ 0xEE × 12 (pallet-revive's mapping of an Ethereum account) |
//! | group leaf | keccak256(0x00 ‖ key (33) ‖ cap u128 LE) | keccak256(0x00 ‖ address (20) ‖ cap u128 BE) |
//! | signature `v` | 0 or 1 (27/28 mapped to them) | 27 or 28 only |
//!
//! Inner Merkle nodes ([`crate::node_hash`]), proofs, signatures' `r` and `s` rules and
//! every channel rule are shared. A receipt's domain names its layer
//! ([`ReceiptDomain`]), so a verifier given a domain cannot hash with one layer and
//! compare accounts with another; off-chain code that learns the layer at run time
//! (from a deployment file) carries an [`AnyDomain`] and an [`AnyLayer`].
use crate::crypto::Hasher;
use crate::merkle::{Member, LEAF_PREFIX};
use crate::receipt::Receipt;
use crate::signature::SignatureError;
use crate::types::{AccountId32, Domain, PublicKey};

/// What a settlement layer encodes its own way (see the module's table).
pub trait Layer: Copy {
    /// Where a receipt is valid on this layer.
    type Domain: ReceiptDomain<Layer = Self>;
    /// The 32-byte hash a receipt's signer signs for `domain`.
    fn signing_hash<H: Hasher>(self, receipt: &Receipt, domain: &Self::Domain) -> [u8; 32];
    /// The account id of a key on this layer.
    fn account_id<H: Hasher>(self, key: &PublicKey) -> AccountId32;
    /// The Merkle leaf of a group member (its key and cap).
    fn leaf_hash<H: Hasher>(self, member: &Member) -> [u8; 32];
    /// The recovery id (0 or 1) a signature's last byte stands for on this layer, or why
    /// it stands for none: each layer accepts exactly one encoding of each signature.
    fn recovery_id(self, v: u8) -> Result<u8, SignatureError>;
    /// The last byte of a signature with recovery id `id` (0 or 1), as this layer's
    /// contract takes it.
    fn v_byte(self, id: u8) -> u8;
}

/// A receipt's domain, which names its layer.
pub trait ReceiptDomain {
    /// The layer whose contract the domain names.
    type Layer: Layer<Domain = Self>;
    /// That layer.
    fn layer(&self) -> Self::Layer;
}

/// The ink! contract on a Substrate chain (pallet-contracts): the primary layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Substrate;

impl Layer for Substrate {
    type Domain = Domain;

    fn signing_hash<H: Hasher>(self, receipt: &Receipt, domain: &Domain) -> [u8; 32] {
        H::keccak256(&receipt.signing_payload(domain))
    }

    fn account_id<H: Hasher>(self, key: &PublicKey) -> AccountId32 {
        H::blake2_256(&key.0)
    }

    fn leaf_hash<H: Hasher>(self, member: &Member) -> [u8; 32] {
        let mut buf = [0u8; 50];
        buf[0] = LEAF_PREFIX;
        buf[1..34].copy_from_slice(&member.key.0);
        buf[34..].copy_from_slice(&member.cap.to_le_bytes());
        H::keccak256(&buf)
    }

    fn recovery_id(self, v: u8) -> Result<u8, SignatureError> {
        match v {
            0 | 1 => Ok(v),
            27 | 28 => Ok(v - 27),
            v => Err(SignatureError::InvalidRecoveryId(v)),
        }
    }

    fn v_byte(self, id: u8) -> u8 {
        id
    }
}

impl ReceiptDomain for Domain {
    type Layer = Substrate;
    fn layer(&self) -> Substrate {
        Substrate
    }
}

/// A 20-byte EVM address.
pub type Address = [u8; 20];

/// Where a receipt is valid on an EVM chain: the EIP-712 domain's chain id and
/// verifying contract (name "slotpay", version "1").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EvmDomain {
    /// The chain's EIP-155 id (`block.chainid`).
    pub chain_id: u64,
    /// The contract's address.
    pub contract: Address,
}

/// keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)").
pub const EIP712_DOMAIN_TYPEHASH: [u8; 32] =
    hex32("8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f");
/// keccak256("Receipt(uint64 channel,uint32 epoch,uint128 amount)").
pub const RECEIPT_TYPEHASH: [u8; 32] =
    hex32("012f112d94ed50e7f39e2f12f399fb527aa076b173f890201b70cf9b5fa97ccc");
/// The EIP-712 domain's name.
pub const EIP712_NAME: &str = "slotpay";
/// The EIP-712 domain's version.
pub const EIP712_VERSION: &str = "1";
/// What the last 12 bytes of an EVM account's [`AccountId32`] are (pallet-revive's
/// mapping of an Ethereum address into a 32-byte account).
pub const EVM_ACCOUNT_SUFFIX: [u8; 12] = [0xEE; 12];

const fn hex32(text: &str) -> [u8; 32] {
    let b = text.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("lower-case hex"),
    }
}

fn word(tail: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[32 - tail.len()..].copy_from_slice(tail);
    out
}

impl EvmDomain {
    /// The EIP-712 domain separator, as the contract's `domainSeparator()`.
    pub fn separator<H: Hasher>(&self) -> [u8; 32] {
        let mut buf = [0u8; 160];
        buf[..32].copy_from_slice(&EIP712_DOMAIN_TYPEHASH);
        buf[32..64].copy_from_slice(&H::keccak256(EIP712_NAME.as_bytes()));
        buf[64..96].copy_from_slice(&H::keccak256(EIP712_VERSION.as_bytes()));
        buf[96..128].copy_from_slice(&word(&self.chain_id.to_be_bytes()));
        buf[128..].copy_from_slice(&word(&self.contract));
        H::keccak256(&buf)
    }
}

/// An EVM address as an [`AccountId32`]: the address ‖ 0xEE × 12.
pub fn evm_account(address: &Address) -> AccountId32 {
    let mut out = [0u8; 32];
    out[..20].copy_from_slice(address);
    out[20..].copy_from_slice(&EVM_ACCOUNT_SUFFIX);
    out
}

/// The address an [`AccountId32`] maps, if it is an EVM account ([`evm_account`]).
pub fn evm_address(account: &AccountId32) -> Option<Address> {
    if account[20..] != EVM_ACCOUNT_SUFFIX {
        return None;
    }
    let mut out = [0u8; 20];
    out.copy_from_slice(&account[..20]);
    Some(out)
}

/// The EVM address of a compressed secp256k1 key: the last 20 bytes of keccak256 of its
/// uncompressed coordinates. `None` for bytes that are not a point of the curve (no
/// recovered key is such).
#[cfg(feature = "evm")]
pub fn evm_address_of<H: Hasher>(key: &PublicKey) -> Option<Address> {
    use k256::elliptic_curve::sec1::ToEncodedPoint as _;
    let point = k256::PublicKey::from_sec1_bytes(&key.0).ok()?;
    let uncompressed = point.to_encoded_point(false);
    let hash = H::keccak256(&uncompressed.as_bytes()[1..]);
    let mut out = [0u8; 20];
    out.copy_from_slice(&hash[12..]);
    Some(out)
}

/// A Solidity contract on an EVM chain (`evm/src/SlotpayChannels.sol`): Ethereum, any
/// EVM chain, Polkadot Hub's REVM.
#[cfg(feature = "evm")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Evm;

#[cfg(feature = "evm")]
impl Layer for Evm {
    type Domain = EvmDomain;

    fn signing_hash<H: Hasher>(self, receipt: &Receipt, domain: &EvmDomain) -> [u8; 32] {
        let mut item = [0u8; 128];
        item[..32].copy_from_slice(&RECEIPT_TYPEHASH);
        item[32..64].copy_from_slice(&word(&receipt.channel.0.to_be_bytes()));
        item[64..96].copy_from_slice(&word(&receipt.epoch.to_be_bytes()));
        item[96..].copy_from_slice(&word(&receipt.amount.to_be_bytes()));
        let mut buf = [0u8; 66];
        buf[..2].copy_from_slice(&[0x19, 0x01]);
        buf[2..34].copy_from_slice(&domain.separator::<H>());
        buf[34..].copy_from_slice(&H::keccak256(&item));
        H::keccak256(&buf)
    }

    /// A key that is not a curve point (never a signer) maps to the zero address's
    /// account, which no EVM channel names.
    fn account_id<H: Hasher>(self, key: &PublicKey) -> AccountId32 {
        evm_account(&evm_address_of::<H>(key).unwrap_or_default())
    }

    fn leaf_hash<H: Hasher>(self, member: &Member) -> [u8; 32] {
        let mut buf = [0u8; 37];
        buf[0] = LEAF_PREFIX;
        buf[1..21].copy_from_slice(&evm_address_of::<H>(&member.key).unwrap_or_default());
        buf[21..].copy_from_slice(&member.cap.to_be_bytes());
        H::keccak256(&buf)
    }

    fn recovery_id(self, v: u8) -> Result<u8, SignatureError> {
        match v {
            27 | 28 => Ok(v - 27),
            v => Err(SignatureError::InvalidRecoveryId(v)),
        }
    }

    fn v_byte(self, id: u8) -> u8 {
        id + 27
    }
}

#[cfg(feature = "evm")]
impl ReceiptDomain for EvmDomain {
    type Layer = Evm;
    fn layer(&self) -> Evm {
        Evm
    }
}

/// A layer chosen at run time (from a deployment file): dispatches to [`Substrate`] or
/// [`Evm`].
#[cfg(feature = "evm")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnyLayer {
    /// The ink! contract.
    Substrate,
    /// The Solidity contract.
    Evm,
}

/// A receipt domain chosen at run time: the one a deployment names.
#[cfg(feature = "evm")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnyDomain {
    /// An ink! deployment's.
    Substrate(Domain),
    /// An EVM deployment's.
    Evm(EvmDomain),
}

#[cfg(feature = "evm")]
impl From<Domain> for AnyDomain {
    fn from(domain: Domain) -> Self {
        AnyDomain::Substrate(domain)
    }
}

#[cfg(feature = "evm")]
impl From<EvmDomain> for AnyDomain {
    fn from(domain: EvmDomain) -> Self {
        AnyDomain::Evm(domain)
    }
}

#[cfg(feature = "evm")]
impl ReceiptDomain for AnyDomain {
    type Layer = AnyLayer;
    fn layer(&self) -> AnyLayer {
        match self {
            AnyDomain::Substrate(_) => AnyLayer::Substrate,
            AnyDomain::Evm(_) => AnyLayer::Evm,
        }
    }
}

#[cfg(feature = "evm")]
impl Layer for AnyLayer {
    type Domain = AnyDomain;

    /// Hashes for the domain's own layer (a domain names its layer; `self` is not asked).
    fn signing_hash<H: Hasher>(self, receipt: &Receipt, domain: &AnyDomain) -> [u8; 32] {
        match domain {
            AnyDomain::Substrate(d) => Substrate.signing_hash::<H>(receipt, d),
            AnyDomain::Evm(d) => Evm.signing_hash::<H>(receipt, d),
        }
    }

    fn account_id<H: Hasher>(self, key: &PublicKey) -> AccountId32 {
        match self {
            AnyLayer::Substrate => Substrate.account_id::<H>(key),
            AnyLayer::Evm => Evm.account_id::<H>(key),
        }
    }

    fn leaf_hash<H: Hasher>(self, member: &Member) -> [u8; 32] {
        match self {
            AnyLayer::Substrate => Substrate.leaf_hash::<H>(member),
            AnyLayer::Evm => Evm.leaf_hash::<H>(member),
        }
    }

    fn recovery_id(self, v: u8) -> Result<u8, SignatureError> {
        match self {
            AnyLayer::Substrate => Substrate.recovery_id(v),
            AnyLayer::Evm => Evm.recovery_id(v),
        }
    }

    fn v_byte(self, id: u8) -> u8 {
        match self {
            AnyLayer::Substrate => Substrate.v_byte(id),
            AnyLayer::Evm => Evm.v_byte(id),
        }
    }
}
