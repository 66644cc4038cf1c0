//! The slotpay Authorization Server (AS): sells device time slots against cumulative
//! payment receipts and closes channels on chain with the best one.
//!
//! The rules live in `protocol` ([`protocol::authorize`], [`protocol::check_terms`]);
//! this crate adds what needs I/O: the durable [`ledger`] with its group [`committer`],
//! OTP issuance ([`sale`]), the chain ([`chain`]), the HTTP API ([`server`], [`metrics`])
//! and the [`closer`].
#![forbid(unsafe_code)]

pub mod api;
pub mod chain;
pub mod closer;
pub mod committer;
pub mod config;
pub mod ledger;
pub mod metrics;
pub mod sale;
pub mod server;
