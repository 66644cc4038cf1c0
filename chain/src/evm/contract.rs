//! The contract at one address: bound to a deployment, read, dry-run, called; deployed
//! from forge's artifact; its ABI checked against the artifact's.
use super::*;

/// The slotpay contract at one address of an EVM chain.
#[derive(Clone)]
pub struct EvmContract {
    node: EvmNode,
    address: [u8; 20],
}

impl EvmContract {
    /// The contract at `address` on `node` (unchecked: see [`Self::bind`]).
    pub fn new(node: EvmNode, address: [u8; 20]) -> Self {
        Self { node, address }
    }

    /// The node.
    pub fn node(&self) -> &EvmNode {
        &self.node
    }

    /// Its address.
    pub fn address(&self) -> [u8; 20] {
        self.address
    }

    /// Its account ([`protocol::evm_account`]).
    pub fn account(&self) -> AccountId32 {
        evm_account(&self.address)
    }

    /// What receipts for it are bound to.
    pub fn domain(&self) -> EvmDomain {
        EvmDomain {
            chain_id: self.node.chain_id,
            contract: self.address,
        }
    }

    /// The contract `domain` names on `node`, after checking that the node serves that
    /// chain (its id and, when given, its genesis hash) and that the contract there
    /// computes the domain separator of that domain: the one check every caller makes
    /// before it trusts an EVM deployment.
    pub async fn bind(
        node: EvmNode,
        domain: &EvmDomain,
        genesis_hash: Option<[u8; 32]>,
    ) -> Result<Self, ChainError> {
        if node.chain_id != domain.chain_id {
            return Err(ChainError::Other(format!(
                "the deployment is for EVM chain {}, but {} serves chain {}",
                domain.chain_id, node.url, node.chain_id
            )));
        }
        if let Some(expected) = genesis_hash {
            let found = node.genesis_hash().await?;
            if found != expected {
                return Err(ChainError::WrongChain {
                    expected,
                    found,
                    url: node.url.clone(),
                });
            }
        }
        let contract = Self::new(node, domain.contract);
        let data = contract
            .eth_call(
                None,
                0,
                SlotpayChannels::domainSeparatorCall {}.abi_encode(),
                BlockId::Number(BlockNumberOrTag::Latest),
                "domainSeparator",
            )
            .await?;
        let separator = decoded(
            "domainSeparator",
            SlotpayChannels::domainSeparatorCall::abi_decode_returns(&data),
        )?;
        let expected = domain.separator::<protocol::crypto::backend::SoftHasher>();
        if separator.0 != expected {
            return Err(ChainError::Other(format!(
                "the contract at 0x{} computes another EIP-712 domain than chain {} and its own address: not a slotpay contract of this deployment",
                hex::encode(domain.contract),
                domain.chain_id
            )));
        }
        Ok(contract)
    }

    async fn eth_call(
        &self,
        from: Option<AccountId32>,
        value: Balance,
        data: Vec<u8>,
        at: BlockId,
        label: &'static str,
    ) -> Result<Vec<u8>, ChainError> {
        let mut tx = TransactionRequest::default()
            .with_to(Address::from(self.address))
            .with_input(data)
            .with_value(U256::from(value));
        if let Some(from) = from {
            tx = tx.with_from(address_of(&from)?);
        }
        match self.node.provider.call(tx).block(at).await {
            Ok(bytes) => Ok(bytes.to_vec()),
            Err(e) => match e.as_error_resp().and_then(|p| p.as_revert_data()) {
                Some(data) => Err(refusal(label, &data)),
                None => Err(rpc(e)),
            },
        }
    }

    /// `message` run as `from` with `value` at `at` (an `eth_call`): its answer, or the
    /// contract's refusal.
    pub async fn dry_run<M: EvmMessage>(
        &self,
        from: AccountId32,
        value: Balance,
        message: &M,
        at: crate::At,
    ) -> Result<M::Value, ChainError> {
        let data = self
            .eth_call(
                Some(from),
                value,
                message.evm_data()?,
                block_id(at),
                M::LABEL,
            )
            .await?;
        M::evm_value(&data)
    }

