//! Who may sign receipts for a channel: the three constructions, and the proof that a
//! receipt was signed by one.
use crate::crypto::{EcdsaRecover, Hasher};
use crate::layer::{Layer, ReceiptDomain};
use crate::merkle::{MerkleError, MerkleRoot};
use crate::receipt::{Receipt, ReceiptError, SignedReceipt};
use crate::types::{AccountId32, Balance, PublicKey};
use parity_scale_codec::{Decode, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

/// The signing authority a channel is bound to when it is opened (and that the payer may
/// rotate, see [`crate::channel`]). Accounts are named as the channel's layer names them
/// ([`Layer::account_id`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub enum Authority {
    /// The payer's own ECDSA account key: the signer's account id (on the ink! layer
    /// blake2_256(compressed public key), on an EVM its address) must equal this one.
    Account(AccountId32),
    /// A delegated client key: a client with no chain account spends up to the deposit.
    Delegate(PublicKey),
    /// The Merkle root of a group of client keys of one owner, each with its spending cap;
    /// any member may sign.
    Group(MerkleRoot),
    /// Nobody: what a payer rotates to in order to revoke every key without naming a new
    /// one. No receipt is authorized by it.
    Revoked,
    /// A delegated client key named by its account id ([`Layer::account_id`]) instead of
    /// the key itself: how an EVM contract names a delegate (its address; the key is not
    /// on chain). The same rule as [`Self::Delegate`]. Last, so the SCALE indices of the
    /// others are those the ink! contract has always had.
    DelegateAccount(AccountId32),
}

/// Why a receipt is not authorized by a channel's authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The signature itself is refused.
    #[error(transparent)]
    Receipt(#[from] ReceiptError),
    /// An account channel's receipt signed by another key.
    #[error("the receipt is not signed by the payer's account key")]
    NotPayerAccount,
    /// A delegate channel's receipt signed by another key.
    #[error("the receipt is not signed by the delegated key")]
    NotDelegate,
    /// A group channel's receipt without a proof.
    #[error("a group channel needs a membership proof")]
    MissingProof,
    /// A proof on a channel that is not a group's.
    #[error("only group channels take a membership proof")]
    UnexpectedProof,
    /// The proof does not lead from the signer to the group's root.
    #[error("signer is not a group member: {0}")]
    NotMember(#[from] MerkleError),
    /// The channel's authority is [`Authority::Revoked`].
    #[error("the channel's keys are revoked: no receipt counts")]
    Revoked,
}

/// The account id of an ECDSA public key on `layer` (Substrate: blake2_256 of the
/// compressed key; EVM: its address, mapped into 32 bytes).
pub fn account_id_of<H: Hasher>(layer: impl Layer, key: &PublicKey) -> AccountId32 {
    layer.account_id::<H>(key)
}

/// A receipt whose signature [`authorize`] has checked against an authority. Only
/// [`authorize`] makes one, so a rule that takes it (the AS's [`crate::check_terms`])
/// cannot be reached with an unchecked signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    signed: SignedReceipt,
    authority: Authority,
    signer: PublicKey,
    cap: Option<Balance>,
}

impl Authorized {
    /// What the signature is over.
    pub fn receipt(&self) -> &Receipt {
        &self.signed.receipt
    }

    /// The receipt as it was offered, signature and proof included.
    pub fn signed(&self) -> &SignedReceipt {
        &self.signed
    }

    /// The authority the signature was checked against.
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The key that signed.
    pub fn signer(&self) -> PublicKey {
        self.signer
    }

    /// For a group member: the spending cap committed in its leaf.
    pub fn cap(&self) -> Option<Balance> {
        self.cap
    }
}

/// Checks that `signed` (its signature over its receipt in `domain`, with its proof for
/// groups) is authorized by `authority`, everything encoded as the domain's layer does.
/// This one function is the rule used by the ink! contract on settle and close, by the
/// AS before it sells and by the client before it believes a running total (the EVM
/// contract runs the same rule, checked against this one by a differential test).
pub fn authorize<H: Hasher, R: EcdsaRecover>(
    authority: &Authority,
    domain: &impl ReceiptDomain,
    signed: SignedReceipt,
) -> Result<Authorized, AuthError> {
    let layer = domain.layer();
    let proof = signed.proof.as_ref();
    if proof.is_some() && !matches!(authority, Authority::Group(_)) {
        return Err(AuthError::UnexpectedProof);
    }
    if *authority == Authority::Revoked {
        return Err(AuthError::Revoked);
    }
    let signer = signed.signer::<H, R>(domain)?;
    let mut cap = None;
    match authority {
        Authority::Account(account) => {
            if layer.account_id::<H>(&signer) != *account {
                return Err(AuthError::NotPayerAccount);
            }
        }
        Authority::Delegate(key) => {
            if signer != *key {
                return Err(AuthError::NotDelegate);
            }
        }
        Authority::DelegateAccount(account) => {
            if layer.account_id::<H>(&signer) != *account {
                return Err(AuthError::NotDelegate);
            }
        }
        Authority::Group(root) => {
            let proof = proof.ok_or(AuthError::MissingProof)?;
            proof.verify::<H>(layer, &signer, root)?;
            cap = Some(proof.cap);
        }
        Authority::Revoked => return Err(AuthError::Revoked),
    }
    Ok(Authorized {
        signed,
        authority: *authority,
        signer,
        cap,
    })
}
