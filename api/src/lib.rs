//! The formats slotpay's off-chain parts share, each defined once: the Authorization
//! Server's HTTP/JSON [`wire`] types (what the AS answers and what the client checks), the
//! [`codec`]s for bytes, amounts and accounts, and the [`deployment`] file that names a
//! contract instance.
//!
//! No I/O beyond reading and writing a deployment file: the AS serves these types, the
//! `slotpay` CLI and the tests send and read them.
#![forbid(unsafe_code)]

pub mod codec;
pub mod deployment;
pub mod wire;

pub use codec::{from_hex, parse_account, parse_amount, ss58, to_hex, CodecError};
pub use deployment::{Deployment, DeploymentError};
