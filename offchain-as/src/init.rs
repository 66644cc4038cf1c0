//! `slotpay-as init`: a configuration file from flags, through the one writer
//! ([`offchain_as::Config::save`]).
use anyhow::{Context, Result};
use offchain_as::{ChainTiming, ClosePolicy, Config, DeviceEntry, Limits};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The settings `init` writes; everything else takes its default.
#[derive(clap::Args, Debug)]
pub(crate) struct InitArgs {
    /// The node's WebSocket RPC URL.
    #[arg(long)]
    rpc_url: String,
    /// The deployment file (relative paths are relative to the configuration's directory).
    #[arg(long, default_value = "deployment.json")]
    deployment: PathBuf,
    /// The file holding the AS account's secret URI.
    #[arg(long, default_value = "as.suri")]
    account_key_file: PathBuf,
    /// The price of a slot, in the chain's smallest unit.
    #[arg(long)]
    price: String,
    /// The most slots one purchase buys.
    #[arg(long, default_value_t = 64)]
    max_slots: u64,
    /// Nothing sells within this many blocks of a channel's expiry or rotation.
    #[arg(long)]
    expiry_margin_blocks: u32,
    /// The shortest rotation notice of a channel the AS sells on.
    #[arg(long)]
    min_notice_blocks: u32,
    /// The SQLite ledger.
    #[arg(long, default_value = "as.db")]
    database: PathBuf,
    /// A PostgreSQL ledger instead (postgres://...): several AS instances may share it.
    #[arg(long)]
    database_url: Option<String>,
    /// Where the HTTP API listens.
    #[arg(long)]
    listen: SocketAddr,
    /// The chain's shortest block time, in seconds.
    #[arg(long, default_value_t = 6.0)]
    block_seconds: f64,
    /// Close once less than this is left of a deposit.
    #[arg(long, default_value = "1")]
    remaining_below: String,
    /// The lead of a close before its channel's expiry, in blocks.
    #[arg(long, default_value_t = 10)]
    blocks_before_expiry: u32,
    /// The closer runs at every new best block and at least this often.
    #[arg(long, default_value_t = 5.0)]
    interval_seconds: f64,
    /// How long a submitted settle or close may take to land.
    #[arg(long, default_value_t = 12.0)]
    inclusion_seconds: f64,
    /// A provisioning file per device (repeat the flag).
    #[arg(long = "device", required = true)]
    devices: Vec<PathBuf>,
}

/// Writes the configuration at `path`.
pub(crate) fn write(path: &Path, args: &InitArgs) -> Result<()> {
    let config = Config {
        rpc_url: args.rpc_url.clone(),
        deployment: args.deployment.clone(),
        account_key_file: args.account_key_file.clone(),
        price: args.price.clone(),
        max_slots: args.max_slots,
        expiry_margin_blocks: args.expiry_margin_blocks,
        min_notice_blocks: args.min_notice_blocks,
        database: args.database.clone(),
        database_url: args.database_url.clone(),
        listen: args.listen,
        chain: ChainTiming {
            block_seconds: args.block_seconds,
            ..ChainTiming::default()
        },
        close: ClosePolicy {
            remaining_below: args.remaining_below.clone(),
            blocks_before_expiry: args.blocks_before_expiry,
            interval_seconds: args.interval_seconds,
            inclusion_seconds: args.inclusion_seconds,
            ..ClosePolicy::default()
        },
        limits: Limits::default(),
        devices: args
            .devices
            .iter()
            .map(|provision| DeviceEntry {
                provision: provision.clone(),
            })
            .collect(),
    };
    config
        .save(path)
        .with_context(|| format!("write {}", path.display()))?;
    println!("{}", path.display());
    Ok(())
}
