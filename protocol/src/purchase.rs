//! The Authorization Server's rule for selling slots against a receipt.
//!
//! Sans-I/O: the AS adapter reads the channel from the chain and the running total from
//! its database, then asks [`check_purchase`] whether the receipt buys slots. Everything
//! the contract will check on close is checked here first (same [`authorize`] call), plus
//! what only the AS cares about: a whole number of slots, and enough time left to close.
use crate::authority::{authorize, AuthError, Authority};
use crate::crypto::{EcdsaRecover, Hasher};
use crate::merkle::MembershipProof;
use crate::receipt::Receipt;
use crate::signature::Signature;
use crate::types::{AccountId32, Balance, Domain, PublicKey};

/// What the AS needs to know of an on-chain channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelView {
    pub payee: AccountId32,
    pub authority: Authority,
    pub deposit: Balance,
    /// First block at which the channel is expired (the contract's `expires_at`).
    pub expires_at: u32,
}

/// The AS's selling terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tariff {
    /// Price of one slot; every receipt must add a whole number of slots.
    pub price: Balance,
    /// Blocks the AS keeps in hand to get its close transaction in before expiry: it
    /// sells nothing on a channel that expires within this margin.
    pub expiry_margin: u32,
}

/// A receipt the AS may accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purchase {
    /// Slots bought: (new total - previous total) / price.
    pub slots: u64,
    pub previous_total: Balance,
    pub new_total: Balance,
    pub signer: PublicKey,
}

/// Why a receipt buys nothing. Each has a stable machine-readable [`Self::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PurchaseError {
    #[error("no open channel with this id on chain")]
    ChannelNotFound,
    #[error("the channel pays another payee, not this Authorization Server")]
    WrongPayee,
    #[error(
        "the channel expires at block {expires_at}, too soon to sell (now {now}, margin {margin})"
    )]
    ExpiringSoon {
        expires_at: u32,
        now: u32,
        margin: u32,
    },
    #[error("the receipt's amount does not exceed the running total {current_total}: sign current total + price")]
    StaleTotal { current_total: Balance },
    #[error("the receipt adds {added}, not a whole number of slots at price {price}")]
    NotWholeSlots { added: Balance, price: Balance },
    #[error("the receipt's amount exceeds the channel's deposit {deposit}")]
    ExceedsDeposit { deposit: Balance },
    #[error("the receipt is not authorized by the channel: {0}")]
    Unauthorized(#[from] AuthError),
    #[error("the tariff's price is zero")]
    ZeroPrice,
}

impl PurchaseError {
    /// A stable code for API clients; never changes once published.
    pub fn code(&self) -> &'static str {
        match self {
            PurchaseError::ChannelNotFound => "channel_not_found",
            PurchaseError::WrongPayee => "wrong_payee",
            PurchaseError::ExpiringSoon { .. } => "channel_expiring",
            PurchaseError::StaleTotal { .. } => "stale_total",
            PurchaseError::NotWholeSlots { .. } => "not_whole_slots",
            PurchaseError::ExceedsDeposit { .. } => "exceeds_deposit",
            PurchaseError::Unauthorized(_) => "unauthorized",
            PurchaseError::ZeroPrice => "zero_price",
        }
    }
}

/// Everything one purchase check looks at.
#[derive(Debug, Clone, Copy)]
pub struct PurchaseRequest<'a> {
    pub receipt: &'a Receipt,
    pub signature: &'a Signature,
    pub proof: Option<&'a MembershipProof>,
}

/// Whether a receipt for `amount` buys slots on `channel`, given the running total the AS
/// has accepted: every rule but the signature's. Returns the number of slots.
///
/// Split from [`authorize`] so an AS can recover the signer (the expensive part) in
/// parallel, before it takes its ledger's lock, and run only this cheap check inside.
pub fn check_terms(
    our_account: &AccountId32,
    tariff: &Tariff,
    channel: &ChannelView,
    now: u32,
    accepted_total: Balance,
    amount: Balance,
) -> Result<u64, PurchaseError> {
    if tariff.price == 0 {
        return Err(PurchaseError::ZeroPrice);
    }
    if channel.payee != *our_account {
        return Err(PurchaseError::WrongPayee);
    }
    // The AS must still have `expiry_margin` blocks to get its close in.
    if u64::from(now) + u64::from(tariff.expiry_margin) >= u64::from(channel.expires_at) {
        return Err(PurchaseError::ExpiringSoon {
            expires_at: channel.expires_at,
            now,
            margin: tariff.expiry_margin,
        });
    }
    if amount <= accepted_total {
        return Err(PurchaseError::StaleTotal {
            current_total: accepted_total,
        });
    }
    if amount > channel.deposit {
        return Err(PurchaseError::ExceedsDeposit {
            deposit: channel.deposit,
        });
    }
    let added = amount - accepted_total;
    if added % tariff.price != 0 {
        return Err(PurchaseError::NotWholeSlots {
            added,
            price: tariff.price,
        });
    }
    u64::try_from(added / tariff.price).map_err(|_| PurchaseError::NotWholeSlots {
        added,
        price: tariff.price,
    })
}

/// Whether `request` buys slots on `channel` (`None`: no open channel with its id on chain),
/// given the running total the AS has accepted so far: [`check_terms`], then the signature.
#[allow(clippy::too_many_arguments)]
pub fn check_purchase<H: Hasher, R: EcdsaRecover>(
    our_account: &AccountId32,
    domain: &Domain,
    tariff: &Tariff,
    channel: Option<&ChannelView>,
    now: u32,
    accepted_total: Balance,
    request: &PurchaseRequest<'_>,
) -> Result<Purchase, PurchaseError> {
    let channel = channel.ok_or(PurchaseError::ChannelNotFound)?;
    let amount = request.receipt.amount;
    let slots = check_terms(our_account, tariff, channel, now, accepted_total, amount)?;
    let signer = authorize::<H, R>(
        &channel.authority,
        domain,
        request.receipt,
        request.signature,
        request.proof,
    )?;
    Ok(Purchase {
        slots,
        previous_total: accepted_total,
        new_total: amount,
        signer,
    })
}
