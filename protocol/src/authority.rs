//! Who may sign receipts for a channel: the three constructions.
use crate::crypto::{EcdsaRecover, Hasher};
use crate::merkle::{MembershipProof, MerkleError, MerkleRoot};
use crate::receipt::{Receipt, ReceiptError};
use crate::signature::Signature;
use crate::types::{AccountId32, Domain, PublicKey};
use parity_scale_codec::{Decode, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

/// The signing authority a channel is bound to when it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub enum Authority {
    /// The payer's own ECDSA account key: the signer's account id,
    /// blake2_256(compressed public key), must equal this one.
    Account(AccountId32),
    /// A delegated client key: a client with no chain account spends up to the deposit.
    Delegate(PublicKey),
    /// The Merkle root of a group of client keys of one owner; any member may sign.
    Group(MerkleRoot),
}

/// Why a receipt is not authorized by a channel's authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Receipt(#[from] ReceiptError),
    #[error("the receipt is not signed by the payer's account key")]
    NotPayerAccount,
    #[error("the receipt is not signed by the delegated key")]
    NotDelegate,
    #[error("a group channel needs a membership proof")]
    MissingProof,
    #[error("only group channels take a membership proof")]
    UnexpectedProof,
    #[error("signer is not a group member: {0}")]
    NotMember(#[from] MerkleError),
}

/// The account id of an ECDSA public key, as Substrate derives it.
pub fn account_id_of<H: Hasher>(key: &PublicKey) -> AccountId32 {
    H::blake2_256(&key.0)
}

/// Checks that `signature` over `receipt` in `domain` is authorized by `authority`
/// (with `proof` for groups), returning the signer. This one function is the rule used by
/// the contract on close and by the AS before it returns an OTP.
pub fn authorize<H: Hasher, R: EcdsaRecover>(
    authority: &Authority,
    domain: &Domain,
    receipt: &Receipt,
    signature: &Signature,
    proof: Option<&MembershipProof>,
) -> Result<PublicKey, AuthError> {
    if proof.is_some() && !matches!(authority, Authority::Group(_)) {
        return Err(AuthError::UnexpectedProof);
    }
    let signer = receipt.recover_signer::<H, R>(domain, signature)?;
    match authority {
        Authority::Account(account) => {
            if account_id_of::<H>(&signer) != *account {
                return Err(AuthError::NotPayerAccount);
            }
        }
        Authority::Delegate(key) => {
            if signer != *key {
                return Err(AuthError::NotDelegate);
            }
        }
        Authority::Group(root) => {
            proof
                .ok_or(AuthError::MissingProof)?
                .verify::<H>(&signer, root)?;
        }
    }
    Ok(signer)
}
