//! The node: a WebSocket provider, reads at a block, transactions signed locally and sent
//! with consecutive nonces, and their receipts.
use super::*;

/// A transaction in a block, with what it caused and cost.
#[derive(Debug, Clone)]
pub struct EvmIncluded {
    /// The block's number.
    pub block: u32,
    /// The transaction's hash.
    pub hash: [u8; 32],
    /// Gas it used.
    pub gas_used: u64,
    /// What one gas cost (`effectiveGasPrice`).
    pub effective_gas_price: u128,
    /// What the sender paid for it: `gasUsed × effectiveGasPrice`.
    pub fee: Balance,
    /// The contract's events, in order.
    pub events: Vec<SlotpayEvent>,
    /// A contract it created (a deployment).
    pub created: Option<[u8; 20]>,
}

/// A connection to one EVM node.
#[derive(Clone)]
pub struct EvmNode {
    pub(super) provider: DynProvider,
    pub(super) url: String,
    pub(super) chain_id: u64,
    /// Held from reading a nonce until the transactions using it are sent, so that
    /// transactions sent at once get consecutive nonces.
    sending: Arc<tokio::sync::Mutex<()>>,
}

pub(super) fn rpc(e: impl std::fmt::Display) -> ChainError {
    ChainError::Evm(e.to_string())
}

pub(super) fn b256(hash: &crate::BlockHash) -> B256 {
    B256::from(hash.0)
}

