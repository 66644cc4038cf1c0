//! `slotpay-as`: the slotpay Authorization Server.
use anyhow::{bail, Context, Result};
use api::Deployment;
use chain::{AnyContract, AnyNode, LayerSigner};
use clap::{Parser, Subcommand};
use offchain_as::{
    follow, router_with, serve as serve_http, Closer, Config, DeviceTerms, LeaseTerms, Ledger,
    Metrics, NodeChain, NodeView, Rules, Seller, Service,
};
use protocol::ChannelId;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

#[path = "init.rs"]
mod init;

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
    /// Serve the HTTP API, and settle and close channels by policy.
    Serve,
    /// Close one channel now with the best receipt held for it; waits for finality.
    Close {
        /// The channel.
        channel: u64,
    },
    /// Settle one channel now with the best receipt held for it (it stays open); waits
    /// for finality.
    Settle {
        /// The channel.
        channel: u64,
    },
    /// Write a configuration file (at --config) from these settings.
    Init(Box<init::InitArgs>),
    /// Raise this ledger's device counters to another ledger's (say, the one of a
    /// previous deployment), so no device sees a counter it has already granted.
    CarryCounters {
        /// The other ledger's SQLite file.
        #[arg(long)]
        from: PathBuf,
    },
    /// Move an SQLite ledger into an empty PostgreSQL database (stop the AS first), checked
    /// row by row; then set `database_url` in the configuration. Needs no configuration.
    Migrate {
        /// The SQLite ledger.
        #[arg(long)]
        from: PathBuf,
        /// The PostgreSQL database (postgres://user@host:port/db).
        #[arg(long)]
        to: String,
    },
}

/// Everything that needs the chain, connected and checked: the contract and the key of
/// the deployment's layer.
struct Chain {
    contract: AnyContract,
    signer: LayerSigner,
    deployment: Deployment,
}

