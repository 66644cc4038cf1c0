//! slotpay's protocol core: every rule that the contract, the Authorization Server,
//! the device and the client must agree on byte for byte.
//!
//! Sans-I/O and `#![no_std]` + `alloc`: hashing and public-key recovery come in through
//! the [`crypto::Hasher`] and [`crypto::EcdsaRecover`] traits, so the ink! contract plugs
//! in the chain's host functions while off-chain code uses libsecp256k1 and software
//! hashes (feature `std`). Nothing here knows the chain beyond what a settlement
//! [`Layer`] supplies: a receipt's domain and signing hash, a key's account id, a group
//! leaf, a signature's `v` ([`Substrate`] for the ink! contract, [`Evm`] for the Solidity
//! one, feature `evm`); every rule ([`authorize`], [`Channel`], [`check_terms`]) is one
//! copy for both.
//!
//! The surface: the values and rules at the crate root; three namespaces, [`crypto`]
//! (the two primitives and their off-chain backends), [`hotp`] (the device's tokens,
//! feature `hotp`) and [`keys`] (off-chain signing, feature `std`). Feature `serde` gives
//! the values their JSON form (balances as decimal strings, bytes as hex), so the
//! off-chain parts carry these very types over HTTP.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

// Only the payment rules allocate; HOTP alone (feature `payments` off) links no `alloc`,
// so a microcontroller needs no allocator for it.
#[cfg(feature = "payments")]
extern crate alloc;

#[cfg(feature = "payments")]
mod authority;
#[cfg(feature = "payments")]
mod channel;
pub mod crypto;
#[cfg(feature = "hotp")]
pub mod hotp;
#[cfg(feature = "payments")]
mod layer;
#[cfg(feature = "payments")]
mod merkle;
#[cfg(feature = "payments")]
mod purchase;
#[cfg(feature = "payments")]
mod receipt;
#[cfg(feature = "payments")]
mod signature;
#[cfg(feature = "payments")]
mod types;
#[cfg(feature = "serde")]
mod wire;

#[cfg(feature = "payments")]
pub use authority::{account_id_of, authorize, AuthError, Authority, Authorized};
#[cfg(feature = "payments")]
pub use channel::{Channel, ChannelError, Payout, Rotation, Settlement};
#[cfg(feature = "payments")]
pub use layer::{
    evm_account, evm_address, Address, EvmDomain, Layer, ReceiptDomain, Substrate,
    EIP712_DOMAIN_TYPEHASH, EIP712_NAME, EIP712_VERSION, EVM_ACCOUNT_SUFFIX, RECEIPT_TYPEHASH,
};
#[cfg(feature = "evm")]
pub use layer::{evm_address_of, AnyDomain, AnyLayer, Evm};
#[cfg(feature = "std")]
pub use merkle::MerkleTree;
#[cfg(feature = "payments")]
pub use merkle::{
    leaf_hash, node_hash, Member, MembershipProof, MerkleError, MerkleRoot, LEAF_PREFIX,
    MAX_PROOF_DEPTH, NODE_PREFIX, UNLIMITED,
};
#[cfg(feature = "payments")]
pub use purchase::{check_terms, screen, Purchase, PurchaseError, Spent, Tariff, TariffError};
#[cfg(feature = "payments")]
pub use receipt::{Receipt, ReceiptError, SignedReceipt, RECEIPT_TAG, RECEIPT_VERSION};
#[cfg(feature = "payments")]
pub use signature::{Signature, SignatureError};
#[cfg(feature = "payments")]
pub use types::{AccountId32, Balance, BlockNumber, ChannelId, Domain, Epoch, PublicKey};
#[cfg(feature = "serde")]
pub use wire::{parse_balance, parse_hex, to_hex};

/// Off-chain key handling: generate, derive the public key, sign (feature `std`).
#[cfg(feature = "std")]
pub mod keys {
    pub use crate::signature::keys::{generate, public_key, sign_hash, SecretKey};
}
