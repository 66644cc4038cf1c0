//! Events: the pallets' (decoded by name through the node's metadata) and the contract's
//! (decoded into the interface's types, recognised by their signature topic).
use crate::ChainError;
use interface::events::{
    Closed, ContractEvent, ExpiredClaimed, Extended, Opened, PaymentDeferred, RotationAnnounced,
    Settled, ToppedUp, Withdrawn,
};
use protocol::{AccountId32, Balance};
use subxt::events::{EventDetails, StaticEvent};
use subxt::ext::scale_decode::DecodeAsType;
use subxt::utils::AccountId32 as ChainAccount;
use subxt::PolkadotConfig;

// Pallet events, decoded by field name through the node's metadata.

/// `Contracts::ContractEmitted`: one event of a contract; the slotpay ones are read out
/// of it by [`SlotpayEvent::from_details`].
#[derive(Debug, Clone, DecodeAsType)]
#[decode_as_type(crate_path = "::subxt::ext::scale_decode")]
pub struct ContractEmitted {
    /// The contract that emitted it (another contract's events are ignored).
    pub contract: ChainAccount,
    /// The event's SCALE encoding; which event it is, is its first topic.
    pub data: Vec<u8>,
}

impl StaticEvent for ContractEmitted {
    const PALLET: &'static str = "Contracts";
    const EVENT: &'static str = "ContractEmitted";
}

/// `Contracts::Instantiated`: a new contract instance; [`crate::deploy`] reads its
/// address from it.
#[derive(Debug, Clone, DecodeAsType)]
#[decode_as_type(crate_path = "::subxt::ext::scale_decode")]
pub struct Instantiated {
    /// The account that signed the instantiation.
    pub deployer: ChainAccount,
    /// The new instance's account.
    pub contract: ChainAccount,
}

impl StaticEvent for Instantiated {
    const PALLET: &'static str = "Contracts";
    const EVENT: &'static str = "Instantiated";
}

/// `Contracts::StorageDepositTransferredAndHeld`: a caller paid for the contract storage
/// its call added; part of what a transaction cost it ([`crate::Included::storage_deposit`]).
#[derive(Debug, Clone, DecodeAsType)]
#[decode_as_type(crate_path = "::subxt::ext::scale_decode")]
pub struct StorageDepositTransferredAndHeld {
    /// The caller that paid.
    pub from: ChainAccount,
    /// The contract that holds it.
    pub to: ChainAccount,
    /// How much was put on hold, in the chain's smallest unit.
    pub amount: Balance,
}

impl StaticEvent for StorageDepositTransferredAndHeld {
    const PALLET: &'static str = "Contracts";
    const EVENT: &'static str = "StorageDepositTransferredAndHeld";
}

/// `Contracts::StorageDepositTransferredAndReleased`: a caller got back deposit for
/// contract storage its call freed (a closed channel's entry, say).
#[derive(Debug, Clone, DecodeAsType)]
#[decode_as_type(crate_path = "::subxt::ext::scale_decode")]
pub struct StorageDepositTransferredAndReleased {
    /// The contract that held it.
    pub from: ChainAccount,
    /// The caller it went back to.
    pub to: ChainAccount,
    /// How much was released, in the chain's smallest unit.
    pub amount: Balance,
}

impl StaticEvent for StorageDepositTransferredAndReleased {
    const PALLET: &'static str = "Contracts";
    const EVENT: &'static str = "StorageDepositTransferredAndReleased";
}

/// `TransactionPayment::TransactionFeePaid`: what a transaction's signer paid, read into
/// [`crate::Included::fee`].
#[derive(Debug, Clone, DecodeAsType)]
#[decode_as_type(crate_path = "::subxt::ext::scale_decode")]
pub struct TransactionFeePaid {
    /// The signer.
    pub who: ChainAccount,
    /// The fee charged, after any refund of unused weight; the pallet counts `tip` in it.
    pub actual_fee: Balance,
    /// The part of `actual_fee` the signer added as a tip (slotpay never tips).
    pub tip: Balance,
}

impl StaticEvent for TransactionFeePaid {
    const PALLET: &'static str = "TransactionPayment";
    const EVENT: &'static str = "TransactionFeePaid";
}

/// An event of the slotpay contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotpayEvent {
    /// A channel was opened ([`Opened`]).
    Opened(Opened),
    /// A payer added to a deposit ([`ToppedUp`]).
    ToppedUp(ToppedUp),
    /// A payer moved an expiry ([`Extended`]).
    Extended(Extended),
    /// A payer announced a new authority ([`RotationAnnounced`]).
    RotationAnnounced(RotationAnnounced),
    /// The payee was paid; the channel stays open ([`Settled`]).
    Settled(Settled),
    /// The payee closed a channel ([`Closed`]).
    Closed(Closed),
    /// The payer took back an expired channel's rest ([`ExpiredClaimed`]).
    ExpiredClaimed(ExpiredClaimed),
    /// The chain refused a payment; the contract owes it ([`PaymentDeferred`]).
    PaymentDeferred(PaymentDeferred),
    /// An account withdrew what it was owed ([`Withdrawn`]).
    Withdrawn(Withdrawn),
}

fn try_decode<E: ContractEvent>(
    topic: &[u8; 32],
    data: &[u8],
    wrap: fn(E) -> SlotpayEvent,
) -> Option<Result<SlotpayEvent, ChainError>> {
    (*topic == E::signature_topic()).then(|| {
        E::decode(&mut &data[..])
            .map(wrap)
            .map_err(|e| ChainError::decode(E::SIGNATURE, e))
    })
}

impl SlotpayEvent {
    /// The contract event with first topic `topic` and data `data`; `None` for a topic
    /// this interface does not know.
    pub fn decode(topic: &[u8; 32], data: &[u8]) -> Option<Result<Self, ChainError>> {
        try_decode(topic, data, SlotpayEvent::Opened)
            .or_else(|| try_decode(topic, data, SlotpayEvent::ToppedUp))
            .or_else(|| try_decode(topic, data, SlotpayEvent::Extended))
            .or_else(|| try_decode(topic, data, SlotpayEvent::RotationAnnounced))
            .or_else(|| try_decode(topic, data, SlotpayEvent::Settled))
            .or_else(|| try_decode(topic, data, SlotpayEvent::Closed))
            .or_else(|| try_decode(topic, data, SlotpayEvent::ExpiredClaimed))
            .or_else(|| try_decode(topic, data, SlotpayEvent::PaymentDeferred))
            .or_else(|| try_decode(topic, data, SlotpayEvent::Withdrawn))
    }

    /// The slotpay event in `event`, if it is a `ContractEmitted` of `contract`.
    pub fn from_details(
        event: &EventDetails<PolkadotConfig>,
        contract: &AccountId32,
    ) -> Option<Result<Self, ChainError>> {
        let emitted = match event.as_event::<ContractEmitted>() {
            Ok(Some(emitted)) => emitted,
            Ok(None) => return None,
            Err(e) => return Some(Err(ChainError::Rpc(subxt::Error::from(e)))),
        };
        if emitted.contract.0 != *contract {
            return None;
        }
        let topic = event.topics().first()?;
        Self::decode(&topic.0, &emitted.data)
    }
}

/// The slotpay events among `events`, in order.
pub fn slotpay_events<'a>(
    events: impl IntoIterator<Item = &'a EventDetails<PolkadotConfig>>,
    contract: &AccountId32,
) -> Result<Vec<SlotpayEvent>, ChainError> {
    events
        .into_iter()
        .filter_map(|e| SlotpayEvent::from_details(e, contract))
        .collect()
}
