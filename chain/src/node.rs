//! The node connection: one reconnecting WebSocket, subxt's client on it, and what every
//! signed transaction needs (a nonce from the node's pool, inclusion or finality, the
//! events it caused).
use crate::{BlockHash, ChainError};
use protocol::{AccountId32, Balance};
use std::time::Duration;
use subxt::backend::legacy::LegacyRpcMethods;
use subxt::backend::rpc::reconnecting_rpc_client::{FibonacciBackoff, RpcClient as Reconnecting};
use subxt::backend::rpc::RpcClient;
use subxt::blocks::ExtrinsicEvents;
use subxt::config::DefaultExtrinsicParamsBuilder;
use subxt::tx::{Payload, Signer, TxStatus};
use subxt::{OnlineClient, PolkadotConfig};

/// subxt's client, for what this crate does not wrap.
pub type Api = OnlineClient<PolkadotConfig>;

/// How long a submitted transaction is watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finality {
    /// Until it is in a best block: the fastest answer; a fork could still drop it.
    Best,
    /// Until its block is finalized.
    Finalized,
}

/// A transaction in a block, with what it caused.
pub struct Included {
    /// The block's number.
    pub block: u32,
    /// The block's hash.
    pub block_hash: BlockHash,
    /// The transaction's events.
    pub events: ExtrinsicEvents<PolkadotConfig>,
    /// What the signer paid (`TransactionPayment::TransactionFeePaid`'s `actual_fee`, which counts the tip).
    pub fee: Balance,
}

/// A connection to one node, re-made automatically (exponential back-off up to 5 s, for
/// ever) when the node goes away; subscriptions resume after it.
#[derive(Clone)]
pub struct Node {
    api: Api,
    rpc: LegacyRpcMethods<PolkadotConfig>,
    url: String,
    /// Held from reading a nonce until the transaction is in the pool, so that
    /// transactions submitted at once (several batches of closes) get distinct nonces.
    submitting: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Node {
    /// Connects to `url` (ws:// or wss://).
    pub async fn connect(url: &str) -> Result<Self, ChainError> {
        let client = Reconnecting::builder()
            // Back within a second of the node's return: a node restart is routine,
            // and every purchase answers 503 until the connection is back.
            .retry_policy(FibonacciBackoff::from_millis(100).max_delay(Duration::from_secs(1)))
            .build(url.to_owned())
            .await
            .map_err(|e| {
                ChainError::Rpc(subxt::error::RpcError::ClientError(Box::new(e)).into())
            })?;
        let rpc = RpcClient::new(client);
        let api = Api::from_rpc_client(rpc.clone()).await?;
        Ok(Self {
            api,
            rpc: LegacyRpcMethods::new(rpc),
            url: url.to_owned(),
            submitting: std::sync::Arc::default(),
        })
    }

    /// subxt's client.
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// The node's legacy RPC methods.
    pub fn rpc(&self) -> &LegacyRpcMethods<PolkadotConfig> {
        &self.rpc
    }

    /// The URL it was connected to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The chain's genesis hash.
    pub fn genesis_hash(&self) -> [u8; 32] {
        self.api.genesis_hash().0
    }

    /// The best block's number and hash.
    pub async fn best(&self) -> Result<(u32, BlockHash), ChainError> {
        let header = self
            .rpc
            .chain_get_header(None)
            .await?
            .ok_or_else(|| ChainError::Other("the node has no best block".into()))?;
        Ok((header.number, subxt::config::Header::hash(&header)))
    }

    /// The latest finalized block's number and hash.
    pub async fn finalized(&self) -> Result<(u32, BlockHash), ChainError> {
        let hash = self.rpc.chain_get_finalized_head().await?;
        let header = self
            .rpc
            .chain_get_header(Some(hash))
            .await?
            .ok_or_else(|| ChainError::Other("the node has no finalized header".into()))?;
        Ok((header.number, hash))
    }

    /// A pallet constant of type `u128` (say `Balances::ExistentialDeposit`).
    pub fn constant_u128(&self, pallet: &str, name: &str) -> Result<u128, ChainError> {
        let value = self
            .api
            .constants()
            .at(&subxt::dynamic::constant(pallet, name))?
            .to_value()
            .map_err(|e| ChainError::decode(format!("{pallet}::{name}"), e))?;
        value
            .as_u128()
            .ok_or_else(|| ChainError::decode(format!("{pallet}::{name}"), "not an integer"))
    }

    /// Signs `payload` with `signer` and watches it until `finality`. The nonce comes from
    /// the node's `system_accountNextIndex` (best block and pool), not from the last
    /// finalized block as subxt's default does: after a node restart the last block can
    /// stay unfinalized, and a nonce read there is already used ("Transaction is
    /// outdated"). A transaction that fails in its block is an error with the dispatch
    /// error named from the metadata.
    pub async fn submit<S: Signer<PolkadotConfig>, P: Payload>(
        &self,
        signer: &S,
        payload: &P,
        finality: Finality,
    ) -> Result<Included, ChainError> {
        let mut progress = {
            let _pool = self.submitting.lock().await;
            let nonce = self
                .rpc
                .system_account_next_index(&signer.account_id())
                .await?;
            let params = DefaultExtrinsicParamsBuilder::<PolkadotConfig>::new()
                .nonce(nonce)
                .build();
            self.api
                .tx()
                .sign_and_submit_then_watch(payload, signer, params)
                .await?
        };
        while let Some(status) = progress.next().await {
            let in_block = match status? {
                TxStatus::InBestBlock(tx) if finality == Finality::Best => tx,
                TxStatus::InFinalizedBlock(tx) => tx,
                TxStatus::Error { message }
                | TxStatus::Invalid { message }
                | TxStatus::Dropped { message } => return Err(ChainError::NotIncluded(message)),
                _ => continue,
            };
            let events = in_block.wait_for_success().await?;
            let block = self.api.blocks().at(in_block.block_hash()).await?.number();
            let origin = signer.account_id();
            let mut fee = 0;
            for paid in events.find::<crate::events::TransactionFeePaid>() {
                let paid = paid?;
                if paid.who == origin {
                    fee += paid.actual_fee;
                }
            }
            return Ok(Included {
                block,
                block_hash: in_block.block_hash(),
                events,
                fee,
            });
        }
        Err(ChainError::NotIncluded(
            "the node stopped reporting on the transaction".into(),
        ))
    }

    /// The free balance of `account` at the best block.
    pub async fn free_balance(&self, account: &AccountId32) -> Result<Balance, ChainError> {
        crate::balances::free(self, account).await
    }
}

impl Node {
    /// The block's timestamp (`Timestamp::Now`), in milliseconds.
    pub async fn timestamp_ms(&self, at: BlockHash) -> Result<u64, ChainError> {
        let query =
            subxt::dynamic::storage("Timestamp", "Now", Vec::<subxt::dynamic::Value>::new());
        let value = self
            .api
            .storage()
            .at(at)
            .fetch(&query)
            .await?
            .ok_or_else(|| ChainError::decode("Timestamp::Now", "absent"))?
            .to_value()
            .map_err(|e| ChainError::decode("Timestamp::Now", e))?;
        value
            .as_u128()
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| ChainError::decode("Timestamp::Now", "not an integer"))
    }