    /// A read-only message's answer at `at`, with the number of the block read.
    pub async fn read<M: EvmMessage>(
        &self,
        message: &M,
        at: crate::At,
    ) -> Result<(u32, M::Value), ChainError> {
        // The block first, then the read at that very block.
        let (number, hash) = match at {
            crate::At::Best => self.node.best().await?,
            crate::At::Finalized => self.node.finalized().await?,
            crate::At::Block(hash) => {
                let block = self
                    .node
                    .provider
                    .get_block_by_hash(b256(&hash))
                    .await
                    .map_err(rpc)?
                    .ok_or_else(|| ChainError::Other(format!("no block {hash:?}")))?;
                (block_number(block.header.number), hash)
            }
        };
        let data = self
            .eth_call(
                None,
                0,
                message.evm_data()?,
                BlockId::hash(b256(&hash)),
                M::LABEL,
            )
            .await?;
        Ok((number, M::evm_value(&data)?))
    }

    /// The gas `data` sent by `from` with `value` needs at the best block (its
    /// `eth_estimateGas`), or the contract's refusal.
    pub async fn estimate(
        &self,
        from: AccountId32,
        value: Balance,
        data: Vec<u8>,
        label: &'static str,
    ) -> Result<u64, ChainError> {
        // The refusal, by name, from a dry run first (estimateGas reports reverts
        // less uniformly across nodes).
        self.eth_call(
            Some(from),
            value,
            data.clone(),
            BlockId::Number(BlockNumberOrTag::Latest),
            label,
        )
        .await?;
        let tx = TransactionRequest::default()
            .with_from(address_of(&from)?)
            .with_to(Address::from(self.address))
            .with_input(data)
            .with_value(U256::from(value));
        self.node.provider.estimate_gas(tx).await.map_err(rpc)
    }

    /// Calls `message` with `value`, signed by `signer`: dry-run and gas estimated first
    /// (a refusal costs nothing and names the contract's error), then sent and watched
    /// until its receipt.
    pub async fn call<M: EvmMessage>(
        &self,
        signer: &EvmSigner,
        value: Balance,
        message: &M,
    ) -> Result<EvmIncluded, ChainError> {
        let mut sent = self
            .send_many(signer, &[(M::LABEL, value, message.evm_data()?)])
            .await?;
        sent.pop().expect("one call")
    }

    /// Several calls (label, value, data), each dry-run and estimated first; those the
    /// contract would refuse are reported so and not sent; the others are sent at once
    /// with consecutive nonces (so that they share blocks), each with its estimate plus
    /// a quarter as its gas limit. One outcome per call, in order.
    pub async fn send_many(
        &self,
        signer: &EvmSigner,
        calls: &[(&'static str, Balance, Vec<u8>)],
    ) -> Result<Vec<Result<EvmIncluded, ChainError>>, ChainError> {
        let from = signer.account();
        let estimates = futures::future::join_all(
            calls
                .iter()
                .map(|(label, value, data)| self.estimate(from, *value, data.clone(), label)),
        )
        .await;
        let mut out: Vec<Option<Result<EvmIncluded, ChainError>>> = Vec::new();
        let mut txs = Vec::new();
        for ((_, value, data), estimate) in calls.iter().zip(estimates) {
            match estimate {
                Ok(gas) => {
                    out.push(None);
                    let tx = TransactionRequest::default()
                        .with_to(Address::from(self.address))
                        .with_input(data.clone())
                        .with_value(U256::from(*value));
                    txs.push((tx, gas_limit(gas)));
                }
                Err(e) if e.is_unreachable() => return Err(e),
                Err(e) => out.push(Some(Err(e))),
            }
        }
        let mut sent = if txs.is_empty() {
            Vec::new()
        } else {
            self.node.send_all(signer, txs).await?
        }
        .into_iter();
        Ok(out
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| {
                    sent.next()
                        .unwrap_or_else(|| Err(ChainError::NotIncluded("no outcome".into())))
                })
            })
            .collect())
    }
}

