//! `slotpay`: the slotpay client. Keys and groups, channels of each construction, and
//! paying for device slots.
mod chain;
mod keys;
mod pay;

use anyhow::{bail, Context, Result};
use chain::{parse_account, ss58, with_progress, AnySigner};
use clap::{Args, Parser, Subcommand};
use parity_scale_codec::{Decode, Encode};
use protocol::crypto::backend::SoftHasher;
use protocol::{authority::account_id_of, Authority, ChannelId};
use slotpay_as::api::{parse_amount, to_hex};
use slotpay_as::chain::ContractClient;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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

#[derive(Args, Clone)]
struct ChainArgs {
    /// The node's WebSocket RPC URL.
    #[arg(long, default_value = "ws://127.0.0.1:19944")]
    url: String,
    /// Deployment file naming the contract (written by scripts/deploy.sh).
    #[arg(long, default_value = "slotpay-deployment.json")]
    deployment: PathBuf,
}

#[derive(Args, Clone)]
struct SignerArgs {
    /// Sign as this sr25519 secret URI (e.g. //Alice).
    #[arg(long, conflicts_with = "ecdsa_key")]
    suri: Option<String>,
    /// Sign as the ECDSA chain account of this slotpay key file.
    #[arg(long)]
    ecdsa_key: Option<PathBuf>,
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
    },
    /// Build a group file (Merkle root and proofs) from member public keys or key files.
    Group {
        #[arg(long)]
        out: PathBuf,
        /// Public keys (0x hex, 33 bytes) or key files.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Upload and instantiate the slotpay contract; write the deployment file.
    Deploy {
        #[arg(long, default_value = "ws://127.0.0.1:19944")]
        url: String,
        #[command(flatten)]
        signer: SignerArgs,
        /// The contract bundle (`slotpay_channels.contract`) from `cargo contract build`.
        #[arg(long)]
        bundle: PathBuf,
        /// Where to write the deployment file.
        #[arg(long, default_value = "slotpay-deployment.json")]
        out: PathBuf,
    },
    /// Open a channel for a payee.
    Open {
        #[command(flatten)]
        chain: ChainArgs,
        #[command(flatten)]
        signer: SignerArgs,
        /// The Authorization Server's account.
        #[arg(long)]
        payee: String,
        /// Deposit in the smallest unit.
        #[arg(long)]
        deposit: String,
        /// Blocks from now until the channel expires.
        #[arg(long)]
        expires_in: u32,
        #[command(subcommand)]
        authority: AuthorityArg,
    },
    /// Add to a channel's deposit (payer only).
    TopUp {
        #[command(flatten)]
        chain: ChainArgs,
        #[command(flatten)]
        signer: SignerArgs,
        #[arg(long)]
        channel: u64,
        #[arg(long)]
        amount: String,
    },
    /// Move a channel's expiry later (payer only).
    Extend {
        #[command(flatten)]
        chain: ChainArgs,
        #[command(flatten)]
        signer: SignerArgs,
        #[arg(long)]
        channel: u64,
        #[arg(long)]
        expires_in: u32,
    },
    /// Take an expired channel's deposit back (payer only).
    ClaimExpired {
        #[command(flatten)]
        chain: ChainArgs,
        #[command(flatten)]
        signer: SignerArgs,
        #[arg(long)]
        channel: u64,
    },
    /// Show a channel as the chain has it.
    Status {
        #[command(flatten)]
        chain: ChainArgs,
        #[arg(long)]
        channel: u64,
    },
    /// Free balance of accounts.
    Balance {
        #[command(flatten)]
        chain: ChainArgs,
        accounts: Vec<String>,
    },
    /// Transfer funds (e.g. to an ECDSA payer account).
    Transfer {
        #[command(flatten)]
        chain: ChainArgs,
        #[command(flatten)]
        signer: SignerArgs,
        #[arg(long)]
        to: String,
        #[arg(long)]
        amount: String,
    },
    /// Buy slots on a device and present the OTPs to it.
    Pay {
        /// The Authorization Server's base URL.
        #[arg(long = "as", default_value = "http://127.0.0.1:8700")]
        as_url: String,
        #[arg(long)]
        channel: u64,
        /// The device's name at the AS.
        #[arg(long)]
        device: String,
        /// The device's CoAP address.
        #[arg(long)]
        coap: SocketAddr,
        /// The client key file that signs the receipt.
        #[arg(long)]
        key: PathBuf,
        /// For group channels: the group file holding this key's proof.
        #[arg(long)]
        group: Option<PathBuf>,
        #[arg(long, default_value_t = 1)]
        slots: u64,
    },
}

