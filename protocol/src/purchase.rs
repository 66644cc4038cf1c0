//! The Authorization Server's rule for selling slots against a receipt.
//!
//! Sans-I/O: the AS reads the channel from the chain and the running total from its
//! ledger, recovers the signer with [`authorize`](crate::authorize) and asks
//! [`check_terms`] whether the receipt buys slots. Everything the contract will check when
//! the AS settles or closes is checked here first (the same [`Channel`] rules and the same
//! signature rule), plus what only the AS cares about: whole slots, a bounded number of
//! them, the member's cap, and enough time left to get its settle or close in.
//!
//! [`screen`] is the part of the rule that needs neither the signer nor the ledger's
//! authoritative total: the AS runs it first so that a request it would refuse anyway
//! costs no key recovery. [`check_terms`] runs all of it again.
use crate::authority::{AuthError, Authority, Authorized};
use crate::channel::{Channel, ChannelError};
use crate::receipt::Receipt;
use crate::types::{AccountId32, Balance, BlockNumber, ChannelId, Epoch, PublicKey};

/// The AS's selling terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tariff {
    price: Balance,
    expiry_margin: BlockNumber,
    max_slots: u64,
    min_notice: BlockNumber,
}

/// Terms that cannot work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TariffError {
    /// A free slot.
    #[error("the price of a slot must be above zero")]
    ZeroPrice,
    /// No slot per purchase.
    #[error("at least one slot per purchase must be allowed")]
    NoSlots,
    /// A notice the AS could not settle within.
    #[error("the rotation notice the AS requires ({min_notice} blocks) must exceed its expiry margin ({expiry_margin}): it settles within that margin")]
    NoticeWithinMargin {
        /// The notice asked.
        min_notice: BlockNumber,
        /// The margin it must exceed.
        expiry_margin: BlockNumber,
    },
}

impl Tariff {
    /// `price` per slot; nothing sold within `expiry_margin` blocks of a channel's expiry
    /// or of a rotation taking effect (the blocks the AS keeps in hand to land its close or
    /// settle); at most `max_slots` per purchase; only channels whose rotation notice is at
    /// least `min_notice` blocks.
    pub fn new(
        price: Balance,
        expiry_margin: BlockNumber,
        max_slots: u64,
        min_notice: BlockNumber,
    ) -> Result<Self, TariffError> {
        if price == 0 {
            return Err(TariffError::ZeroPrice);
        }
        if max_slots == 0 {
            return Err(TariffError::NoSlots);
        }
        if min_notice <= expiry_margin {
            return Err(TariffError::NoticeWithinMargin {
                min_notice,
                expiry_margin,
            });
        }
        Ok(Self {
            price,
            expiry_margin,
            max_slots,
            min_notice,
        })
    }

    /// The price of one slot.
    pub fn price(&self) -> Balance {
        self.price
    }

    /// Blocks before a channel's expiry, or a rotation's effect, from which nothing sells.
    pub fn expiry_margin(&self) -> BlockNumber {
        self.expiry_margin
    }

    /// The most slots one purchase buys.
    pub fn max_slots(&self) -> u64 {
        self.max_slots
    }

    /// The shortest rotation notice of a channel the AS sells on.
    pub fn min_notice(&self) -> BlockNumber {
        self.min_notice
    }
}

/// What the AS's ledger knows of a channel's current epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Spent {
    /// The running total accepted so far in the epoch (0 before the first sale).
    pub total: Balance,
    /// What the receipt's signer has itself added to it in the epoch (for member caps).
    pub by_signer: Balance,
}

/// A receipt the AS may accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purchase {
    /// Slots bought: (new total - previous total) / price.
    pub slots: u64,
    /// The authority epoch of the receipt.
    pub epoch: Epoch,
    /// The running total before.
    pub previous_total: Balance,
    /// The running total after: the receipt's amount.
    pub new_total: Balance,
    /// Who signed.
    pub signer: PublicKey,
}

impl Purchase {
    /// What this purchase adds to the running total.
    pub fn added(&self) -> Balance {
        self.new_total - self.previous_total
    }
}

