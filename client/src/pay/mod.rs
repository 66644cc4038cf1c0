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
use api::{
    parse_amount, AsClient, AsClientError, Deployment, ErrorCode, PurchaseBody, PurchaseReply,
    RequestSecret,
};
use device::{ClientConfig, DeviceClient};
use protocol::hotp::Token;
use protocol::keys;
use protocol::{AnyDomain, Authority, ChannelId, Receipt, SignedReceipt};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
pub use verify::{
    check_terms, justified_total, next_amount, signed_by, within_allowance, Distrust, Limits,
};

/// `slotpay pay`'s arguments: where to buy, with which key, and the user's limits.
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
    /// The channel to pay from, by id.
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
    /// How many slots to buy (one token each); at most --max-slots.
    #[arg(long, default_value_t = 1)]
    pub slots: u64,
    /// The most to pay per slot (smallest unit): terms above it are refused.
    #[arg(long)]
    pub max_price: String,
    /// The most slots to buy at once.
    #[arg(long, default_value_t = 10)]
    pub max_slots: u64,
    /// The most times one purchase re-signs above a total the AS calls stale (another
    /// group member raised it first); each is a new receipt.
    #[arg(long, default_value_t = 2)]
    pub max_stale_raises: u32,
    /// The most slots of other members' purchases a receipt may follow above this key's
    /// last purchase that delivered tokens (or the first total it was shown), besides
    /// this purchase's own slots. A busy group needs more; a lying AS gets at most this
    /// many (plus the purchase's own) for nothing.
    #[arg(long, default_value_t = 8)]
    pub max_above_bought: u64,
    /// How often to resend the same receipt when the AS does not answer (a timeout, a
    /// restart): the same purchase, never a new one.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
}

/// What a purchase did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PayOutcome {
    /// The channel paid from.
    pub channel: u64,
    /// The authority epoch the receipt was signed for.
    pub epoch: u32,
    /// The device the tokens are for, as the AS named it in its reply.
    pub device: String,
    /// The channel's running total in the epoch after this purchase (the amount signed),
    /// a decimal string in the smallest unit.
    pub total: String,
    /// The counters the device granted.
    pub counters: Vec<u64>,
    /// Tokens bought but not granted, with why (presented anyway; a lost answer does not
    /// stop the rest).
    pub refused: Vec<String>,
    /// How long the device stays on from its last grant, in seconds, as it answered.
    pub granted_seconds: u64,
    /// Receipts signed for this purchase: 1, plus one per stale total the AS answered.
    pub attempts: u32,
    /// From the first request to the AS to the device's last answer, in milliseconds.
    pub elapsed_ms: f64,
}

/// Checks the deployment against the chain when a node answers ([`chain::Contract::bind`]:
/// its genesis hash and the contract's own domain). Without a node, the deployment file
/// is the payer's word.
async fn check_on_chain(deployment: &Deployment, url: Option<&str>) -> Result<bool> {
    let url = url.unwrap_or(&deployment.url);
    let node = match tokio::time::timeout(
        Duration::from_secs(2),
        chain::AnyNode::connect(deployment.layer(), url),
    )
    .await
    {
        Ok(Ok(node)) => node,
        // No node answered: the deployment file is the payer's word.
        _ => return Ok(false),
    };
    chain::AnyContract::bind_on(node, deployment)
        .await
        .context("the deployment's contract")?;
    Ok(true)
}

/// The secret sent with a purchase (see [`RequestSecret`]): derived from the key and the
/// receipt, so a resend of the same receipt (after a timeout, a crash) sends the same one
/// without storing it, and nobody without the key can make it.
pub fn request_secret(
    secret: &keys::SecretKey,
    domain: &AnyDomain,
    receipt: &Receipt,
) -> RequestSecret {
    use hmac::{digest::KeyInit, Mac};
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&secret.secret_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(b"slotpay-request-secret");
    mac.update(&receipt.signing_hash::<protocol::crypto::backend::SoftHasher>(domain));
    RequestSecret(mac.finalize().into_bytes().into())
}

/// Buys `args.slots` slots and presents them to the device: checks the deployment against
/// the chain (unless offline), the AS's terms and running total against the user's limits,
/// records the amount, then signs and sends the receipt. Fails, signing nothing more, as
/// soon as the AS cannot be trusted ([`Distrust`]), or if the device grants no token.
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
        max_stale_raises: args.max_stale_raises,
        max_above_bought: args.max_above_bought,
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

