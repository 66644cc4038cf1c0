//! What a client checks before it signs, so that an AS that lies gets nothing beyond the
//! user's limits: the domain comes from the payer's deployment file, never from the AS;
//! the price and the number of slots are capped by the user; and any running total above
//! what the client itself signed must come with the receipt that set it, signed by a key
//! the channel's authority admits.
use api::TermsReply;
use protocol::crypto::backend::{Libsecp256k1, SoftHasher};
use protocol::{
    authorize, AnyDomain, Authority, Balance, ChannelId, Epoch, PublicKey, SignedReceipt,
};

/// What the user allows a purchase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most it pays per slot.
    pub max_price: Balance,
    /// The most slots it buys at once.
    pub max_slots: u64,
    /// The most `stale_total` answers one purchase accepts before it gives up: each is a
    /// new receipt signed, so an AS lying with other members' receipts gets at most this
    /// many more.
    pub max_stale_raises: u32,
    /// The most slots a receipt may sign above this key's own allowance base (the total
    /// of its last purchase that delivered tokens, else the first total it was shown):
    /// how far other members' raises may carry it before it stops.
    pub max_above_bought: u64,
}

/// Why the client signs nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Distrust {
    #[error("the AS serves {terms}, but the deployment file names {ours}: receipts would be bound elsewhere")]
    WrongDomain { terms: String, ours: String },
    #[error("the AS asks {price} per slot, above --max-price {max}")]
    PriceTooHigh { price: Balance, max: Balance },
    #[error("{slots} slots asked, above --max-slots {max}")]
    TooManySlots { slots: u64, max: u64 },
    #[error("the AS's answer is malformed: {0}")]
    Malformed(String),
    #[error("the AS reports a running total of {total} but shows no receipt that set it")]
    Unjustified { total: Balance },
    #[error("the receipt the AS shows for a total of {total} is not a valid receipt of an authorised key for channel {channel} epoch {epoch}: {reason}")]
    BadJustification {
        total: Balance,
        channel: ChannelId,
        epoch: Epoch,
        reason: String,
    },
    #[error("the AS calls {signed} stale but justifies only {total}, which is not above it")]
    StaleBelowSigned { signed: Balance, total: Balance },
    #[error("the AS calls {signed} stale, justified by this key's own receipt of {total}: only another member's receipt can make it stale")]
    StaleByOwnReceipt { signed: Balance, total: Balance },
    #[error("the AS answered for another purchase than the one signed: {0}")]
    WrongAnswer(String),
    #[error("the AS called the total stale {raises} times in one purchase (--max-stale-raises {max}): it may be playing group members against each other; nothing more signed")]
    TooManyStaleRaises { raises: u32, max: u32 },
    #[error("signing {amount} would go {above} above {base}, the total of this key's last purchase that brought tokens (or the first it was shown), more than --max-above-bought {max_slots} slots allow; nothing signed")]
    AboveAllowance {
        amount: Balance,
        base: Balance,
        above: Balance,
        max_slots: u64,
    },
    #[error("the amount would overflow")]
    Overflow,
}

/// A receipt domain as the user reads it.
fn domain_text(domain: &AnyDomain) -> String {
    match domain {
        AnyDomain::Substrate(d) => format!(
            "chain {} / contract {}",
            api::to_hex(&d.genesis_hash),
            api::to_hex(&d.contract)
        ),
        AnyDomain::Evm(d) => format!(
            "EVM chain {} / contract {}",
            d.chain_id,
            api::to_hex(&d.contract)
        ),
    }
}

/// The price per slot, if the AS's terms are for `ours` and within the user's limits.
pub fn check_terms(
    terms: &TermsReply,
    ours: &AnyDomain,
    limits: &Limits,
    slots: u64,
) -> Result<Balance, Distrust> {
    let malformed = |e: api::WireError| Distrust::Malformed(e.to_string());
    let theirs = terms.domain().map_err(malformed)?;
    if theirs != *ours {
        return Err(Distrust::WrongDomain {
            terms: domain_text(&theirs),
            ours: domain_text(ours),
        });
    }
    let price = terms.price().map_err(malformed)?;
    if price > limits.max_price {
        return Err(Distrust::PriceTooHigh {
            price,
            max: limits.max_price,
        });
    }
    if slots > limits.max_slots {
        return Err(Distrust::TooManySlots {
            slots,
            max: limits.max_slots,
        });
    }
    Ok(price)
}

/// A running total the AS reports for `channel`'s `epoch`, accepted only if it is 0 or
/// the receipt that set it (`justification`) is a receipt for exactly that channel, epoch
/// and amount, signed by a key `authority` admits.
pub fn justified_total(
    total: Balance,
    justification: Option<&SignedReceipt>,
    authority: &Authority,
    domain: &AnyDomain,
    channel: ChannelId,
    epoch: Epoch,
) -> Result<Balance, Distrust> {
    if total == 0 {
        return Ok(0);
    }
    let bad = |reason: String| Distrust::BadJustification {
        total,
        channel,
        epoch,
        reason,
    };
    let shown = justification.ok_or(Distrust::Unjustified { total })?;
    let receipt = shown.receipt;
    if receipt.channel != channel || receipt.epoch != epoch || receipt.amount != total {
        return Err(bad(format!(
            "it is for channel {} epoch {} amount {}",
            receipt.channel, receipt.epoch, receipt.amount
        )));
    }
    authorize::<SoftHasher, Libsecp256k1>(authority, domain, shown.clone())
        .map_err(|e| bad(e.to_string()))?;
    Ok(total)
}

/// Whether `shown` was signed by `key`. A receipt this client signed never makes its
/// next receipt stale: what it signed is on its own record, and the next amount is above
/// it; an AS that shows one as "stale" is replaying the client's own signature.
pub fn signed_by(shown: &SignedReceipt, domain: &AnyDomain, key: &PublicKey) -> bool {
    shown
        .signer::<SoftHasher, Libsecp256k1>(domain)
        .is_ok_and(|signer| signer == *key)
}

/// Refuses to sign `amount` more than `max_slots` slots above `base` (see
/// [`Limits::max_above_bought`]).
pub fn within_allowance(
    amount: Balance,
    base: Balance,
    price: Balance,
    max_slots: u64,
) -> Result<(), Distrust> {
    let above = amount.saturating_sub(base);
    let allowed = price.saturating_mul(Balance::from(max_slots));
    if above > allowed {
        return Err(Distrust::AboveAllowance {
            amount,
            base,
            above,
            max_slots,
        });
    }
    Ok(())
}

/// The amount to sign: `slots` slots above both what this key signed before and the
/// justified running total.
pub fn next_amount(
    own_last: Balance,
    justified: Balance,
    slots: u64,
    price: Balance,
) -> Result<Balance, Distrust> {
    price
        .checked_mul(Balance::from(slots))
        .and_then(|added| own_last.max(justified).checked_add(added))
        .ok_or(Distrust::Overflow)
}
