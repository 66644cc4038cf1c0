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
    /// The most slots of other members' raises a receipt may follow above this key's own
    /// allowance base (the total of its last purchase that delivered tokens, else the
    /// first total it was shown), on top of the purchase's own slots.
    pub max_above_bought: u64,
}

/// Why the client signs nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Distrust {
    /// The AS's terms name another domain (layer, chain or contract) than the payer's
    /// deployment file: a receipt signed for them would pay elsewhere (or be replayed
    /// there).
    #[error("the AS serves {terms}, but the deployment file names {ours}: receipts would be bound elsewhere")]
    WrongDomain {
        /// The domain in the AS's terms, as text.
        terms: String,
        /// The deployment file's domain, as text.
        ours: String,
    },
    /// The AS's price per slot is above the user's `--max-price`.
    #[error("the AS asks {price} per slot, above --max-price {max}")]
    PriceTooHigh {
        /// What the AS asks per slot (smallest unit).
        price: Balance,
        /// The user's limit per slot.
        max: Balance,
    },
    /// More slots asked for than the user's `--max-slots`.
    #[error("{slots} slots asked, above --max-slots {max}")]
    TooManySlots {
        /// The slots asked for.
        slots: u64,
        /// The user's limit per purchase.
        max: u64,
    },
    /// An answer of the AS that does not decode (what is wrong, in words).
    #[error("the AS's answer is malformed: {0}")]
    Malformed(String),
    /// A running total above zero with no receipt to show for it: an AS could otherwise
    /// make the client sign above what anyone spent.
    #[error("the AS reports a running total of {total} but shows no receipt that set it")]
    Unjustified {
        /// The total the AS reported (smallest unit).
        total: Balance,
    },
    /// The receipt shown for a total is for another channel, epoch or amount, or is not
    /// signed by a key the channel's authority admits.
    #[error("the receipt the AS shows for a total of {total} is not a valid receipt of an authorised key for channel {channel} epoch {epoch}: {reason}")]
    BadJustification {
        /// The total the AS reported.
        total: Balance,
        /// The channel the client pays from.
        channel: ChannelId,
        /// The epoch the client signs for.
        epoch: Epoch,
        /// What is wrong with the receipt shown.
        reason: String,
    },
    /// A `stale_total` answer whose justified total is not above the amount this client
    /// just signed: nothing made it stale.
    #[error("the AS calls {signed} stale but justifies only {total}, which is not above it")]
    StaleBelowSigned {
        /// The amount this client signed.
        signed: Balance,
        /// The total the AS justified.
        total: Balance,
    },
    /// A `stale_total` answer justified by this client's own receipt: the AS replays the
    /// client's signature to push it higher.
    #[error("the AS calls {signed} stale, justified by this key's own receipt of {total}: only another member's receipt can make it stale")]
    StaleByOwnReceipt {
        /// The amount this client signed.
        signed: Balance,
        /// The total of the client's own receipt the AS showed.
        total: Balance,
    },
    /// The AS's reply is for another device, channel, epoch or amount than the receipt,
    /// or its tokens do not match the slots bought (what differs, in words).
    #[error("the AS answered for another purchase than the one signed: {0}")]
    WrongAnswer(String),
    /// More `stale_total` answers in one purchase than `--max-stale-raises`.
    #[error("the AS called the total stale {raises} times in one purchase (--max-stale-raises {max}): it may be playing group members against each other; nothing more signed")]
    TooManyStaleRaises {
        /// The stale answers so far, this one included.
        raises: u32,
        /// The user's limit.
        max: u32,
    },
    /// The next amount is further above this key's allowance base than the purchase's
    /// slots plus `--max-above-bought` slots ([`Limits::max_above_bought`]).
    #[error("signing {amount} would go {above} above {base}, the total of this key's last purchase that brought tokens (or the first it was shown): more than this purchase's slots plus --max-above-bought {max_slots} slots of others' raises allow; nothing signed")]
    AboveAllowance {
        /// The amount that would be signed.
        amount: Balance,
        /// The allowance base: the total of this key's last purchase that brought tokens,
        /// else the first total it was shown in the epoch.
        base: Balance,
        /// `amount - base`.
        above: Balance,
        /// The user's limit of others' raises, in slots.
        max_slots: u64,
    },
    /// The amount to sign would exceed the balance type (a price or total near 2^128).
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

/// Refuses to sign `amount` more than `slots + max_slots` slots above `base` (see
/// [`Limits::max_above_bought`]).
pub fn within_allowance(
    amount: Balance,
    base: Balance,
    price: Balance,
    slots: u64,
    max_slots: u64,
) -> Result<(), Distrust> {
    let above = amount.saturating_sub(base);
    let allowed = price.saturating_mul(Balance::from(max_slots.saturating_add(slots)));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowance_is_the_purchases_slots_plus_others_raises() {
        // Base 10 slots, 2 bought now, 3 of others' raises allowed: up to 15.
        assert!(within_allowance(15 * 7, 10 * 7, 7, 2, 3).is_ok());
        assert!(matches!(
            within_allowance(16 * 7, 10 * 7, 7, 2, 3),
            Err(Distrust::AboveAllowance { above: 42, .. })
        ));
    }

    #[test]
    fn the_next_amount_is_above_both_own_record_and_the_justified_total() {
        assert_eq!(next_amount(30, 20, 2, 5), Ok(40));
        assert_eq!(next_amount(20, 30, 2, 5), Ok(40));
        assert_eq!(next_amount(u128::MAX, 0, 1, 1), Err(Distrust::Overflow));
    }
}
