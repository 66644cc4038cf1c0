//! The slotpay contract's interface, defined once and used by the contract and by every
//! off-chain caller: the [`Error`] enum, the [`events`], and the [`messages`] with their
//! argument and return types. The channel's layout is [`protocol::Channel`].
//!
//! The contract (`contract/lib.rs`) builds this crate with feature `ink`, which turns the
//! events into ink! events; off-chain code builds it without. `tests/metadata.rs` checks
//! every item against the metadata `cargo contract build` writes (selectors, argument,
//! return and event types, topics, the error's variants), so a contract that drifts from
//! this crate fails the test command instead of a live call.
#![cfg_attr(not(feature = "std"), no_std)]

pub mod events;
pub mod messages;

pub use protocol::{
    AccountId32, Authority, Balance, BlockNumber, Channel, ChannelId, Domain, Epoch, SignedReceipt,
};

use parity_scale_codec::{Decode, Encode};
use protocol::{AuthError, ChannelError, MerkleError, ReceiptError, SignatureError};
use scale_info::TypeInfo;

/// Every way a contract message can fail; each failure has its own variant. Off-chain
/// code decodes a reverted call into this and reports it by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo, thiserror::Error)]
pub enum Error {
    /// No open channel has this id.
    #[error("no open channel has this id")]
    ChannelNotFound,
    /// Only the channel's payer may do this.
    #[error("only the channel's payer may do this")]
    NotPayer,
    /// Only the channel's payee may do this.
    #[error("only the channel's payee may do this")]
    NotPayee,
    /// `open` or `top_up` was called without value.
    #[error("no value was deposited")]
    ZeroDeposit,
    /// The payer cannot be its own payee.
    #[error("the payer cannot be its own payee")]
    PayeeIsPayer,
    /// `open` with an expiry that is not after the current block.
    #[error("the expiry block is not in the future")]
    ExpiryNotInFuture,
    /// `Authority::Account` naming another account than the payer.
    #[error("an account authority must be the payer's own account")]
    AccountAuthorityNotPayer,
    /// The channel has expired: it can no longer be settled, closed, topped up or rotated.
    #[error("the channel has expired")]
    ChannelExpired,
    /// `claim_expired` before the channel's expiry.
    #[error("the channel has not expired yet")]
    NotExpired,
    /// `extend` must move the expiry later.
    #[error("a new expiry must be later than the current one")]
    ExpiryNotLater,
    /// The deposit would overflow.
    #[error("the deposit would overflow")]
    DepositOverflow,
    /// The receipt is for another authority epoch than the channel's current one.
    #[error("the receipt is for another authority epoch")]
    WrongEpoch,
    /// The receipt claims more than the deposit.
    #[error("the receipt claims more than the deposit")]
    AmountExceedsDeposit,
    /// `settle` with a receipt that claims nothing above what was settled.
    #[error("the receipt claims nothing above what was settled")]
    NothingToSettle,
    /// `close` with a receipt below what was already settled.
    #[error("the receipt claims less than what was already settled")]
    BelowSettled,
    /// Channel ids are used up (2^64 channels).
    #[error("channel ids are used up")]
    ChannelIdsExhausted,
    /// Signature recovery id is not 0, 1, 27 or 28.
    #[error("signature recovery id is not 0, 1, 27 or 28")]
    InvalidRecoveryId,
    /// Signature r is zero or not below the curve order.
    #[error("signature r is out of range")]
    SignatureROutOfRange,
    /// Signature s is zero or not below the curve order.
    #[error("signature s is out of range")]
    SignatureSOutOfRange,
    /// Signature s is in the upper half of the order (a malleated signature).
    #[error("signature s is high (malleated)")]
    SignatureHighS,
    /// No public key recovers from the signature.
    #[error("no public key recovers from the signature")]
    SignatureRecoveryFailed,
    /// The signer is not the payer's account key.
    #[error("the signer is not the payer's account key")]
    NotPayerAccount,
    /// The signer is not the delegated key.
    #[error("the signer is not the delegated key")]
    NotDelegate,
    /// A group channel was settled or closed without a membership proof.
    #[error("a group channel needs a membership proof")]
    MissingProof,
    /// A membership proof was given for a channel that is not a group.
    #[error("only group channels take a membership proof")]
    UnexpectedProof,
    /// The membership proof is longer than the protocol's maximum depth.
    #[error("the membership proof is too long")]
    ProofTooLong,
    /// The membership proof's direction bits are not canonical.
    #[error("the membership proof is not canonical")]
    NonCanonicalProof,
    /// The signer (with its cap) is not a member of the channel's group.
    #[error("the signer is not a member of the group")]
    NotMember,
    /// The channel's keys are revoked: no receipt counts.
    #[error("the channel's keys are revoked")]
    Revoked,
    /// `withdraw` by an account the contract owes nothing.
    #[error("nothing to withdraw")]
    NothingToWithdraw,
    /// The chain refused the withdrawal's transfer; the balance stays owed.
    #[error("the transfer was refused; the balance stays owed")]
    WithdrawFailed,
    /// `close` with a receipt of another channel than the one named.
    #[error("the receipt is for another channel")]
    WrongChannel,
}

impl From<ChannelError> for Error {
    fn from(error: ChannelError) -> Self {
        match error {
            ChannelError::ZeroDeposit => Error::ZeroDeposit,
            ChannelError::PayeeIsPayer => Error::PayeeIsPayer,
            ChannelError::ExpiryNotInFuture => Error::ExpiryNotInFuture,
            ChannelError::AccountAuthorityNotPayer => Error::AccountAuthorityNotPayer,
            ChannelError::Expired => Error::ChannelExpired,
            ChannelError::NotExpired => Error::NotExpired,
            ChannelError::ExpiryNotLater => Error::ExpiryNotLater,
            ChannelError::DepositOverflow => Error::DepositOverflow,
            ChannelError::WrongEpoch { .. } => Error::WrongEpoch,
            ChannelError::AmountExceedsDeposit => Error::AmountExceedsDeposit,
            ChannelError::NothingToSettle => Error::NothingToSettle,
            ChannelError::BelowSettled => Error::BelowSettled,
        }
    }
}

impl From<AuthError> for Error {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Receipt(ReceiptError::Signature(e)) => match e {
                SignatureError::InvalidRecoveryId(_) => Error::InvalidRecoveryId,
                SignatureError::ROutOfRange => Error::SignatureROutOfRange,
                SignatureError::SOutOfRange => Error::SignatureSOutOfRange,
                SignatureError::HighS => Error::SignatureHighS,
                SignatureError::RecoveryFailed => Error::SignatureRecoveryFailed,
            },
            AuthError::NotPayerAccount => Error::NotPayerAccount,
            AuthError::NotDelegate => Error::NotDelegate,
            AuthError::MissingProof => Error::MissingProof,
            AuthError::UnexpectedProof => Error::UnexpectedProof,
            AuthError::NotMember(MerkleError::ProofTooLong { .. }) => Error::ProofTooLong,
            AuthError::NotMember(MerkleError::NonCanonicalPath) => Error::NonCanonicalProof,
            // The verifier yields only the three above; tree-building errors are
            // off-chain only and also mean "not a member" here.
            AuthError::NotMember(_) => Error::NotMember,
            AuthError::Revoked => Error::Revoked,
        }
    }
}
