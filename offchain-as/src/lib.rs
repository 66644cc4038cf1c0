//! The slotpay Authorization Server (AS): sells device time slots against cumulative
//! payment receipts, and settles and closes channels on chain with the best one.
//!
//! The rules live in `protocol` ([`protocol::screen`], [`protocol::authorize`],
//! [`protocol::check_terms`], [`protocol::Channel`]); this crate adds what needs I/O: the
//! durable [`ledger`] (one thread, group commit), the [`sale`] path and token issuance, the
//! chain [`view`] (finality for money, best blocks for time), the HTTP API ([`server`],
//! [`handlers`], [`metrics`]), the [`closer`] and its [`node`] adapter, and the
//! [`config`] with its timing rule.
#![forbid(unsafe_code)]

pub mod closer;
pub mod config;
pub mod handlers;
pub mod ledger;
pub mod metrics;
pub mod node;
pub mod sale;
pub mod server;
pub mod view;