#[derive(Subcommand, Clone)]
enum AuthorityArg {
    /// Receipts signed by the payer's own ECDSA account key (needs --ecdsa-key).
    Account,
    /// Receipts signed by a delegated client key.
    Delegate {
        /// The client's public key (0x hex) or key file.
        #[arg(long)]
        client: String,
    },
    /// Receipts signed by any member of a group.
    Group {
        #[arg(long)]
        group: PathBuf,
    },
}

fn signer(args: &SignerArgs) -> Result<AnySigner> {
    match (&args.suri, &args.ecdsa_key) {
        (Some(suri), None) => AnySigner::from_suri(suri),
        (None, Some(file)) => {
            AnySigner::from_ecdsa_secret(&keys::read_secret(file)?.secret_bytes())
        }
        _ => bail!("give --suri or --ecdsa-key"),
    }
}

fn public_key_arg(text: &str) -> Result<protocol::PublicKey> {
    if text.starts_with("0x") {
        keys::parse_public(text)
    } else {
        Ok(keys::public_of(&keys::read_secret(Path::new(text))?))
    }
}

async fn contract(chain: &ChainArgs) -> Result<ContractClient> {
    let text = std::fs::read_to_string(&chain.deployment).with_context(|| {
        format!(
            "read {} (deploy first: scripts/deploy.sh)",
            chain.deployment.display()
        )
    })?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("parse {}", chain.deployment.display()))?;
    let account = parse_account(
        json["contract"]
            .as_str()
            .context("deployment has no \"contract\"")?,
    )?;
    let client = with_progress(
        &format!("connecting to {}", chain.url),
        ContractClient::connect(&chain.url, account),
    )
    .await
    .with_context(|| format!("connect to {}", chain.url))?;
    let domain = client
        .contract_domain()
        .await
        .context("read the contract")?;
    if domain != client.domain() {
        bail!(
            "the contract was deployed for another chain (genesis 0x{})",
            hex::encode(domain.genesis_hash)
        );
    }
    Ok(client)
}

fn print(json: bool, value: serde_json::Value, text: String) {
    if json {
        println!("{value}");
    } else {
        println!("{text}");
    }
}

