//! The device's CoAP (RFC 7252) interface: the wire format both sides share, in one
//! place. [`CoapDevice`] is the device's side (sans-socket: a datagram in, a datagram
//! out); [`crate::DeviceClient`] is the client's.
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
use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType, ResponseType};

mod server;
pub use server::{CoapDevice, Event, DEDUP_CAPACITY};

/// CoAP option number of Echo (RFC 9175).
pub const ECHO_OPTION: u16 = 252;
/// RFC 7252 EXCHANGE_LIFETIME with the default transmission parameters: 247 s.
pub const EXCHANGE_LIFETIME_MS: u64 = 247_000;

/// What an answer said, parsed by [`parse_answer`] (the only parser of these payloads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2.04 `granted <counter> <seconds>`.
    Granted {
        /// The counter granted.
        counter: u64,
        /// Seconds the actuator stays on from now.
        seconds: u64,
    },
    /// 4.01 with an Echo option: repeat the request carrying this value.
    EchoRequired(Vec<u8>),
    /// 4.00 `malformed <why>`.
    Malformed(String),
    /// 4.03 `invalid`: a wrong OTP for its counter, counted as a failure.
    Invalid,
    /// 4.03 `used <counter>`: granted before.
    Used(u64),
    /// 4.03 `expired <counter>`: below the replay window.
    Expired(u64),
    /// 4.29 `throttled <ms>`.
    Throttled {
        /// When to retry.
        retry_ms: u64,
    },
    /// 5.03 `storage`: the state could not be saved, nothing granted.
    Unavailable,
    /// 2.05, the answer to `GET /status`.
    Status(Status),
    /// Anything else (4.04, 4.05, a payload this version does not know).
    Other {
        /// The response code, as coap-lite names it.
        code: String,
        /// The payload, as text.
        text: String,
    },
}

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

/// One parsed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The CoAP message ID (that of the request it answers).
    pub message_id: u16,
    /// The CoAP token (that of the request it answers).
    pub token: Vec<u8>,
    /// What it said.
    pub outcome: Outcome,
}

/// Parses a device's answer; `None` if the datagram is not a CoAP response.
pub fn parse_answer(datagram: &[u8]) -> Option<Answer> {
    let packet = Packet::from_bytes(datagram).ok()?;
    let MessageClass::Response(code) = packet.header.code else {
        return None;
    };
    let text = String::from_utf8_lossy(&packet.payload).into_owned();
    let words: Vec<&str> = text.split(' ').collect();
    let number = |i: usize| words.get(i).and_then(|w| w.parse::<u64>().ok());
    let word = |i: usize| words.get(i).copied().unwrap_or_default();
    let outcome = match (code, word(0)) {
        (ResponseType::Changed, "granted") => match (number(1), number(2)) {
            (Some(counter), Some(seconds)) if words.len() == 3 => {
                Outcome::Granted { counter, seconds }
            }
            _ => other(code, &text),
        },
        (ResponseType::Unauthorized, _) => {
            match packet.get_option(CoapOption::Unknown(ECHO_OPTION)) {
                Some(values) => Outcome::EchoRequired(values.front().cloned().unwrap_or_default()),
                None => other(code, &text),
            }
        }
        (ResponseType::BadRequest, _) => {
            Outcome::Malformed(text.strip_prefix("malformed ").unwrap_or(&text).to_string())
        }
        (ResponseType::Forbidden, "invalid") => Outcome::Invalid,
        (ResponseType::Forbidden, "used") => {
            number(1).map_or_else(|| other(code, &text), Outcome::Used)
        }
        (ResponseType::Forbidden, "expired") => {
            number(1).map_or_else(|| other(code, &text), Outcome::Expired)
        }
        (ResponseType::TooManyRequests, "throttled") => number(1).map_or_else(
            || other(code, &text),
            |retry_ms| Outcome::Throttled { retry_ms },
        ),
        (ResponseType::ServiceUnavailable, _) => Outcome::Unavailable,
        (ResponseType::Content, "next_counter")
            if word(2) == "active_ms" && word(4) == "window" =>
        {
            match (
                number(1),
                number(3),
                number(5).and_then(|w| u32::try_from(w).ok()),
            ) {
                (Some(next_counter), Some(active_ms), Some(window)) => Outcome::Status(Status {
                    next_counter,
                    active_ms,
                    window,
                }),
                _ => other(code, &text),
            }
        }
        _ => other(code, &text),
    };
    Some(Answer {
        message_id: packet.header.message_id,
        token: packet.get_token().to_vec(),
        outcome,
    })
}

