//! Channels on chain: `open`, `top-up`, `extend`, `rotate`, `revoke`, `claim-expired`,
//! `withdraw`, `status`.
use crate::keys::SignerArgs;
use crate::output::{with_progress, Output};
use crate::target::{authority, authority_text, AuthorityArg, ChainArgs};
use anyhow::{bail, Result};
use api::{account_text, parse_account, parse_amount};
use chain::evm::EvmMessage;
use chain::{AnyContract, At, Done, SlotpayEvent};
use interface::messages::{ClaimExpired, Extend, Message, Open, Rotate, TopUp, Withdraw};
use protocol::{Authority, ChannelId};

/// The channel commands, at the top level of `slotpay` (its `Command` flattens them).
#[derive(clap::Subcommand, Debug)]
pub enum ChannelCommand {
    /// Open a channel for a payee (the AS) with a deposit.
    Open {
        /// Which contract, on which node.
        #[command(flatten)]
        chain: ChainArgs,
        /// The payer, who signs the transaction.
        #[command(flatten)]
        signer: SignerArgs,
        /// The Authorization Server's account (SS58 or 0x hex).
        #[arg(long)]
        payee: String,
        /// Deposit in the chain's smallest unit.
        #[arg(long)]
        deposit: String,
        /// Blocks from now until the channel expires.
        #[arg(long)]
        expires_in: u32,
        /// Blocks between announcing a new authority and its effect (the AS may require
        /// a minimum: see its terms).
        #[arg(long, default_value_t = 20)]
        notice: u32,
        /// Who signs the channel's receipts in its first epoch.
        #[command(subcommand)]
        authority: AuthorityArg,
    },
    /// Add to a channel's deposit (payer only).
    TopUp {
        /// Which contract, on which node.
        #[command(flatten)]
        chain: ChainArgs,
        /// The payer, who signs the transaction.
        #[command(flatten)]
        signer: SignerArgs,
        /// The channel's id, as `open` printed it.
        #[arg(long)]
        channel: u64,
        /// The value to add, in the chain's smallest unit.
        #[arg(long)]
        amount: String,
    },
    /// Move a channel's expiry later (payer only).
    Extend {
        /// Which contract, on which node.
        #[command(flatten)]
        chain: ChainArgs,
        /// The payer, who signs the transaction.
        #[command(flatten)]
        signer: SignerArgs,
        /// The channel's id, as `open` printed it.
        #[arg(long)]
        channel: u64,
        /// Blocks from now until the new expiry, which must be later than the current one.
        #[arg(long)]
        expires_in: u32,
    },
    /// Replace a channel's authority after its notice period (payer only).
    Rotate {
        /// Which contract, on which node.
        #[command(flatten)]
        chain: ChainArgs,
        /// The payer, who signs the transaction.
        #[command(flatten)]
        signer: SignerArgs,
        /// The channel's id, as `open` printed it.
        #[arg(long)]
        channel: u64,
        /// Who signs the channel's receipts once the notice period has passed.
        #[command(subcommand)]
        authority: AuthorityArg,
    },
    /// Revoke every key of a channel after its notice period (payer only).
    Revoke {
        /// Which contract, on which node.
        #[command(flatten)]
        chain: ChainArgs,
        /// The payer, who signs the transaction.
        #[command(flatten)]
        signer: SignerArgs,
        /// The channel's id, as `open` printed it.
        #[arg(long)]
        channel: u64,
    },
    /// Take what is left of an expired channel back (payer only).
    ClaimExpired {
        /// Which contract, on which node.
        #[command(flatten)]
        chain: ChainArgs,
        /// The payer, who signs the transaction.
        #[command(flatten)]
        signer: SignerArgs,
        /// The channel's id, as `open` printed it.
        #[arg(long)]
        channel: u64,
    },
    /// Take what the contract owes the signer (payments the chain refused earlier).
    Withdraw {
        /// Which contract, on which node.
        #[command(flatten)]
        chain: ChainArgs,
        /// The account owed (a payer or a payee), who signs the transaction.
        #[command(flatten)]
        signer: SignerArgs,
    },
    /// Show a channel as the chain has it, and what the contract owes its payer.
    Status {
        /// Which contract, on which node.
        #[command(flatten)]
        chain: ChainArgs,
        /// The channel's id, as `open` printed it.
        #[arg(long)]
        channel: u64,
    },
}

