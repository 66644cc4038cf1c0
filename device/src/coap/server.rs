//! The device's side of CoAP: a request datagram in, an answer datagram out, with
//! message deduplication; no socket, no allocation (the simulator and the firmware run
//! this same code).
use super::dedup::{Dedup, Key};
use super::message::{code, uint, Message, Writer, ACK, CON, ECHO_OPTION, MAX_AGE, NON, URI_PATH};
use super::Status;
use crate::{CounterStore, Device, Echo, Refusal, Source};
use core::net::SocketAddr;
use protocol::hotp::HotpError;

/// How many exchanges the simulator's deduplication remembers (for
/// [`EXCHANGE_LIFETIME_MS`] each). Beyond 4096 checked requests in 247 s the oldest is
/// forgotten early; a retransmission of it is then checked afresh, which for a granted
/// token answers `used`, never grants twice. A microcontroller picks a smaller `N`.
pub const DEDUP_CAPACITY: usize = 4096;

/// Longest answer [`CoapDevice::handle_into`] writes (the status answer with every
/// number at its largest, an 8-byte token).
pub const MAX_ANSWER_LEN: usize = 128;

/// A device behind CoAP, with the time a granted slot lasts, remembering the answers of
/// up to `N` exchanges for deduplication.
pub struct CoapDevice<S: CounterStore, const N: usize = DEDUP_CAPACITY> {
    /// The device core.
    pub device: Device<S>,
    /// Milliseconds of access one grant adds.
    pub slot_ms: u64,
    /// Monotonic ms until which the actuator is on.
    pub active_until_ms: u64,
    dedup: Dedup<N>,
}

/// What a request did, for the simulator's log and the firmware's actuator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<E: core::fmt::Debug> {
    /// A token was granted: the actuator is on.
    Granted {
        /// The counter granted.
        counter: u64,
        /// Monotonic ms until which the actuator is now on.
        active_until_ms: u64,
    },
    /// A token was refused, and why.
    Refused(Refusal<E>),
    /// A retransmission, answered from the deduplication cache without a new check.
    Duplicate,
    /// Anything else (an Echo challenge, a status request, an unknown resource).
    Other,
}

/// An answer, before it is written.
#[derive(Debug, Clone, Copy)]
pub(super) enum Reply {
    Granted { counter: u64, seconds: u64 },
    Echo(Echo),
    Malformed(HotpError),
    Invalid,
    Used(u64),
    Expired(u64),
    Throttled { retry_ms: u64 },
    Unavailable,
    Status(Status),
    MethodNotAllowed,
    NotFound,
}

impl<S: CounterStore> CoapDevice<S> {
    /// `device` behind CoAP, each grant adding `slot_ms` of access, remembering
    /// [`DEDUP_CAPACITY`] exchanges.
    pub fn new(device: Device<S>, slot_ms: u64) -> Self {
        Self::with_capacity(device, slot_ms)
    }
}

impl<S: CounterStore, const N: usize> CoapDevice<S, N> {
    /// [`CoapDevice::new`] remembering `N` exchanges (the type says how many: a
    /// microcontroller's RAM holds a few, `CoapDevice::<_, 8>::with_capacity`).
    /// `const`, so firmware can place one around an unbooted device in a static.
    pub const fn with_capacity(device: Device<S>, slot_ms: u64) -> Self {
        Self {
            device,
            slot_ms,
            active_until_ms: 0,
            dedup: Dedup::new(),
        }
    }

