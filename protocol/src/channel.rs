//! A channel's life as pure rules: open, top up, extend, rotate the authority, settle,
//! close, claim after expiry. The contract stores a [`Channel`] and calls these; the AS
//! reads the same [`Channel`] from the chain and calls them to know what the contract will
//! accept. Signatures are checked separately ([`crate::authorize`]), against
//! [`Channel::authority`] once [`Channel::advance`] has run.
//!
//! Money: `deposit` is everything the payer put in; `settled` is what the payee has been
//! paid so far. A receipt of epoch `e` for `amount` claims `base + amount` in total, where
//! `base` is what was settled when epoch `e` began; the payee is paid the difference to
//! `settled`, never more than `deposit` in all, and the payer gets `deposit - claimed`
//! back when the channel ends.
//!
//! Rotation: the payer announces a new authority; it takes over `notice` blocks later (a
//! number the channel fixes at open, so a payee knows before it sells how long it has).
//! Until then the old authority's receipts settle and close as before; from the effective
//! block on only the new authority's receipts count (epoch + 1, counting from zero above
//! what was settled). A payee that settles the old epoch's best receipt before the
//! effective block loses nothing; a stolen key can spend at most what the payee sells
//! before it acts.
use crate::authority::Authority;
use crate::receipt::Receipt;
use crate::types::{AccountId32, Balance, BlockNumber, Epoch};
use parity_scale_codec::{Decode, Encode};
use scale_info::TypeInfo;

/// An announced change of authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct Rotation {
    /// Who signs from `effective_at` on.
    pub authority: Authority,
    /// The first block at which `authority` is in force.
    pub effective_at: BlockNumber,
}

/// One open channel, as the contract stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct Channel {
    /// Who deposited, and gets the rest back.
    pub payer: AccountId32,
    /// The AS the channel pays.
    pub payee: AccountId32,
    /// Who signs the current epoch's receipts.
    pub authority: Authority,
    /// How many rotations have taken effect.
    pub epoch: Epoch,
    /// Everything deposited, top-ups included; settlement does not reduce it.
    pub deposit: Balance,
    /// Paid to the payee so far.
    pub settled: Balance,
    /// `settled` when the current epoch began: its receipts count above it.
    pub base: Balance,
    /// The first block at which the channel is expired: the payee may settle and close
    /// before it, the payer may claim what is left from it on.
    pub expires_at: BlockNumber,
    /// Blocks from a rotation's announcement to its effect; fixed at open.
    pub notice: BlockNumber,
    /// An announced rotation not yet in force.
    pub rotation: Option<Rotation>,
}

/// Why a channel operation is refused. Nothing changes on a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// Open or top up with nothing.
    #[error("no value was deposited")]
    ZeroDeposit,
    /// A channel paying its own payer.
    #[error("the payer cannot be its own payee")]
    PayeeIsPayer,
    /// An expiry at or before now.
    #[error("the expiry block is not in the future")]
    ExpiryNotInFuture,
    /// [`Authority::Account`] naming another account than the payer's.
    #[error("an account authority must be the payer's own account")]
    AccountAuthorityNotPayer,
    /// Past `expires_at`: only the payer's claim remains.
    #[error("the channel has expired")]
    Expired,
    /// A claim before `expires_at`.
    #[error("the channel has not expired yet")]
    NotExpired,
    /// An extension that is not later.
    #[error("a new expiry must be later than the current one")]
    ExpiryNotLater,
    /// A top-up beyond u128.
    #[error("the deposit would overflow")]
    DepositOverflow,
    /// A receipt of another epoch than the channel's.
    #[error("the receipt is for epoch {claimed}, the channel is in epoch {current}")]
    WrongEpoch {
        /// The receipt's epoch.
        claimed: Epoch,
        /// The channel's.
        current: Epoch,
    },
    /// `base + amount` above the deposit.
    #[error("the receipt claims more than the deposit")]
    AmountExceedsDeposit,
    /// A settle that would pay nothing.
    #[error("the receipt claims nothing above what was settled")]
    NothingToSettle,
    /// A close with a receipt below what was settled.
    #[error("the receipt claims less than what was already settled")]
    BelowSettled,
}

/// What a settle pays: the new settled total and the payment to the payee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settlement {
    /// The payee's total once paid.
    pub settled: Balance,
    /// What this settle pays it.
    pub paid: Balance,
}

/// How a closing channel's deposit splits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payout {
    /// To the payee now (on top of what it was settled before).
    pub paid: Balance,
    /// To the payer.
    pub refunded: Balance,
}

fn check_authority(payer: &AccountId32, authority: &Authority) -> Result<(), ChannelError> {
    match authority {
        Authority::Account(account) if account != payer => {
            Err(ChannelError::AccountAuthorityNotPayer)
        }
        _ => Ok(()),
    }
}

impl Channel {
    /// A new channel, or why it cannot be opened at block `now`.
    pub fn open(
        payer: AccountId32,
        payee: AccountId32,
        authority: Authority,
        deposit: Balance,
        expires_at: BlockNumber,
        notice: BlockNumber,
        now: BlockNumber,
    ) -> Result<Self, ChannelError> {
        if deposit == 0 {
            return Err(ChannelError::ZeroDeposit);
        }
        if payee == payer {
            return Err(ChannelError::PayeeIsPayer);
        }
        if expires_at <= now {
            return Err(ChannelError::ExpiryNotInFuture);
        }
        check_authority(&payer, &authority)?;
        Ok(Self {
            payer,
            payee,
            authority,
            epoch: 0,
            deposit,
            settled: 0,
            base: 0,
            expires_at,
            notice,
            rotation: None,
        })
    }

