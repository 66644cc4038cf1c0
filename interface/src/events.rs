//! The contract's events. With feature `ink` each is an ink! event; off-chain each decodes
//! from a `Contracts::ContractEmitted` event's data, recognised by its first topic
//! ([`ContractEvent::signature_topic`], checked against the contract's metadata).
use crate::{AccountId32, Authority, Balance, BlockNumber, ChannelId, Epoch};

/// What off-chain code needs to recognise an event.
pub trait ContractEvent: parity_scale_codec::Decode {
    /// The ink! event signature: `Name(field types as written)`.
    const SIGNATURE: &'static str;
    /// The fields ink! indexes as topics, in order, after the signature topic (checked
    /// against the contract's metadata with the rest).
    const TOPICS: &'static [&'static str];

    /// blake2_256 of [`Self::SIGNATURE`]: the event's first topic, as ink! computes it.
    #[cfg(feature = "std")]
    fn signature_topic() -> [u8; 32] {
        use protocol::crypto::Hasher as _;
        protocol::crypto::backend::SoftHasher::blake2_256(Self::SIGNATURE.as_bytes())
    }
}

macro_rules! contract_event {
    ($name:ident, $signature:literal, [$($topic:literal),*]) => {
        impl ContractEvent for $name {
            const SIGNATURE: &'static str = $signature;
            const TOPICS: &'static [&'static str] = &[$($topic),*];
        }
    };
}

/// A channel was opened.
#[cfg_attr(feature = "ink", ink::event)]
#[cfg_attr(
    not(feature = "ink"),
    derive(
        parity_scale_codec::Encode,
        parity_scale_codec::Decode,
        scale_info::TypeInfo
    )
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The new channel's id, indexed as a topic; never reused.
    #[cfg_attr(feature = "ink", ink(topic))]
    pub channel: ChannelId,
    /// Who opened it and paid the deposit (the caller); gets the rest back.
    pub payer: AccountId32,
    /// The AS the channel pays.
    pub payee: AccountId32,
    /// Who signs receipts in epoch 0.
    pub authority: Authority,
    /// The value transferred with `open`, in the chain's smallest unit.
    pub deposit: Balance,
    /// The first block at which the channel is expired.
    pub expires_at: BlockNumber,
    /// Blocks from a rotation's announcement to its effect, fixed for the channel's life.
    pub notice: BlockNumber,
}
contract_event!(
    Opened,
    "Opened(ChannelId,AccountId32,AccountId32,Authority,Balance,BlockNumber,BlockNumber)",
    ["channel"]
);

/// The payer added to a channel's deposit.
#[cfg_attr(feature = "ink", ink::event)]
#[cfg_attr(
    not(feature = "ink"),
    derive(
        parity_scale_codec::Encode,
        parity_scale_codec::Decode,
        scale_info::TypeInfo
    )
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToppedUp {
    /// The channel, indexed as a topic (so a payer or the AS can filter its own).
    #[cfg_attr(feature = "ink", ink(topic))]
    pub channel: ChannelId,
    /// The whole deposit after the top-up (not the amount added).
    pub deposit: Balance,
}
contract_event!(ToppedUp, "ToppedUp(ChannelId,Balance)", ["channel"]);

/// The payer moved a channel's expiry.
#[cfg_attr(feature = "ink", ink::event)]
#[cfg_attr(
    not(feature = "ink"),
    derive(
        parity_scale_codec::Encode,
        parity_scale_codec::Decode,
        scale_info::TypeInfo
    )
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extended {
    /// The channel, indexed as a topic (so a payer or the AS can filter its own).
    #[cfg_attr(feature = "ink", ink(topic))]
    pub channel: ChannelId,
    /// The new expiry block.
    pub expires_at: BlockNumber,
}
contract_event!(Extended, "Extended(ChannelId,BlockNumber)", ["channel"]);

/// The payer announced a new authority: from `effective_at` on, only its receipts count,
/// in epoch `epoch`.
#[cfg_attr(feature = "ink", ink::event)]
#[cfg_attr(
    not(feature = "ink"),
    derive(
        parity_scale_codec::Encode,
        parity_scale_codec::Decode,
        scale_info::TypeInfo
    )
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationAnnounced {
    /// The channel, indexed as a topic (so a payer or the AS can filter its own).
    #[cfg_attr(feature = "ink", ink(topic))]
    pub channel: ChannelId,
    /// Who signs once the rotation is in force.
    pub authority: Authority,
    /// The epoch its receipts carry: one above the epoch in force at the announcement.
    pub epoch: Epoch,
    /// The first block at which `authority` is in force (announcement + `notice`).
    pub effective_at: BlockNumber,
}
contract_event!(
    RotationAnnounced,
    "RotationAnnounced(ChannelId,Authority,Epoch,BlockNumber)",
    ["channel"]
);