    /// Handles one datagram from `from` at monotonic time `now_ms`, writing the answer
    /// into `out`. `None` for datagrams that are not CoAP requests (RFC 7252 section 4.2:
    /// silently ignored), and for an `out` shorter than [`MAX_ANSWER_LEN`] (refused
    /// before anything is checked, so no grant goes unanswered).
    pub fn handle_into(
        &mut self,
        from: SocketAddr,
        datagram: &[u8],
        now_ms: u64,
        out: &mut [u8],
    ) -> Option<(usize, Event<S::Error>)> {
        if out.len() < MAX_ANSWER_LEN {
            return None;
        }
        let request = Message::parse(datagram)?;
        // Class 0 with a non-zero detail is a request (0.00 is an empty message).
        if request.code >> 5 != 0 || request.code == 0 {
            return None;
        }
        let key = Key::of(from, request.id);
        if let Some(entry) = self.dedup.get(&key, now_ms) {
            return Some((entry.write(out)?, Event::Duplicate));
        }
        let (reply, event) = match (request.code, resource(&request)) {
            (code::POST, Resource::Otp) => self.present(from, &request, now_ms),
            (code::GET, Resource::Status) => (
                Reply::Status(Status {
                    next_counter: self.device.next_counter(),
                    active_ms: self.active_until_ms.saturating_sub(now_ms),
                    window: self.device.window().map_or(0, |w| w.size()),
                }),
                Event::Other,
            ),
            (_, Resource::Otp | Resource::Status) => (Reply::MethodNotAllowed, Event::Other),
            (_, Resource::Other) => (Reply::NotFound, Event::Other),
        };
        let kind = if request.kind == CON { ACK } else { NON };
        let len = write(out, kind, request.id, request.token, &reply)?;
        // Only an answer that a second evaluation would change or count is remembered:
        // a grant (it would come back "used") and a checked wrong token (a second
        // failure). Echo challenges, throttling and the other refusals cost nothing to
        // repeat, and not remembering them keeps a spoofed flood from evicting a grant.
        if matches!(reply, Reply::Granted { .. } | Reply::Invalid) {
            self.dedup.insert(key, kind, request.token, reply, now_ms);
        }
        Some((len, event))
    }

    fn present(
        &mut self,
        from: SocketAddr,
        request: &Message<'_>,
        now_ms: u64,
    ) -> (Reply, Event<S::Error>) {
        let source = Source::from_ip(from.ip());
        let echo = request.option(ECHO_OPTION);
        match self.device.present(&source, echo, request.payload, now_ms) {
            Ok(grant) => {
                self.active_until_ms = self.active_until_ms.max(now_ms) + self.slot_ms;
                let seconds = seconds_up(self.active_until_ms - now_ms);
                (
                    Reply::Granted {
                        counter: grant.counter,
                        seconds,
                    },
                    Event::Granted {
                        counter: grant.counter,
                        active_until_ms: self.active_until_ms,
                    },
                )
            }
            // Asking for an Echo is the normal first round trip, not a refusal.
            Err(Refusal::NeedEcho(echo)) => (Reply::Echo(echo), Event::Other),
            Err(refusal) => {
                let reply = match &refusal {
                    Refusal::Malformed(e) => Reply::Malformed(*e),
                    Refusal::Throttled { retry_in_ms } => Reply::Throttled {
                        retry_ms: *retry_in_ms,
                    },
                    Refusal::Invalid => Reply::Invalid,
                    Refusal::Used(c) => Reply::Used(*c),
                    Refusal::Expired(c) => Reply::Expired(*c),
                    Refusal::NeedEcho(_) | Refusal::Storage(_) | Refusal::Config(_) => {
                        Reply::Unavailable
                    }
                };
                (reply, Event::Refused(refusal))
            }
        }
    }
}

#[cfg(feature = "std")]
impl<S: CounterStore, const N: usize> CoapDevice<S, N> {
    /// [`Self::handle_into`] into a new buffer.
    pub fn handle(
        &mut self,
        from: SocketAddr,
        datagram: &[u8],
        now_ms: u64,
    ) -> Option<(Vec<u8>, Event<S::Error>)> {
        let mut out = [0u8; MAX_ANSWER_LEN];
        let (len, event) = self.handle_into(from, datagram, now_ms, &mut out)?;
        Some((out[..len].to_vec(), event))
    }
}

enum Resource {
    Otp,
    Status,
    Other,
}

/// `/otp`, `/status` or anything else: the Uri-Path segments joined with `/` must be
/// exactly one of the two names, so exactly one segment holding it.
fn resource(request: &Message<'_>) -> Resource {
    let mut segments = request.options().filter(|(n, _)| *n == URI_PATH);
    match (segments.next(), segments.next()) {
        (Some((_, b"otp")), None) => Resource::Otp,
        (Some((_, b"status")), None) => Resource::Status,
        _ => Resource::Other,
    }
}