/// Calls a payer message on the deployment's layer and reports its block and events.
async fn call<M: Message + EvmMessage>(
    chain: &ChainArgs,
    signer: &SignerArgs,
    what: &str,
    value: protocol::Balance,
    message: &M,
) -> Result<(protocol::AccountId32, Done)>
where
    <M as Message>::Output: chain::Answer,
{
    let contract = chain.contract().await?;
    let signer = signer.signer_on(contract.layer())?;
    let done = with_progress(what, contract.call(&signer, value, message)).await?;
    Ok((signer.account(), done))
}

async fn best_block(contract: &AnyContract) -> Result<u32> {
    Ok(contract.node().best().await?)
}

/// Runs one channel command (a transaction is awaited until finalized) and prints the
/// outcome: its block, what it cost the signer, any payment the contract deferred.
pub async fn run(command: ChannelCommand, o: &Output) -> Result<()> {
    match command {
        ChannelCommand::Open {
            chain,
            signer,
            payee,
            deposit,
            expires_in,
            notice,
            authority: arg,
        } => {
            let contract = chain.contract().await?;
            let signer = signer.signer_on(contract.layer())?;
            let expires_at = best_block(&contract).await?.saturating_add(expires_in);
            let message = Open {
                payee: parse_account(&payee)?,
                authority: authority(&arg, &signer, contract.layer())?,
                expires_at,
                notice,
            };
            let done = with_progress(
                "opening the channel",
                contract.call(&signer, parse_amount(&deposit, "deposit")?, &message),
            )
            .await?;
            let Some(SlotpayEvent::Opened(opened)) = done.events.first() else {
                bail!("open emitted no Opened event");
            };
            o.print(
                with_costs(
                    serde_json::json!({"channel": opened.channel.0, "block": done.block,
                        "expires_at": expires_at, "notice": notice, "payer": account_text(&signer.account())}),
                    &done,
                ),
                format!(
                    "opened channel {} in block {} (expires at block {expires_at}, rotation notice {notice} blocks; fee {})",
                    opened.channel, done.block, done.fee
                ),
            );
        }
        ChannelCommand::TopUp {
            chain,
            signer,
            channel,
            amount,
        } => {
            let message = TopUp {
                channel: ChannelId(channel),
            };
            let (_, done) = call(
                &chain,
                &signer,
                "topping up",
                parse_amount(&amount, "amount")?,
                &message,
            )
            .await?;
            o.print(
                with_costs(serde_json::json!({"block": done.block}), &done),
                format!("topped up channel {channel} in block {}", done.block),
            );
        }
        ChannelCommand::Extend {
            chain,
            signer,
            channel,
            expires_in,
        } => {
            let contract = chain.contract().await?;
            let expires_at = best_block(&contract).await?.saturating_add(expires_in);
            let message = Extend {
                channel: ChannelId(channel),
                expires_at,
            };
            let (_, done) = call(&chain, &signer, "extending", 0, &message).await?;
            o.print(
                with_costs(
                    serde_json::json!({"block": done.block, "expires_at": expires_at}),
                    &done,
                ),
                format!("channel {channel} now expires at block {expires_at}"),
            );
        }
        ChannelCommand::Rotate {
            chain,
            signer: signer_args,
            channel,
            authority: arg,
        } => {
            let layer = chain.contract().await?.layer();
            let signer = signer_args.signer_on(layer)?;
            let message = Rotate {
                channel: ChannelId(channel),
                authority: authority(&arg, &signer, layer)?,
            };
            rotated(&chain, &signer_args, message, o).await?;
        }
        ChannelCommand::Revoke {
            chain,
            signer,
            channel,
        } => {
            let message = Rotate {
                channel: ChannelId(channel),
                authority: Authority::Revoked,
            };
            rotated(&chain, &signer, message, o).await?;
        }
        ChannelCommand::ClaimExpired {
            chain,
            signer,
            channel,
        } => {
            let message = ClaimExpired {
                channel: ChannelId(channel),
            };
            let (_, done) = call(&chain, &signer, "claiming the deposit back", 0, &message).await?;
            let refunded = done.events.iter().find_map(|e| match e {
                SlotpayEvent::ExpiredClaimed(c) => Some(c.refunded),
                _ => None,
            });
            o.print(
                with_costs(
                    serde_json::json!({"block": done.block, "refunded": refunded.map(|r| r.to_string()),
                        "deferred": deferred(&done.events)}),
                    &done,
                ),
                format!("claimed channel {channel} in block {}", done.block),
            );
        }
        ChannelCommand::Withdraw { chain, signer } => {
            let (_, done) = call(&chain, &signer, "withdrawing", 0, &Withdraw).await?;
            let amount = done.events.iter().find_map(|e| match e {
                SlotpayEvent::Withdrawn(w) => Some(w.amount),
                _ => None,
            });
            o.print(
                with_costs(
                    serde_json::json!({"block": done.block, "withdrawn": amount.map(|a| a.to_string())}),
                    &done,
                ),
                format!("withdrew {} in block {}", amount.unwrap_or(0), done.block),
            );
        }
        ChannelCommand::Status { chain, channel } => {
            let contract = chain.contract().await?;
            let (block, state) = contract.channel(ChannelId(channel), At::Best).await?;
            let Some(c) = state else {
                o.print(
                    serde_json::json!({"channel": channel, "open": false, "block": block}),
                    format!("channel {channel}: not open (closed, claimed or never opened) at block {block}"),
                );
                return Ok(());
            };
            let owed = contract.owed(c.payer, At::Best).await?;
            let rotation = c.rotation.map(|r| {
                serde_json::json!({"authority": authority_text(&r.authority), "effective_at": r.effective_at})
            });
            let rotation_text = c.rotation.map_or(String::new(), |r| {
                format!(
                    "\n  rotation  to {} at block {}",
                    authority_text(&r.authority),
                    r.effective_at
                )
            });
            o.print(
                serde_json::json!({"channel": channel, "open": true, "block": block,
                    "payer": account_text(&c.payer), "payee": account_text(&c.payee), "deposit": c.deposit.to_string(),
                    "settled": c.settled.to_string(), "epoch": c.epoch, "expires_at": c.expires_at,
                    "notice": c.notice, "authority": authority_text(&c.authority), "rotation": rotation,
                    "owed_to_payer": owed.to_string()}),
                format!(
                    "channel {channel} at block {block}\n  payer     {}\n  payee     {}\n  deposit   {}\n  settled   {}\n  expires   block {}\n  authority {} (epoch {}, notice {} blocks){rotation_text}\n  owed to the payer: {owed}",
                    account_text(&c.payer), account_text(&c.payee), c.deposit, c.settled, c.expires_at,
                    authority_text(&c.authority), c.epoch, c.notice
                ),
            );
        }
    }
    Ok(())
}