/// Sends `body`, resending the very same body (same receipt, same secret) while the AS
/// does not answer, at most `retries` more times.
fn send(
    as_client: &AsClient,
    body: &PurchaseBody,
    retries: u32,
) -> Result<PurchaseReply, AsClientError> {
    let mut delay = Duration::from_millis(200);
    let mut left = retries;
    loop {
        match as_client.purchase(body) {
            Err(e) if e.is_transient() && left > 0 => {
                left -= 1;
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(3));
            }
            answer => return answer,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn buy(
    args: &PayArgs,
    domain: &AnyDomain,
    authority: &Authority,
    proof: Option<protocol::MembershipProof>,
    secret: &keys::SecretKey,
    limits: Limits,
    state: &mut ClientState,
    start: Instant,
) -> Result<PayOutcome> {
    let as_client = AsClient::new(&args.as_url, Duration::from_secs(30));
    let channel = ChannelId(args.channel);
    let terms = as_client.terms().context("GET terms")?;
    let price = check_terms(&terms, domain, &limits, args.slots)?;
    let view = as_client.channel(channel).context("GET the channel")?;
    let epoch = view.epoch;
    let reported = parse_amount(&view.total, "total")?;
    let mut justified = justified_total(
        reported,
        view.last_receipt.as_ref(),
        authority,
        domain,
        channel,
        epoch,
    )?;
    // The first total this key sees in the epoch is where its allowance starts, until it
    // buys: on record before anything is signed.
    let record = state.update(domain, channel, epoch, |r| {
        if r.bought.is_none() && r.baseline.is_none() {
            r.baseline = Some(justified);
        }
    })?;
    let base = record.allowance_base();
    let own_key = keys::public_key(secret);
    let mut attempts = 0;
    let mut raises = 0;
    let (reply, amount) = loop {
        attempts += 1;
        let own_last = state.last(domain, channel, epoch);
        let amount = next_amount(own_last, justified, args.slots, price)?;
        within_allowance(amount, base, price, args.slots, limits.max_above_bought)?;
        let receipt = Receipt {
            channel,
            epoch,
            amount,
        };
        // On record before it leaves: whatever the AS does with it, the client knows.
        state.record(domain, channel, epoch, amount)?;
        let body = PurchaseBody {
            device: args.device.clone(),
            signed: SignedReceipt::sign(receipt, domain, secret, proof.clone()),
            request_secret: request_secret(secret, domain, &receipt),
        };
        match send(&as_client, &body, args.retries) {
            Ok(reply) => break (reply, amount),
            Err(AsClientError::Refused { error, .. }) if error.code == ErrorCode::StaleTotal => {
                raises += 1;
                if raises > limits.max_stale_raises {
                    return Err(Distrust::TooManyStaleRaises {
                        raises,
                        max: limits.max_stale_raises,
                    }
                    .into());
                }
                // Another group member raised the total first: sign above it, if it is
                // real (signed by another member) and really above what this key signed.
                let total = parse_amount(
                    error.current_total.as_deref().unwrap_or(""),
                    "current_total",
                )?;
                if let Some(shown) = error.justification.as_ref() {
                    if signed_by(shown, domain, &own_key) {
                        return Err(Distrust::StaleByOwnReceipt {
                            signed: amount,
                            total,
                        }
                        .into());
                    }
                }
                let total = justified_total(
                    total,
                    error.justification.as_ref(),
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
            Err(e) => return Err(e).context("POST purchase"),
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
    // Granted by the device (not merely well-formed, which a lying AS can make up): this
    // total is what the allowance counts from now on.
    state.update(domain, channel, epoch, |r| {
        r.bought = Some(r.bought.unwrap_or(0).max(amount))
    })?;
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
    if reply.device != args.device || reply.channel != channel || reply.epoch != epoch {
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
            let expected = reply
                .first_counter
                .checked_add(i as u64)
                .ok_or_else(|| wrong(format!("first counter {} overflows", reply.first_counter)))?;
            if token.counter() != expected {
                return Err(wrong(format!("token {t:?} is not counter {expected}")));
            }
            Ok(token)
        })
        .collect()
}
