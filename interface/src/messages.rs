//! The contract's messages: one type per message whose fields are its arguments, in
//! order, so that encoding the value is encoding the call's arguments. [`Message::Output`]
//! is what the message returns (ink! wraps it in a `MessageResult` on the wire).
use crate::{
    AccountId32, Authority, Balance, BlockNumber, Channel, ChannelId, Domain, Error, SignedReceipt,
};
use parity_scale_codec::{Decode, Encode};
use scale_info::TypeInfo;

/// A message of the slotpay contract.
pub trait Message: Encode {
    /// The message's name in the contract: its selector is the first four bytes of
    /// blake2_256 of it.
    const LABEL: &'static str;
    /// Whether it takes value.
    const PAYABLE: bool;
    /// Whether it changes state (a read-only message is called as a dry run).
    const MUTATES: bool;
    /// What it returns.
    type Output: Decode;

    /// The four bytes that name the message in a call's input.
    #[cfg(feature = "std")]
    fn selector() -> [u8; 4] {
        selector(Self::LABEL)
    }

    /// A call's input: selector, then the arguments.
    #[cfg(feature = "std")]
    fn call_data(&self) -> Vec<u8> {
        let mut data = Self::selector().to_vec();
        self.encode_to(&mut data);
        data
    }
}

/// ink! 5's selector of `label`: the first four bytes of its blake2_256.
#[cfg(feature = "std")]
pub fn selector(label: &str) -> [u8; 4] {
    use protocol::crypto::Hasher as _;
    let hash = protocol::crypto::backend::SoftHasher::blake2_256(label.as_bytes());
    [hash[0], hash[1], hash[2], hash[3]]
}

macro_rules! message {
    ($name:ident, $label:literal, payable: $payable:literal, mutates: $mutates:literal, $output:ty) => {
        impl Message for $name {
            const LABEL: &'static str = $label;
            const PAYABLE: bool = $payable;
            const MUTATES: bool = $mutates;
            type Output = $output;
        }
    };
}

/// The constructor: a contract for the chain whose genesis block hash is `genesis_hash`
/// (ink! 5 cannot read it on chain, and every receipt is bound to it).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct New {
    /// The hash of the chain's block 0, the [`Domain`]'s chain half.
    pub genesis_hash: [u8; 32],
}
message!(New, "new", payable: false, mutates: true, ());

/// Opens a channel with the transferred value as deposit; returns its id.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct Open {
    /// The AS the channel pays; not the caller.
    pub payee: AccountId32,
    /// Who signs receipts in epoch 0; [`Authority::Account`] must name the caller.
    pub authority: Authority,
    /// The first block at which the channel is expired; after the current block.
    pub expires_at: BlockNumber,
    /// Blocks from a rotation's announcement to its effect.
    pub notice: BlockNumber,
}
message!(Open, "open", payable: true, mutates: true, Result<ChannelId, Error>);

/// Adds the transferred value to an open, unexpired channel's deposit (payer only).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct TopUp {
    /// The caller's channel to add the transferred value to.
    pub channel: ChannelId,
}
message!(TopUp, "top_up", payable: true, mutates: true, Result<(), Error>);

/// Moves a channel's expiry later (payer only).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct Extend {
    /// The caller's channel.
    pub channel: ChannelId,
    /// The new expiry block, later than the current one.
    pub expires_at: BlockNumber,
}
message!(Extend, "extend", payable: false, mutates: true, Result<(), Error>);

/// Announces a new authority (payer only); returns the block it takes effect at.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct Rotate {
    /// The caller's channel.
    pub channel: ChannelId,
    /// Who signs from the effective block on ([`Authority::Revoked`] to stop all
    /// receipts); it replaces any rotation announced and not yet in force.
    pub authority: Authority,
}
message!(Rotate, "rotate", payable: false, mutates: true, Result<BlockNumber, Error>);

/// Pays the payee what a receipt claims above what was settled, on the channel the receipt
/// names; the channel stays open (payee only). Returns what was paid.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct Settle {
    /// The receipt, signed, with its proof on a group channel.
    pub receipt: SignedReceipt,
}
message!(Settle, "settle", payable: false, mutates: true, Result<Balance, Error>);

/// Closes a channel (payee only): pays the payee what the receipt claims above what was
/// settled, the payer the rest. Without a receipt, closes at what was settled. A receipt
/// of another channel is refused ([`Error::WrongChannel`]).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct Close {
    /// The channel to close.
    pub channel: ChannelId,
    /// The best receipt, if it claims anything not yet settled.
    pub receipt: Option<SignedReceipt>,
}
message!(Close, "close", payable: false, mutates: true, Result<(), Error>);

/// Gives what is left of an expired channel back to the payer (payer only).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct ClaimExpired {
    /// The caller's expired channel.
    pub channel: ChannelId,
}
message!(ClaimExpired, "claim_expired", payable: false, mutates: true, Result<(), Error>);

/// Pays the caller what the contract owes it (payments the chain refused earlier).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct Withdraw;
message!(Withdraw, "withdraw", payable: false, mutates: true, Result<Balance, Error>);

/// The open channel with this id as it stands at the current block, if any.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct GetChannel {
    /// The channel to read.
    pub channel: ChannelId,
}
message!(GetChannel, "channel", payable: false, mutates: false, Option<Channel>);

/// What the contract owes `account`.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct Owed {
    /// Any account: a payee or payer whose payment the chain refused.
    pub account: AccountId32,
}
message!(Owed, "owed", payable: false, mutates: false, Balance);

/// What every receipt for this contract is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct GetDomain;
message!(GetDomain, "domain", payable: false, mutates: false, Domain);

/// The id the next `open` will assign.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct NextChannelId;
message!(NextChannelId, "next_channel_id", payable: false, mutates: false, ChannelId);
