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
    #[cfg_attr(feature = "ink", ink(topic))]
    pub channel: ChannelId,
    pub payer: AccountId32,
    pub payee: AccountId32,
    pub authority: Authority,
    pub deposit: Balance,
    pub expires_at: BlockNumber,
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
    #[cfg_attr(feature = "ink", ink(topic))]
    pub channel: ChannelId,
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
    #[cfg_attr(feature = "ink", ink(topic))]
    pub channel: ChannelId,
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
    #[cfg_attr(feature = "ink", ink(topic))]
    pub channel: ChannelId,
    pub authority: Authority,
    pub epoch: Epoch,
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
    #[cfg_attr(feature = "ink", ink(topic))]
    pub channel: ChannelId,
    pub epoch: Epoch,
    pub settled: Balance,
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
    #[cfg_attr(feature = "ink", ink(topic))]
    pub channel: ChannelId,
    pub paid: Balance,
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
    #[cfg_attr(feature = "ink", ink(topic))]
    pub channel: ChannelId,
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
    #[cfg_attr(feature = "ink", ink(topic))]
    pub account: AccountId32,
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
    #[cfg_attr(feature = "ink", ink(topic))]
    pub account: AccountId32,
    pub amount: Balance,
}
contract_event!(Withdrawn, "Withdrawn(AccountId32,Balance)", ["account"]);
