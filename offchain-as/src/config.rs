//! The AS's TOML configuration.
use crate::api::parse_amount;
use protocol::hotp::Digits;
use protocol::Balance;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The node's WebSocket RPC URL.
    pub rpc_url: String,
    /// The slotpay contract's account (SS58 or 0x hex), or `deployment` to read it.
    #[serde(default)]
    pub contract: Option<String>,
    /// A deployment file written by `scripts/deploy.sh` or `slotpay deploy`.
    #[serde(default)]
    pub deployment: Option<PathBuf>,
    /// File holding the AS account's secret URI (`//Alice`, a mnemonic or a 0x seed).
    pub account_key_file: PathBuf,
    /// Price of one slot in the chain's smallest unit (a decimal string).
    pub price: String,
    /// Length of one slot in seconds.
    pub slot_seconds: u64,
    /// Sell nothing on channels that expire within this many blocks.
    pub expiry_margin_blocks: u32,
    /// The SQLite ledger.
    pub database: PathBuf,
    pub listen: SocketAddr,
    #[serde(default)]
    pub close: ClosePolicy,
    #[serde(default)]
    pub limits: Limits,
    pub devices: Vec<DeviceEntry>,
}

/// What one client may hold of the AS: slow or idle clients are cut off, and connections
/// beyond the cap are refused at once instead of queueing.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// A request's headers must arrive within this (slowloris).
    pub header_timeout_ms: u64,
    /// A request's body must arrive and its answer be ready within this; else 408.
    pub request_timeout_ms: u64,
    /// Open connections at most.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout_ms: 5_000,
            request_timeout_ms: 10_000,
            max_connections: 4_096,
        }
    }
}

/// When the AS closes a channel by itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClosePolicy {
    /// Close once less than this is left of the deposit (a decimal string).
    pub remaining_below: String,
    /// Close once the channel expires within this many blocks. Must exceed the time a
    /// close needs to land, so a channel with a receipt never expires unclaimed.
    pub blocks_before_expiry: u32,
    /// How often to look, in seconds.
    pub interval_seconds: u64,
}

impl Default for ClosePolicy {
    fn default() -> Self {
        Self {
            remaining_below: "1".into(),
            blocks_before_expiry: 10,
            interval_seconds: 5,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceEntry {
    pub id: String,
    /// File holding the 32-byte key shared with the device, as hex.
    pub key_file: PathBuf,
    #[serde(default = "default_digits")]
    pub digits: u8,
}

fn default_digits() -> u8 {
    8
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parse {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Loads `path`; relative paths inside are taken relative to its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.into(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        rebase(&mut config.account_key_file);
        rebase(&mut config.database);
        if let Some(d) = config.deployment.as_mut() {
            rebase(d);
        }
        for device in &mut config.devices {
            rebase(&mut device.key_file);
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if self.price()? == 0 {
            return invalid("price must be above zero".into());
        }
        if self.slot_seconds == 0 {
            return invalid("slot_seconds must be above zero".into());
        }
        if self.contract.is_none() == self.deployment.is_none() {
            return invalid("give exactly one of `contract` and `deployment`".into());
        }
        if self.devices.is_empty() {
            return invalid("no [[devices]]".into());
        }
        for d in &self.devices {
            Digits::new(d.digits)
                .map_err(|e| ConfigError::Invalid(format!("device {}: {e}", d.id)))?;
        }
        self.remaining_below()?;
        Ok(())
    }

    pub fn price(&self) -> Result<Balance, ConfigError> {
        parse_amount(&self.price).map_err(|e| ConfigError::Invalid(format!("price: {e}")))
    }

    pub fn remaining_below(&self) -> Result<Balance, ConfigError> {
        parse_amount(&self.close.remaining_below)
            .map_err(|e| ConfigError::Invalid(format!("close.remaining_below: {e}")))
    }
}
