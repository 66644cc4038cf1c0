//! The client's side of the wire format: requests out, answers parsed (std).
use super::message::code;
use super::wire::{status_request_into, token_request_into, AnswerRef};
use super::Status;

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
        /// The response code as `c.dd` (e.g. `4.04`).
        code: String,
        /// The payload, as text.
        text: String,
    },
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
    let message = AnswerRef::parse(datagram)?;
    let code = message.code;
    let text = String::from_utf8_lossy(message.payload).into_owned();
    let words: Vec<&str> = text.split(' ').collect();
    let number = |i: usize| words.get(i).and_then(|w| w.parse::<u64>().ok());
    let word = |i: usize| words.get(i).copied().unwrap_or_default();
    let outcome = match (code, word(0)) {
        (code::CHANGED, "granted") => match (number(1), number(2)) {
            (Some(counter), Some(seconds)) if words.len() == 3 => {
                Outcome::Granted { counter, seconds }
            }
            _ => other(code, &text),
        },
        (code::UNAUTHORIZED, _) => match message.echo {
            Some(echo) => Outcome::EchoRequired(echo.to_vec()),
            None => other(code, &text),
        },
        (code::BAD_REQUEST, _) => {
            Outcome::Malformed(text.strip_prefix("malformed ").unwrap_or(&text).to_string())
        }
        (code::FORBIDDEN, "invalid") => Outcome::Invalid,
        (code::FORBIDDEN, "used") => number(1).map_or_else(|| other(code, &text), Outcome::Used),
        (code::FORBIDDEN, "expired") => {
            number(1).map_or_else(|| other(code, &text), Outcome::Expired)
        }
        (code::TOO_MANY_REQUESTS, "throttled") => number(1).map_or_else(
            || other(code, &text),
            |retry_ms| Outcome::Throttled { retry_ms },
        ),
        (code::SERVICE_UNAVAILABLE, _) => Outcome::Unavailable,
        (code::CONTENT, "next_counter") if word(2) == "active_ms" && word(4) == "window" => {
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
        message_id: message.message_id,
        token: message.token.to_vec(),
        outcome,
    })
}

fn other(code: u8, text: &str) -> Outcome {
    Outcome::Other {
        code: format!("{}.{:02}", code >> 5, code & 0x1f),
        text: text.to_string(),
    }
}

/// Room for any request of `payload` and `echo` bytes: the header, an 8-byte token, the
/// options with their longest extensions, the payload marker.
fn room(payload: usize, echo: usize) -> usize {
    4 + 8 + (1 + 6) + 1 + (5 + echo) + 1 + payload
}

/// A confirmable `POST /otp` carrying `text` (a token's text form) and, if the device
/// asked for one, its Echo value. `token` (the CoAP token) is at most 8 bytes: a longer
/// one makes an empty datagram, which no device answers.
pub fn token_request(message_id: u16, token: &[u8], text: &str, echo: Option<&[u8]>) -> Vec<u8> {
    let mut buf = vec![0u8; room(text.len(), echo.map_or(0, <[u8]>::len))];
    let len = token_request_into(&mut buf, message_id, token, text.as_bytes(), echo).unwrap_or(0);
    buf.truncate(len);
    buf
}

/// A confirmable `GET /status`; `token` as for [`token_request`].
pub fn status_request(message_id: u16, token: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; room(0, 0)];
    let len = status_request_into(&mut buf, message_id, token).unwrap_or(0);
    buf.truncate(len);
    buf
}
