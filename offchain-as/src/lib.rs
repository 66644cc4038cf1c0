//! The slotpay Authorization Server (AS): sells device time slots against cumulative
//! payment receipts, and settles and closes channels on chain with the best one.
//!
//! The rules live in `protocol` ([`protocol::screen`], [`protocol::authorize`],
//! [`protocol::check_terms`], [`protocol::Channel`]); this crate adds what needs I/O: the
//! durable ledger ([`Ledger`]: SQLite's [`Store`] on one thread, group commit), the sale path and
//! token issuance ([`Seller`]), the chain view ([`NodeView`]: finality for money, best
//! blocks for time), the HTTP API ([`router_with`], [`serve`]), the closer ([`Closer`],
//! its pure [`decide`] and [`ClosePlan`], its node adapter [`NodeChain`]) and the
//! [`Config`] with its timing rule.
#![forbid(unsafe_code)]

mod closer;
mod config;
mod follow;
mod handlers;
mod ledger;
mod metrics;
mod sale;
mod server;
mod view;

pub use closer::{
    deadline, decide, unpaid, Action, Capacity, ClosePlan, Closer, CloserError, ClosingChain,
    Effect, Full, Holding, Landed, LeaseTerms, NodeChain, NowReport, Op, Policy, Report,
    SharedPlan, TransactionCost,
};
pub use config::{
    check_timing, ChainTiming, ClosePolicy, Config, ConfigError, DeviceEntry, Limits,
};
pub use follow::follow;
#[cfg(feature = "_test_utils")]
pub use ledger::sell_now;
pub use ledger::{
    answer_retry, counter_floor_now, migrate, ChannelState, Database, Fence, Ledger, LedgerError,
    Migrated, Offer, Refused, Rules, SaleError, SaleRecord, SeenTotals, SellOutcome, Sold, Stop,
    Store, Watched, COUNTER_BITS,
};
pub use metrics::Metrics;
pub use sale::{DeviceTerms, OfferError, Seller};
pub use server::{router, router_with, serve, Refusal, Service, MAX_BODY_BYTES};
pub use view::{ChainView, ChannelRead, ContractReader, Heights, NodeView};
