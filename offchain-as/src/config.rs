//! The AS's TOML configuration, and the timing rules that make it work or not.
use crate::closer::Policy;
use api::parse_amount;
use protocol::{Balance, Tariff, TariffError};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The AS's configuration file, as [`Config::load`] reads it and [`Config::save`] writes
/// it (unknown keys are refused, so a misspelt setting cannot fall back to a default).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The node's WebSocket RPC URL.
    pub rpc_url: String,
    /// The deployment file (`slotpay deploy` writes it): which chain and contract.
    pub deployment: PathBuf,
    /// File holding the AS account's secret URI (`//Alice`, a mnemonic or a 0x seed).
    pub account_key_file: PathBuf,
    /// Price of one slot in the chain's smallest unit (a decimal string).
    pub price: String,
    /// Most slots one purchase may buy: bounds the work of a request and of its retries.
    #[serde(default = "default_max_slots")]
    pub max_slots: u64,
    /// Sell nothing on a channel that expires, or whose authority rotates, within this
    /// many blocks.
    pub expiry_margin_blocks: u32,
    /// Sell only on channels whose rotation notice is at least this many blocks.
    pub min_notice_blocks: u32,
    /// The SQLite ledger (when `database_url` is absent).
    #[serde(default = "default_database")]
    pub database: PathBuf,
    /// A PostgreSQL ledger instead (`postgres://user@host:port/db`; several hosts with
    /// `target_session_attrs=read-write` find the primary after a failover): several AS
    /// instances may serve from it at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// The address the HTTP API listens on.
    pub listen: SocketAddr,
    /// What to assume of the chain's clock (`[chain]`; defaults as a dev chain's).
    #[serde(default)]
    pub chain: ChainTiming,
    /// When the closer settles and closes (`[close]`).
    #[serde(default)]
    pub close: ClosePolicy,
    /// What one HTTP client may hold of the server (`[limits]`).
    #[serde(default)]
    pub limits: Limits,
    /// One provisioning file per device (shared with the device: key, digits, slot length,
    /// replay window).
    pub devices: Vec<DeviceEntry>,
}

fn default_max_slots() -> u64 {
    64
}

fn default_database() -> PathBuf {
    "as.db".into()
}

/// What the AS must assume of the chain's clock.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChainTiming {
    /// The shortest time between two blocks, in seconds. Margins in blocks are worth
    /// this many seconds each.
    pub block_seconds: f64,
    /// Sales stop (503 `finality_stalled`) while the finalized block lags the best one by
    /// more than this many blocks: the AS's view of deposits would be too old.
    pub max_finality_lag_blocks: u32,
}

impl Default for ChainTiming {
    fn default() -> Self {
        Self {
            block_seconds: 6.0,
            max_finality_lag_blocks: 64,
        }
    }
}

/// What one client may hold of the AS: slow or idle clients are cut off, and connections
/// beyond the cap are refused at once instead of queueing.
#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
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

/// When the AS settles and closes by itself.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClosePolicy {
    /// Close once less than this is left of the deposit (a decimal string).
    pub remaining_below: String,
    /// Close once the channel expires within this many blocks (and settle once a rotation
    /// takes effect within as many).
    pub blocks_before_expiry: u32,
    /// The closer looks at every new best block, and at least this often.
    pub interval_seconds: f64,
    /// How long a submitted settle or close may take to land in a block.
    pub inclusion_seconds: f64,
    /// A submission not seen in the finalized state after this many blocks is retried.
    pub retry_after_blocks: u32,
    /// Settle once this much is sold and unpaid (a decimal string; absent: never for this).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settle_above: Option<String>,
    /// Settle once an unpaid sale is this many blocks old (absent: never for this).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settle_after_blocks: Option<u32>,
    /// With a PostgreSQL ledger, one AS instance at a time closes: the holder of a lease
    /// of this many seconds, renewed at every pass. When it dies another takes over once
    /// the lease runs out, so the margins must cover it too.
    pub lease_seconds: f64,
}

impl Default for ClosePolicy {
    fn default() -> Self {
        Self {
            remaining_below: "1".into(),
            blocks_before_expiry: 10,
            interval_seconds: 5.0,
            inclusion_seconds: 12.0,
            retry_after_blocks: 10,
            settle_above: None,
            settle_after_blocks: None,
            lease_seconds: 10.0,
        }
    }
}

