//! A typed client of the slotpay contract over subxt, shared by the AS, the CLI and the
//! tests.
//!
//! Every contract message is a value of an [`interface::messages`] type, so a call names
//! its message and arguments through the compiler, not through strings; every answer and
//! event is decoded into the interface's types; a refusal comes back as the contract's
//! [`interface::Error`] by name. Runtime types (the dry-run result, pallet events,
//! dispatch errors) are decoded through the node's own metadata.
//!
//! The node connection ([`Node`]) reconnects by itself after a node restart; calls made
//! while it is away fail with [`ChainError::is_unreachable`], and subscriptions resume.
#![forbid(unsafe_code)]

pub mod balances;
pub mod contract;
pub mod deploy;
pub mod dry_run;
pub mod events;
pub mod node;
pub mod signer;

pub use contract::{At, Batch, BatchOutcome, Call, Contract, DryRun, ItemOutcome, Outcome};
pub use events::SlotpayEvent;
pub use node::{Finality, Included, Node};
pub use signer::AnySigner;

/// Substrate's hash type, for block hashes.
pub type BlockHash = subxt::utils::H256;

/// What can go wrong talking to the chain.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("node RPC: {0}")]
    Rpc(#[from] subxt::Error),
    #[error("the contract refused {message}: {error}")]
    Refused {
        message: &'static str,
        error: interface::Error,
    },
    #[error("{message} failed: {reason}")]
    Call {
        message: &'static str,
        reason: String,
    },
    #[error("{what}: cannot decode: {reason}")]
    Decode { what: String, reason: String },
    #[error("the transaction was not included: {0}")]
    NotIncluded(String),
    #[error("{0}")]
    Other(String),
}

impl ChainError {
    /// The node did not answer (down, restarting, or the connection is being re-made).
    pub fn is_unreachable(&self) -> bool {
        match self {
            ChainError::Rpc(subxt::Error::Io(_)) => true,
            ChainError::Rpc(subxt::Error::Rpc(e)) => matches!(
                e,
                subxt::error::RpcError::ClientError(_)
                    | subxt::error::RpcError::DisconnectedWillReconnect(_)
                    | subxt::error::RpcError::SubscriptionDropped
            ),
            _ => false,
        }
    }

    pub(crate) fn decode(what: impl Into<String>, reason: impl ToString) -> Self {
        ChainError::Decode {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}
