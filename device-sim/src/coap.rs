//! The device's CoAP (RFC 7252) interface, sans-socket: a datagram in, a datagram out.
//!
//! `POST /otp` with the OTP as text payload: `2.04 Changed` and "granted <counter>
//! <seconds>" when a slot is granted; `4.01` for an invalid or used OTP, `4.00` for a
//! malformed one, `4.29` while throttled (RFC 8516), `5.03` if the counter could not be
//! saved. `GET /status`: the next counter and the seconds left in the current slot.
use crate::core::{CounterStore, Device, Refusal};
use coap_lite::{MessageClass, MessageType, Packet, RequestType, ResponseType};

/// A device behind CoAP, with the time a granted slot lasts.
pub struct CoapDevice<S: CounterStore> {
    pub device: Device<S>,
    pub slot_ms: u64,
    /// Monotonic ms until which the actuator is on.
    pub active_until_ms: u64,
}

/// What a request did, for the simulator's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Granted { counter: u64, active_until_ms: u64 },
    Refused(String),
    Other,
}

impl<S: CounterStore> CoapDevice<S> {
    /// Handles one datagram at monotonic time `now_ms`. `None` for datagrams that are not
    /// CoAP requests (RFC 7252 section 4.2: silently ignored).
    pub fn handle(&mut self, datagram: &[u8], now_ms: u64) -> Option<(Vec<u8>, Event)> {
        let request = Packet::from_bytes(datagram).ok()?;
        let MessageClass::Request(method) = request.header.code else {
            return None;
        };
        let path: Vec<String> = request
            .get_option(coap_lite::CoapOption::UriPath)
            .map(|segments| {
                segments
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let (status, payload, event) = match (method, path.join("/").as_str()) {
            (RequestType::Post, "otp") => self.present(&request.payload, now_ms),
            (RequestType::Get, "status") => (
                ResponseType::Content,
                format!(
                    "next_counter {} active_ms {}",
                    self.device.next_counter(),
                    self.active_until_ms.saturating_sub(now_ms)
                ),
                Event::Other,
            ),
            (_, "otp" | "status") => (
                ResponseType::MethodNotAllowed,
                "method not allowed".into(),
                Event::Other,
            ),
            _ => (
                ResponseType::NotFound,
                "no such resource".into(),
                Event::Other,
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
        response.header.code = MessageClass::Response(status);
        response.payload = payload.into_bytes();
        Some((response.to_bytes().ok()?, event))
    }

    fn present(&mut self, payload: &[u8], now_ms: u64) -> (ResponseType, String, Event) {
        let Ok(text) = core::str::from_utf8(payload) else {
            return (
                ResponseType::BadRequest,
                "OTP is not text".into(),
                Event::Refused("not text".into()),
            );
        };
        match self.device.present(text.trim(), now_ms) {
            Ok(grant) => {
                self.active_until_ms = self.active_until_ms.max(now_ms) + self.slot_ms;
                let left = self.active_until_ms - now_ms;
                (
                    ResponseType::Changed,
                    format!("granted {} {}", grant.counter, left.div_ceil(1000)),
                    Event::Granted {
                        counter: grant.counter,
                        active_until_ms: self.active_until_ms,
                    },
                )
            }
            Err(refusal) => {
                let status = match &refusal {
                    Refusal::Throttled { .. } => ResponseType::TooManyRequests,
                    Refusal::Malformed(_) => ResponseType::BadRequest,
                    Refusal::Invalid => ResponseType::Unauthorized,
                    Refusal::Storage(_) | Refusal::Config(_) => ResponseType::ServiceUnavailable,
                };
                let message = refusal.to_string();
                (status, message.clone(), Event::Refused(message))
            }
        }
    }
}

/// Builds a confirmable `POST /otp` request (what the client sends).
pub fn otp_request(message_id: u16, token: &[u8], otp: &str) -> Vec<u8> {
    let mut packet = Packet::new();
    packet.header.set_version(1);
    packet.header.set_type(MessageType::Confirmable);
    packet.header.code = MessageClass::Request(RequestType::Post);
    packet.header.message_id = message_id;
    packet.set_token(token.to_vec());
    packet.add_option(coap_lite::CoapOption::UriPath, b"otp".to_vec());
    packet.payload = otp.as_bytes().to_vec();
    packet.to_bytes().unwrap_or_default()
}

/// A response's class and payload, as the client reads it.
pub fn parse_response(datagram: &[u8]) -> Option<(ResponseType, u16, String)> {
    let packet = Packet::from_bytes(datagram).ok()?;
    match packet.header.code {
        MessageClass::Response(status) => Some((
            status,
            packet.header.message_id,
            String::from_utf8_lossy(&packet.payload).into_owned(),
        )),
        _ => None,
    }
}
