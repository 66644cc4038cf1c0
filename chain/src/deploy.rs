//! Uploading and instantiating the contract: the one deploy path (`slotpay deploy`,
//! `scripts/deploy.sh` and the tests all come here).
use crate::dry_run::{self, Weight};
use crate::events::Instantiated;
use crate::node::{Finality, Node};
use crate::ChainError;
use api::Deployment;
use interface::messages::{Message, New};
use protocol::crypto::backend::SoftHasher;
use protocol::crypto::Hasher;
use protocol::Balance;
use std::path::{Path, PathBuf};
use subxt::dynamic::Value;
use subxt::tx::Signer;
use subxt::PolkadotConfig;

/// What a deployment cost.
#[derive(Debug, Clone)]
pub struct Deployed {
    /// The deployment file's content for the new instance (the caller saves it).
    pub deployment: Deployment,
    /// The number of the finalized block that holds the instantiation.
    pub block: u32,
    /// What the signer paid in fees for it (the storage deposit aside).
    pub fee: Balance,
}

/// The wasm code inside a `.contract` bundle written by `cargo contract build`.
pub fn bundle_code(bundle: &Path) -> Result<Vec<u8>, ChainError> {
    let other = |reason: String| ChainError::Other(format!("{}: {reason}", bundle.display()));
    let text = std::fs::read_to_string(bundle).map_err(|e| other(e.to_string()))?;
    // The bundle is JSON; only source.wasm is needed, as hex.
    let start = text
        .find("\"wasm\"")
        .ok_or_else(|| other("no source.wasm: not a contract bundle".into()))?;
    let rest = &text[start + 6..];
    let open = rest
        .find('"')
        .ok_or_else(|| other("malformed source.wasm".into()))?;
    let rest = &rest[open + 1..];
    let close = rest
        .find('"')
        .ok_or_else(|| other("malformed source.wasm".into()))?;
    hex::decode(rest[..close].trim_start_matches("0x")).map_err(|e| other(e.to_string()))
}

/// Uploads `code` and instantiates it for this chain (constructor `new(genesis_hash)`),
/// signed by `signer`; waits for finality, so that readers of the finalized state see it.
pub async fn deploy<S: Signer<PolkadotConfig>>(
    node: &Node,
    signer: &S,
    code: Vec<u8>,
    salt: Vec<u8>,
    bundle: Option<PathBuf>,
) -> Result<Deployed, ChainError> {
    let genesis_hash = node.genesis_hash();
    let input = New { genesis_hash }.call_data();
    let (_, best) = node.best().await?;
    let origin = signer.account_id().0;
    let dry = dry_run::instantiate(
        node.api(),
        best,
        origin,
        0,
        dry_run::Code::Upload(&code),
        input.clone(),
        &salt,
    )
    .await?;
    dry.result.map_err(|reason| ChainError::Call {
        message: New::LABEL,
        reason,
    })?;
    let required: Weight = dry.gas_required;
    let tx = subxt::dynamic::tx(
        "Contracts",
        "instantiate_with_code",
        vec![
            Value::u128(0),
            required.with_headroom().value(),
            Value::unnamed_variant("None", []),
            Value::from_bytes(&code),
            Value::from_bytes(input),
            Value::from_bytes(&salt),
        ],
    );
    let included = node.submit(signer, &tx, Finality::Finalized).await?;
    let instantiated = included
        .events
        .find_first::<Instantiated>()?
        .ok_or_else(|| ChainError::Other("no Contracts::Instantiated event".into()))?;
    Ok(Deployed {
        deployment: Deployment {
            url: node.url().to_owned(),
            layer: api::DeploymentLayer::Substrate,
            genesis_hash,
            contract: instantiated.contract.0,
            code_hash: SoftHasher::blake2_256(&code),
            bundle,
        },
        block: included.block,
        fee: included.fee,
    })
}
