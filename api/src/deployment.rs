//! The deployment file: which chain and which contract instance the AS and the clients
//! work with. Written once by `slotpay deploy` (the one deploy path), read by the AS, the
//! CLI and the tests through [`Deployment::load`], so every reader resolves it the same
//! way. A payer hands it to its clients with their keys: it is where a client's receipt
//! domain comes from, never from the AS.
use crate::codec::{from_hex, parse_account, ss58, to_hex, CodecError};
use protocol::{AccountId32, Domain};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A contract instance on one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// The node it was deployed through (a default for tools; any node of the chain will do).
    pub url: String,
    /// The hash of the chain's block 0: which chain, the [`Domain`]'s chain half. Every
    /// reader compares it with the node it connects to before trusting anything there.
    pub genesis_hash: [u8; 32],
    /// The contract instance's account, the [`Domain`]'s other half (SS58 in the file).
    pub contract: AccountId32,
    /// blake2_256 of the Wasm code that was uploaded, to tell which build is deployed.
    pub code_hash: [u8; 32],
    /// The contract bundle (`.contract`, code and metadata) it was deployed from, if known.
    pub bundle: Option<PathBuf>,
}

/// Why a deployment file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    /// The file could not be read (most often: nothing was deployed yet).
    #[error("read {path}: {source} (deploy first: `slotpay deploy`, or scripts/deploy.sh)")]
    Read {
        /// The file asked for.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file, its temporary twin or its directory could not be written or synced; the
    /// old file, if any, is left as it was.
    #[error("write {path}: {source}")]
    Write {
        /// The file being replaced.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not JSON of the deployment's shape, or a field does not decode (hex,
    /// SS58); unknown fields are refused too.
    #[error("{path}: not a deployment file: {reason}")]
    Format {
        /// The file read.
        path: PathBuf,
        /// What is wrong with it, for the operator.
        reason: String,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    url: String,
    genesis_hash: String,
    contract: String,
    code_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bundle: Option<String>,
}

impl Deployment {
    /// What every receipt for this deployment is bound to.
    pub fn domain(&self) -> Domain {
        Domain {
            genesis_hash: self.genesis_hash,
            contract: self.contract,
        }
    }

    /// Reads `path`; a relative bundle path is taken relative to the file's directory.
    pub fn load(path: &Path) -> Result<Self, DeploymentError> {
        let text = std::fs::read_to_string(path).map_err(|source| DeploymentError::Read {
            path: path.into(),
            source,
        })?;
        let format = |reason: String| DeploymentError::Format {
            path: path.into(),
            reason,
        };
        let file: File = serde_json::from_str(&text).map_err(|e| format(e.to_string()))?;
        let field = |e: CodecError| format(e.to_string());
        let bundle = file.bundle.map(|b| {
            let b = PathBuf::from(b);
            match (b.is_relative(), path.parent()) {
                (true, Some(dir)) => dir.join(b),
                _ => b,
            }
        });
        Ok(Self {
            url: file.url,
            genesis_hash: from_hex(&file.genesis_hash, "genesis_hash").map_err(field)?,
            contract: parse_account(&file.contract).map_err(field)?,
            code_hash: from_hex(&file.code_hash, "code_hash").map_err(field)?,
            bundle,
        })
    }

    /// Writes `path` atomically (a temporary file, fsynced, renamed over it).
    pub fn save(&self, path: &Path) -> Result<(), DeploymentError> {
        let file = File {
            url: self.url.clone(),
            genesis_hash: to_hex(&self.genesis_hash),
            contract: ss58(&self.contract),
            code_hash: to_hex(&self.code_hash),
            bundle: self.bundle.as_ref().map(|b| b.display().to_string()),
        };
        let text = serde_json::to_string_pretty(&file).map_err(|e| DeploymentError::Format {
            path: path.into(),
            reason: e.to_string(),
        })?;
        write_atomically(path, text.as_bytes()).map_err(|source| DeploymentError::Write {
            path: path.into(),
            source,
        })
    }
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_resolves_the_bundle_beside_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("deployment.json");
        let deployment = Deployment {
            url: "ws://127.0.0.1:9944".into(),
            genesis_hash: [1; 32],
            contract: [2; 32],
            code_hash: [3; 32],
            bundle: Some(PathBuf::from("slotpay_channels.contract")),
        };
        deployment.save(&path).unwrap();
        let loaded = Deployment::load(&path).unwrap();
        assert_eq!(loaded.contract, [2; 32]);
        assert_eq!(
            loaded.bundle,
            Some(dir.path().join("slotpay_channels.contract"))
        );
        assert_eq!(loaded.domain().genesis_hash, [1; 32]);
    }

    #[test]
    fn refuses_what_is_not_a_deployment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.json");
        std::fs::write(&path, r#"{"url": "x", "contract": "nope"}"#).unwrap();
        assert!(matches!(
            Deployment::load(&path),
            Err(DeploymentError::Format { .. })
        ));
        assert!(matches!(
            Deployment::load(&dir.path().join("missing.json")),
            Err(DeploymentError::Read { .. })
        ));
    }
}
