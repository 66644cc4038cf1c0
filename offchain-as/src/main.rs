//! `slotpay-as`: the slotpay Authorization Server.
use anyhow::{bail, Context, Result};
use api::Deployment;
use chain::{AnySigner, Contract, Finality, Node, SlotpayEvent};
use clap::{Parser, Subcommand};
use device::Provision;
use interface::messages::{Close, Settle};
use offchain_as::closer::Closer;
use offchain_as::config::Config;
use offchain_as::ledger::{Ledger, Rules, Store};
use offchain_as::metrics::Metrics;
use offchain_as::node::NodeChain;
use offchain_as::sale::{DeviceTerms, Seller};
use offchain_as::server::{router_with, serve as serve_http, Service};
use offchain_as::view::{follow, ChainView, NodeView};
use protocol::ChannelId;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

#[derive(Parser)]
#[command(
    version,
    about = "slotpay Authorization Server: sells device slots for payment receipts"
)]
struct Cli {
    /// The TOML configuration file.
    #[arg(long, short, default_value = "slotpay-as.toml")]
    config: std::path::PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API, and settle and close channels by policy.
    Serve,
    /// Close one channel now with the best receipt held for it.
    Close { channel: u64 },
    /// Settle one channel now with the best receipt held for it (it stays open).
    Settle { channel: u64 },
}

/// Everything that needs the chain, connected and checked.
struct Chain {
    contract: Contract,
    signer: AnySigner,
    deployment: Deployment,
}

