//! The deployment file: which settlement layer, which chain and which contract instance
//! the AS and the clients work with. Written once by `slotpay deploy` (the one deploy
//! path), read by the AS, the CLI and the tests through [`Deployment::load`], so every
//! reader resolves it the same way. A payer hands it to its clients with their keys: it
//! is where a client's receipt domain comes from, never from the AS.
//!
//! The file names its layer (`"layer": "evm"`, with the chain's `chain_id` and the
//! contract's 20-byte address); a file without the field is the ink! layer's, as every
//! file written before the EVM layer existed.
use crate::codec::{from_hex, parse_account, ss58, to_hex, CodecError};
use protocol::{evm_account, evm_address, AccountId32, AnyDomain, AnyLayer, Domain, EvmDomain};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The settlement layer a deployment is on, with what only that layer has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeploymentLayer {
    /// The ink! contract on a Substrate contracts chain.
    Substrate,
    /// The Solidity contract on an EVM chain.
    Evm {
        /// The chain's EIP-155 id: the EIP-712 domain's `chainId`.
        chain_id: u64,
    },
}

/// A contract instance on one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// The node it was deployed through (a default for tools; any node of the chain will do).
    pub url: String,
    /// Its settlement layer.
    pub layer: DeploymentLayer,
    /// The hash of the chain's block 0: which chain, the [`Domain`]'s chain half (on an
    /// EVM it also tells apart two chains with one chain id, say two anvil runs). Every
    /// reader compares it with the node it connects to before trusting anything there.
    pub genesis_hash: [u8; 32],
    /// The contract instance's account, the [`Domain`]'s other half (SS58 in the file; on
    /// an EVM its address, mapped by [`evm_account`]).
    pub contract: AccountId32,
    /// The code that was deployed, to tell which build it is: blake2_256 of the uploaded
    /// Wasm; on an EVM keccak256 of the runtime bytecode.
    pub code_hash: [u8; 32],
    /// What it was deployed from, if known: the contract bundle (`.contract`, code and
    /// metadata), or on an EVM forge's artifact (`SlotpayChannels.json`).
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
    /// "evm", or absent (the ink! layer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    layer: Option<String>,
    url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chain_id: Option<u64>,
    genesis_hash: String,
    contract: String,
    code_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bundle: Option<String>,
}

impl Deployment {
    /// What every receipt for this deployment is bound to, on its layer.
    pub fn domain(&self) -> AnyDomain {
        match self.layer {
            DeploymentLayer::Substrate => AnyDomain::Substrate(self.identity()),
            DeploymentLayer::Evm { chain_id } => AnyDomain::Evm(EvmDomain {
                chain_id,
                // `load` and the EVM deploy only make EVM accounts here.
                contract: evm_address(&self.contract).unwrap_or_default(),
            }),
        }
    }

    /// The deployment's identity on either layer: its chain's genesis hash and its
    /// contract's account (what the AS's ledger is bound to). On the ink! layer this is
    /// also the receipt domain.
    pub fn identity(&self) -> Domain {
        Domain {
            genesis_hash: self.genesis_hash,
            contract: self.contract,
        }
    }

    /// Its settlement layer.
    pub fn layer(&self) -> AnyLayer {
        match self.layer {
            DeploymentLayer::Substrate => AnyLayer::Substrate,
            DeploymentLayer::Evm { .. } => AnyLayer::Evm,
        }
    }