    /// Whether `now` is at or past the expiry.
    pub fn is_expired(&self, now: BlockNumber) -> bool {
        now >= self.expires_at
    }

    /// What the payee has not been paid yet.
    pub fn remaining(&self) -> Balance {
        self.deposit.saturating_sub(self.settled)
    }

    /// Brings an announced rotation into force once its block has come. Every rule below
    /// calls it first; call it on a channel read from storage before looking at
    /// [`Self::authority`]. Returns whether anything changed.
    pub fn advance(&mut self, now: BlockNumber) -> bool {
        match self.rotation {
            Some(rotation) if now >= rotation.effective_at => {
                self.authority = rotation.authority;
                self.epoch = self.epoch.saturating_add(1);
                self.base = self.settled;
                self.rotation = None;
                true
            }
            _ => false,
        }
    }

    /// This channel as it stands at block `now` (rotation applied if due).
    pub fn at(&self, now: BlockNumber) -> Self {
        let mut channel = *self;
        channel.advance(now);
        channel
    }

    /// Adds `added` to the deposit; returns the new deposit.
    pub fn top_up(&mut self, added: Balance, now: BlockNumber) -> Result<Balance, ChannelError> {
        if added == 0 {
            return Err(ChannelError::ZeroDeposit);
        }
        if self.is_expired(now) {
            return Err(ChannelError::Expired);
        }
        self.deposit = self
            .deposit
            .checked_add(added)
            .ok_or(ChannelError::DepositOverflow)?;
        self.advance(now);
        Ok(self.deposit)
    }

    /// Moves the expiry later. Works on an expired, unclaimed channel too: the payer may
    /// revive it instead of claiming.
    pub fn extend(
        &mut self,
        expires_at: BlockNumber,
        now: BlockNumber,
    ) -> Result<(), ChannelError> {
        if expires_at <= self.expires_at {
            return Err(ChannelError::ExpiryNotLater);
        }
        self.advance(now);
        self.expires_at = expires_at;
        Ok(())
    }

    /// Announces `authority` to take over after the channel's notice period. A rotation
    /// announced while another is pending replaces it, with a fresh notice period (so a
    /// payer can never shorten the payee's notice).
    pub fn rotate(
        &mut self,
        authority: Authority,
        now: BlockNumber,
    ) -> Result<Rotation, ChannelError> {
        if self.is_expired(now) {
            return Err(ChannelError::Expired);
        }
        check_authority(&self.payer, &authority)?;
        self.advance(now);
        let rotation = Rotation {
            authority,
            effective_at: now.saturating_add(self.notice),
        };
        self.rotation = Some(rotation);
        Ok(rotation)
    }

    /// What `receipt` claims on this channel in all, `base + amount`, if the channel's
    /// current epoch accepts it: the one reading of a receipt, used by the contract to pay,
    /// by the AS's sale rule before it sells and by its closer to know what is unpaid.
    /// Time aside (see [`Self::is_expired`]); expects an advanced channel.
    pub fn claimable(&self, receipt: &Receipt) -> Result<Balance, ChannelError> {
        if receipt.epoch != self.epoch {
            return Err(ChannelError::WrongEpoch {
                claimed: receipt.epoch,
                current: self.epoch,
            });
        }
        self.base
            .checked_add(receipt.amount)
            .filter(|total| *total <= self.deposit)
            .ok_or(ChannelError::AmountExceedsDeposit)
    }

    /// [`Self::claimable`] at `now`: refused once the channel has expired.
    fn claimable_at(&self, receipt: &Receipt, now: BlockNumber) -> Result<Balance, ChannelError> {
        if self.is_expired(now) {
            return Err(ChannelError::Expired);
        }
        self.claimable(receipt)
    }

    /// What settling with `receipt` at `now` would pay. Check the receipt's signature
    /// against [`Self::authority`], then [`Self::apply`] it.
    pub fn settlement(
        &mut self,
        receipt: &Receipt,
        now: BlockNumber,
    ) -> Result<Settlement, ChannelError> {
        self.advance(now);
        let total = self.claimable_at(receipt, now)?;
        if total <= self.settled {
            return Err(ChannelError::NothingToSettle);
        }
        Ok(Settlement {
            settled: total,
            paid: total - self.settled,
        })
    }

    /// Records a settlement computed by [`Self::settlement`].
    pub fn apply(&mut self, settlement: Settlement) {
        self.settled = settlement.settled;
    }

    /// How the deposit splits if the payee closes at `now` with `receipt`, or with none
    /// (only what was settled). Check the receipt's signature against
    /// [`Self::authority`] before paying out.
    pub fn payout(
        &mut self,
        receipt: Option<&Receipt>,
        now: BlockNumber,
    ) -> Result<Payout, ChannelError> {
        self.advance(now);
        let total = match receipt {
            Some(receipt) => {
                let total = self.claimable_at(receipt, now)?;
                if total < self.settled {
                    return Err(ChannelError::BelowSettled);
                }
                total
            }
            None if self.is_expired(now) => return Err(ChannelError::Expired),
            None => self.settled,
        };
        Ok(Payout {
            paid: total - self.settled,
            refunded: self.deposit - total,
        })
    }

    /// What the payer takes back once the channel has expired.
    pub fn expired_refund(&self, now: BlockNumber) -> Result<Balance, ChannelError> {
        if !self.is_expired(now) {
            return Err(ChannelError::NotExpired);
        }
        Ok(self.remaining())
    }
}