/// Connects to the node, retrying while it is not up yet, and checks that the deployment
/// is of this chain and that its contract answers for it.
async fn connect(config: &Config) -> Result<Chain> {
    let deployment = Deployment::load(&config.deployment)?;
    let suri = std::fs::read_to_string(&config.account_key_file)
        .with_context(|| format!("read {}", config.account_key_file.display()))?;
    let signer = AnySigner::from_suri(&suri).context("the AS account key")?;
    let mut delay = Duration::from_millis(250);
    let node = loop {
        match Node::connect(&config.rpc_url).await {
            Ok(node) => break node,
            Err(e) => {
                warn!(url = %config.rpc_url, error = %e, "node not reachable yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    };
    if node.genesis_hash() != deployment.genesis_hash {
        bail!(
            "{} is for chain 0x{}, but {} serves chain 0x{}",
            config.deployment.display(),
            hex::encode(deployment.genesis_hash),
            config.rpc_url,
            hex::encode(node.genesis_hash())
        );
    }
    let contract = Contract::new(node, deployment.contract);
    // A contract deployed a moment ago may not be final yet: wait a little for it.
    let mut attempt = 0;
    loop {
        attempt += 1;
        match contract.check_domain().await {
            Ok(()) => break,
            Err(e) if attempt < 60 => {
                warn!(attempt, error = %e, "contract not readable at the finalized block yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e).context("read the contract's domain"),
        }
    }
    Ok(Chain {
        contract,
        signer,
        deployment,
    })
}

fn open_store(config: &Config, chain: &Chain, ids: &[String]) -> Result<Store> {
    let mut store = Store::open(&config.database, &chain.deployment.domain())
        .with_context(|| format!("open the ledger {}", config.database.display()))?;
    for id in ids {
        store.register_device(id)?;
    }
    Ok(store)
}

fn devices(config: &Config) -> Result<BTreeMap<String, DeviceTerms>> {
    let mut devices = BTreeMap::new();
    for entry in &config.devices {
        let p = Provision::read(&entry.provision)
            .with_context(|| format!("device provisioning {}", entry.provision.display()))?;
        let terms = DeviceTerms {
            key: p.key,
            digits: p.digits,
            slot_seconds: p.slot_seconds,
            replay_window: u64::from(p.window),
        };
        if devices.insert(p.id.clone(), terms).is_some() {
            bail!("device {:?} is provisioned twice", p.id);
        }
    }
    Ok(devices)
}

async fn serve(config: Config) -> Result<()> {
    let chain = connect(&config).await?;
    let lag = chain
        .contract
        .node()
        .finality_lag_seconds()
        .await
        .context("measure the chain's finality lag")?;
    config
        .check_timing(lag)
        .context("the configuration cannot work on this chain")?;
    let devices = devices(&config)?;
    let ids: Vec<String> = devices.keys().cloned().collect();
    let tariff = config.tariff()?;
    let our_account = chain.signer.account();
    let metrics = Arc::new(Metrics::default());
    let ledger = Ledger::start(
        open_store(&config, &chain, &ids)?,
        Rules {
            our_account,
            tariff,
        },
        metrics.clone(),
    )?;

    let view = NodeView::new(chain.contract.clone());
    let (events, mut event_rx) = tokio::sync::mpsc::unbounded_channel();
    let (tick, tick_rx) = tokio::sync::watch::channel(0u32);
    tokio::spawn(follow(view.clone(), events, tick));
    // Rotations are recorded as soon as a best block announces them.
    let recorder = ledger.clone();
    tokio::spawn(async move {
        while let Some((block, event)) = event_rx.recv().await {
            if let SlotpayEvent::RotationAnnounced(e) = event {
                info!(channel = %e.channel, block, effective_at = e.effective_at, "rotation announced");
                let (channel, at) = (e.channel, e.effective_at);
                if let Err(e) = recorder.run(move |s| s.record_rotation(channel, at)).await {
                    warn!(error = %e, "record a rotation");
                }
            }
        }
    });
    let closer = Closer::new(
        NodeChain {
            view: view.clone(),
            signer: chain.signer.clone(),
        },
        ledger.clone(),
        config.policy()?,
        config.close.retry_after_blocks,
    );
    tokio::spawn(closer.run(
        tick_rx,
        Duration::from_secs_f64(config.close.interval_seconds.max(0.1)),
    ));

    let seller = Seller {
        our_account,
        domain: chain.deployment.domain(),
        tariff,
        devices,
    };
    let service = Arc::new(Service {
        seller: Arc::new(seller),
        ledger,
        view,
        metrics,
        max_finality_lag: config.chain.max_finality_lag_blocks,
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listen on {}", config.listen))?;
    info!(listen = %listener.local_addr()?, contract = %hex::encode(chain.deployment.contract), finality_lag_s = lag, "serving");
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

/// `close` and `settle` on demand: one transaction, watched to finality, reported as JSON.
async fn now(config: Config, channel: ChannelId, close: bool) -> Result<()> {
    let chain = connect(&config).await?;
    let ids: Vec<String> = devices(&config)?.keys().cloned().collect();
    let metrics = Arc::new(Metrics::default());
    let ledger = Ledger::start(
        open_store(&config, &chain, &ids)?,
        Rules {
            our_account: chain.signer.account(),
            tariff: config.tariff()?,
        },
        metrics,
    )?;
    let view = NodeView::new(chain.contract.clone());
    let (events, _) = tokio::sync::mpsc::unbounded_channel();
    let (tick, _) = tokio::sync::watch::channel(0u32);
    tokio::spawn(follow(view.clone(), events, tick));
    let mut waited = 0;
    while view.heights().is_none() {
        waited += 1;
        if waited > 300 {
            bail!("no block seen from {} within 30 s", config.rpc_url);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let read = view.read(channel).await?;
    let Some(state) = read.channel else {
        ledger
            .run(move |s| s.mark_closed(channel, read.block))
            .await?;
        println!(
            "{}",
            serde_json::json!({"channel": channel.0, "closed": false, "reason": "not open on chain"})
        );
        return Ok(());
    };
    if close {
        // Durable before the close is submitted: no sale can slip in after it.
        ledger.run(move |s| s.begin_close(channel)).await?;
    }
    let epoch = state.epoch;
    let best = ledger.run(move |s| s.best(channel, epoch)).await?;
    let (unpaid, claim) = match &best {
        Some(best) => offchain_as::closer::policy::unpaid(&state, best),
        None => (0, None),
    };
    let (included, events) = if close {
        chain
            .contract
            .call(
                &chain.signer,
                0,
                &Close { channel, claim },
                Finality::Finalized,
            )
            .await?
    } else {
        let Some(claim) = claim else {
            bail!(
                "nothing to settle on channel {channel}: everything sold ({unpaid} unpaid) is paid"
            );
        };
        chain
            .contract
            .call(
                &chain.signer,
                0,
                &Settle { channel, claim },
                Finality::Finalized,
            )
            .await?
    };
    let mut out = serde_json::json!({"channel": channel.0, "block": included.block});
    for (k, v) in included.costs_json(&chain.signer.account()) {
        out[k] = v.into();
    }
    for event in events {
        match event {
            SlotpayEvent::Closed(c) => {
                out["closed"] = true.into();
                out["paid"] = c.paid.to_string().into();
                out["refunded"] = c.refunded.to_string().into();
            }
            SlotpayEvent::Settled(s) => {
                out["settled"] = s.settled.to_string().into();
                out["paid"] = s.paid.to_string().into();
                let (epoch, amount, block) = (s.epoch, s.settled, included.block);
                ledger
                    .run(move |l| l.record_settlement(channel, epoch, amount, block))
                    .await?;
            }
            SlotpayEvent::PaymentDeferred(d) => {
                out["deferred"] = serde_json::json!({"account": api::ss58(&d.account), "amount": d.amount.to_string()});
            }
            _ => {}
        }
    }
    if close {
        let block = included.block;
        ledger.run(move |s| s.mark_closed(channel, block)).await?;
    }
    println!("{out}");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .json()
        // stdout carries the commands' JSON answers; logs never mix into them.
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let config = Config::load(&cli.config)?;
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Close { channel } => now(config, ChannelId(channel), true).await,
        Command::Settle { channel } => now(config, ChannelId(channel), false).await,
    }
}
