//! Chain access for the CLI: signers, accounts, balances, and a progress line while
//! waiting for finality.
use anyhow::{Context, Result};
use protocol::AccountId32;
use std::io::{IsTerminal, Write};
use std::str::FromStr;
use std::time::{Duration, Instant};
use subxt::dynamic::Value;
use subxt::ext::scale_value::At;
use subxt::tx::Signer;
use subxt::{OnlineClient, PolkadotConfig};
use subxt_signer::{ecdsa, sr25519, SecretUri};

/// Who signs extrinsics: a Substrate sr25519 account (`--suri`) or an ECDSA account
/// whose key is a slotpay key file (the payer's-own-key construction).
pub enum AnySigner {
    Sr25519(sr25519::Keypair),
    Ecdsa(ecdsa::Keypair),
}

impl AnySigner {
    pub fn from_suri(suri: &str) -> Result<Self> {
        let uri = SecretUri::from_str(suri).map_err(|e| anyhow::anyhow!("--suri: {e}"))?;
        Ok(Self::Sr25519(
            sr25519::Keypair::from_uri(&uri).map_err(|e| anyhow::anyhow!("--suri: {e}"))?,
        ))
    }

    pub fn from_ecdsa_secret(secret: &[u8; 32]) -> Result<Self> {
        Ok(Self::Ecdsa(
            ecdsa::Keypair::from_secret_key(*secret)
                .map_err(|e| anyhow::anyhow!("ECDSA key: {e}"))?,
        ))
    }

    pub fn account(&self) -> AccountId32 {
        <Self as Signer<PolkadotConfig>>::account_id(self).0
    }
}

impl Signer<PolkadotConfig> for AnySigner {
    fn account_id(&self) -> <PolkadotConfig as subxt::Config>::AccountId {
        match self {
            AnySigner::Sr25519(k) => Signer::<PolkadotConfig>::account_id(k),
            AnySigner::Ecdsa(k) => Signer::<PolkadotConfig>::account_id(k),
        }
    }

    fn address(&self) -> <PolkadotConfig as subxt::Config>::Address {
        match self {
            AnySigner::Sr25519(k) => Signer::<PolkadotConfig>::address(k),
            AnySigner::Ecdsa(k) => Signer::<PolkadotConfig>::address(k),
        }
    }

    fn sign(&self, payload: &[u8]) -> <PolkadotConfig as subxt::Config>::Signature {
        match self {
            AnySigner::Sr25519(k) => Signer::<PolkadotConfig>::sign(k, payload),
            AnySigner::Ecdsa(k) => Signer::<PolkadotConfig>::sign(k, payload),
        }
    }
}

/// An account given as SS58 or 0x-prefixed hex.
pub fn parse_account(text: &str) -> Result<AccountId32> {
    if text.starts_with("0x") {
        return slotpay_as::api::from_hex::<32>(text, "account")
            .map_err(|e| anyhow::anyhow!("{e}"));
    }
    Ok(subxt::utils::AccountId32::from_str(text)
        .map_err(|e| anyhow::anyhow!("{text:?} is neither SS58 nor 0x hex: {e}"))?
        .0)
}

pub fn ss58(account: &AccountId32) -> String {
    subxt::utils::AccountId32(*account).to_string()
}

/// Free balance of `account`.
pub async fn free_balance(
    api: &OnlineClient<PolkadotConfig>,
    account: &AccountId32,
) -> Result<u128> {
    let query = subxt::dynamic::storage("System", "Account", vec![Value::from_bytes(account)]);
    let Some(info) = api.storage().at_latest().await?.fetch(&query).await? else {
        return Ok(0);
    };
    let value = info.to_value().context("decode System.Account")?;
    value
        .at("data")
        .and_then(|d| d.at("free"))
        .and_then(|f| f.as_u128())
        .context("System.Account has no data.free")
}

/// Transfers `amount` to `to` and waits for finality.
pub async fn transfer(
    api: &OnlineClient<PolkadotConfig>,
    rpc: &subxt::backend::legacy::LegacyRpcMethods<PolkadotConfig>,
    signer: &AnySigner,
    to: &AccountId32,
    amount: u128,
) -> Result<()> {
    let tx = subxt::dynamic::tx(
        "Balances",
        "transfer_keep_alive",
        vec![
            Value::unnamed_variant("Id", [Value::from_bytes(to)]),
            Value::u128(amount),
        ],
    );
    let params = slotpay_as::chain::next_tx_params(rpc, &signer.account_id()).await?;
    api.tx()
        .sign_and_submit_then_watch(&tx, signer, params)
        .await?
        .wait_for_finalized_success()
        .await?;
    Ok(())
}

/// Runs `work` while showing what it waits for (a ticking line on a terminal, one line
/// otherwise), then how long it took.
pub async fn with_progress<T, F: std::future::Future<Output = T>>(what: &str, work: F) -> T {
    let start = Instant::now();
    let tty = std::io::stderr().is_terminal();
    if !tty {
        eprintln!("{what} ...");
    }
    let ticker = async {
        let frames = ['|', '/', '-', '\\'];
        for i in 0usize.. {
            if tty {
                eprint!(
                    "\r{} {what} ({:.1} s)",
                    frames[i % 4],
                    start.elapsed().as_secs_f64()
                );
                let _ = std::io::stderr().flush();
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    };
    let result = tokio::select! {
        r = work => r,
        _ = ticker => unreachable!("the ticker never ends"),
    };
    if tty {
        eprintln!(
            "\r  {what}: {:.1} s          ",
            start.elapsed().as_secs_f64()
        );
    }
    result
}
