//! Balances: `balance`, `transfer`, `deploy`.
use crate::keys::SignerArgs;
use crate::output::{with_progress, Output};
use anyhow::{Context, Result};
use api::{parse_account, parse_amount, ss58};
use chain::{balances, Finality, Node};
use std::path::Path;

/// Prints the free balance (smallest unit, at the best block) of each of `accounts`
/// (SS58 or 0x hex), read from the node at `url`.
pub async fn balance(url: &str, accounts: &[String], o: &Output) -> Result<()> {
    let node = Node::connect(url)
        .await
        .with_context(|| format!("connect to {url}"))?;
    let mut json = serde_json::Map::new();
    let mut text = Vec::new();
    for a in accounts {
        let free = balances::free(&node, &parse_account(a)?).await?;
        json.insert(a.clone(), free.to_string().into());
        text.push(format!("{a} {free}"));
    }
    o.print(json.into(), text.join("\n"));
    Ok(())
}

/// Transfers `amount` (smallest unit) to `to`, signed by `signer`, and prints the block
/// and fee. Without `allow_death` the chain refuses a transfer that would take the sender
/// below the existential deposit.
pub async fn transfer(
    url: &str,
    signer: &SignerArgs,
    to: &str,
    amount: &str,
    allow_death: bool,
    o: &Output,
) -> Result<()> {
    let node = Node::connect(url)
        .await
        .with_context(|| format!("connect to {url}"))?;
    let to = parse_account(to)?;
    let included = with_progress(
        "transferring",
        balances::transfer(
            &node,
            &signer.signer()?,
            &to,
            parse_amount(amount, "amount")?,
            !allow_death,
            Finality::Finalized,
        ),
    )
    .await?;
    o.print(
        serde_json::json!({"to": ss58(&to), "block": included.block, "fee": included.fee.to_string()}),
        format!("transferred {amount} to {} in block {}", ss58(&to), included.block),
    );
    Ok(())
}

/// Uploads and instantiates the contract from its bundle; writes the deployment file.
pub async fn deploy(
    url: &str,
    signer: &SignerArgs,
    bundle: &Path,
    out: &Path,
    o: &Output,
) -> Result<()> {
    let code = chain::bundle_code(bundle)?;
    let node = Node::connect(url)
        .await
        .with_context(|| format!("connect to {url}"))?;
    // A fresh salt: every deployment is a new instance, even of the same code.
    let salt = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos().to_le_bytes().to_vec())
        .unwrap_or_default();
    let bundle_path = std::fs::canonicalize(bundle).unwrap_or_else(|_| bundle.to_path_buf());
    let done = with_progress(
        &format!("deploying to {url}"),
        chain::deploy(&node, &signer.signer()?, code, salt, Some(bundle_path)),
    )
    .await?;
    done.deployment.save(out)?;
    let d = &done.deployment;
    o.print(
        serde_json::json!({"url": d.url, "genesis_hash": api::to_hex(&d.genesis_hash),
            "contract": ss58(&d.contract), "code_hash": api::to_hex(&d.code_hash),
            "block": done.block, "fee": done.fee.to_string(), "file": out.display().to_string()}),
        format!(
            "deployed {} in block {} (fee {}); wrote {}",
            ss58(&d.contract),
            done.block,
            done.fee,
            out.display()
        ),
    );
    Ok(())
}
