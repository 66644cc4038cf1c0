//! `slotpay pay`: buy slots from an AS that it does not trust, then present the tokens to
//! the device over CoAP.
//!
//! The receipt's domain is the payer's deployment file's (checked against the chain when
//! a node answers); the price and slots are within the user's limits; the amount signed is
//! `slots * price` above the higher of what this key signed before (its own durable
//! record) and a running total the AS justifies with the receipt that set it. The record
//! is written before the receipt leaves.
mod verify;

use crate::group::GroupFile;
use crate::keys::read_secret;
use crate::state::ClientState;
use anyhow::{bail, Context, Result};
use api::wire::{ApiError, ChannelReply, PurchaseBody, PurchaseReply, TermsReply};
use api::{parse_amount, Deployment};
use device::{ClientConfig, DeviceClient};
use protocol::hotp::Token;
use protocol::signature::keys;
use protocol::{Authority, ChannelId, Domain, Receipt};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
pub use verify::{Distrust, Limits};

#[derive(clap::Args, Debug)]
pub struct PayArgs {
    /// The Authorization Server's base URL.
    #[arg(long = "as", default_value = "http://127.0.0.1:8700")]
    pub as_url: String,
    /// The deployment file the payer handed over: the chain and contract receipts are for.
    #[arg(long, default_value = "slotpay-deployment.json")]
    pub deployment: PathBuf,
    /// Check the deployment against this node first (default: the deployment's node, if it
    /// answers within 2 s; a client without chain access goes on without).
    #[arg(long, conflicts_with = "offline")]
    pub url: Option<String>,
    /// Do not look for a node at all (a client without chain access): the deployment file
    /// is the payer's word.
    #[arg(long)]
    pub offline: bool,
    #[arg(long)]
    pub channel: u64,
    /// The device's name at the AS.
    #[arg(long)]
    pub device: String,
    /// The device's CoAP address.
    #[arg(long)]
    pub coap: SocketAddr,
    /// The client key file that signs the receipt.
    #[arg(long)]
    pub key: PathBuf,
    /// For group channels: the group file holding this key's proof.
    #[arg(long)]
    pub group: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    pub slots: u64,
    /// The most to pay per slot (smallest unit): terms above it are refused.
    #[arg(long)]
    pub max_price: String,
    /// The most slots to buy at once.
    #[arg(long, default_value_t = 10)]
    pub max_slots: u64,
}

/// What a purchase did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PayOutcome {
    pub channel: u64,
    pub epoch: u32,
    pub device: String,
    pub total: String,
    /// The counters the device granted.
    pub counters: Vec<u64>,
    /// Tokens bought but not granted, with why (presented anyway; a lost answer does not
    /// stop the rest).
    pub refused: Vec<String>,
    pub granted_seconds: u64,
    pub attempts: u32,
    pub elapsed_ms: f64,
}

fn http_error(url: &str, status: u16, r: ureq::Response) -> anyhow::Error {
    match r.into_json::<ApiError>() {
        Ok(e) => anyhow::anyhow!("{url}: the AS refused ({status} {}): {}", e.code, e.message),
        Err(_) => anyhow::anyhow!("{url}: HTTP {status}"),
    }
}

fn get<T: serde::de::DeserializeOwned>(url: &str) -> Result<T> {
    match ureq::get(url).timeout(Duration::from_secs(10)).call() {
        Ok(r) => r.into_json().with_context(|| format!("decode {url}")),
        Err(ureq::Error::Status(status, r)) => Err(http_error(url, status, r)),
        Err(e) => Err(e).with_context(|| format!("GET {url}")),
    }
}

/// Checks the deployment against the chain when a node answers: its genesis hash and the
/// contract's own domain. Without a node, the deployment file is the payer's word.
async fn check_on_chain(deployment: &Deployment, url: Option<&str>) -> Result<bool> {
    let url = url.unwrap_or(&deployment.url);
    let node = match tokio::time::timeout(Duration::from_secs(2), chain::Node::connect(url)).await {
        Ok(Ok(node)) => node,
        _ => return Ok(false),
    };
    if node.genesis_hash() != deployment.genesis_hash {
        bail!("the deployment file is for another chain than {url}'s");
    }
    chain::Contract::new(node, deployment.contract)
        .check_domain()
        .await
        .context("the deployment's contract")?;
    Ok(true)
}

pub async fn pay(args: PayArgs) -> Result<PayOutcome> {
    let deployment = Deployment::load(&args.deployment)?;
    if !args.offline {
        check_on_chain(&deployment, args.url.as_deref()).await?;
    }
    let secret = read_secret(&args.key)?;
    let public = keys::public_key(&secret);
    let (authority, proof) = match &args.group {
        Some(g) => {
            let group = GroupFile::load(g)?;
            (
                Authority::Group(group.root()?),
                Some(group.proof_of(&public)?),
            )
        }
        // Delegated or the payer's own key: either way receipts are this key's.
        None => (Authority::Delegate(public), None),
    };
    let limits = Limits {
        max_price: parse_amount(&args.max_price, "--max-price")?,
        max_slots: args.max_slots,
    };
    let mut state = ClientState::open(&args.key)?;
    // Timed from the first request to the AS to the device's last answer.
    tokio::task::spawn_blocking(move || {
        buy(
            &args,
            &deployment.domain(),
            &authority,
            proof,
            &secret,
            limits,
            &mut state,
            Instant::now(),
        )
    })
    .await?
}