/// Connects to the node, retrying while it is not up yet, and binds the deployment's
/// contract there ([`AnyContract::bind_on`]: this chain, and a contract that answers for it).
async fn connect(config: &Config) -> Result<Chain> {
    let deployment = Deployment::load(&config.deployment)?;
    let suri = std::fs::read_to_string(&config.account_key_file)
        .with_context(|| format!("read {}", config.account_key_file.display()))?;
    let signer = LayerSigner::from_suri(deployment.layer(), &suri).context("the AS account key")?;
    let mut delay = Duration::from_millis(250);
    let node = loop {
        match AnyNode::connect(deployment.layer(), &config.rpc_url).await {
            Ok(node) => break node,
            Err(e) => {
                warn!(url = %config.rpc_url, error = %e, "node not reachable yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    };
    // A contract deployed a moment ago may not be final yet: wait a little for it.
    let mut attempt = 0;
    let contract = loop {
        attempt += 1;
        match AnyContract::bind_on(node.clone(), &deployment).await {
            Ok(contract) => break contract,
            Err(e @ chain::ChainError::WrongChain { .. }) => {
                return Err(e).with_context(|| format!("{}", config.deployment.display()))
            }
            Err(e) if attempt < 60 => {
                warn!(attempt, error = %e, "contract not readable at the finalized block yet; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e).context("read the contract's domain"),
        }
    };
    Ok(Chain {
        contract,
        signer,
        deployment,
    })
}

/// The ledger of `config` (SQLite, or PostgreSQL with `database_url`), with `ids` known.
async fn open_ledger(
    config: &Config,
    domain: &protocol::Domain,
    ids: &[String],
    rules: Rules,
    metrics: Arc<Metrics>,
) -> Result<Ledger> {
    let database = config.ledger();
    Ledger::open(&database, domain, ids, rules, metrics)
        .await
        .with_context(|| format!("open the ledger {database}"))
}

fn devices(config: &Config) -> Result<BTreeMap<String, DeviceTerms>> {
    let mut devices = BTreeMap::new();
    for entry in &config.devices {
        let p = device::Provision::read(&entry.provision)
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

/// The ledger, the chain view (followed in the background) and the closer: what both
/// `serve` and the operator's commands run on.
struct Running {
    ledger: Ledger,
    view: NodeView,
    closer: Closer<NodeChain>,
    tick: tokio::sync::watch::Receiver<u32>,
    metrics: Arc<Metrics>,
    devices: BTreeMap<String, DeviceTerms>,
}

async fn start(config: &Config, chain: &Chain) -> Result<Running> {
    let devices = devices(config)?;
    let ids: Vec<String> = devices.keys().cloned().collect();
    let metrics = Arc::new(Metrics::default());
    let ledger = open_ledger(
        config,
        &chain.deployment.identity(),
        &ids,
        Rules {
            our_account: chain.signer.account(),
            tariff: config.tariff()?,
        },
        metrics.clone(),
    )
    .await?;
    let view = NodeView::new(chain.contract.clone());
    let (events, _) = tokio::sync::mpsc::unbounded_channel();
    let (tick, tick_rx) = tokio::sync::watch::channel(0u32);
    tokio::spawn(follow(view.clone(), events, tick));
    let node_chain = NodeChain::new(view.clone(), chain.signer.clone())
        .await
        .context("read the chain's limits")?;
    let policy = config.policy()?;
    let plan = Closer::new_plan(&node_chain, &policy);
    // Not switched on yet (`ClosePlan::bound_rotations`): until a close has been weighed
    // the Substrate adapter counts one close a block, and the bound would then hold only
    // min_notice - blocks_before_expiry channels, refusing every sale beyond them.
    let closer = Closer::new(
        node_chain,
        ledger.clone(),
        policy,
        config.close.retry_after_blocks,
        plan,
    )
    .with_lease(LeaseTerms::for_this_process(Duration::from_secs_f64(
        config.close.lease_seconds.max(0.1),
    )))
    .with_metrics(metrics.clone());
    Ok(Running {
        ledger,
        view,
        closer,
        tick: tick_rx,
        metrics,
        devices,
    })
}

async fn serve(config: Config) -> Result<()> {
    let chain = connect(&config).await?;
    let lag = chain
        .contract
        .node()
        .steady_finality_lag_seconds()
        .await
        .context("measure the chain's finality lag")?;
    config
        .check_timing(lag)
        .context("the configuration cannot work on this chain")?;
    let running = start(&config, &chain).await?;
    let plan = running.closer.plan();
    let seller = Seller {
        our_account: chain.signer.account(),
        domain: chain.deployment.domain(),
        identity: chain.deployment.identity(),
        tariff: config.tariff()?,
        devices: running.devices,
    };
    let service = Arc::new(Service {
        seller: Arc::new(seller),
        ledger: running.ledger,
        view: running.view,
        metrics: running.metrics,
        plan,
        max_finality_lag: config.chain.max_finality_lag_blocks,
    });
    let (stop_closer, closer_stops) = tokio::sync::oneshot::channel::<()>();
    let closer = tokio::spawn(running.closer.run_until(
        running.tick,
        Duration::from_secs_f64(config.close.interval_seconds.max(0.1)),
        async move {
            let _ = closer_stops.await;
        },
    ));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listen on {}", config.listen))?;
    info!(listen = %listener.local_addr()?, contract = %api::account_text(&chain.deployment.contract), layer = ?chain.deployment.layer(), finality_lag_s = lag, "serving");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("install the SIGTERM handler")?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        info!("shutting down: no new connections, open requests finish");
    };
    let served = serve_http(
        listener,
        router_with(service, config.limits),
        config.limits,
        shutdown,
    )
    .await
    .context("HTTP server");
    // The closer gives its lease back between passes: another instance closes at once.
    let _ = stop_closer.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), closer).await;
    served
}

/// `close` and `settle` on demand: the closer's own path, watched to finality, reported
/// as JSON.
async fn now(config: Config, channel: ChannelId, close: bool) -> Result<()> {
    let chain = connect(&config).await?;
    let running = start(&config, &chain).await?;
    let mut waited = 0;
    while offchain_as::ChainView::heights(running.closer.chain()).is_none() {
        waited += 1;
        if waited > 300 {
            bail!("no block seen from {} within 30 s", config.rpc_url);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let report = running.closer.now(channel, close).await?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

async fn carry_counters(config: &Config, from: &std::path::Path) -> Result<()> {
    let deployment = Deployment::load(&config.deployment)?;
    let suri = std::fs::read_to_string(&config.account_key_file)
        .with_context(|| format!("read {}", config.account_key_file.display()))?;
    let rules = Rules {
        our_account: LayerSigner::from_suri(deployment.layer(), &suri)
            .context("the AS account key")?
            .account(),
        tariff: config.tariff()?,
    };
    let ledger = open_ledger(
        config,
        &deployment.identity(),
        &[],
        rules,
        Arc::new(Metrics::default()),
    )
    .await?;
    let raised = ledger
        .carry_counters_from(from)
        .await
        .with_context(|| format!("read the ledger {}", from.display()))?;
    println!("{}", serde_json::json!({ "raised": raised }));
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
    if let Command::Init(args) = &cli.command {
        return init::write(&cli.config, args);
    }
    if let Command::Migrate { from, to } = &cli.command {
        let moved = offchain_as::migrate(from, to)
            .await
            .with_context(|| format!("migrate {} to the PostgreSQL database", from.display()))?;
        println!("{}", serde_json::to_string(&moved)?);
        return Ok(());
    }
    let config = Config::load(&cli.config)?;
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Close { channel } => now(config, ChannelId(channel), true).await,
        Command::Settle { channel } => now(config, ChannelId(channel), false).await,
        Command::CarryCounters { from } => carry_counters(&config, &from).await,
        Command::Init(_) | Command::Migrate { .. } => Ok(()),
    }
}
