//! The `slotpay` CLI's commands, as a library: keys and groups, channels of each
//! construction, funds, and paying for device slots without trusting the AS. The pure
//! checks a client makes before it signs ([`pay::check_terms`], [`pay::justified_total`],
//! [`pay::within_allowance`], ...) are here with their unit tests; the binary is only
//! their command line. The command families are its public modules (`channel`, `funds`,
//! `group`, `keys`, `pay`), each item reachable by one path; what they share (output,
//! the key's record, the chain arguments) is re-exported at the root from private
//! modules.
#![forbid(unsafe_code)]

pub mod channel;
pub mod funds;
pub mod group;
pub mod keys;
mod output;
pub mod pay;
mod state;
mod target;

pub use output::{with_progress, Output};
pub use state::{ClientState, EpochRecord};
pub use target::{authority, authority_text, AuthorityArg, ChainArgs};
