//! The slotpay device. [`core`] is everything a microcontroller runs: it validates the
//! one-time passwords the Authorization Server issues and persists its counter; it never
//! touches the chain or public-key crypto.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

pub mod core;
