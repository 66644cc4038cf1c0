//! The device's CoAP (RFC 7252) interface: the wire format both sides share, in one
//! place. [`CoapDevice`] is the device's side (sans-socket, no allocation: a datagram
//! in, a datagram out; the simulator and the firmware run it); [`crate::DeviceClient`] is
//! the client's (std).
//!
//! `POST /otp`, payload the token's text `<counter>:<otp>` (plain text: the encoding
//! the AS returns and the CLI prints, at most 30 bytes, one frame even on 6LoWPAN).
//! Answers, each a code and a payload whose first word is stable:
//!
//! | code | payload | meaning |
//! | --- | --- | --- |
//! | 2.04 | `granted <counter> <seconds>` | granted; the actuator is on for `seconds` more |
//! | 4.01 + Echo (option 252) | `echo` | repeat the request with this Echo (RFC 9175); nothing was checked |
//! | 4.00 | `malformed <why>` | not a token of this device's digits; not counted |
//! | 4.03 | `invalid` | the OTP is wrong for that counter; counted as a failure |
//! | 4.03 | `used <counter>` / `expired <counter>` | granted before / below the replay window; not counted |
//! | 4.29 + Max-Age | `throttled <ms>` | retry in `ms` (RFC 8516) |
//! | 5.03 | `storage` | the state could not be saved; nothing granted |
//!
//! `GET /status`: 2.05 `next_counter <n> active_ms <ms> window <W>`.
//! A retransmitted request (same source endpoint and message ID within
//! [`EXCHANGE_LIFETIME_MS`]) gets the first answer again, byte for byte (section 4.5).
#[cfg(feature = "std")]
mod answer;
mod dedup;
mod message;
mod server;
mod wire;

#[cfg(feature = "std")]
pub use answer::{parse_answer, status_request, token_request, Answer, Outcome};
pub use message::ECHO_OPTION;
pub use server::{CoapDevice, Event, DEDUP_CAPACITY, MAX_ANSWER_LEN};
pub use wire::{status_request_into, token_request_into, AnswerRef};

/// RFC 7252 EXCHANGE_LIFETIME with the default transmission parameters: 247 s.
pub const EXCHANGE_LIFETIME_MS: u64 = 247_000;

/// `GET /status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// One past the highest granted counter (0 before the first grant).
    pub next_counter: u64,
    /// Milliseconds the actuator stays on.
    pub active_ms: u64,
    /// The replay window W.
    pub window: u32,
}

#[cfg(all(test, feature = "std"))]
mod tests;
