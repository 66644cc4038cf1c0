//! `slotpay pay`: ask the AS for the running total, sign total + price, get the OTPs,
//! present each to the device over CoAP.
use anyhow::{bail, Context, Result};
use coap_lite::ResponseType;
use device_sim::coap::{otp_request, parse_response};
use protocol::signature::keys::SecretKey;
use protocol::{ChannelId, MembershipProof, Receipt};
use slotpay_as::api::{
    parse_amount, ApiError, ChannelReply, PurchaseBody, PurchaseReply, TermsReply,
};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

pub struct PayRequest<'a> {
    pub as_url: &'a str,
    pub channel: ChannelId,
    pub device: &'a str,
    pub device_addr: SocketAddr,
    pub slots: u64,
    pub secret: &'a SecretKey,
    pub proof: Option<&'a MembershipProof>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct PayOutcome {
    pub channel: u64,
    pub device: String,
    pub total: String,
    pub counters: Vec<u64>,
    pub granted_seconds: u64,
    pub attempts: u32,
    pub elapsed_ms: f64,
}

fn get<T: serde::de::DeserializeOwned>(url: &str) -> Result<T> {
    match ureq::get(url).timeout(Duration::from_secs(10)).call() {
        Ok(r) => r.into_json().with_context(|| format!("decode {url}")),
        Err(ureq::Error::Status(status, r)) => {
            let e: ApiError = r.into_json().unwrap_or(ApiError {
                code: "http".into(),
                message: format!("HTTP {status}"),
                current_total: None,
            });
            bail!("{url}: {} ({})", e.message, e.code)
        }
        Err(e) => Err(e).with_context(|| format!("GET {url}")),
    }
}

pub fn terms(as_url: &str) -> Result<TermsReply> {
    get(&format!("{as_url}/v1/terms"))
}

pub fn pay(request: &PayRequest<'_>) -> Result<PayOutcome> {
    let start = Instant::now();
    let terms = terms(request.as_url)?;
    let domain = terms.domain()?;
    let price = parse_amount(&terms.price)?;
    let channel: ChannelReply = get(&format!(
        "{}/v1/channels/{}",
        request.as_url, request.channel.0
    ))?;
    let mut total = parse_amount(&channel.total)?;
    let added = price
        .checked_mul(u128::from(request.slots))
        .context("slots * price overflows")?;
    let mut attempts = 0;
    let reply: PurchaseReply = loop {
        attempts += 1;
        let receipt = Receipt {
            channel: request.channel,
            amount: total.checked_add(added).context("total overflows")?,
        };
        let signature = receipt.sign(&domain, request.secret);
        let body = PurchaseBody::new(request.device, &receipt, &signature, request.proof);
        match ureq::post(&format!("{}/v1/purchase", request.as_url))
            .timeout(Duration::from_secs(30))
            .send_json(&body)
        {
            Ok(r) => break r.into_json().context("decode the AS's reply")?,
            Err(ureq::Error::Status(status, r)) => {
                let e: ApiError = r.into_json().context("decode the AS's refusal")?;
                // Another group member raised the total first: sign above the new one.
                if e.code == "stale_total" && attempts < 50 {
                    total = parse_amount(e.current_total.as_deref().unwrap_or(""))?;
                    continue;
                }
                bail!("the AS refused ({status} {}): {}", e.code, e.message);
            }
            Err(e) => return Err(e).context("POST /v1/purchase"),
        }
    };
    let mut counters = Vec::new();
    let mut granted_seconds = 0;
    for otp in &reply.otps {
        let (counter, seconds) = present(request.device_addr, otp)?;
        counters.push(counter);
        granted_seconds = seconds;
    }
    Ok(PayOutcome {
        channel: request.channel.0,
        device: reply.device,
        total: reply.total,
        counters,
        granted_seconds,
        attempts,
        elapsed_ms: start.elapsed().as_secs_f64() * 1e3,
    })
}

/// Presents one OTP to the device: a confirmable CoAP POST, retransmitted with
/// exponential back-off (RFC 7252 section 4.2) until the device answers.
pub fn present(device: SocketAddr, otp: &str) -> Result<(u64, u64)> {
    let socket = UdpSocket::bind(if device.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })?;
    let message_id: u16 = rand_id();
    let token = message_id.to_be_bytes();
    let request = otp_request(message_id, &token, otp);
    let mut timeout = Duration::from_millis(500);
    let mut buf = [0u8; 1280];
    for _ in 0..5 {
        socket.send_to(&request, device)?;
        socket.set_read_timeout(Some(timeout))?;
        match socket.recv_from(&mut buf) {
            Ok((n, from)) if from == device => {
                let Some((status, id, text)) = parse_response(&buf[..n]) else {
                    continue;
                };
                if id != message_id {
                    continue;
                }
                if status != ResponseType::Changed {
                    bail!("device refused the OTP ({status:?}): {text}");
                }
                let mut words = text.split_whitespace().skip(1);
                let counter = words.next().and_then(|w| w.parse().ok());
                let seconds = words.next().and_then(|w| w.parse().ok());
                return match (counter, seconds) {
                    (Some(c), Some(s)) => Ok((c, s)),
                    _ => bail!("device answered {text:?}"),
                };
            }
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                timeout *= 2;
            }
            Err(e) => return Err(e).context("receive from the device"),
        }
    }
    bail!("the device at {device} did not answer")
}

fn rand_id() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ std::process::id()) as u16
}