/// `value` with the transaction's costs to its signer added.
fn with_costs(mut value: serde_json::Value, done: &Done) -> serde_json::Value {
    for (k, v) in done.costs_json() {
        value[k] = v.into();
    }
    value
}

fn deferred(events: &[SlotpayEvent]) -> Vec<serde_json::Value> {
    events
        .iter()
        .filter_map(|e| match e {
            SlotpayEvent::PaymentDeferred(d) => Some(
                serde_json::json!({"account": account_text(&d.account), "amount": d.amount.to_string()}),
            ),
            _ => None,
        })
        .collect()
}

async fn rotated(
    chain: &ChainArgs,
    signer: &SignerArgs,
    message: Rotate,
    o: &Output,
) -> Result<()> {
    let (_, done) = call(chain, signer, "announcing the new authority", 0, &message).await?;
    let Some(SlotpayEvent::RotationAnnounced(r)) = done.events.first() else {
        bail!("rotate emitted no RotationAnnounced event");
    };
    o.print(
        with_costs(
            serde_json::json!({"channel": r.channel.0, "block": done.block, "epoch": r.epoch,
                "effective_at": r.effective_at, "authority": authority_text(&r.authority)}),
            &done,
        ),
        format!(
            "channel {}: {} takes over at block {} (epoch {}); until then the current keys' receipts still count",
            r.channel,
            authority_text(&r.authority),
            r.effective_at,
            r.epoch
        ),
    );
    Ok(())
}