/// One `[[devices]]` entry: a device the AS sells slots of.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceEntry {
    /// The device's provisioning file.
    pub provision: PathBuf,
}

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a configuration.
    #[error("parse {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: toml::de::Error,
    },
    /// The file could not be written.
    #[error("write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A value that cannot work.
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Writes this configuration to `path` (atomically), after checking it as [`Self::load`]
    /// would: the one writer of the AS's configuration, used by `slotpay-as init`, the
    /// demo and the tests. Relative paths are written as they are, and read relative to
    /// the file's directory.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        self.validate()?;
        let text = toml::to_string_pretty(self)
            .map_err(|e| ConfigError::Invalid(format!("cannot write the configuration: {e}")))?;
        api::write_atomically(path, text.as_bytes()).map_err(|source| ConfigError::Write {
            path: path.into(),
            source,
        })
    }

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
        if let Some(url) = config.database_url.as_deref() {
            url.parse::<tokio_postgres::Config>().map_err(|e| {
                ConfigError::Invalid(format!("database_url is not a PostgreSQL URL: {e}"))
            })?;
        }
        rebase(&mut config.deployment);
        for device in &mut config.devices {
            rebase(&mut device.provision);
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.tariff()?;
        self.policy()?;
        if self.devices.is_empty() {
            return Err(ConfigError::Invalid("no [[devices]]".into()));
        }
        let lease = self.close.lease_seconds;
        if self.database_url.is_some()
            && !(lease.is_finite() && lease > 2.0 * self.close.interval_seconds.max(0.1))
        {
            return Err(ConfigError::Invalid(format!(
                "close.lease_seconds = {lease} must exceed twice close.interval_seconds = {}: the closer renews its lease at every pass",
                self.close.interval_seconds
            )));
        }
        let c = &self.chain;
        if !(c.block_seconds > 0.0 && c.block_seconds.is_finite()) {
            return Err(ConfigError::Invalid(
                "chain.block_seconds must be a positive number of seconds".into(),
            ));
        }
        Ok(())
    }

    /// The sale terms the ledger checks every purchase against: `price`, the margins,
    /// `max_slots`, `min_notice_blocks`; refused if the protocol's rules refuse them.
    pub fn tariff(&self) -> Result<Tariff, ConfigError> {
        let price =
            parse_amount(&self.price, "price").map_err(|e| ConfigError::Invalid(e.to_string()))?;
        Tariff::new(
            price,
            self.expiry_margin_blocks,
            self.max_slots,
            self.min_notice_blocks,
        )
        .map_err(|e: TariffError| ConfigError::Invalid(e.to_string()))
    }

    /// The closer's policy from `[close]`, its decimal amounts parsed.
    pub fn policy(&self) -> Result<Policy, ConfigError> {
        let amount = |text: &str, field: &'static str| -> Result<Balance, ConfigError> {
            parse_amount(text, field).map_err(|e| ConfigError::Invalid(e.to_string()))
        };
        Ok(Policy {
            remaining_below: amount(&self.close.remaining_below, "close.remaining_below")?,
            blocks_before_expiry: self.close.blocks_before_expiry,
            settle_above: self
                .close
                .settle_above
                .as_deref()
                .map(|a| amount(a, "close.settle_above"))
                .transpose()?,
            settle_after_blocks: self.close.settle_after_blocks,
        })
    }

    /// Where the ledger is: `database_url` if set, else the SQLite file `database`.
    pub fn ledger(&self) -> crate::Database {
        match &self.database_url {
            Some(url) => crate::Database::Postgres(url.clone()),
            None => crate::Database::Sqlite(self.database.clone()),
        }
    }

    /// How long a closer takeover may take: with a PostgreSQL ledger (several instances)
    /// a dead leader's lease runs out, then the next pass of another instance acts; with
    /// SQLite (one process) there is none.
    pub fn takeover_seconds(&self) -> f64 {
        match self.database_url {
            Some(_) => self.close.lease_seconds + self.close.interval_seconds,
            None => 0.0,
        }
    }

    /// Whether the margins leave the closer time to land a settle or close before the
    /// deadline it guards, given the finality lag measured on the chain now (seconds).
    pub fn check_timing(&self, finality_lag_seconds: f64) -> Result<(), ConfigError> {
        check_timing(
            &self.chain,
            &self.close,
            self.expiry_margin_blocks,
            finality_lag_seconds,
            self.takeover_seconds(),
        )
        .map_err(ConfigError::Invalid)
    }
}

