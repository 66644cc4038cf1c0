//! The formats slotpay's off-chain parts share, each defined once: the Authorization
//! Server's HTTP/JSON bodies (what the AS answers and what the client checks) with their
//! [`routes`] and refusal codes ([`ErrorCode`]), the codecs for bytes, amounts and
//! accounts, the [`Deployment`] file that names a contract instance, and (feature
//! `client`) a blocking [`AsClient`].
//!
//! No I/O beyond reading and writing files and, in the client, HTTP: the AS serves these
//! types, the `slotpay` CLI and the tests send and read them.
#![forbid(unsafe_code)]

#[cfg(feature = "client")]
mod client;
mod codec;
mod deployment;
mod error;
pub mod routes;
mod wire;

#[cfg(feature = "client")]
pub use client::{AsClient, AsClientError};
pub use codec::{account_text, from_hex, parse_account, parse_amount, ss58, to_hex, CodecError};
pub use deployment::{write_atomically, Deployment, DeploymentError, DeploymentLayer};
pub use error::ErrorCode;
pub use wire::{
    ApiError, AuthorityKind, ChannelReply, DeviceTerms, PurchaseBody, PurchaseReply, RequestSecret,
    RotationReply, TermsReply, WireError, MAX_DEVICE_NAME,
};
