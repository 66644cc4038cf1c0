//! slotpay's protocol core: every rule that the contract, the Authorization Server,
//! the device and the client must agree on byte for byte.
//!
//! Sans-I/O and `#![no_std]` + `alloc`: hashing and public-key recovery come in through
//! the [`crypto::Hasher`] and [`crypto::EcdsaRecover`] traits, so the ink! contract plugs
//! in the chain's host functions while off-chain code uses libsecp256k1 and software
//! hashes (feature `std`). Nothing here knows the chain beyond a receipt's [`Domain`]
//! (a genesis hash and a contract account): another settlement layer could call the same
//! [`channel`] rules.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod authority;
pub mod channel;
pub mod crypto;
#[cfg(feature = "hotp")]
pub mod hotp;
pub mod merkle;
pub mod purchase;
pub mod receipt;
pub mod signature;
pub mod types;

pub use authority::{authorize, AuthError, Authority, Authorized};
pub use channel::{Channel, ChannelError, Claim, Payout, Rotation, Settlement};
pub use merkle::{Member, MembershipProof, MerkleError, MerkleRoot};
pub use purchase::{check_terms, screen, Purchase, PurchaseError, Spent, Tariff, TariffError};
pub use receipt::{Receipt, ReceiptError};
pub use signature::{Signature, SignatureError};
pub use types::{AccountId32, Balance, BlockNumber, ChannelId, Domain, Epoch, PublicKey};
