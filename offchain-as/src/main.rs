//! `slotpay-as`: the slotpay Authorization Server.
use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use protocol::hotp::Digits;
use protocol::{ChannelId, Tariff};
use slotpay_as::chain::NodeChain;
use slotpay_as::closer::{self, CloseOutcome};
use slotpay_as::config::Config;
use slotpay_as::ledger::Ledger;
use slotpay_as::sale::{DeviceKey, Seller};
use slotpay_as::server::{router_with, serve as serve_http, Service};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use subxt_signer::{sr25519::Keypair, SecretUri};
use tracing::{error, info, warn};

#[derive(Parser)]
#[command(
    version,
    about = "slotpay Authorization Server: sells device slots for payment receipts"
)]
struct Cli {
    /// The TOML configuration file.
    #[arg(long, short, default_value = "slotpay-as.toml")]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API and close channels by policy.
    Serve,
    /// Close one channel now with the best receipt held for it.
    Close { channel: u64 },
}

fn read_trimmed(path: &Path) -> Result<String> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("read {}", path.display()))?
        .trim()
        .to_owned())
}

fn contract_account(config: &Config) -> Result<[u8; 32]> {
    let text = match (&config.contract, &config.deployment) {
        (Some(c), _) => c.clone(),
        (None, Some(file)) => {
            let json: serde_json::Value = serde_json::from_str(&read_trimmed(file)?)
                .with_context(|| format!("parse deployment file {}", file.display()))?;
            json["contract"]
                .as_str()
                .with_context(|| format!("no \"contract\" in {}", file.display()))?
                .to_owned()
        }
        (None, None) => bail!("no contract configured"),
    };
    if let Some(hex) = text.strip_prefix("0x") {
        return slotpay_as::api::from_hex::<32>(&format!("0x{hex}"), "contract")
            .map_err(|e| anyhow::anyhow!("{e}"));
    }
    let account = subxt::utils::AccountId32::from_str(&text)
        .map_err(|e| anyhow::anyhow!("contract {text:?} is neither SS58 nor 0x hex: {e}"))?;
    Ok(account.0)
}

fn keypair(config: &Config) -> Result<Keypair> {
    let uri = SecretUri::from_str(&read_trimmed(&config.account_key_file)?)
        .map_err(|e| anyhow::anyhow!("AS account key: {e}"))?;
    Keypair::from_uri(&uri).map_err(|e| anyhow::anyhow!("AS account key: {e}"))
}

/// Connects, retrying while the node is not up yet (logging each wait).
async fn connect(config: &Config) -> Result<NodeChain> {
    let contract = contract_account(config)?;
    let signer = keypair(config)?;
    let mut delay = Duration::from_millis(250);
    for attempt in 1.. {
        match NodeChain::connect(&config.rpc_url, contract, signer.clone()).await {
            Ok(chain) => return Ok(chain),
            Err(e) if attempt < 40 => {
                warn!(url = %config.rpc_url, attempt, error = %e, "node not reachable yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e).context(format!("connect to {}", config.rpc_url)),
        }
    }
    unreachable!("the loop returns")
}

fn open_ledger(config: &Config) -> Result<Ledger> {
    let mut ledger = Ledger::open(&config.database)
        .with_context(|| format!("open ledger {}", config.database.display()))?;
    for device in &config.devices {
        ledger.register_device(&device.id)?;
    }
    Ok(ledger)
}

async fn serve(config: Config) -> Result<()> {
    let chain = connect(&config).await?;
    // Reads are at the latest finalized block: a contract deployed a moment ago may not be
    // final yet, so wait a little for it.
    let mut attempt = 0;
    let domain = loop {
        attempt += 1;
        match chain.contract_domain().await {
            Ok(domain) => break domain,
            Err(e) if attempt < 30 => {
                warn!(attempt, error = %e, "contract not readable at the finalized block yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e).context("read the contract's domain"),
        }
    };
    if domain != chain.domain() {
        bail!(
            "the contract at {} was deployed for genesis 0x{} but this chain's is 0x{}",
            config.contract.as_deref().unwrap_or("(deployment file)"),
            hex::encode(domain.genesis_hash),
            hex::encode(chain.domain().genesis_hash)
        );
    }
    let mut devices = BTreeMap::new();
    for d in &config.devices {
        let key = hex::decode(read_trimmed(&d.key_file)?.trim_start_matches("0x"))
            .with_context(|| format!("device {}: key file is not hex", d.id))?;
        if key.len() < 16 {
            bail!(
                "device {}: the shared key must have at least 16 bytes (RFC 4226 R6)",
                d.id
            );
        }
        let digits = Digits::new(d.digits).map_err(|e| anyhow::anyhow!("device {}: {e}", d.id))?;
        devices.insert(d.id.clone(), DeviceKey { key, digits });
    }
    let ledger = Arc::new(Mutex::new(open_ledger(&config)?));
    let seller = Seller {
        our_account: chain.account(),
        domain,
        tariff: Tariff {
            price: config.price()?,
            expiry_margin: config.expiry_margin_blocks,
        },
        devices,
    };
    let service = Arc::new(Service::new(
        seller,
        ledger.clone(),
        chain,
        config.slot_seconds,
    ));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listen on {}", config.listen))?;
    info!(listen = %listener.local_addr()?, contract = %hex::encode(domain.contract), "serving");

    let closer_service = service.clone();
    let remaining_below = config.remaining_below()?;
    let policy = config.close.clone();
    tokio::spawn(async move {
        loop {
            for (channel, result) in closer::pass(
                &closer_service.chain,
                &closer_service.ledger,
                remaining_below,
                policy.blocks_before_expiry,
            )
            .await
            {
                match result {
                    Ok(CloseOutcome::Closed(c)) => {
                        info!(%channel, block = c.block, paid = %c.paid, refunded = %c.refunded, "closed channel")
                    }
                    Ok(CloseOutcome::AlreadyGone) => {
                        info!(%channel, "channel already gone on chain")
                    }
                    Err(e) => error!(%channel, error = %e, "close failed; will retry"),
                }
            }
            tokio::time::sleep(Duration::from_secs(policy.interval_seconds.max(1))).await;
        }
    });

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("install the SIGTERM handler")?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        info!("shutting down: no new connections, open requests finish");
    };
    serve_http(
        listener,
        router_with(service, config.limits),
        config.limits,
        shutdown,
    )
    .await
    .context("HTTP server")
}

async fn close_now(config: Config, channel: u64) -> Result<()> {
    let chain = connect(&config).await?;
    let ledger = Arc::new(Mutex::new(open_ledger(&config)?));
    match closer::close_channel(&chain, &ledger, ChannelId(channel)).await? {
        CloseOutcome::Closed(c) => println!(
            "{}",
            serde_json::json!({
                "channel": channel, "closed": true, "block": c.block,
                "paid": c.paid.to_string(), "refunded": c.refunded.to_string(),
                "fee": c.fee.to_string(), "storage_deposit_released": c.storage_deposit_released.to_string(),
            })
        ),
        CloseOutcome::AlreadyGone => println!(
            "{}",
            serde_json::json!({"channel": channel, "closed": false, "reason": "not on chain"})
        ),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .json()
        .init();
    let cli = Cli::parse();
    let config = Config::load(&cli.config)?;
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Close { channel } => close_now(config, channel).await,
    }
}
