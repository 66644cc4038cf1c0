//! What chain commands share: which contract on which node (checked before use), and
//! how an authority is named on the command line and shown.
use crate::group::GroupFile;
use crate::keys::public_key_arg;
use crate::output::with_progress;
use anyhow::{bail, Context, Result};
use api::{to_hex, Deployment};
use chain::{Contract, Node};
use protocol::Authority;
use std::path::PathBuf;

/// Which contract, on which node.
#[derive(clap::Args, Clone, Debug)]
pub struct ChainArgs {
    /// The deployment file naming the chain and contract (`slotpay deploy` writes it).
    #[arg(long, default_value = "slotpay-deployment.json")]
    pub deployment: PathBuf,
    /// The node's WebSocket RPC URL (default: the deployment file's).
    #[arg(long)]
    pub url: Option<String>,
}

impl ChainArgs {
    /// The contract, after checking that the node serves the deployment's chain and that
    /// the contract answers for it.
    pub async fn contract(&self) -> Result<Contract> {
        let deployment = Deployment::load(&self.deployment)?;
        let url = self.url.clone().unwrap_or_else(|| deployment.url.clone());
        let node = with_progress(&format!("connecting to {url}"), Node::connect(&url))
            .await
            .with_context(|| format!("connect to {url}"))?;
        Contract::bind(node, &deployment.identity())
            .await
            .with_context(|| format!("check {} against {url}", self.deployment.display()))
    }
}

/// Who may sign receipts for a channel.
#[derive(clap::Subcommand, Clone, Debug)]
pub enum AuthorityArg {
    /// Receipts signed by the payer's own ECDSA account key (needs --ecdsa-key).
    Account,
    /// Receipts signed by a delegated client key.
    Delegate {
        /// The client's public key (0x hex) or key file.
        #[arg(long)]
        client: String,
    },
    /// Receipts signed by any member of a group, each within its cap.
    Group {
        #[arg(long)]
        group: PathBuf,
    },
}

pub fn authority(arg: &AuthorityArg, signer: &chain::AnySigner) -> Result<Authority> {
    Ok(match arg {
        AuthorityArg::Account => {
            if !matches!(signer, chain::AnySigner::Ecdsa(_)) {
                bail!("the account construction binds the payer's own ECDSA key: sign with --ecdsa-key");
            }
            Authority::Account(signer.account())
        }
        AuthorityArg::Delegate { client } => Authority::Delegate(public_key_arg(client)?),
        AuthorityArg::Group { group } => Authority::Group(GroupFile::load(group)?.root()?),
    })
}

pub fn authority_text(a: &Authority) -> String {
    match a {
        Authority::Account(a) => format!("payer's own key ({})", api::account_text(a)),
        Authority::Delegate(k) => format!("delegate {}", to_hex(&k.0)),
        Authority::DelegateAccount(a) => format!("delegate {}", api::account_text(a)),
        Authority::Group(r) => format!("group root {}", to_hex(&r.0)),
        Authority::Revoked => "revoked (no key)".into(),
    }
}
