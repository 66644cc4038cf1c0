//! `slotpay`: the slotpay client. Keys and groups, channels of each construction, and
//! paying for device slots without trusting the AS. The commands live in the library
//! (`client`); this is their command line.
use anyhow::Result;
use clap::{Parser, Subcommand};
use client::channel::ChannelCommand;
use client::keys::{LayerArg, SignerArgs};
use client::{channel, funds, group, keys, pay, Output};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    version,
    about = "slotpay client: pay for IoT device slots over payment channels"
)]
struct Cli {
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a client key (secp256k1) into a new file.
    Keygen { out: PathBuf },
    /// Print a key file's public key and chain account.
    Show { key: PathBuf },
    /// Print the chain account of a signer (--suri or --ecdsa-key).
    Account {
        #[command(flatten)]
        signer: SignerArgs,
        /// The settlement layer (on an EVM an account is an address).
        #[arg(long, value_enum, default_value_t)]
        layer: LayerArg,
    },
    /// Group files: members with spending caps, their Merkle root and proofs.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Upload and instantiate the slotpay contract; write the deployment file.
    Deploy {
        #[arg(long, default_value = "ws://127.0.0.1:19944")]
        url: String,
        /// The settlement layer: the ink! contract, or the Solidity one on an EVM chain.
        #[arg(long, value_enum, default_value_t)]
        layer: LayerArg,
        #[command(flatten)]
        signer: SignerArgs,
        /// The contract bundle (`slotpay_channels.contract`) from `cargo contract build`;
        /// on an EVM forge's artifact (`evm/out/SlotpayChannels.sol/SlotpayChannels.json`).
        #[arg(long)]
        bundle: PathBuf,
        /// Where to write the deployment file.
        #[arg(long, default_value = "slotpay-deployment.json")]
        out: PathBuf,
    },
    #[command(flatten)]
    Channel(ChannelCommand),
    /// Free balance of accounts.
    Balance {
        #[arg(long, default_value = "ws://127.0.0.1:19944")]
        url: String,
        /// The settlement layer of the node at --url.
        #[arg(long, value_enum, default_value_t)]
        layer: LayerArg,
        accounts: Vec<String>,
    },
    /// Transfer funds (e.g. to an ECDSA payer account).
    Transfer {
        #[arg(long, default_value = "ws://127.0.0.1:19944")]
        url: String,
        /// The settlement layer of the node at --url.
        #[arg(long, value_enum, default_value_t)]
        layer: LayerArg,
        #[command(flatten)]
        signer: SignerArgs,
        #[arg(long)]
        to: String,
        #[arg(long)]
        amount: String,
        /// Allow the transfer to take the sender below the existential deposit (its
        /// account is then reaped).
        #[arg(long)]
        allow_death: bool,
    },
    /// Buy slots on a device and present the tokens to it.
    Pay(pay::PayArgs),
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let o = Output { json: cli.json };
    match cli.command {
        Command::Keygen { out } => keys::keygen(&out, &o),
        Command::Show { key } => keys::show(&key, &o),
        Command::Account { signer, layer } => keys::account(&signer, layer, &o),
        Command::Group(command) => group::run(command, &o),
        Command::Deploy {
            url,
            layer,
            signer,
            bundle,
            out,
        } => funds::deploy(&url, layer, &signer, &bundle, &out, &o).await,
        Command::Channel(command) => channel::run(command, &o).await,
        Command::Balance {
            url,
            layer,
            accounts,
        } => funds::balance(&url, layer, &accounts, &o).await,
        Command::Transfer {
            url,
            layer,
            signer,
            to,
            amount,
            allow_death,
        } => funds::transfer(&url, layer, &signer, &to, &amount, allow_death, &o).await,
        Command::Pay(args) => {
            let outcome = pay::pay(args).await?;
            let text = format!(
                "device {} granted {} slot(s) (counters {:?}), access for {} s; channel {} epoch {} total now {} ({:.1} ms){}",
                outcome.device,
                outcome.counters.len(),
                outcome.counters,
                outcome.granted_seconds,
                outcome.channel,
                outcome.epoch,
                outcome.total,
                outcome.elapsed_ms,
                if outcome.refused.is_empty() {
                    String::new()
                } else {
                    format!("\nnot granted: {}", outcome.refused.join("; "))
                }
            );
            o.print(serde_json::to_value(&outcome)?, text);
            Ok(())
        }
    }
}
