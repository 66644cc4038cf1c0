//! Balances: `balance`, `transfer`, `deploy`, on either settlement layer (`--layer`).
use crate::keys::{LayerArg, SignerArgs};
use crate::output::{with_progress, Output};
use anyhow::{Context, Result};
use api::{account_text, parse_account, parse_amount, ss58};
use chain::{AnyNode, Node};
use protocol::AnyLayer;
use std::path::Path;

/// Prints the free balance (smallest unit, at the best block) of each of `accounts`
/// (SS58 or 0x hex; on an EVM 0x addresses), read from the node at `url` on `layer`.
pub async fn balance(url: &str, layer: LayerArg, accounts: &[String], o: &Output) -> Result<()> {
    let node = AnyNode::connect(layer.into(), url)
        .await
        .with_context(|| format!("connect to {url}"))?;
    let mut json = serde_json::Map::new();
    let mut text = Vec::new();
    for a in accounts {
        let free = node.balance(&parse_account(a)?).await?;
        json.insert(a.clone(), free.to_string().into());
        text.push(format!("{a} {free}"));
    }
    o.print(json.into(), text.join("\n"));
    Ok(())
}

/// Transfers `amount` (smallest unit) to `to`, signed by `signer`, and prints the block
/// and fee. Without `allow_death` the chain refuses a transfer that would take the sender
/// below the existential deposit (the ink! layer; an EVM has none).
#[allow(clippy::too_many_arguments)]
pub async fn transfer(
    url: &str,
    layer: LayerArg,
    signer: &SignerArgs,
    to: &str,
    amount: &str,
    allow_death: bool,
    o: &Output,
) -> Result<()> {
    let node = AnyNode::connect(layer.into(), url)
        .await
        .with_context(|| format!("connect to {url}"))?;
    let to = parse_account(to)?;
    let done = with_progress(
        "transferring",
        node.transfer(
            &signer.signer_on(layer.into())?,
            &to,
            parse_amount(amount, "amount")?,
            !allow_death,
        ),
    )
    .await?;
    let mut json = serde_json::json!({"to": account_text(&to), "block": done.block});
    for (k, v) in done.costs_json() {
        json[k] = v.into();
    }
    o.print(
        json,
        format!(
            "transferred {amount} to {} in block {}",
            account_text(&to),
            done.block
        ),
    );
    Ok(())
}

/// Deploys the contract of `layer` (the ink! bundle, or on an EVM forge's artifact of
/// `evm/src/SlotpayChannels.sol`); writes the deployment file.
pub async fn deploy(
    url: &str,
    layer: LayerArg,
    signer: &SignerArgs,
    bundle: &Path,
    out: &Path,
    o: &Output,
) -> Result<()> {
    let bundle_path = std::fs::canonicalize(bundle).unwrap_or_else(|_| bundle.to_path_buf());
    let (deployment, block, fee) = match AnyLayer::from(layer) {
        AnyLayer::Substrate => {
            let code = chain::bundle_code(bundle)?;
            let node = Node::connect(url)
                .await
                .with_context(|| format!("connect to {url}"))?;
            // A fresh salt: every deployment is a new instance, even of the same code.
            let salt = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos().to_le_bytes().to_vec())
                .unwrap_or_default();
            let done = with_progress(
                &format!("deploying to {url}"),
                chain::deploy(&node, &signer.signer()?, code, salt, Some(bundle_path)),
            )
            .await?;
            (done.deployment, done.block, done.fee)
        }
        AnyLayer::Evm => {
            let (deployment, done) = with_progress(
                &format!("deploying to {url}"),
                chain::deploy_evm(url, &signer.signer_on(AnyLayer::Evm)?, bundle),
            )
            .await?;
            (deployment, done.block, done.fee)
        }
    };
    deployment.save(out)?;
    let d = &deployment;
    let contract = match d.evm_contract() {
        Some(address) => api::to_hex(&address),
        None => ss58(&d.contract),
    };
    o.print(
        serde_json::json!({"url": d.url, "layer": format!("{:?}", d.layer()).to_lowercase(),
            "genesis_hash": api::to_hex(&d.genesis_hash),
            "contract": contract, "code_hash": api::to_hex(&d.code_hash),
            "block": block, "fee": fee.to_string(), "file": out.display().to_string()}),
        format!(
            "deployed {contract} in block {block} (fee {fee}); wrote {}",
            out.display()
        ),
    );
    Ok(())
}
