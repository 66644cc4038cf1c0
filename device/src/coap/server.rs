//! The device's side of CoAP: requests in, answers out, with message deduplication.
use super::{encode_outcome, Outcome, Status, ECHO_OPTION, EXCHANGE_LIFETIME_MS};
use crate::{CounterStore, Device, Refusal, Source};
use coap_lite::{CoapOption, MessageClass, MessageType, Packet, RequestType, ResponseType};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

/// How many exchanges the deduplication remembers (for [`EXCHANGE_LIFETIME_MS`] each).
/// Beyond 4096 requests in 247 s the oldest is forgotten early; a retransmission of it
/// is then checked afresh, which for a granted token answers `used`, never grants twice.
pub const DEDUP_CAPACITY: usize = 4096;

/// A device behind CoAP, with the time a granted slot lasts.
pub struct CoapDevice<S: CounterStore> {
    /// The device core.
    pub device: Device<S>,
    /// Milliseconds of access one grant adds.
    pub slot_ms: u64,
    /// Monotonic ms until which the actuator is on.
    pub active_until_ms: u64,
    dedup: Dedup,
}

/// What a request did, for the simulator's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A token was granted: the actuator is on.
    Granted {
        /// The counter granted.
        counter: u64,
        /// Monotonic ms until which the actuator is now on.
        active_until_ms: u64,
    },
    /// A token was refused, and why.
    Refused(String),
    /// A retransmission, answered from the deduplication cache without a new check.
    Duplicate,
    /// Anything else (an Echo challenge, a status request, an unknown resource).
    Other,
}

impl<S: CounterStore> CoapDevice<S> {
    /// `device` behind CoAP, each grant adding `slot_ms` of access.
    pub fn new(device: Device<S>, slot_ms: u64) -> Self {
        Self {
            device,
            slot_ms,
            active_until_ms: 0,
            dedup: Dedup::default(),
        }
    }

