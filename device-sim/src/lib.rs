//! The slotpay device. [`core`] is everything a microcontroller runs: it checks the
//! tokens the Authorization Server sells (one HMAC for the counter a token names, an
//! RFC 4303-style replay window, throttling) and persists its state; it never touches
//! the chain or public-key crypto. `device-sim/firmware` runs it on a Cortex-M under
//! QEMU. With `provision`, [`provision`] reads and writes the device's provisioning file
//! (what the AS links); with `std`, [`coap`], [`client`] and [`file_store`] make it a
//! simulator that speaks CoAP over UDP, and the client that talks to it.
#![cfg_attr(not(any(feature = "std", feature = "provision")), no_std)]
#![forbid(unsafe_code)]

#[cfg(feature = "std")]
pub mod client;
#[cfg(feature = "std")]
pub mod coap;
pub mod core;
#[cfg(feature = "std")]
pub mod file_store;
#[cfg(feature = "provision")]
pub mod provision;