    /// How far finality lags the best block now, in seconds of block time.
    pub async fn finality_lag_seconds(&self) -> Result<f64, ChainError> {
        let (_, best) = self.best().await?;
        let (_, finalized) = self.finalized().await?;
        let lag = self
            .timestamp_ms(best)
            .await?
            .saturating_sub(self.timestamp_ms(finalized).await?);
        Ok(lag as f64 / 1000.0)
    }
}

impl Included {
    /// Storage deposit `account` put on hold and got back in this transaction.
    pub fn storage_deposit(&self, account: &AccountId32) -> (Balance, Balance) {
        use crate::events::{
            StorageDepositTransferredAndHeld, StorageDepositTransferredAndReleased,
        };
        let held = self
            .events
            .find::<StorageDepositTransferredAndHeld>()
            .filter_map(Result::ok)
            .filter(|e| e.from.0 == *account)
            .map(|e| e.amount)
            .sum();
        let released = self
            .events
            .find::<StorageDepositTransferredAndReleased>()
            .filter_map(Result::ok)
            .filter(|e| e.to.0 == *account)
            .map(|e| e.amount)
            .sum();
        (held, released)
    }

    /// What the transaction cost `account` beyond the value it moved, as JSON fields:
    /// its fee and the storage deposit it put on hold or got back.
    pub fn costs_json(&self, account: &AccountId32) -> [(&'static str, String); 3] {
        let (held, released) = self.storage_deposit(account);
        [
            ("fee", self.fee.to_string()),
            ("storage_deposit_held", held.to_string()),
            ("storage_deposit_released", released.to_string()),
        ]
    }
}
