//! The client's side of the wire format without allocation: requests written into a
//! buffer, answers read in place. [`crate::parse_answer`] and [`crate::DeviceClient`]
//! (std) build on these; firmware checks use them directly.
use super::message::{code, Message, Writer, CON, CONTENT_FORMAT, ECHO_OPTION, URI_PATH};

/// Writes a confirmable `POST /otp` carrying `text` (a token's text form) and, if the
/// device asked for one, its Echo value; `token` (the CoAP token) is at most 8 bytes.
/// Returns the datagram's length, `None` if it does not fit `out` (or the token is too
/// long).
pub fn token_request_into(
    out: &mut [u8],
    message_id: u16,
    token: &[u8],
    text: &[u8],
    echo: Option<&[u8]>,
) -> Option<usize> {
    let mut w = Writer::new(out, CON, code::POST, message_id, token);
    w.option(URI_PATH, b"otp");
    // Content-Format 0, text/plain; charset=utf-8 (a zero-length uint).
    w.option(CONTENT_FORMAT, &[]);
    if let Some(echo) = echo {
        w.option(ECHO_OPTION, echo);
    }
    w.text(text);
    w.finish()
}

/// Writes a confirmable `GET /status`; see [`token_request_into`].
pub fn status_request_into(out: &mut [u8], message_id: u16, token: &[u8]) -> Option<usize> {
    let mut w = Writer::new(out, CON, code::GET, message_id, token);
    w.option(URI_PATH, b"status");
    w.finish()
}

/// A device's answer read in place: what [`crate::parse_answer`] interprets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerRef<'a> {
    /// The CoAP message ID (that of the request it answers).
    pub message_id: u16,
    /// The CoAP token (that of the request it answers).
    pub token: &'a [u8],
    /// The response code as `class << 5 | detail`: 0x44 is 2.04, 0x81 is 4.01.
    pub code: u8,
    /// The first Echo option's value, if any.
    pub echo: Option<&'a [u8]>,
    /// The payload (its first word is stable: docs/device.md).
    pub payload: &'a [u8],
}

impl<'a> AnswerRef<'a> {
    /// Reads `datagram`; `None` unless it is a well-formed CoAP response (class 2, 4
    /// or 5).
    pub fn parse(datagram: &'a [u8]) -> Option<Self> {
        let message = Message::parse(datagram)?;
        if !matches!(message.code >> 5, 2 | 4 | 5) {
            return None;
        }
        Some(AnswerRef {
            message_id: message.id,
            token: message.token,
            code: message.code,
            echo: message.option(ECHO_OPTION),
            payload: message.payload,
        })
    }

    /// The first word of the payload (`granted`, `echo`, `used`, ...).
    pub fn word(&self) -> &'a [u8] {
        self.payload
            .split(|&b| b == b' ')
            .next()
            .unwrap_or_default()
    }
}
