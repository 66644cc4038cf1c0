//! The slotpay device. [`core`] is everything a microcontroller runs: it validates the
//! one-time passwords the Authorization Server issues and persists its counter; it never
//! touches the chain or public-key crypto. With `std`, [`coap`] and [`file_store`] make it
//! a simulator that speaks CoAP over UDP.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

#[cfg(feature = "std")]
pub mod coap;
pub mod core;
#[cfg(feature = "std")]
pub mod file_store;
