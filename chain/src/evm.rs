//! The EVM settlement layer: `evm/src/SlotpayChannels.sol` on an EVM node (anvil, any
//! Ethereum client), over alloy.
//!
//! One WebSocket provider per node (no HTTP client: the CLI links no hyper); the
//! contract's ABI written once with `sol!` below and checked against the forge artifact
//! by a test ([`abi_mismatches`]); reads as `eth_call` at a block (best, finalized or by
//! hash); state changes dry-run first (a refusal costs no gas and comes back as the
//! contract's error, by name, as [`interface::Error`] where the ink! contract has the
//! same one), then signed locally with an explicit nonce, sent raw, and watched until
//! their receipt. Events come back as the interface's own types ([`SlotpayEvent`]),
//! addresses mapped into 32-byte accounts ([`protocol::evm_account`]), so everything
//! above this module reasons about one kind of event on both layers.
//!
//! Finality is the node's `finalized` block tag: anvil started with
//! `--slots-in-an-epoch N` keeps it 2N blocks behind the best block (without the flag,
//! N = 1: two blocks behind).
use crate::events::SlotpayEvent;
use crate::ChainError;
use alloy::eips::{BlockId, BlockNumberOrTag};
use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder, WsConnect};
use alloy::rpc::types::{Filter, Log, TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolEvent, SolInterface};
use interface::events as ev;
use interface::messages;
use interface::Error;
use protocol::{
    evm_account, evm_address, AccountId32, Authority, Balance, Channel, ChannelId, EvmDomain,
    MerkleRoot, Rotation, SignedReceipt,
};
use std::sync::Arc;
use std::time::Duration;

/// The contract's ABI as Rust types (generated; the event `Opened` has eight fields, so
/// its constructor takes eight arguments).
#[allow(clippy::too_many_arguments)]
mod abi {
    use alloy::sol;
    sol! {
        /// `evm/src/SlotpayChannels.sol`'s external interface (checked against the forge
        /// artifact by `abi_mismatches`).
        #[sol(all_derives)]
        contract SlotpayChannels {
            struct Authority { uint8 kind; bytes32 value; }
            struct MembershipProof { uint128 cap; uint32 leftSiblings; bytes32[] siblings; }
            struct Channel {
                address payer;
                address payee;
                Authority authority;
                uint32 epoch;
                uint128 deposit;
                uint128 settled;
                uint128 base;
                uint32 expiresAt;
                uint32 notice;
                bool rotationPending;
                Authority rotationAuthority;
                uint32 rotationEffectiveAt;
            }

            function open(address payee, Authority authority, uint32 expiresAt, uint32 notice) external payable returns (uint64 id);
            function topUp(uint64 id) external payable;
            function extend(uint64 id, uint32 expiresAt) external;
            function rotate(uint64 id, Authority authority) external returns (uint32 effectiveAt);
            function claimExpired(uint64 id) external;
            function settle(uint64 id, uint32 epoch, uint128 amount, bytes signature) external returns (uint128 paid);
            function settleMember(uint64 id, uint32 epoch, uint128 amount, bytes signature, MembershipProof proof) external returns (uint128 paid);
            function close(uint64 id, uint32 epoch, uint128 amount, bytes signature) external;
            function closeMember(uint64 id, uint32 epoch, uint128 amount, bytes signature, MembershipProof proof) external;
            function closeSettled(uint64 id) external;
            function withdraw() external returns (uint128 amount);
            function withdrawTo(address to) external returns (uint128 amount);
            function channel(uint64 id) external view returns (Channel view_);
            function owed(address account) external view returns (uint128);
            function nextChannelId() external view returns (uint64);
            function domainSeparator() external view returns (bytes32);
            function receiptDigest(uint64 id, uint32 epoch, uint128 amount) external view returns (bytes32);
            function leafHash(address member, uint128 cap) external pure returns (bytes32 h);
            function nodeHash(bytes32 left, bytes32 right) external pure returns (bytes32 h);
            function rootOf(address member, MembershipProof proof) external pure returns (bytes32 acc);

            event Opened(uint64 indexed channel, address payer, address indexed payee, uint8 authorityKind, bytes32 authorityValue, uint128 deposit, uint32 expiresAt, uint32 notice);
            event ToppedUp(uint64 indexed channel, uint128 deposit);
            event Extended(uint64 indexed channel, uint32 expiresAt);
            event RotationAnnounced(uint64 indexed channel, uint8 authorityKind, bytes32 authorityValue, uint32 epoch, uint32 effectiveAt);
            event Settled(uint64 indexed channel, uint32 epoch, uint128 settled, uint128 paid);
            event Closed(uint64 indexed channel, uint128 paid, uint128 refunded);
            event ExpiredClaimed(uint64 indexed channel, uint128 refunded);
            event PaymentDeferred(address indexed account, uint64 indexed channel, uint128 amount, uint128 owed);
            event Withdrawn(address indexed account, address to, uint128 amount);

            error ChannelNotFound();
            error NotPayer();
            error NotPayee();
            error ZeroDeposit();
            error PayeeIsPayer();
            error ExpiryNotInFuture();
            error AccountAuthorityNotPayer();
            error ChannelExpired();
            error NotExpired();
            error ExpiryNotLater();
            error DepositOverflow();
            error WrongEpoch(uint32 claimed, uint32 current);
            error AmountExceedsDeposit();
            error NothingToSettle();
            error BelowSettled();
            error ChannelIdsExhausted();
            error InvalidSignatureLength();
            error InvalidRecoveryId(uint8 v);
            error SignatureROutOfRange();
            error SignatureSOutOfRange();
            error SignatureHighS();
            error SignatureRecoveryFailed();
            error NotPayerAccount();
            error NotDelegate();
            error MissingProof();
            error UnexpectedProof();
            error ProofTooLong();
            error NonCanonicalProof();
            error NotMember();
            error Revoked();
            error NothingToWithdraw();
            error WithdrawFailed();
            error InvalidAuthority();
            error BlockNumberOverflow();
            error Reentered();
        }
    }
}