/// The timing rule, as a pure function (tested without a chain).
///
/// A close (or a settle before a rotation) starts at most `blocks_before_expiry` blocks
/// before its deadline and must be final by then: the closer may notice up to one
/// interval late (and, with several instances, up to `takeover_seconds` later when its
/// leader dies), the transaction may take `inclusion_seconds` to land, and finality lags
/// by `finality_lag_seconds`. Sales must stop no later than closes start.
pub fn check_timing(
    chain: &ChainTiming,
    close: &ClosePolicy,
    expiry_margin_blocks: u32,
    finality_lag_seconds: f64,
    takeover_seconds: f64,
) -> Result<(), String> {
    let takeover = takeover_seconds.max(0.0);
    let needed =
        close.interval_seconds + close.inclusion_seconds + finality_lag_seconds.max(0.0) + takeover;
    let have = f64::from(close.blocks_before_expiry) * chain.block_seconds;
    if have < needed {
        let blocks = (needed / chain.block_seconds).ceil();
        return Err(format!(
            "close.blocks_before_expiry = {} gives {have:.1} s at {} s per block, but a close needs up to \
             {:.1} s (closer interval) + {:.1} s (inclusion) + {:.1} s (finality lag measured now) + \
             {takeover:.1} s (closer takeover: lease and interval) = {needed:.1} s: \
             raise close.blocks_before_expiry to {blocks} or more",
            close.blocks_before_expiry,
            chain.block_seconds,
            close.interval_seconds,
            close.inclusion_seconds,
            finality_lag_seconds
        ));
    }
    if expiry_margin_blocks < close.blocks_before_expiry {
        return Err(format!(
            "expiry_margin_blocks = {expiry_margin_blocks} is below close.blocks_before_expiry = {}: \
             the AS would still sell after its closer starts closing; make it at least as large",
            close.blocks_before_expiry
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(blocks: u32) -> ClosePolicy {
        ClosePolicy {
            blocks_before_expiry: blocks,
            interval_seconds: 1.0,
            inclusion_seconds: 12.0,
            ..ClosePolicy::default()
        }
    }

    #[test]
    fn margins_must_cover_interval_inclusion_and_finality() {
        let chain = ChainTiming {
            block_seconds: 6.0,
            ..ChainTiming::default()
        };
        // 3 blocks = 18 s; 1 + 12 + 9 = 22 s needed.
        let e = check_timing(&chain, &close(3), 10, 9.0, 0.0).unwrap_err();
        assert!(e.contains("raise close.blocks_before_expiry to 4"), "{e}");
        assert!(check_timing(&chain, &close(4), 10, 9.0, 0.0).is_ok());
        // Without the finality lag 3 blocks were enough: the lag is what breaks it.
        assert!(check_timing(&chain, &close(3), 10, 0.0, 0.0).is_ok());
    }

    #[test]
    fn several_instances_need_margins_for_a_closer_takeover() {
        let chain = ChainTiming {
            block_seconds: 6.0,
            ..ChainTiming::default()
        };
        // 4 blocks = 24 s cover 1 + 12 + 9 = 22 s; a takeover (10 s lease + 1 s interval)
        // needs 33 s: 6 blocks.
        assert!(check_timing(&chain, &close(4), 10, 9.0, 0.0).is_ok());
        let e = check_timing(&chain, &close(4), 10, 9.0, 11.0).unwrap_err();
        assert!(e.contains("raise close.blocks_before_expiry to 6"), "{e}");
        assert!(check_timing(&chain, &close(6), 10, 9.0, 11.0).is_ok());
    }

    #[test]
    fn sales_must_stop_before_closes_start() {
        let chain = ChainTiming::default();
        let e = check_timing(&chain, &close(10), 5, 0.0, 0.0).unwrap_err();
        assert!(e.contains("expiry_margin_blocks = 5"), "{e}");
        assert!(check_timing(&chain, &close(10), 10, 0.0, 0.0).is_ok());
    }
}