/// The payee was paid `paid`, bringing the channel's settled total to `settled`; the
/// channel stays open.
#[cfg_attr(feature = "ink", ink::event)]
#[cfg_attr(
    not(feature = "ink"),
    derive(
        parity_scale_codec::Encode,
        parity_scale_codec::Decode,
        scale_info::TypeInfo
    )
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// The channel, indexed as a topic (so a payer or the AS can filter its own).
    #[cfg_attr(feature = "ink", ink(topic))]
    pub channel: ChannelId,
    /// The epoch of the receipt settled (the one in force at the settle).
    pub epoch: Epoch,
    /// Everything the payee has been paid on this channel so far, this settle included.
    pub settled: Balance,
    /// What this settle paid (owed instead if the chain refused the transfer, see
    /// [`PaymentDeferred`]).
    pub paid: Balance,
}
contract_event!(
    Settled,
    "Settled(ChannelId,Epoch,Balance,Balance)",
    ["channel"]
);

/// The payee closed the channel: `paid` to it now (on top of earlier settlements),
/// `refunded` to the payer.
#[cfg_attr(feature = "ink", ink::event)]
#[cfg_attr(
    not(feature = "ink"),
    derive(
        parity_scale_codec::Encode,
        parity_scale_codec::Decode,
        scale_info::TypeInfo
    )
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The channel, indexed as a topic (so a payer or the AS can filter its own).
    #[cfg_attr(feature = "ink", ink(topic))]
    pub channel: ChannelId,
    /// What the close paid the payee, on top of what earlier settles paid it.
    pub paid: Balance,
    /// What went back to the payer: the deposit less everything the payee got.
    pub refunded: Balance,
}
contract_event!(Closed, "Closed(ChannelId,Balance,Balance)", ["channel"]);

/// The payer took back what was left of an expired channel.
#[cfg_attr(feature = "ink", ink::event)]
#[cfg_attr(
    not(feature = "ink"),
    derive(
        parity_scale_codec::Encode,
        parity_scale_codec::Decode,
        scale_info::TypeInfo
    )
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredClaimed {
    /// The channel, indexed as a topic (so a payer or the AS can filter its own).
    #[cfg_attr(feature = "ink", ink(topic))]
    pub channel: ChannelId,
    /// What went back to the payer: the deposit less what was settled.
    pub refunded: Balance,
}
contract_event!(
    ExpiredClaimed,
    "ExpiredClaimed(ChannelId,Balance)",
    ["channel"]
);

/// The chain refused a payment to `account` (say, below its existential deposit): the
/// contract keeps it as a balance `account` withdraws later. The operation that owed it
/// went through.
#[cfg_attr(feature = "ink", ink::event)]
#[cfg_attr(
    not(feature = "ink"),
    derive(
        parity_scale_codec::Encode,
        parity_scale_codec::Decode,
        scale_info::TypeInfo
    )
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentDeferred {
    /// Whom the payment was for (payee or payer), indexed as a topic.
    #[cfg_attr(feature = "ink", ink(topic))]
    pub account: AccountId32,
    /// The payment the chain refused, now owed.
    pub amount: Balance,
    /// Everything the contract now owes `account`.
    pub owed: Balance,
}
contract_event!(
    PaymentDeferred,
    "PaymentDeferred(AccountId32,Balance,Balance)",
    ["account"]
);

/// `account` withdrew what the contract owed it.
#[cfg_attr(feature = "ink", ink::event)]
#[cfg_attr(
    not(feature = "ink"),
    derive(
        parity_scale_codec::Encode,
        parity_scale_codec::Decode,
        scale_info::TypeInfo
    )
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdrawn {
    /// Who withdrew (the caller), indexed as a topic.
    #[cfg_attr(feature = "ink", ink(topic))]
    pub account: AccountId32,
    /// Everything it was owed, now paid out; nothing stays owed.
    pub amount: Balance,
}
contract_event!(Withdrawn, "Withdrawn(AccountId32,Balance)", ["account"]);