/// Writes `reply` as an answer: the code, its one option if any, the payload whose first
/// word is stable (docs/device.md has the table; `parse_answer` reads it back).
pub(super) fn write(
    out: &mut [u8],
    kind: u8,
    id: u16,
    token: &[u8],
    reply: &Reply,
) -> Option<usize> {
    let (code, text) = match reply {
        Reply::Granted { .. } => (code::CHANGED, &b"granted "[..]),
        Reply::Echo(_) => (code::UNAUTHORIZED, &b"echo"[..]),
        Reply::Malformed(_) => (code::BAD_REQUEST, &b"malformed "[..]),
        Reply::Invalid => (code::FORBIDDEN, &b"invalid"[..]),
        Reply::Used(_) => (code::FORBIDDEN, &b"used "[..]),
        Reply::Expired(_) => (code::FORBIDDEN, &b"expired "[..]),
        Reply::Throttled { .. } => (code::TOO_MANY_REQUESTS, &b"throttled "[..]),
        Reply::Unavailable => (code::SERVICE_UNAVAILABLE, &b"storage"[..]),
        Reply::Status(_) => (code::CONTENT, &b"next_counter "[..]),
        Reply::MethodNotAllowed => (code::METHOD_NOT_ALLOWED, &b"method not allowed"[..]),
        Reply::NotFound => (code::NOT_FOUND, &b"no such resource"[..]),
    };
    let mut w = Writer::new(out, kind, code, id, token);
    match reply {
        Reply::Echo(echo) => {
            w.option(ECHO_OPTION, echo.as_bytes());
        }
        Reply::Throttled { retry_ms } => {
            let mut buf = [0u8; 8];
            w.option(MAX_AGE, uint(seconds_up(*retry_ms), &mut buf));
        }
        _ => {}
    }
    w.text(text);
    match *reply {
        Reply::Granted { counter, seconds } => {
            w.number(counter).text(b" ").number(seconds);
        }
        Reply::Malformed(e) => hotp_error_text(&mut w, e),
        Reply::Used(c) | Reply::Expired(c) => {
            w.number(c);
        }
        Reply::Throttled { retry_ms } => {
            w.number(retry_ms);
        }
        Reply::Status(s) => {
            w.number(s.next_counter)
                .text(b" active_ms ")
                .number(s.active_ms)
                .text(b" window ")
                .number(u64::from(s.window));
        }
        _ => {}
    }
    w.finish()
}

/// `HotpError`'s `Display` text, written without `core::fmt` (which would cost the
/// firmware kilobytes); a host test checks it against `to_string()` for every variant.
#[inline(never)]
pub(crate) fn hotp_error_text(w: &mut Writer<'_>, e: HotpError) {
    match e {
        HotpError::InvalidDigits(d) => {
            w.number(u64::from(d))
                .text(b" digits: an OTP has 6 to 9 digits");
        }
        HotpError::Malformed { expected } => {
            w.text(b"OTP must be exactly ")
                .number(u64::from(expected))
                .text(b" decimal digits");
        }
        HotpError::BadToken => {
            w.text(b"not a token: expected <counter>:<6 to 9 digits>");
        }
        HotpError::KeyLength(n) => {
            w.text(b"device key of ")
                .number(n as u64)
                .text(b" bytes: it must be exactly 32");
        }
        HotpError::WindowSize(n) => {
            w.text(b"replay window of ")
                .number(u64::from(n))
                .text(b" counters: it must be 1 to ")
                .number(u64::from(protocol::hotp::MAX_WINDOW));
        }
        HotpError::AlreadyGranted(c) => {
            w.text(b"counter ").number(c).text(b" was already granted");
        }
        HotpError::Expired(c) => {
            w.text(b"counter ")
                .number(c)
                .text(b" is below the replay window");
        }
    }
}

/// `ms` in whole seconds, rounded up (`ms.div_ceil(1000)` without a 64-bit division).
fn seconds_up(ms: u64) -> u64 {
    let (s, rest) = crate::core::div_rem_u16(ms, 1000);
    s + u64::from(rest > 0)
}
