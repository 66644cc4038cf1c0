//! The client's side of the device's CoAP interface (blocking, std): what the CLI and
//! the tests use to present tokens.
//!
//! Each token is one confirmable exchange, retransmitted with RFC 7252's exponential
//! back-off (section 4.2) under one message ID, so the device's deduplication answers a
//! retransmission with its first answer instead of checking the token again. The
//! client repeats a request with the Echo value a 4.01 carries (RFC 9175), keeps that
//! Echo for the next tokens, waits out a 4.29 up to a limit, and reports a result per
//! token: a lost answer fails that token only, and the rest of a purchase is presented.
use crate::coap::{parse_answer, status_request, token_request, Outcome, Status};
use protocol::hotp::Token;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// Transmission parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientConfig {
    /// RFC 7252 ACK_TIMEOUT (2 s); the first wait is 1 to 1.5 times it, then doubles.
    pub ack_timeout: Duration,
    /// RFC 7252 MAX_RETRANSMIT (4): transmissions per exchange are this plus one.
    pub max_retransmit: u32,
    /// How long one token may wait out "throttled" answers before giving up.
    pub max_throttle_wait: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            ack_timeout: Duration::from_secs(2),
            max_retransmit: 4,
            max_throttle_wait: Duration::from_secs(120),
        }
    }
}

/// A granted token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    /// The counter granted.
    pub counter: u64,
    /// Seconds the device stays on from now.
    pub seconds: u64,
}

/// Why a token was not granted.
#[derive(Debug, thiserror::Error)]
pub enum PresentError {
    /// No answer to any transmission. The device may still have granted the token; a
    /// later attempt then answers `Used` (the client's slot is running).
    #[error("the device did not answer ({transmissions} transmissions)")]
    NoAnswer {
        /// How many times the request was sent.
        transmissions: u32,
    },
    /// The OTP is wrong for its counter (or the token is another device's).
    #[error("invalid token: its OTP is wrong for its counter (or for this device)")]
    Invalid,
    /// The counter was granted before.
    #[error("counter {0} was already granted")]
    Used(u64),
    /// The counter is below the device's replay window.
    #[error("counter {0} is below the device's replay window: the OTP expired")]
    Expired(u64),
    /// The device did not read a token of its digits.
    #[error("the device refused the request as malformed: {0}")]
    Malformed(String),
    /// Still throttled after waiting up to [`ClientConfig::max_throttle_wait`].
    #[error("throttled: retry in {retry_ms} ms")]
    Throttled {
        /// What the device said last.
        retry_ms: u64,
    },
    /// The device could not save its state; nothing was granted.
    #[error("the device could not save its state; nothing granted")]
    Unavailable,
    /// The device asked for a fresh Echo more than twice in a row.
    #[error("the device kept asking for a fresh Echo")]
    Echo,
    /// An answer this client does not expect.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    /// The socket failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
}

/// A client of one device, on one UDP socket (so one source endpoint for the device's
/// deduplication and Echo).
pub struct DeviceClient {
    socket: UdpSocket,
    device: SocketAddr,
    echo: Option<Vec<u8>>,
    next_id: u16,
    config: ClientConfig,
}

impl DeviceClient {
    /// A client of the device at `device`, on a fresh UDP socket.
    pub fn new(device: SocketAddr, config: ClientConfig) -> Result<Self, PresentError> {
        let local = if device.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        Ok(Self {
            socket: UdpSocket::bind(local)?,
            device,
            echo: None,
            next_id: random() as u16,
            config,
        })
    }

    /// The device's address.
    pub fn device(&self) -> SocketAddr {
        self.device
    }