/// Deploys the contract from forge's artifact (`.bytecode.object`), signed by `signer`;
/// returns its address and the deployment's receipt.
pub async fn deploy(
    node: &EvmNode,
    signer: &EvmSigner,
    artifact: &std::path::Path,
) -> Result<([u8; 20], [u8; 32], EvmIncluded), ChainError> {
    let other = |reason: String| ChainError::Other(format!("{}: {reason}", artifact.display()));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(artifact).map_err(|e| other(e.to_string()))?)
            .map_err(|e| other(e.to_string()))?;
    let code = |field: &str| -> Result<Vec<u8>, ChainError> {
        let text = json[field]["object"]
            .as_str()
            .ok_or_else(|| other(format!("no {field}.object: not a forge artifact")))?;
        hex::decode(text.trim_start_matches("0x")).map_err(|e| other(e.to_string()))
    };
    let init = code("bytecode")?;
    let runtime = code("deployedBytecode")?;
    let from = address_of(&signer.account())?;
    let tx = TransactionRequest::default()
        .with_from(from)
        .with_deploy_code(init.clone());
    let gas = node.provider.estimate_gas(tx.clone()).await.map_err(rpc)?;
    let mut sent = node.send_all(signer, vec![(tx, gas + gas / 4)]).await?;
    let included = sent.pop().expect("one transaction")?;
    let address = included
        .created
        .ok_or_else(|| ChainError::Other("the deployment created no contract".into()))?;
    let code_hash = alloy::primitives::keccak256(&runtime).0;
    Ok((address, code_hash, included))
}

/// Differences between the ABI written here and the one in forge's artifact (its
/// `.abi`): every function's, event's and error's signature, each way. Empty when they
/// agree.
pub fn abi_mismatches(artifact_abi: &alloy::json_abi::JsonAbi) -> Vec<String> {
    use std::collections::BTreeSet;
    let ours: BTreeSet<String> = SlotpayChannels::SlotpayChannelsCalls::SIGNATURES
        .iter()
        .chain(SlotpayChannels::SlotpayChannelsEvents::SIGNATURES)
        .chain(Errors::SIGNATURES)
        .map(|s| s.to_string())
        .collect();
    let mut theirs = BTreeSet::new();
    for f in artifact_abi.functions() {
        theirs.insert(f.signature());
    }
    for e in artifact_abi.events() {
        theirs.insert(e.signature());
    }
    for e in artifact_abi.errors() {
        theirs.insert(e.signature());
    }
    let mut out = Vec::new();
    // Constant getters of the artifact (ACCOUNT(), PAYMENT_GAS(), ...) and EIP-5267's
    // eip712Domain() are not called off-chain: not in ours, and not a mismatch.
    let unused = [
        "ACCOUNT()",
        "DELEGATE()",
        "GROUP()",
        "REVOKED()",
        "MAX_PROOF_DEPTH()",
        "PAYMENT_GAS()",
        "RECEIPT_TYPEHASH()",
        "eip712Domain()",
    ];
    for s in theirs.difference(&ours) {
        if !unused.contains(&s.as_str()) {
            out.push(format!("the artifact has {s}, the client does not"));
        }
    }
    for s in ours.difference(&theirs) {
        out.push(format!("the client has {s}, the artifact does not"));
    }
    out
}

/// What each push payment of a message may cost beyond its estimate: a payment that the
/// estimate saw accepted may be refused when the transaction runs (a payer contract can
/// tell `eth_estimateGas`, run at gas price 0, from the real thing): the contract then
/// burns up to its `PAYMENT_GAS` (10,000) and records the amount as owed (a new storage
/// word and an event, some 25,000).
const PAYMENT_SURPRISE: u64 = 10_000 + 25_000;

/// A transaction's gas limit for an estimate of `gas`: a quarter more, and at least room
/// for both of a close's payments (payee and payer) turning into owed amounts. Gas not
/// used is not charged.
pub fn gas_limit(gas: u64) -> u64 {
    gas.saturating_add((gas / 4).max(2 * PAYMENT_SURPRISE))
}