async fn best_block(client: &ContractClient) -> Result<u32> {
    Ok(client.api().blocks().at_latest().await?.number())
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let json = cli.json;
    match cli.command {
        Command::Keygen { out } => {
            let secret = protocol::signature::keys::generate();
            keys::write_secret(&out, &secret)?;
            let public = keys::public_of(&secret);
            let account = account_id_of::<SoftHasher>(&public);
            print(
                json,
                serde_json::json!({"public_key": to_hex(&public.0), "account": ss58(&account)}),
                format!(
                    "wrote {}\npublic key {}\naccount    {}",
                    out.display(),
                    to_hex(&public.0),
                    ss58(&account)
                ),
            );
        }
        Command::Show { key } => {
            let public = keys::public_of(&keys::read_secret(&key)?);
            let account = account_id_of::<SoftHasher>(&public);
            print(
                json,
                serde_json::json!({"public_key": to_hex(&public.0), "account": ss58(&account)}),
                format!(
                    "public key {}\naccount    {}",
                    to_hex(&public.0),
                    ss58(&account)
                ),
            );
        }
        Command::Account { signer: s } => {
            let account = signer(&s)?.account();
            print(
                json,
                serde_json::json!({"account": ss58(&account), "hex": to_hex(&account)}),
                ss58(&account),
            );
        }
        Command::Group { out, members } => {
            let keys = members
                .iter()
                .map(|m| public_key_arg(m))
                .collect::<Result<Vec<_>>>()?;
            let group = keys::GroupFile::build(&keys)?;
            std::fs::write(&out, serde_json::to_string_pretty(&group)?)
                .with_context(|| format!("write {}", out.display()))?;
            print(
                json,
                serde_json::json!({"root": group.root, "members": keys.len()}),
                format!(
                    "wrote {}: {} members, root {}",
                    out.display(),
                    keys.len(),
                    group.root
                ),
            );
        }
        Command::Deploy {
            url,
            signer: s,
            bundle,
            out,
        } => {
            let text = std::fs::read_to_string(&bundle)
                .with_context(|| format!("read {}", bundle.display()))?;
            let json_bundle: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{}: not a contract bundle", bundle.display()))?;
            let wasm = json_bundle["source"]["wasm"]
                .as_str()
                .context("the bundle has no source.wasm")?;
            let code =
                hex::decode(wasm.trim_start_matches("0x")).context("source.wasm is not hex")?;
            let salt = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos().to_le_bytes().to_vec())
                .unwrap_or_default();
            let signer = signer(&s)?;
            let done = with_progress(
                &format!("deploying to {url}"),
                slotpay_as::chain::deploy(&url, &signer, code, salt),
            )
            .await?;
            let deployment = serde_json::json!({
                "url": url,
                "genesis_hash": to_hex(&done.genesis_hash),
                "contract": ss58(&done.contract),
                "code_hash": to_hex(&done.code_hash),
                "metadata": bundle.display().to_string(),
            });
            let tmp = out.with_extension("tmp");
            std::fs::write(&tmp, serde_json::to_string_pretty(&deployment)?)?;
            std::fs::rename(&tmp, &out).with_context(|| format!("write {}", out.display()))?;
            print(
                json,
                deployment.clone(),
                format!(
                    "deployed {} in block {} (fee {}); wrote {}",
                    ss58(&done.contract),
                    done.block,
                    done.fee,
                    out.display()
                ),
            );
        }
        Command::Open {
            chain,
            signer: signer_args,
            payee,
            deposit,
            expires_in,
            authority,
        } => {
            let client = contract(&chain).await?;
            let signer = signer(&signer_args)?;
            let authority = match authority {
                AuthorityArg::Account => {
                    if !matches!(signer, AnySigner::Ecdsa(_)) {
                        bail!("the account construction binds the payer's own ECDSA key: sign with --ecdsa-key");
                    }
                    Authority::Account(signer.account())
                }
                AuthorityArg::Delegate { client } => Authority::Delegate(public_key_arg(&client)?),
                AuthorityArg::Group { group } => {
                    Authority::Group(keys::GroupFile::load(&group)?.root()?)
                }
            };
            let expires_at = best_block(&client).await?.saturating_add(expires_in);
            let payee = parse_account(&payee)?;
            let args = (payee, authority, expires_at).encode();
            let done = with_progress(
                "opening the channel",
                client.call(&signer, parse_amount(&deposit)?, "open", &args),
            )
            .await?;
            let data = done
                .contract_events
                .first()
                .context("open emitted no event")?;
            let id = ChannelId::decode(&mut data.as_slice()).context("decode the Opened event")?;
            print(
                json,
                serde_json::json!({"channel": id.0, "block": done.block, "expires_at": expires_at, "fee": done.fee.to_string(),
                    "storage_deposit_held": done.storage_deposit_held.to_string(), "payer": ss58(&signer.account())}),
                format!(
                    "opened channel {id} in block {} (expires at block {expires_at}; fee {})",
                    done.block, done.fee
                ),
            );
        }
        Command::TopUp {
            chain,
            signer: s,
            channel,
            amount,
        } => {
            let client = contract(&chain).await?;
            let done = with_progress(
                "topping up",
                client.call(
                    &signer(&s)?,
                    parse_amount(&amount)?,
                    "top_up",
                    &ChannelId(channel).encode(),
                ),
            )
            .await?;
            print(
                json,
                serde_json::json!({"block": done.block}),
                format!("topped up channel {channel} in block {}", done.block),
            );
        }
        Command::Extend {
            chain,
            signer: s,
            channel,
            expires_in,
        } => {
            let client = contract(&chain).await?;
            let expires_at = best_block(&client).await?.saturating_add(expires_in);
            let done = with_progress(
                "extending",
                client.call(
                    &signer(&s)?,
                    0,
                    "extend",
                    &(ChannelId(channel), expires_at).encode(),
                ),
            )
            .await?;
            print(
                json,
                serde_json::json!({"block": done.block, "expires_at": expires_at}),
                format!("channel {channel} now expires at block {expires_at}"),
            );
        }
        Command::ClaimExpired {
            chain,
            signer: s,
            channel,
        } => {
            let client = contract(&chain).await?;
            let done = with_progress(
                "claiming the deposit back",
                client.call(
                    &signer(&s)?,
                    0,
                    "claim_expired",
                    &ChannelId(channel).encode(),
                ),
            )
            .await?;
            print(
                json,
                serde_json::json!({"block": done.block}),
                format!("claimed channel {channel} in block {}", done.block),
            );
        }
        Command::Status { chain, channel } => {
            let client = contract(&chain).await?;
            let (block, state) = client.channel(ChannelId(channel)).await?;
            match state {
                None => print(
                    json,
                    serde_json::json!({"channel": channel, "open": false, "block": block}),
                    format!("channel {channel}: not open (closed, claimed or never opened) at block {block}"),
                ),
                Some(c) => {
                    let authority = match c.authority {
                        Authority::Account(a) => format!("payer's own key ({})", ss58(&a)),
                        Authority::Delegate(k) => format!("delegate {}", to_hex(&k.0)),
                        Authority::Group(r) => format!("group root {}", to_hex(&r.0)),
                    };
                    print(
                        json,
                        serde_json::json!({"channel": channel, "open": true, "block": block,
                            "payer": ss58(&c.payer), "payee": ss58(&c.payee), "deposit": c.deposit.to_string(),
                            "expires_at": c.expires_at, "authority": authority}),
                        format!(
                            "channel {channel} at block {block}\n  payer     {}\n  payee     {}\n  deposit   {}\n  expires   block {}\n  authority {authority}",
                            ss58(&c.payer), ss58(&c.payee), c.deposit, c.expires_at
                        ),
                    );
                }
            }
        }
        Command::Balance { chain, accounts } => {
            let api =
                subxt::OnlineClient::<subxt::PolkadotConfig>::from_insecure_url(&chain.url).await?;
            let mut out = serde_json::Map::new();
            let mut text = Vec::new();
            for a in &accounts {
                let free = chain::free_balance(&api, &parse_account(a)?).await?;
                out.insert(a.clone(), free.to_string().into());
                text.push(format!("{a} {free}"));
            }
            print(json, out.into(), text.join("\n"));
        }
        Command::Transfer {
            chain,
            signer: s,
            to,
            amount,
        } => {
            let (api, rpc) = slotpay_as::chain::connect(&chain.url).await?;
            let to = parse_account(&to)?;
            with_progress(
                "transferring",
                chain::transfer(&api, &rpc, &signer(&s)?, &to, parse_amount(&amount)?),
            )
            .await?;
            print(
                json,
                serde_json::json!({"to": ss58(&to)}),
                format!("transferred {amount} to {}", ss58(&to)),
            );
        }
        Command::Pay {
            as_url,
            channel,
            device,
            coap,
            key,
            group,
            slots,
        } => {
            let secret = keys::read_secret(&key)?;
            let proof = match &group {
                Some(g) => Some(keys::GroupFile::load(g)?.proof_of(&keys::public_of(&secret))?),
                None => None,
            };
            let outcome = tokio::task::spawn_blocking(move || {
                pay::pay(&pay::PayRequest {
                    as_url: as_url.trim_end_matches('/'),
                    channel: ChannelId(channel),
                    device: &device,
                    device_addr: coap,
                    slots,
                    secret: &secret,
                    proof: proof.as_ref(),
                })
            })
            .await??;
            print(
                json,
                serde_json::to_value(&outcome)?,
                format!(
                    "device {} granted {} slot(s) (counters {:?}), access for {} s; channel {} total now {} ({:.1} ms)",
                    outcome.device, outcome.counters.len(), outcome.counters, outcome.granted_seconds,
                    outcome.channel, outcome.total, outcome.elapsed_ms
                ),
            );
        }
    }
    Ok(())
}
