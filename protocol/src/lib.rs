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

// Only the payment rules allocate; HOTP alone (feature `payments` off) links no `alloc`,
// so a microcontroller needs no allocator for it.
#[cfg(feature = "payments")]
extern crate alloc;

#[cfg(feature = "payments")]
pub mod authority;
#[cfg(feature = "payments")]
pub mod channel;
pub mod crypto;
#[cfg(feature = "hotp")]
pub mod hotp;
#[cfg(feature = "payments")]
pub mod merkle;
#[cfg(feature = "payments")]
pub mod purchase;
#[cfg(feature = "payments")]
pub mod receipt;
#[cfg(feature = "payments")]
pub mod signature;
#[cfg(feature = "payments")]
pub mod types;

#[cfg(feature = "payments")]
pub use authority::{authorize, AuthError, Authority, Authorized};
#[cfg(feature = "payments")]
pub use channel::{Channel, ChannelError, Claim, Payout, Rotation, Settlement};
#[cfg(feature = "payments")]
pub use merkle::{Member, MembershipProof, MerkleError, MerkleRoot};
#[cfg(feature = "payments")]
pub use purchase::{check_terms, screen, Purchase, PurchaseError, Spent, Tariff, TariffError};
#[cfg(feature = "payments")]
pub use receipt::{Receipt, ReceiptError};
#[cfg(feature = "payments")]
pub use signature::{Signature, SignatureError};
#[cfg(feature = "payments")]
pub use types::{AccountId32, Balance, BlockNumber, ChannelId, Domain, Epoch, PublicKey};