pub use abi::SlotpayChannels;

use SlotpayChannels::SlotpayChannelsErrors as Errors;

/// The well-known development keys of anvil (and hardhat): accounts 0 to 5 of the
/// mnemonic "test test test test test test test test test test test junk", which anvil
/// funds with 10,000 ETH each. On the EVM layer `//Alice` .. `//Ferdie` name them, as on
/// a Substrate dev chain the same names name its funded dev accounts.
pub const DEV_KEYS: [(&str, &str); 6] = [
    (
        "//Alice",
        "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    ),
    (
        "//Bob",
        "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    ),
    (
        "//Charlie",
        "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    ),
    (
        "//Dave",
        "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    ),
    (
        "//Eve",
        "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    ),
    (
        "//Ferdie",
        "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    ),
];

/// An EVM account's key: a secp256k1 secret (a slotpay key file's, a 0x secret, or one
/// of [`DEV_KEYS`] by name).
#[derive(Clone)]
pub struct EvmSigner {
    key: PrivateKeySigner,
}

impl std::fmt::Debug for EvmSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EvmSigner({})", self.key.address())
    }
}

impl EvmSigner {
    /// The key of a 32-byte secret.
    pub fn from_secret(secret: &[u8; 32]) -> Result<Self, ChainError> {
        PrivateKeySigner::from_slice(secret)
            .map(|key| Self { key })
            .map_err(|e| ChainError::Other(format!("not a secp256k1 secret: {e}")))
    }

    /// A dev name of [`DEV_KEYS`] (`//Alice`) or a `0x` secret.
    pub fn from_suri(suri: &str) -> Result<Self, ChainError> {
        let suri = suri.trim();
        let hex = DEV_KEYS
            .iter()
            .find(|(name, _)| *name == suri)
            .map_or(suri, |(_, key)| key);
        let secret = protocol::parse_hex::<32>(hex).map_err(|_| {
            ChainError::Other(format!(
                "an EVM account is a 0x secret of 32 bytes or one of {}",
                DEV_KEYS.map(|(n, _)| n).join(", ")
            ))
        })?;
        Self::from_secret(&secret)
    }

    /// Its address.
    pub fn address(&self) -> [u8; 20] {
        self.key.address().0 .0
    }

    /// Its address as an [`AccountId32`].
    pub fn account(&self) -> AccountId32 {
        evm_account(&self.address())
    }
}

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
    provider: DynProvider,
    url: String,
    chain_id: u64,
    /// Held from reading a nonce until the transactions using it are sent, so that
    /// transactions sent at once get consecutive nonces.
    sending: Arc<tokio::sync::Mutex<()>>,
}

fn rpc(e: impl std::fmt::Display) -> ChainError {
    ChainError::Evm(e.to_string())
}

fn b256(hash: &crate::BlockHash) -> B256 {
    B256::from(hash.0)
}

fn block_number(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Where an EVM read looks.
fn block_id(at: crate::At) -> BlockId {
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

fn included(receipt: &TransactionReceipt) -> Result<EvmIncluded, ChainError> {
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

fn address_of(account: &AccountId32) -> Result<Address, ChainError> {
    evm_address(account).map(Address::from).ok_or_else(|| {
        ChainError::Other(format!(
            "0x{} is not an EVM account (an address followed by 12 bytes of 0xEE)",
            hex::encode(account)
        ))
    })
}

fn account(address: Address) -> AccountId32 {
    evm_account(&address.0 .0)
}

/// The contract's encoding of an authority, or why it has none (an `Account` that is not
/// an EVM account).
pub fn authority_to_evm(authority: &Authority) -> Result<SlotpayChannels::Authority, ChainError> {
    let padded = |a: &AccountId32| -> Result<B256, ChainError> {
        let mut word = [0u8; 32];
        word[12..].copy_from_slice(&address_of(a)?.0 .0);
        Ok(B256::from(word))
    };
    let (kind, value) = match authority {
        Authority::Account(a) => (0, padded(a)?),
        Authority::Delegate(key) => {
            let address = protocol::evm_address_of::<protocol::crypto::backend::SoftHasher>(key)
                .ok_or_else(|| ChainError::Other("the delegate is not a secp256k1 key".into()))?;
            (1, padded(&evm_account(&address))?)
        }
        Authority::DelegateAccount(a) => (1, padded(a)?),
        Authority::Group(root) => (2, B256::from(root.0)),
        Authority::Revoked => (3, B256::ZERO),
    };
    Ok(SlotpayChannels::Authority { kind, value })
}

/// An authority as the contract states it (`payer` for an `Account` whose value is
/// absent), in the protocol's terms: a delegate is named by its account.
pub fn authority_from_evm(kind: u8, value: B256) -> Result<Authority, ChainError> {
    let address = || {
        let mut a = [0u8; 20];
        a.copy_from_slice(&value.0[12..]);
        evm_account(&a)
    };
    match kind {
        0 => Ok(Authority::Account(address())),
        1 => Ok(Authority::DelegateAccount(address())),
        2 => Ok(Authority::Group(MerkleRoot(value.0))),
        3 => Ok(Authority::Revoked),
        k => Err(ChainError::decode("authority", format!("kind {k}"))),
    }
}

fn channel_from_evm(c: SlotpayChannels::Channel) -> Result<Option<Channel>, ChainError> {
    if c.payer == Address::ZERO {
        return Ok(None);
    }
    Ok(Some(Channel {
        payer: account(c.payer),
        payee: account(c.payee),
        authority: authority_from_evm(c.authority.kind, c.authority.value)?,
        epoch: c.epoch,
        deposit: c.deposit,
        settled: c.settled,
        base: c.base,
        expires_at: c.expiresAt,
        notice: c.notice,
        rotation: if c.rotationPending {
            Some(Rotation {
                authority: authority_from_evm(c.rotationAuthority.kind, c.rotationAuthority.value)?,
                effective_at: c.rotationEffectiveAt,
            })
        } else {
            None
        },
    }))
}

fn proof_to_evm(p: &protocol::MembershipProof) -> SlotpayChannels::MembershipProof {
    SlotpayChannels::MembershipProof {
        cap: p.cap,
        leftSiblings: p.left_siblings,
        siblings: p.siblings.iter().map(|s| B256::from(*s)).collect(),
    }
}

/// The call data of settling with `signed` (a group member's receipt goes to
/// `settleMember`).
pub fn settle_data(signed: &SignedReceipt) -> Vec<u8> {
    let r = &signed.receipt;
    let signature = Bytes::copy_from_slice(&signed.signature.0);
    match &signed.proof {
        Some(proof) => SlotpayChannels::settleMemberCall {
            id: r.channel.0,
            epoch: r.epoch,
            amount: r.amount,
            signature,
            proof: proof_to_evm(proof),
        }
        .abi_encode(),
        None => SlotpayChannels::settleCall {
            id: r.channel.0,
            epoch: r.epoch,
            amount: r.amount,
            signature,
        }
        .abi_encode(),
    }
}

/// The call data of closing `channel` with `signed`, or at what was settled.
pub fn close_data(channel: ChannelId, signed: Option<&SignedReceipt>) -> Vec<u8> {
    let Some(signed) = signed else {
        return SlotpayChannels::closeSettledCall { id: channel.0 }.abi_encode();
    };
    let r = &signed.receipt;
    let signature = Bytes::copy_from_slice(&signed.signature.0);
    match &signed.proof {
        Some(proof) => SlotpayChannels::closeMemberCall {
            id: channel.0,
            epoch: r.epoch,
            amount: r.amount,
            signature,
            proof: proof_to_evm(proof),
        }
        .abi_encode(),
        None => SlotpayChannels::closeCall {
            id: channel.0,
            epoch: r.epoch,
            amount: r.amount,
            signature,
        }
        .abi_encode(),
    }
}

/// An interface message as an EVM call: its call data (or why the EVM contract cannot
/// take it), and how to read its answer.
pub trait EvmMessage: messages::Message {
    /// What the message answers.
    type Value;
    /// The call data.
    fn evm_data(&self) -> Result<Vec<u8>, ChainError>;
    /// The answer, from the call's return data.
    fn evm_value(data: &[u8]) -> Result<Self::Value, ChainError>;
}

fn decoded<T>(what: &'static str, r: Result<T, alloy::sol_types::Error>) -> Result<T, ChainError> {
    r.map_err(|e| ChainError::decode(what, e))
}

impl EvmMessage for messages::Open {
    type Value = ChannelId;
    fn evm_data(&self) -> Result<Vec<u8>, ChainError> {
        Ok(SlotpayChannels::openCall {
            payee: address_of(&self.payee)?,
            authority: authority_to_evm(&self.authority)?,
            expiresAt: self.expires_at,
            notice: self.notice,
        }
        .abi_encode())
    }
    fn evm_value(data: &[u8]) -> Result<ChannelId, ChainError> {
        decoded("open", SlotpayChannels::openCall::abi_decode_returns(data)).map(ChannelId)
    }
}

impl EvmMessage for messages::TopUp {
    type Value = ();
    fn evm_data(&self) -> Result<Vec<u8>, ChainError> {
        Ok(SlotpayChannels::topUpCall { id: self.channel.0 }.abi_encode())
    }
    fn evm_value(_: &[u8]) -> Result<(), ChainError> {
        Ok(())
    }
}

impl EvmMessage for messages::Extend {
    type Value = ();
    fn evm_data(&self) -> Result<Vec<u8>, ChainError> {
        Ok(SlotpayChannels::extendCall {
            id: self.channel.0,
            expiresAt: self.expires_at,
        }
        .abi_encode())
    }
    fn evm_value(_: &[u8]) -> Result<(), ChainError> {
        Ok(())
    }
}

impl EvmMessage for messages::Rotate {
    type Value = u32;
    fn evm_data(&self) -> Result<Vec<u8>, ChainError> {
        Ok(SlotpayChannels::rotateCall {
            id: self.channel.0,
            authority: authority_to_evm(&self.authority)?,
        }
        .abi_encode())
    }
    fn evm_value(data: &[u8]) -> Result<u32, ChainError> {
        decoded(
            "rotate",
            SlotpayChannels::rotateCall::abi_decode_returns(data),
        )
    }
}

impl EvmMessage for messages::ClaimExpired {
    type Value = ();
    fn evm_data(&self) -> Result<Vec<u8>, ChainError> {
        Ok(SlotpayChannels::claimExpiredCall { id: self.channel.0 }.abi_encode())
    }
    fn evm_value(_: &[u8]) -> Result<(), ChainError> {
        Ok(())
    }
}

impl EvmMessage for messages::Withdraw {
    type Value = Balance;
    fn evm_data(&self) -> Result<Vec<u8>, ChainError> {
        Ok(SlotpayChannels::withdrawCall {}.abi_encode())
    }
    fn evm_value(data: &[u8]) -> Result<Balance, ChainError> {
        decoded(
            "withdraw",
            SlotpayChannels::withdrawCall::abi_decode_returns(data),
        )
    }
}

impl EvmMessage for messages::Settle {
    type Value = Balance;
    fn evm_data(&self) -> Result<Vec<u8>, ChainError> {
        Ok(settle_data(&self.receipt))
    }
    fn evm_value(data: &[u8]) -> Result<Balance, ChainError> {
        // settle and settleMember answer the same uint128.
        decoded(
            "settle",
            SlotpayChannels::settleCall::abi_decode_returns(data),
        )
    }
}

impl EvmMessage for messages::Close {
    type Value = ();
    fn evm_data(&self) -> Result<Vec<u8>, ChainError> {
        if let Some(r) = &self.receipt {
            if r.receipt.channel != self.channel {
                return Err(ChainError::Refused {
                    message: "close",
                    error: Error::WrongChannel,
                });
            }
        }
        Ok(close_data(self.channel, self.receipt.as_ref()))
    }
    fn evm_value(_: &[u8]) -> Result<(), ChainError> {
        Ok(())
    }
}

impl EvmMessage for messages::GetChannel {
    type Value = Option<Channel>;
    fn evm_data(&self) -> Result<Vec<u8>, ChainError> {
        Ok(SlotpayChannels::channelCall { id: self.channel.0 }.abi_encode())
    }
    fn evm_value(data: &[u8]) -> Result<Option<Channel>, ChainError> {
        channel_from_evm(decoded(
            "channel",
            SlotpayChannels::channelCall::abi_decode_returns(data),
        )?)
    }
}

impl EvmMessage for messages::Owed {
    type Value = Balance;
    fn evm_data(&self) -> Result<Vec<u8>, ChainError> {
        Ok(SlotpayChannels::owedCall {
            account: address_of(&self.account)?,
        }
        .abi_encode())
    }
    fn evm_value(data: &[u8]) -> Result<Balance, ChainError> {
        decoded("owed", SlotpayChannels::owedCall::abi_decode_returns(data))
    }
}

impl EvmMessage for messages::NextChannelId {
    type Value = ChannelId;
    fn evm_data(&self) -> Result<Vec<u8>, ChainError> {
        Ok(SlotpayChannels::nextChannelIdCall {}.abi_encode())
    }
    fn evm_value(data: &[u8]) -> Result<ChannelId, ChainError> {
        decoded(
            "next_channel_id",
            SlotpayChannels::nextChannelIdCall::abi_decode_returns(data),
        )
        .map(ChannelId)
    }
}

/// The contract's refusal in a revert's data: an [`interface::Error`] where the ink!
/// contract has the same error, else the EVM contract's own error by name.
pub fn refusal(message: &'static str, data: &[u8]) -> ChainError {
    use Errors as E;
    let Ok(error) = Errors::abi_decode(data) else {
        return ChainError::Call {
            message,
            reason: format!("reverted with 0x{}", hex::encode(data)),
        };
    };
    let mapped = match &error {
        E::ChannelNotFound(_) => Error::ChannelNotFound,
        E::NotPayer(_) => Error::NotPayer,
        E::NotPayee(_) => Error::NotPayee,
        E::ZeroDeposit(_) => Error::ZeroDeposit,
        E::PayeeIsPayer(_) => Error::PayeeIsPayer,
        E::ExpiryNotInFuture(_) => Error::ExpiryNotInFuture,
        E::AccountAuthorityNotPayer(_) => Error::AccountAuthorityNotPayer,
        E::ChannelExpired(_) => Error::ChannelExpired,
        E::NotExpired(_) => Error::NotExpired,
        E::ExpiryNotLater(_) => Error::ExpiryNotLater,
        E::DepositOverflow(_) => Error::DepositOverflow,
        E::WrongEpoch(_) => Error::WrongEpoch,
        E::AmountExceedsDeposit(_) => Error::AmountExceedsDeposit,
        E::NothingToSettle(_) => Error::NothingToSettle,
        E::BelowSettled(_) => Error::BelowSettled,
        E::ChannelIdsExhausted(_) => Error::ChannelIdsExhausted,
        E::InvalidRecoveryId(_) => Error::InvalidRecoveryId,
        E::SignatureROutOfRange(_) => Error::SignatureROutOfRange,
        E::SignatureSOutOfRange(_) => Error::SignatureSOutOfRange,
        E::SignatureHighS(_) => Error::SignatureHighS,
        E::SignatureRecoveryFailed(_) => Error::SignatureRecoveryFailed,
        E::NotPayerAccount(_) => Error::NotPayerAccount,
        E::NotDelegate(_) => Error::NotDelegate,
        E::MissingProof(_) => Error::MissingProof,
        E::UnexpectedProof(_) => Error::UnexpectedProof,
        E::ProofTooLong(_) => Error::ProofTooLong,
        E::NonCanonicalProof(_) => Error::NonCanonicalProof,
        E::NotMember(_) => Error::NotMember,
        E::Revoked(_) => Error::Revoked,
        E::NothingToWithdraw(_) => Error::NothingToWithdraw,
        E::WithdrawFailed(_) => Error::WithdrawFailed,
        E::InvalidSignatureLength(_) => return evm_only(message, "InvalidSignatureLength"),
        E::InvalidAuthority(_) => return evm_only(message, "InvalidAuthority"),
        E::BlockNumberOverflow(_) => return evm_only(message, "BlockNumberOverflow"),
        E::Reentered(_) => return evm_only(message, "Reentered"),
    };
    ChainError::Refused {
        message,
        error: mapped,
    }
}

fn evm_only(message: &'static str, name: &str) -> ChainError {
    ChainError::Call {
        message,
        reason: format!("the EVM contract refused it: {name}"),
    }
}

/// A contract event of slotpay's in `log`, as the interface's type (`None`: not one).
pub fn decode_log(log: &Log) -> Option<Result<SlotpayEvent, ChainError>> {
    use SlotpayChannels as S;
    let topic = *log.topic0()?;
    let data = log.data();
    let e = |name: &'static str, err: alloy::sol_types::Error| ChainError::decode(name, err);
    Some(match topic {
        t if t == S::Opened::SIGNATURE_HASH => S::Opened::decode_log_data(data)
            .map_err(|x| e("Opened", x))
            .and_then(|o| {
                let authority = match o.authorityKind {
                    // The event names the payer's address; the protocol, its account.
                    0 => Authority::Account(account(o.payer)),
                    k => authority_from_evm(k, o.authorityValue)?,
                };
                Ok(SlotpayEvent::Opened(ev::Opened {
                    channel: ChannelId(o.channel),
                    payer: account(o.payer),
                    payee: account(o.payee),
                    authority,
                    deposit: o.deposit,
                    expires_at: o.expiresAt,
                    notice: o.notice,
                }))
            }),
        t if t == S::ToppedUp::SIGNATURE_HASH => S::ToppedUp::decode_log_data(data)
            .map_err(|x| e("ToppedUp", x))
            .map(|o| {
                SlotpayEvent::ToppedUp(ev::ToppedUp {
                    channel: ChannelId(o.channel),
                    deposit: o.deposit,
                })
            }),
        t if t == S::Extended::SIGNATURE_HASH => S::Extended::decode_log_data(data)
            .map_err(|x| e("Extended", x))
            .map(|o| {
                SlotpayEvent::Extended(ev::Extended {
                    channel: ChannelId(o.channel),
                    expires_at: o.expiresAt,
                })
            }),
        t if t == S::RotationAnnounced::SIGNATURE_HASH => {
            S::RotationAnnounced::decode_log_data(data)
                .map_err(|x| e("RotationAnnounced", x))
                .and_then(|o| {
                    Ok(SlotpayEvent::RotationAnnounced(ev::RotationAnnounced {
                        channel: ChannelId(o.channel),
                        authority: authority_from_evm(o.authorityKind, o.authorityValue)?,
                        epoch: o.epoch,
                        effective_at: o.effectiveAt,
                    }))
                })
        }
        t if t == S::Settled::SIGNATURE_HASH => S::Settled::decode_log_data(data)
            .map_err(|x| e("Settled", x))
            .map(|o| {
                SlotpayEvent::Settled(ev::Settled {
                    channel: ChannelId(o.channel),
                    epoch: o.epoch,
                    settled: o.settled,
                    paid: o.paid,
                })
            }),
        t if t == S::Closed::SIGNATURE_HASH => S::Closed::decode_log_data(data)
            .map_err(|x| e("Closed", x))
            .map(|o| {
                SlotpayEvent::Closed(ev::Closed {
                    channel: ChannelId(o.channel),
                    paid: o.paid,
                    refunded: o.refunded,
                })
            }),
        t if t == S::ExpiredClaimed::SIGNATURE_HASH => S::ExpiredClaimed::decode_log_data(data)
            .map_err(|x| e("ExpiredClaimed", x))
            .map(|o| {
                SlotpayEvent::ExpiredClaimed(ev::ExpiredClaimed {
                    channel: ChannelId(o.channel),
                    refunded: o.refunded,
                })
            }),
        t if t == S::PaymentDeferred::SIGNATURE_HASH => S::PaymentDeferred::decode_log_data(data)
            .map_err(|x| e("PaymentDeferred", x))
            .map(|o| {
                SlotpayEvent::PaymentDeferred(ev::PaymentDeferred {
                    account: account(o.account),
                    amount: o.amount,
                    owed: o.owed,
                })
            }),
        t if t == S::Withdrawn::SIGNATURE_HASH => S::Withdrawn::decode_log_data(data)
            .map_err(|x| e("Withdrawn", x))
            .map(|o| {
                SlotpayEvent::Withdrawn(ev::Withdrawn {
                    account: account(o.account),
                    amount: o.amount,
                })
            }),
        _ => return None,
    })
}

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
                    txs.push((tx, gas + gas / 4));
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