#[allow(clippy::too_many_arguments)]
fn buy(
    args: &PayArgs,
    domain: &Domain,
    authority: &Authority,
    proof: Option<protocol::MembershipProof>,
    secret: &keys::SecretKey,
    limits: Limits,
    state: &mut ClientState,
    start: Instant,
) -> Result<PayOutcome> {
    let base = args.as_url.trim_end_matches('/');
    let channel = ChannelId(args.channel);
    let terms: TermsReply = get(&format!("{base}/v1/terms"))?;
    let price = verify::check_terms(&terms, domain, &limits, args.slots)?;
    let view: ChannelReply = get(&format!("{base}/v1/channels/{}", channel.0))?;
    let epoch = view.epoch;
    let reported = parse_amount(&view.total, "total")?;
    let mut justified = verify::justified_total(
        reported,
        view.last_receipt.as_ref(),
        authority,
        domain,
        channel,
        epoch,
    )?;
    let mut attempts = 0;
    let (reply, amount) = loop {
        attempts += 1;
        let own_last = state.last(domain, channel, epoch)?;
        let amount = verify::next_amount(own_last, justified, args.slots, price)?;
        let receipt = Receipt {
            channel,
            epoch,
            amount,
        };
        // On record before it leaves: whatever the AS does with it, the client knows.
        state.record(domain, channel, epoch, amount)?;
        let signature = receipt.sign(domain, secret);
        let body = PurchaseBody::new(&args.device, &receipt, &signature, proof.as_ref());
        match ureq::post(&format!("{base}/v1/purchase"))
            .timeout(Duration::from_secs(30))
            .send_json(&body)
        {
            Ok(r) => {
                break (
                    r.into_json::<PurchaseReply>()
                        .context("decode the AS's reply")?,
                    amount,
                )
            }
            Err(ureq::Error::Status(409, r)) if attempts < 50 => {
                let e: ApiError = r.into_json().context("decode the AS's refusal")?;
                if e.code != "stale_total" {
                    bail!("the AS refused (409 {}): {}", e.code, e.message);
                }
                // Another group member raised the total first: sign above it, if it is
                // real (signed by a member) and really above what this key signed.
                let total =
                    parse_amount(e.current_total.as_deref().unwrap_or(""), "current_total")?;
                if let Some(shown) = e.justification.as_ref() {
                    if verify::signed_by(shown, domain, &keys::public_key(secret)) {
                        return Err(Distrust::StaleByOwnReceipt {
                            signed: amount,
                            total,
                        }
                        .into());
                    }
                }
                let total = verify::justified_total(
                    total,
                    e.justification.as_ref(),
                    authority,
                    domain,
                    channel,
                    epoch,
                )?;
                if total < amount {
                    return Err(Distrust::StaleBelowSigned {
                        signed: amount,
                        total,
                    }
                    .into());
                }
                justified = total;
            }
            Err(ureq::Error::Status(status, r)) => {
                return Err(http_error("POST /v1/purchase", status, r))
            }
            Err(e) => return Err(e).context("POST /v1/purchase"),
        }
    };
    let tokens = check_reply(&reply, args, channel, epoch, amount)?;
    let mut client = DeviceClient::new(args.coap, ClientConfig::default())?;
    let mut counters = Vec::new();
    let mut refused = Vec::new();
    let mut granted_seconds = 0;
    for (token, result) in tokens.iter().zip(client.present_all(&tokens)) {
        match result {
            Ok(granted) => {
                counters.push(granted.counter);
                granted_seconds = granted.seconds;
            }
            Err(e) => refused.push(format!("{token}: {e}")),
        }
    }
    if counters.is_empty() {
        bail!(
            "the device granted none of the {} tokens: {}",
            tokens.len(),
            refused.join("; ")
        );
    }
    Ok(PayOutcome {
        channel: channel.0,
        epoch,
        device: reply.device,
        total: reply.total,
        counters,
        refused,
        granted_seconds,
        attempts,
        elapsed_ms: start.elapsed().as_secs_f64() * 1e3,
    })
}

/// The reply must be for the purchase signed: this device, channel, epoch and amount, one
/// well-formed token per slot with consecutive counters.
fn check_reply(
    reply: &PurchaseReply,
    args: &PayArgs,
    channel: ChannelId,
    epoch: u32,
    amount: u128,
) -> Result<Vec<Token>> {
    let wrong = |what: String| anyhow::Error::from(Distrust::WrongAnswer(what));
    if reply.device != args.device || reply.channel != channel.0 || reply.epoch != epoch {
        return Err(wrong(format!(
            "device {} channel {} epoch {}",
            reply.device, reply.channel, reply.epoch
        )));
    }
    if parse_amount(&reply.total, "total")? != amount {
        return Err(wrong(format!("total {} instead of {amount}", reply.total)));
    }
    if reply.tokens.len() as u64 != reply.slots || reply.slots != args.slots {
        return Err(wrong(format!(
            "{} tokens for {} slots",
            reply.tokens.len(),
            args.slots
        )));
    }
    reply
        .tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let token = Token::parse(t).map_err(|e| wrong(format!("token {t:?}: {e}")))?;
            if token.counter() != reply.first_counter + i as u64 {
                return Err(wrong(format!(
                    "token {t:?} is not counter {}",
                    reply.first_counter + i as u64
                )));
            }
            Ok(token)
        })
        .collect()
}