fn other(code: ResponseType, text: &str) -> Outcome {
    Outcome::Other {
        code: format!("{code:?}"),
        text: text.to_string(),
    }
}

/// The answer's code, options and payload (the device's side of [`parse_answer`]).
pub(crate) fn encode_outcome(
    outcome: &Outcome,
) -> (ResponseType, Vec<(CoapOption, Vec<u8>)>, String) {
    match outcome {
        Outcome::Granted { counter, seconds } => (
            ResponseType::Changed,
            vec![],
            format!("granted {counter} {seconds}"),
        ),
        Outcome::EchoRequired(echo) => (
            ResponseType::Unauthorized,
            vec![(CoapOption::Unknown(ECHO_OPTION), echo.clone())],
            "echo".into(),
        ),
        Outcome::Malformed(why) => (ResponseType::BadRequest, vec![], format!("malformed {why}")),
        Outcome::Invalid => (ResponseType::Forbidden, vec![], "invalid".into()),
        Outcome::Used(c) => (ResponseType::Forbidden, vec![], format!("used {c}")),
        Outcome::Expired(c) => (ResponseType::Forbidden, vec![], format!("expired {c}")),
        Outcome::Throttled { retry_ms } => (
            ResponseType::TooManyRequests,
            vec![(CoapOption::MaxAge, uint(retry_ms.div_ceil(1000)))],
            format!("throttled {retry_ms}"),
        ),
        Outcome::Unavailable => (ResponseType::ServiceUnavailable, vec![], "storage".into()),
        Outcome::Status(s) => (
            ResponseType::Content,
            vec![],
            format!(
                "next_counter {} active_ms {} window {}",
                s.next_counter, s.active_ms, s.window
            ),
        ),
        Outcome::Other { text, .. } => (ResponseType::NotFound, vec![], text.clone()),
    }
}

/// A CoAP uint option value: big-endian, no leading zero bytes.
fn uint(value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes[first..].to_vec()
}

fn request(method: RequestType, path: &str, message_id: u16, token: &[u8]) -> Packet {
    let mut packet = Packet::new();
    packet.header.set_version(1);
    packet.header.set_type(MessageType::Confirmable);
    packet.header.code = MessageClass::Request(method);
    packet.header.message_id = message_id;
    packet.set_token(token.to_vec());
    packet.add_option(CoapOption::UriPath, path.as_bytes().to_vec());
    packet
}

/// A confirmable `POST /otp` carrying `text` (a token's text form) and, if the device
/// asked for one, its Echo value.
pub fn token_request(message_id: u16, token: &[u8], text: &str, echo: Option<&[u8]>) -> Vec<u8> {
    let mut packet = request(RequestType::Post, "otp", message_id, token);
    // Content-Format 0, text/plain; charset=utf-8 (a zero-length uint).
    packet.add_option(CoapOption::ContentFormat, Vec::new());
    if let Some(echo) = echo {
        packet.add_option(CoapOption::Unknown(ECHO_OPTION), echo.to_vec());
    }
    packet.payload = text.as_bytes().to_vec();
    packet.to_bytes().unwrap_or_default()
}

/// A confirmable `GET /status`.
pub fn status_request(message_id: u16, token: &[u8]) -> Vec<u8> {
    request(RequestType::Get, "status", message_id, token)
        .to_bytes()
        .unwrap_or_default()
}
