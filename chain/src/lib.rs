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
//!
//! The surface: the client types at the crate root; two namespaces of free functions,
//! [`balances`] (transfers and balances) and [`dry_run`] (raw `ContractsApi` dry runs, for
//! instantiation and the cost benchmarks).
#![forbid(unsafe_code)]

pub mod balances;
mod contract;
mod deploy;
pub mod dry_run;
mod events;
pub mod evm;
mod layered;
mod limits;
mod node;
mod signer;

pub use contract::{
    Answer, At, Batch, BatchOutcome, BlockEvents, Call, Contract, DryRun, ItemOutcome,
};
pub use deploy::{bundle_code, deploy, Deployed};
pub use events::{
    slotpay_events, ContractEmitted, Instantiated, SlotpayEvent, StorageDepositTransferredAndHeld,
    StorageDepositTransferredAndReleased, TransactionFeePaid,
};
pub use layered::{deploy_evm, AnyContract, AnyNode, Done, LayerSigner};
pub use limits::BlockLimits;
pub use node::{Api, Finality, Included, Node};
pub use signer::{AnySigner, SignerError};

/// Substrate's hash type, for block hashes.
pub type BlockHash = subxt::utils::H256;

/// What can go wrong talking to the chain.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The node's RPC failed (see [`Self::is_unreachable`]).
    #[error("node RPC: {0}")]
    Rpc(#[from] subxt::Error),
    /// The contract refused the message with its error.
    #[error("the contract refused {message}: {error}")]
    Refused {
        /// The message's label.
        message: &'static str,
        /// Why.
        error: interface::Error,
    },
    /// The call failed outside the contract's own errors (a pallet error, a trap).
    #[error("{message} failed: {reason}")]
    Call {
        /// The message's label.
        message: &'static str,
        /// The pallet's or the runtime's reason.
        reason: String,
    },
    /// An answer or event that does not decode.
    #[error("{what}: cannot decode: {reason}")]
    Decode {
        /// What was decoded.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// A transaction the node did not include.
    #[error("the transaction was not included: {0}")]
    NotIncluded(String),
    /// A deployment of another chain than the node's.
    #[error(
        "the deployment is for chain {}, but {url} serves chain {}",
        hex::encode(expected),
        hex::encode(found)
    )]
    WrongChain {
        /// The deployment's genesis hash.
        expected: [u8; 32],
        /// The node's.
        found: [u8; 32],
        /// The node.
        url: String,
    },
    /// An EVM node's RPC failed (see [`Self::is_unreachable`]).
    #[error("EVM node RPC: {0}")]
    Evm(String),
    /// Anything else, said in words.
    #[error("{0}")]
    Other(String),
}

impl ChainError {
    /// The node did not answer (down, restarting, or the connection is being re-made).
    pub fn is_unreachable(&self) -> bool {
        match self {
            // alloy reports a transport failure (the connection, a backend gone) in
            // words; a JSON-RPC error response is the node answering.
            ChainError::Evm(e) => !e.starts_with("server returned an error response"),
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