pub(super) fn block_number(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Where an EVM read looks.
pub(super) fn block_id(at: crate::At) -> BlockId {
    match at {
        crate::At::Best => BlockId::Number(BlockNumberOrTag::Latest),
        crate::At::Finalized => BlockId::Number(BlockNumberOrTag::Finalized),
        crate::At::Block(hash) => BlockId::hash(b256(&hash)),
    }
}

impl EvmNode {
    /// Connects to `url` (ws:// or wss://; an http:// URL is taken as the same host's
    /// WebSocket, as anvil serves both on one port).
    pub async fn connect(url: &str) -> Result<Self, ChainError> {
        let ws = url
            .replacen("http://", "ws://", 1)
            .replacen("https://", "wss://", 1);
        let connect = WsConnect::new(ws)
            .with_max_retries(u32::MAX)
            .with_retry_interval(Duration::from_millis(250));
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect_ws(connect)
            .await
            .map_err(rpc)?
            .erased();
        let chain_id = provider.get_chain_id().await.map_err(rpc)?;
        Ok(Self {
            provider,
            url: url.to_owned(),
            chain_id,
            sending: Arc::default(),
        })
    }

    /// alloy's provider, for what this module does not wrap.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The URL it was connected to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The chain's id.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    async fn header(
        &self,
        id: BlockNumberOrTag,
    ) -> Result<(u32, crate::BlockHash, u64, u64), ChainError> {
        let block = self
            .provider
            .get_block_by_number(id)
            .await
            .map_err(rpc)?
            .ok_or_else(|| ChainError::Other(format!("the node has no {id} block")))?;
        let h = &block.header;
        Ok((
            block_number(h.number),
            crate::BlockHash::from(h.hash.0),
            h.timestamp,
            h.gas_limit,
        ))
    }

    /// Block 0's hash: with the chain id, which chain this is.
    pub async fn genesis_hash(&self) -> Result<[u8; 32], ChainError> {
        Ok(self.header(BlockNumberOrTag::Earliest).await?.1 .0)
    }

    /// The best block's number and hash.
    pub async fn best(&self) -> Result<(u32, crate::BlockHash), ChainError> {
        let (n, h, _, _) = self.header(BlockNumberOrTag::Latest).await?;
        Ok((n, h))
    }

    /// The `finalized` block's number and hash.
    pub async fn finalized(&self) -> Result<(u32, crate::BlockHash), ChainError> {
        let (n, h, _, _) = self.header(BlockNumberOrTag::Finalized).await?;
        Ok((n, h))
    }

    /// The best block's gas limit: what one block holds.
    pub async fn block_gas_limit(&self) -> Result<u64, ChainError> {
        Ok(self.header(BlockNumberOrTag::Latest).await?.3)
    }

    /// How far finality lags the best block, in seconds of block time.
    pub async fn finality_lag_seconds(&self) -> Result<f64, ChainError> {
        let (_, _, best, _) = self.header(BlockNumberOrTag::Latest).await?;
        let (_, _, finalized, _) = self.header(BlockNumberOrTag::Finalized).await?;
        Ok(best.saturating_sub(finalized) as f64)
    }

    /// The balance of `account` (an EVM account) at the best block.
    pub async fn balance(&self, account: &AccountId32) -> Result<Balance, ChainError> {
        let address = address_of(account)?;
        let wei = self.provider.get_balance(address).await.map_err(rpc)?;
        u128::try_from(wei).map_err(|_| ChainError::Other("a balance above 2^128".into()))
    }

    /// Sends `value` to `to`, signed by `signer`; waits for its receipt.
    pub async fn transfer(
        &self,
        signer: &EvmSigner,
        to: &AccountId32,
        value: Balance,
    ) -> Result<EvmIncluded, ChainError> {
        let tx = TransactionRequest::default()
            .with_to(address_of(to)?)
            .with_value(U256::from(value));
        let mut sent = self.send_all(signer, vec![(tx, 21_000)]).await?;
        sent.pop().expect("one transaction")
    }

    /// The current fee terms: (max fee per gas, max priority fee per gas).
    async fn fees(&self) -> Result<(u128, u128), ChainError> {
        let block = self
            .provider
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await
            .map_err(rpc)?
            .ok_or_else(|| ChainError::Other("no latest block".into()))?;
        let base = u128::from(block.header.base_fee_per_gas.unwrap_or(0));
        let tip = self
            .provider
            .get_max_priority_fee_per_gas()
            .await
            .map_err(rpc)?;
        // Room for the base fee to double before inclusion.
        Ok((base.saturating_mul(2).saturating_add(tip), tip))
    }

    /// Signs and sends `txs` (each with its gas limit) from `signer` with consecutive
    /// nonces, all before waiting for any: on a node that takes several per block they
    /// share blocks. One receipt (or why not) per transaction, in order.
    pub async fn send_all(
        &self,
        signer: &EvmSigner,
        txs: Vec<(TransactionRequest, u64)>,
    ) -> Result<Vec<Result<EvmIncluded, ChainError>>, ChainError> {
        let from = signer.key.address();
        let wallet = EthereumWallet::from(signer.key.clone());
        let (max_fee, tip) = self.fees().await?;
        let mut pending = Vec::with_capacity(txs.len());
        {
            let _nonces = self.sending.lock().await;
            let mut nonce = self
                .provider
                .get_transaction_count(from)
                .pending()
                .await
                .map_err(rpc)?;
            for (tx, gas) in txs {
                let tx = tx
                    .with_from(from)
                    .with_nonce(nonce)
                    .with_chain_id(self.chain_id)
                    .with_gas_limit(gas)
                    .with_max_fee_per_gas(max_fee)
                    .with_max_priority_fee_per_gas(tip);
                let envelope = tx
                    .build(&wallet)
                    .await
                    .map_err(|e| ChainError::Other(format!("sign a transaction: {e}")))?;
                let encoded = alloy::eips::eip2718::Encodable2718::encoded_2718(&envelope);
                pending.push(self.provider.send_raw_transaction(&encoded).await);
                nonce += 1;
            }
        }
        let mut out = Vec::with_capacity(pending.len());
        for sent in pending {
            out.push(match sent {
                Ok(p) => {
                    let hash = *p.tx_hash();
                    self.receipt_of(hash).await
                }
                Err(e) => Err(ChainError::NotIncluded(e.to_string())),
            });
        }
        Ok(out)
    }

    /// Waits (polling, 10 ms to 250 ms apart, up to 120 s) for the receipt of `hash`.
    async fn receipt_of(&self, hash: B256) -> Result<EvmIncluded, ChainError> {
        let mut delay = Duration::from_millis(10);
        let start = std::time::Instant::now();
        loop {
            if let Some(receipt) = self
                .provider
                .get_transaction_receipt(hash)
                .await
                .map_err(rpc)?
            {
                return included(&receipt);
            }
            if start.elapsed() > Duration::from_secs(120) {
                return Err(ChainError::NotIncluded(format!(
                    "no receipt for {hash} after 120 s"
                )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(250));
        }
    }

    /// The slotpay events of `contract` in blocks `from..=to`, with each one's block.
    pub async fn events_in(
        &self,
        contract: [u8; 20],
        from: u32,
        to: u32,
    ) -> Result<Vec<(u32, SlotpayEvent)>, ChainError> {
        let filter = Filter::new()
            .address(Address::from(contract))
            .from_block(u64::from(from))
            .to_block(u64::from(to));
        let logs = self.provider.get_logs(&filter).await.map_err(rpc)?;
        logs.iter()
            .filter_map(|log| {
                let block = block_number(log.block_number.unwrap_or(0));
                decode_log(log).map(|e| e.map(|e| (block, e)))
            })
            .collect()
    }
}

pub(super) fn included(receipt: &TransactionReceipt) -> Result<EvmIncluded, ChainError> {
    let events = receipt
        .inner
        .logs()
        .iter()
        .filter_map(decode_log)
        .collect::<Result<Vec<_>, _>>()?;
    let out = EvmIncluded {
        block: block_number(receipt.block_number.unwrap_or(0)),
        hash: receipt.transaction_hash.0,
        gas_used: receipt.gas_used,
        effective_gas_price: receipt.effective_gas_price,
        fee: u128::from(receipt.gas_used).saturating_mul(receipt.effective_gas_price),
        events,
        created: receipt.contract_address.map(|a| a.0 .0),
    };
    if !receipt.status() {
        return Err(ChainError::Call {
            message: "transaction",
            reason: format!(
                "reverted in block {} (gas used {}, fee {})",
                out.block, out.gas_used, out.fee
            ),
        });
    }
    Ok(out)
}
