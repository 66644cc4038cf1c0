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

#[derive(Debug, Clone, DecodeAsType)]
#[decode_as_type(crate_path = "::subxt::ext::scale_decode")]
pub struct ContractEmitted {
    pub contract: ChainAccount,
    pub data: Vec<u8>,
}

impl StaticEvent for ContractEmitted {
    const PALLET: &'static str = "Contracts";
    const EVENT: &'static str = "ContractEmitted";
}

#[derive(Debug, Clone, DecodeAsType)]
#[decode_as_type(crate_path = "::subxt::ext::scale_decode")]
pub struct Instantiated {
    pub deployer: ChainAccount,
    pub contract: ChainAccount,
}

impl StaticEvent for Instantiated {
    const PALLET: &'static str = "Contracts";
    const EVENT: &'static str = "Instantiated";
}

#[derive(Debug, Clone, DecodeAsType)]
#[decode_as_type(crate_path = "::subxt::ext::scale_decode")]
pub struct StorageDepositTransferredAndHeld {
    pub from: ChainAccount,
    pub to: ChainAccount,
    pub amount: Balance,
}

impl StaticEvent for StorageDepositTransferredAndHeld {
    const PALLET: &'static str = "Contracts";
    const EVENT: &'static str = "StorageDepositTransferredAndHeld";
}

#[derive(Debug, Clone, DecodeAsType)]
#[decode_as_type(crate_path = "::subxt::ext::scale_decode")]
pub struct StorageDepositTransferredAndReleased {
    pub from: ChainAccount,
    pub to: ChainAccount,
    pub amount: Balance,
}

impl StaticEvent for StorageDepositTransferredAndReleased {
    const PALLET: &'static str = "Contracts";
    const EVENT: &'static str = "StorageDepositTransferredAndReleased";
}

#[derive(Debug, Clone, DecodeAsType)]
#[decode_as_type(crate_path = "::subxt::ext::scale_decode")]
pub struct TransactionFeePaid {
    pub who: ChainAccount,
    pub actual_fee: Balance,
    pub tip: Balance,
}

impl StaticEvent for TransactionFeePaid {
    const PALLET: &'static str = "TransactionPayment";
    const EVENT: &'static str = "TransactionFeePaid";
}

/// An event of the slotpay contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotpayEvent {
    Opened(Opened),
    ToppedUp(ToppedUp),
    Extended(Extended),
    RotationAnnounced(RotationAnnounced),
    Settled(Settled),
    Closed(Closed),
    ExpiredClaimed(ExpiredClaimed),
    PaymentDeferred(PaymentDeferred),
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
