//! Balances: reading them, moving them, and the chain's existential deposit.
use crate::node::{Finality, Included, Node};
use crate::ChainError;
use protocol::{AccountId32, Balance};
use subxt::dynamic::{At, Value};
use subxt::tx::Signer;
use subxt::PolkadotConfig;

/// Free balance of `account` at the best block (0 for an account that does not exist).
pub async fn free(node: &Node, account: &AccountId32) -> Result<Balance, ChainError> {
    let query = subxt::dynamic::storage("System", "Account", vec![Value::from_bytes(account)]);
    let (_, best) = node.best().await?;
    let Some(info) = node.api().storage().at(best).fetch(&query).await? else {
        return Ok(0);
    };
    let value = info
        .to_value()
        .map_err(|e| ChainError::decode("System::Account", e))?;
    value
        .at("data")
        .and_then(|d| d.at("free"))
        .and_then(|f| f.as_u128())
        .ok_or_else(|| ChainError::decode("System::Account", "no data.free"))
}

/// The least balance an account may hold (`Balances::ExistentialDeposit`).
pub fn existential_deposit(node: &Node) -> Result<Balance, ChainError> {
    node.constant_u128("Balances", "ExistentialDeposit")
}

/// Transfers `amount` to `to`. `keep_alive` refuses a transfer that would take the
/// sender below the existential deposit; without it the sender's account may be reaped.
pub async fn transfer<S: Signer<PolkadotConfig>>(
    node: &Node,
    signer: &S,
    to: &AccountId32,
    amount: Balance,
    keep_alive: bool,
    finality: Finality,
) -> Result<Included, ChainError> {
    let call = if keep_alive {
        "transfer_keep_alive"
    } else {
        "transfer_allow_death"
    };
    let tx = subxt::dynamic::tx(
        "Balances",
        call,
        vec![
            Value::unnamed_variant("Id", [Value::from_bytes(to)]),
            Value::u128(amount),
        ],
    );
    node.submit(signer, &tx, finality).await
}