    /// The contract's EVM address, on the EVM layer.
    pub fn evm_contract(&self) -> Option<[u8; 20]> {
        match self.layer {
            DeploymentLayer::Evm { .. } => evm_address(&self.contract),
            DeploymentLayer::Substrate => None,
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
        let (layer, contract) = match (file.layer.as_deref(), file.chain_id) {
            (None | Some("substrate"), None) => (
                DeploymentLayer::Substrate,
                parse_account(&file.contract).map_err(field)?,
            ),
            (Some("evm"), Some(chain_id)) => (
                DeploymentLayer::Evm { chain_id },
                evm_account(&from_hex::<20>(&file.contract, "contract").map_err(field)?),
            ),
            (Some("evm"), None) => {
                return Err(format("an EVM deployment names its chain_id".into()))
            }
            (None | Some("substrate"), Some(_)) => {
                return Err(format(
                    "chain_id belongs to an EVM deployment (\"layer\": \"evm\")".into(),
                ))
            }
            (Some(other), _) => {
                return Err(format(format!(
                    "unknown layer {other:?} (\"evm\", or none for ink!)"
                )))
            }
        };
        let bundle = file.bundle.map(|b| {
            let b = PathBuf::from(b);
            match (b.is_relative(), path.parent()) {
                (true, Some(dir)) => dir.join(b),
                _ => b,
            }
        });
        Ok(Self {
            url: file.url,
            layer,
            genesis_hash: from_hex(&file.genesis_hash, "genesis_hash").map_err(field)?,
            contract,
            code_hash: from_hex(&file.code_hash, "code_hash").map_err(field)?,
            bundle,
        })
    }

    /// Writes `path` atomically (a temporary file, fsynced, renamed over it).
    pub fn save(&self, path: &Path) -> Result<(), DeploymentError> {
        let (layer, chain_id, contract) = match self.layer {
            DeploymentLayer::Substrate => (None, None, ss58(&self.contract)),
            DeploymentLayer::Evm { chain_id } => (
                Some("evm".to_owned()),
                Some(chain_id),
                to_hex(&evm_address(&self.contract).unwrap_or_default()),
            ),
        };
        let file = File {
            layer,
            url: self.url.clone(),
            chain_id,
            genesis_hash: to_hex(&self.genesis_hash),
            contract,
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
            layer: DeploymentLayer::Substrate,
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
        assert_eq!(loaded.identity().genesis_hash, [1; 32]);
        assert_eq!(loaded.domain(), AnyDomain::Substrate(loaded.identity()));
        // The file has no layer field: what every reader of an older file sees.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("layer"), "{text}");
    }

    #[test]
    fn a_file_without_a_layer_is_the_ink_layers_and_an_evm_file_names_its_chain() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old.json");
        // A deployment file as written before the EVM layer.
        std::fs::write(
            &old,
            r#"{"url": "ws://127.0.0.1:9944", "genesis_hash": "0x0101010101010101010101010101010101010101010101010101010101010101",
                "contract": "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
                "code_hash": "0x0303030303030303030303030303030303030303030303030303030303030303"}"#,
        )
        .unwrap();
        let loaded = Deployment::load(&old).unwrap();
        assert_eq!(loaded.layer, DeploymentLayer::Substrate);
        assert_eq!(loaded.layer(), AnyLayer::Substrate);
        let evm = Deployment {
            url: "ws://127.0.0.1:8545".into(),
            layer: DeploymentLayer::Evm { chain_id: 31337 },
            genesis_hash: [1; 32],
            contract: evm_account(&[0x5F; 20]),
            code_hash: [3; 32],
            bundle: Some(PathBuf::from("SlotpayChannels.json")),
        };
        let path = dir.path().join("evm.json");
        evm.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(r#""layer": "evm""#), "{text}");
        assert!(
            text.contains(&format!(r#""contract": "0x{}""#, "5f".repeat(20))),
            "{text}"
        );
        let loaded = Deployment::load(&path).unwrap();
        assert_eq!(loaded.layer, DeploymentLayer::Evm { chain_id: 31337 });
        assert_eq!(
            loaded.domain(),
            AnyDomain::Evm(EvmDomain {
                chain_id: 31337,
                contract: [0x5F; 20]
            })
        );
        assert_eq!(loaded.evm_contract(), Some([0x5F; 20]));
        for bad in [
            text.replace(r#""chain_id": 31337,"#, ""),
            text.replace(r#""layer": "evm","#, ""),
            text.replace(r#""layer": "evm""#, r#""layer": "tron""#),
        ] {
            assert_ne!(bad, text);
            std::fs::write(&path, &bad).unwrap();
            assert!(
                matches!(Deployment::load(&path), Err(DeploymentError::Format { .. })),
                "{bad}"
            );
        }
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