/// Why a receipt buys nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PurchaseError {
    /// The channel is not open on chain (or the receipt names another).
    #[error("no open channel with this id on chain")]
    ChannelNotFound,
    /// The channel pays someone else.
    #[error("the channel pays another payee, not this Authorization Server")]
    WrongPayee,
    /// The channel's rotation notice is too short for the AS to settle within.
    #[error(
        "the channel's rotation notice of {notice} blocks is shorter than the {min} this AS needs"
    )]
    NoticeTooShort {
        /// The channel's notice.
        notice: BlockNumber,
        /// What the AS needs.
        min: BlockNumber,
    },
    /// Too close to expiry for the AS to land its close.
    #[error(
        "the channel expires at block {expires_at}, too soon to sell (now {now}, margin {margin})"
    )]
    ExpiringSoon {
        /// The channel's expiry.
        expires_at: BlockNumber,
        /// The best block.
        now: BlockNumber,
        /// The AS's margin.
        margin: BlockNumber,
    },
    /// Too close to a rotation for the AS to settle the ending epoch.
    #[error("the channel's authority changes at block {effective_at}: the old one can no longer buy, the new one can from that block on")]
    RotationPending {
        /// The rotation's first block.
        effective_at: BlockNumber,
    },
    /// A receipt of another epoch than the channel's.
    #[error("the receipt is for epoch {claimed}, the channel is in epoch {current}")]
    WrongEpoch {
        /// The receipt's epoch.
        claimed: Epoch,
        /// The channel's.
        current: Epoch,
    },
    /// Not above the running total: sign above it.
    #[error("the receipt's amount does not exceed the running total {current_total}: sign current total + price")]
    StaleTotal {
        /// The running total to sign above.
        current_total: Balance,
    },
    /// The receipt adds a fraction of a slot.
    #[error("the receipt adds {added}, not a whole number of slots at price {price}")]
    NotWholeSlots {
        /// What it adds.
        added: Balance,
        /// The price of a slot.
        price: Balance,
    },
    /// More slots than one purchase may buy.
    #[error("the receipt buys {slots} slots, more than the {max} one purchase may")]
    TooManySlots {
        /// Slots it would buy.
        slots: u128,
        /// The most one purchase buys.
        max: u64,
    },
    /// Beyond what the deposit covers in this epoch.
    #[error("the receipt's amount exceeds {limit}, what the deposit leaves for this epoch")]
    ExceedsDeposit {
        /// The largest amount the deposit covers.
        limit: Balance,
    },
    /// A group member above its cap.
    #[error("the signer would spend {would_spend}, above its cap of {cap}")]
    OverCap {
        /// The member's cap.
        cap: Balance,
        /// What it would have spent in the epoch.
        would_spend: Balance,
    },
    /// The signature is not the channel's authority's.
    #[error("the receipt is not authorized by the channel: {0}")]
    Unauthorized(#[from] AuthError),
}

/// The checks that need neither the signer nor the ledger's authoritative total, given
/// `channel` as it stands at block `now` ([`Channel::at`]) and a running total `seen` that
/// the ledger had reached at some point (totals only grow, so a receipt at or below it is
/// stale for good). Everything refused here is refused by [`check_terms`] too.
pub fn screen(
    our_account: &AccountId32,
    tariff: &Tariff,
    channel: &Channel,
    now: BlockNumber,
    receipt: &Receipt,
    seen: Balance,
) -> Result<(), PurchaseError> {
    if channel.payee != *our_account {
        return Err(PurchaseError::WrongPayee);
    }
    if channel.notice < tariff.min_notice {
        return Err(PurchaseError::NoticeTooShort {
            notice: channel.notice,
            min: tariff.min_notice,
        });
    }
    // The AS must still have `expiry_margin` blocks to get its close in.
    let horizon = u64::from(now) + u64::from(tariff.expiry_margin);
    if horizon >= u64::from(channel.expires_at) {
        return Err(PurchaseError::ExpiringSoon {
            expires_at: channel.expires_at,
            now,
            margin: tariff.expiry_margin,
        });
    }
    // ... and to settle the current epoch before a rotation ends it.
    if let Some(rotation) = channel.rotation {
        if horizon >= u64::from(rotation.effective_at) {
            return Err(PurchaseError::RotationPending {
                effective_at: rotation.effective_at,
            });
        }
    }
    if channel.authority == Authority::Revoked {
        return Err(AuthError::Revoked.into());
    }
    // What the contract will pay for it: the same rule, read the same way.
    match channel.claimable(receipt) {
        Ok(_) => {}
        Err(ChannelError::WrongEpoch { claimed, current }) => {
            return Err(PurchaseError::WrongEpoch { claimed, current })
        }
        Err(_) => {
            return Err(PurchaseError::ExceedsDeposit {
                limit: channel.deposit.saturating_sub(channel.base),
            })
        }
    }
    if receipt.amount <= seen {
        return Err(PurchaseError::StaleTotal {
            current_total: seen,
        });
    }
    Ok(())
}

/// Whether the authorized receipt buys slots on channel `id`, given the channel as it
/// stands at block `now` ([`Channel::at`]) and what the ledger has accepted in the
/// channel's current epoch. This is the AS's whole purchase rule.
pub fn check_terms(
    our_account: &AccountId32,
    tariff: &Tariff,
    id: ChannelId,
    channel: &Channel,
    now: BlockNumber,
    spent: Spent,
    authorized: &Authorized,
) -> Result<Purchase, PurchaseError> {
    let receipt = authorized.receipt();
    // The signature must have been checked for this very channel and authority.
    if receipt.channel != id {
        return Err(PurchaseError::ChannelNotFound);
    }
    screen(our_account, tariff, channel, now, receipt, spent.total)?;
    if *authorized.authority() != channel.authority {
        return Err(PurchaseError::WrongEpoch {
            claimed: receipt.epoch,
            current: channel.epoch,
        });
    }
    let added = receipt.amount - spent.total;
    if added % tariff.price != 0 {
        return Err(PurchaseError::NotWholeSlots {
            added,
            price: tariff.price,
        });
    }
    let slots = added / tariff.price;
    if slots > u128::from(tariff.max_slots) {
        return Err(PurchaseError::TooManySlots {
            slots,
            max: tariff.max_slots,
        });
    }
    if let Some(cap) = authorized.cap() {
        let would_spend = spent.by_signer.saturating_add(added);
        if would_spend > cap {
            return Err(PurchaseError::OverCap { cap, would_spend });
        }
    }
    Ok(Purchase {
        // At most max_slots, a u64.
        slots: slots as u64,
        epoch: receipt.epoch,
        previous_total: spent.total,
        new_total: receipt.amount,
        signer: authorized.signer(),
    })
}
