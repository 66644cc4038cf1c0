//! The slotpay device: what checks the tokens the Authorization Server sells, and the
//! formats and the protocol around it.
//!
//! - **The core** (always; `no_std`, no heap): [`Device`] checks a token with one HMAC
//!   for the counter it names, grants each counter once (an RFC 4303-style replay
//!   window), throttles guessing behind a CoAP Echo round trip ([`Throttle`]) and saves
//!   its [`DeviceState`] through a [`CounterStore`] before it reports a grant; [`AbStore`]
//!   keeps that state on two raw flash pages ([`Pages`]), safe against power cuts. It
//!   never touches the chain or public-key crypto. `device-sim/firmware` runs it on
//!   Cortex-M cores under QEMU.
//! - **The provisioning file** (feature `provision`): [`Provision`], the one TOML file
//!   per device that the device and the AS both read; firmware reads the same settings
//!   from a flash page ([`Provisioned`], always there), which [`Provision::flash_image`]
//!   writes.
//! - **CoAP** (always; `no_std`, no heap): the device's side without a socket
//!   ([`CoapDevice`]: a datagram in, a datagram out, with deduplication; the simulator
//!   and the firmware run it) and the client's wire primitives ([`token_request_into`],
//!   [`AnswerRef`]). With feature `std`: answers parsed into [`Outcome`]s
//!   ([`parse_answer`]) and the blocking UDP client the CLI and the tests present tokens
//!   with ([`DeviceClient`]).
//!
//! The simulator (`slotpay-device`, package `device-sim`) is this crate behind a UDP
//! socket with its state in a file. docs/device.md has the design and its bounds.
#![cfg_attr(not(any(feature = "std", feature = "provision")), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "std")]
mod client;
mod coap;
mod core;
#[cfg(feature = "provision")]
mod provision;

pub use crate::core::echo::{Echo, ECHO_EPOCH_MS, ECHO_LEN};
pub use crate::core::flash::{AbError, AbStore, Pages, PowerCut, RamFlash, RECORD_MAX};
pub use crate::core::page::{
    Provisioned, ProvisionedError, FLASH_LEN, FLASH_PAGE, PROVISIONING_OFFSET,
};
pub use crate::core::state::{crc32, CounterStore, DeviceState, StateError};
pub use crate::core::throttle::{Source, Throttle, SOURCES};
pub use crate::core::{decimal, div_rem_u16, ConfigError, Device, DeviceConfig, Grant, Refusal};

#[cfg(feature = "provision")]
pub use provision::{Provision, ProvisionError, DEFAULT_DIGITS, DEFAULT_SLOT_SECONDS};

pub use coap::{
    status_request_into, token_request_into, AnswerRef, CoapDevice, Event, Status, DEDUP_CAPACITY,
    ECHO_OPTION, EXCHANGE_LIFETIME_MS, MAX_ANSWER_LEN,
};

#[cfg(feature = "std")]
pub use client::{present_tokens, ClientConfig, DeviceClient, Granted, PresentError};
#[cfg(feature = "std")]
pub use coap::{parse_answer, status_request, token_request, Answer, Outcome};