    /// Presents one token, through Echo round trips and throttling waits.
    pub fn present(&mut self, token: &Token) -> Result<Granted, PresentError> {
        let text = token.to_string();
        let mut echo_rounds = 0;
        let mut waited = Duration::ZERO;
        loop {
            let echo = self.echo.clone();
            let outcome = self.exchange(|id, tk| token_request(id, tk, &text, echo.as_deref()))?;
            match outcome {
                Outcome::Granted { counter, seconds } => return Ok(Granted { counter, seconds }),
                Outcome::EchoRequired(echo) => {
                    echo_rounds += 1;
                    if echo_rounds > 2 {
                        return Err(PresentError::Echo);
                    }
                    self.echo = Some(echo);
                }
                Outcome::Throttled { retry_ms } => {
                    // A little past the instant named: the two clocks are not one.
                    let wait = Duration::from_millis(retry_ms.saturating_add(5));
                    if waited + wait > self.config.max_throttle_wait {
                        return Err(PresentError::Throttled { retry_ms });
                    }
                    std::thread::sleep(wait);
                    waited += wait;
                }
                Outcome::Invalid => return Err(PresentError::Invalid),
                Outcome::Used(c) => return Err(PresentError::Used(c)),
                Outcome::Expired(c) => return Err(PresentError::Expired(c)),
                Outcome::Malformed(why) => return Err(PresentError::Malformed(why)),
                Outcome::Unavailable => return Err(PresentError::Unavailable),
                other => return Err(PresentError::Unexpected(format!("{other:?}"))),
            }
        }
    }

    /// Presents every token of a purchase, in order, and returns one result per token.
    /// A token whose answers were all lost is presented once more at the end (a new
    /// exchange): then `Used` means the first attempt was granted.
    pub fn present_all(&mut self, tokens: &[Token]) -> Vec<Result<Granted, PresentError>> {
        let mut results: Vec<_> = tokens.iter().map(|t| self.present(t)).collect();
        for (token, result) in tokens.iter().zip(results.iter_mut()) {
            if matches!(result, Err(PresentError::NoAnswer { .. })) {
                *result = self.present(token);
            }
        }
        results
    }

    /// `GET /status`.
    pub fn status(&mut self) -> Result<Status, PresentError> {
        match self.exchange(status_request)? {
            Outcome::Status(status) => Ok(status),
            other => Err(PresentError::Unexpected(format!("{other:?}"))),
        }
    }

    /// One confirmable exchange: the same datagram (one message ID) sent up to
    /// `max_retransmit + 1` times, waiting 1-1.5 x ACK_TIMEOUT, doubling each time.
    fn exchange(
        &mut self,
        request: impl Fn(u16, &[u8]) -> Vec<u8>,
    ) -> Result<Outcome, PresentError> {
        let id = self.next_id;
        self.next_id = id.wrapping_add(1);
        let token = (random() as u32).to_be_bytes();
        let datagram = request(id, &token);
        let spread = random() % 501;
        let mut timeout = self.config.ack_timeout + self.config.ack_timeout * spread as u32 / 1000;
        let mut buf = [0u8; 1280];
        for _ in 0..=self.config.max_retransmit {
            self.socket.send_to(&datagram, self.device)?;
            let deadline = Instant::now() + timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                self.socket.set_read_timeout(Some(left))?;
                match self.socket.recv_from(&mut buf) {
                    Ok((n, from)) if from == self.device => {
                        let Some(answer) = parse_answer(&buf[..n]) else {
                            continue;
                        };
                        if answer.message_id == id && answer.token == token {
                            return Ok(answer.outcome);
                        }
                    }
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        break
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            timeout *= 2;
        }
        Err(PresentError::NoAnswer {
            transmissions: self.config.max_retransmit + 1,
        })
    }
}

/// Presents `tokens` to the device at `device` with one client: per-token results.
pub fn present_tokens(
    device: SocketAddr,
    tokens: &[Token],
    config: ClientConfig,
) -> Result<Vec<Result<Granted, PresentError>>, PresentError> {
    Ok(DeviceClient::new(device, config)?.present_all(tokens))
}

/// Random enough for message IDs and CoAP tokens (std's per-process random hash keys;
/// no cryptographic use).
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.finish()
}
