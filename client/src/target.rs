//! What chain commands share: which contract on which node (checked before use), and
//! how an authority is named on the command line and shown.
use crate::group::GroupFile;
use crate::keys::public_key_arg;
use crate::output::with_progress;
use anyhow::{bail, Context, Result};
use api::{to_hex, Deployment};
use chain::{AnyContract, LayerSigner};
use protocol::{AnyLayer, Authority};
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
    /// The contract on the deployment's layer, after checking that the node serves the
    /// deployment's chain and that the contract answers for it.
    pub async fn contract(&self) -> Result<AnyContract> {
        let deployment = Deployment::load(&self.deployment)?;
        let url = self.url.clone().unwrap_or_else(|| deployment.url.clone());
        with_progress(
            &format!("connecting to {url}"),
            AnyContract::bind(&deployment, Some(&url)),
        )
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
        /// The group file (`slotpay group new` writes it); its root becomes the authority.
        #[arg(long)]
        group: PathBuf,
    },
}

/// The authority `arg` names, for a channel of `signer` on `layer`;
/// [`AuthorityArg::Account`] takes `signer`'s account, which must be an ECDSA one (a
/// payer's own slotpay key).
pub fn authority(arg: &AuthorityArg, signer: &LayerSigner, layer: AnyLayer) -> Result<Authority> {
    Ok(match arg {
        AuthorityArg::Account => {
            if !signer.is_ecdsa() {
                bail!("the account construction binds the payer's own ECDSA key: sign with --ecdsa-key");
            }
            Authority::Account(signer.account())
        }
        AuthorityArg::Delegate { client } => Authority::Delegate(public_key_arg(client)?),
        AuthorityArg::Group { group } => {
            let file = GroupFile::load(group)?;
            if file.layer() != layer {
                bail!(
                    "{} is a group of the {:?} layer's leaves, the deployment is on the {layer:?} layer: make it with `slotpay group new --layer ...`",
                    group.display(),
                    file.layer()
                );
            }
            Authority::Group(file.root()?)
        }
    })
}

/// An authority as the CLI prints it: the account in SS58, keys and roots in 0x hex.
pub fn authority_text(a: &Authority) -> String {
    match a {
        Authority::Account(a) => format!("payer's own key ({})", api::account_text(a)),
        Authority::Delegate(k) => format!("delegate {}", to_hex(&k.0)),
        Authority::DelegateAccount(a) => format!("delegate {}", api::account_text(a)),
        Authority::Group(r) => format!("group root {}", to_hex(&r.0)),
        Authority::Revoked => "revoked (no key)".into(),
    }
}