    /// Handles one datagram from `from` at monotonic time `now_ms`. `None` for datagrams
    /// that are not CoAP requests (RFC 7252 section 4.2: silently ignored).
    pub fn handle(
        &mut self,
        from: SocketAddr,
        datagram: &[u8],
        now_ms: u64,
    ) -> Option<(Vec<u8>, Event)> {
        let request = Packet::from_bytes(datagram).ok()?;
        let MessageClass::Request(method) = request.header.code else {
            return None;
        };
        let key = (from, request.header.message_id);
        if let Some(answer) = self.dedup.get(&key, now_ms) {
            return Some((answer.to_vec(), Event::Duplicate));
        }
        let path: Vec<String> = request
            .get_option(CoapOption::UriPath)
            .map(|segments| {
                segments
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let (code, options, payload, event, remember) = match (method, path.join("/").as_str()) {
            (RequestType::Post, "otp") => {
                let (outcome, event) = self.present(from, &request, now_ms);
                let (code, options, payload) = encode_outcome(&outcome);
                // Only an answer that a second evaluation would change or count is
                // remembered: a grant (it would come back "used") and a checked wrong
                // token (a second failure). Echo challenges, throttling and the other
                // refusals cost nothing to repeat, and not remembering them keeps a
                // spoofed flood from evicting a grant.
                let remember = matches!(outcome, Outcome::Granted { .. } | Outcome::Invalid);
                (code, options, payload, event, remember)
            }
            (RequestType::Get, "status") => {
                let (code, options, payload) = encode_outcome(&Outcome::Status(Status {
                    next_counter: self.device.next_counter(),
                    active_ms: self.active_until_ms.saturating_sub(now_ms),
                    window: self.device.window().size(),
                }));
                (code, options, payload, Event::Other, false)
            }
            (_, "otp" | "status") => (
                ResponseType::MethodNotAllowed,
                vec![],
                "method not allowed".into(),
                Event::Other,
                false,
            ),
            _ => (
                ResponseType::NotFound,
                vec![],
                "no such resource".into(),
                Event::Other,
                false,
            ),
        };
        let mut response = Packet::new();
        response.header.set_version(1);
        response.header.message_id = request.header.message_id;
        response.set_token(request.get_token().to_vec());
        response.header.set_type(match request.header.get_type() {
            MessageType::Confirmable => MessageType::Acknowledgement,
            _ => MessageType::NonConfirmable,
        });
        response.header.code = MessageClass::Response(code);
        for (option, value) in options {
            response.add_option(option, value);
        }
        response.payload = payload.into_bytes();
        let bytes = response.to_bytes().ok()?;
        if remember {
            self.dedup.insert(key, bytes.clone(), now_ms);
        }
        Some((bytes, event))
    }

    fn present(&mut self, from: SocketAddr, request: &Packet, now_ms: u64) -> (Outcome, Event) {
        let source = Source::from_ip(from.ip());
        let echo = request
            .get_option(CoapOption::Unknown(ECHO_OPTION))
            .and_then(|values| values.front());
        match self
            .device
            .present(&source, echo.map(Vec::as_slice), &request.payload, now_ms)
        {
            Ok(grant) => {
                self.active_until_ms = self.active_until_ms.max(now_ms) + self.slot_ms;
                let seconds = (self.active_until_ms - now_ms).div_ceil(1000);
                (
                    Outcome::Granted {
                        counter: grant.counter,
                        seconds,
                    },
                    Event::Granted {
                        counter: grant.counter,
                        active_until_ms: self.active_until_ms,
                    },
                )
            }
            Err(refusal) => {
                let event = match &refusal {
                    // Asking for an Echo is the normal first round trip, not a refusal.
                    Refusal::NeedEcho(_) => Event::Other,
                    r => Event::Refused(r.to_string()),
                };
                let outcome = match refusal {
                    Refusal::NeedEcho(echo) => Outcome::EchoRequired(echo.as_bytes().to_vec()),
                    Refusal::Malformed(e) => Outcome::Malformed(e.to_string()),
                    Refusal::Throttled { retry_in_ms } => Outcome::Throttled {
                        retry_ms: retry_in_ms,
                    },
                    Refusal::Invalid => Outcome::Invalid,
                    Refusal::Used(c) => Outcome::Used(c),
                    Refusal::Expired(c) => Outcome::Expired(c),
                    Refusal::Storage(_) | Refusal::Config(_) => Outcome::Unavailable,
                };
                (outcome, event)
            }
        }
    }
}

/// RFC 7252 section 4.5: answers by (source endpoint, message ID), for the exchange
/// lifetime, at most [`DEDUP_CAPACITY`] of them.
#[derive(Default)]
struct Dedup {
    answers: HashMap<(SocketAddr, u16), (u64, Vec<u8>)>,
    order: VecDeque<((SocketAddr, u16), u64)>,
}

impl Dedup {
    fn expire(&mut self, now_ms: u64) {
        while let Some(&(key, at)) = self.order.front() {
            let too_old = now_ms.saturating_sub(at) > EXCHANGE_LIFETIME_MS;
            if !too_old && self.order.len() <= DEDUP_CAPACITY {
                break;
            }
            self.order.pop_front();
            // Only forget the answer this order entry was for (not a later reuse).
            if self.answers.get(&key).is_some_and(|(t, _)| *t == at) {
                self.answers.remove(&key);
            }
        }
    }

    fn get(&mut self, key: &(SocketAddr, u16), now_ms: u64) -> Option<&[u8]> {
        self.expire(now_ms);
        self.answers.get(key).map(|(_, bytes)| bytes.as_slice())
    }

    fn insert(&mut self, key: (SocketAddr, u16), answer: Vec<u8>, now_ms: u64) {
        self.answers.insert(key, (now_ms, answer));
        self.order.push_back((key, now_ms));
        self.expire(now_ms);
    }
}
