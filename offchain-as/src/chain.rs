//! The AS's view of the chain: reading channels from the slotpay contract and closing
//! them, through subxt against a substrate-contracts-node.
//!
//! Calls go through pallet-contracts directly: the `ContractsApi_call` runtime API for
//! reads and dry runs, and `Contracts::call` extrinsics for closes. Message arguments and
//! return values are SCALE-encoded with the very `protocol` types the contract uses, so
//! they cannot drift; the node end-to-end tests decode what the real contract returns.
use parity_scale_codec::{Compact, Decode, Encode};
use protocol::crypto::backend::SoftHasher;
use protocol::crypto::Hasher;
use protocol::{
    AccountId32, Authority, Balance, ChannelId, ChannelView, Domain, MembershipProof, Signature,
};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use subxt::backend::legacy::LegacyRpcMethods;
use subxt::backend::rpc::RpcClient;
use subxt::config::{DefaultExtrinsicParams, DefaultExtrinsicParamsBuilder, ExtrinsicParams};
use subxt::dynamic::Value;
use subxt::tx::Signer;
use subxt::{OnlineClient, PolkadotConfig};
use subxt_signer::sr25519::Keypair;

/// A chain read failed; the caller may retry.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("node RPC: {0}")]
    Rpc(#[from] subxt::Error),
    #[error("contract call {message} failed: {reason}")]
    Call {
        message: &'static str,
        reason: String,
    },
    #[error("contract {message} returned undecodable data: {reason}")]
    Decode {
        message: &'static str,
        reason: String,
    },
    #[error("the contract refused {message}: contract error #{index}")]
    Refused { message: &'static str, index: u8 },
}

/// A channel as read at one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainRead {
    pub block: u32,
    pub channel: Option<ChannelView>,
}

/// Reads channels; the HTTP layer needs only this.
pub trait ChannelReader: Send + Sync + 'static {
    fn read_channel(
        &self,
        id: ChannelId,
    ) -> impl Future<Output = Result<ChainRead, ChainError>> + Send;
}

/// The contract's `Channel`, field for field (the contract stores and returns this).
#[derive(Debug, Clone, Decode, Encode)]
pub struct OnChainChannel {
    pub payer: AccountId32,
    pub payee: AccountId32,
    pub authority: Authority,
    pub deposit: Balance,
    pub expires_at: u32,
}

/// ink! 5's selector: the first four bytes of blake2_256 of the message name.
pub fn selector(message: &str) -> [u8; 4] {
    let hash = SoftHasher::blake2_256(message.as_bytes());
    [hash[0], hash[1], hash[2], hash[3]]
}

#[derive(Debug, Clone, Copy, Encode, Decode)]
struct Weight {
    ref_time: Compact<u64>,
    proof_size: Compact<u64>,
}

#[derive(Debug, Decode)]
enum StorageDeposit {
    #[allow(dead_code)]
    Refund(Balance),
    #[allow(dead_code)]
    Charge(Balance),
}

/// The head of pallet-contracts' `ContractResult`, up to and including the result (the
/// event list that follows is not needed and its types are runtime-specific).
#[derive(Debug)]
struct DryRun {
    gas_required: Weight,
    /// `Ok((flags, data))`, or the module error bytes of a failed dispatch.
    result: Result<(u32, Vec<u8>), Vec<u8>>,
}

fn decode_dry_run(bytes: &[u8], message: &'static str) -> Result<DryRun, ChainError> {
    let bad = |e: parity_scale_codec::Error| ChainError::Decode {
        message,
        reason: e.to_string(),
    };
    let input = &mut &bytes[..];
    let _gas_consumed = Weight::decode(input).map_err(bad)?;
    let gas_required = Weight::decode(input).map_err(bad)?;
    let _deposit = StorageDeposit::decode(input).map_err(bad)?;
    let _debug = Vec::<u8>::decode(input).map_err(bad)?;
    let result = match u8::decode(input).map_err(bad)? {
        0 => {
            let flags = u32::decode(input).map_err(bad)?;
            let data = Vec::<u8>::decode(input).map_err(bad)?;
            Ok((flags, data))
        }
        _ => Err(input.to_vec()),
    };
    Ok(DryRun {
        gas_required,
        result,
    })
}

const REVERT: u32 = 1;

impl DryRun {
    /// The weight to give the real call and the returned data, or why the call would fail.
    fn output(self, message: &'static str) -> Result<(Weight, Vec<u8>), ChainError> {
        let (flags, data) = self.result.map_err(|e| ChainError::Call {
            message,
            reason: format!("dispatch error 0x{}", hex::encode(e)),
        })?;
        if flags & REVERT != 0 {
            return Err(refusal(message, &data));
        }
        Ok((self.gas_required, data))
    }
}

/// The gas limit of the real call: the dry run's requirement doubled, as headroom for
/// state that moves between dry run and inclusion.
fn gas_limit(required: Weight) -> Value {
    Value::named_composite([
        (
            "ref_time",
            Value::u128(required.ref_time.0.saturating_mul(2).into()),
        ),
        (
            "proof_size",
            Value::u128(required.proof_size.0.saturating_mul(2).into()),
        ),
    ])
}

/// What a finalized extrinsic's events say, for its signer `origin`.
#[derive(Debug, Default)]
struct EventSummary {
    /// `data` of every `ContractEmitted` event of `contract`.
    contract_events: Vec<Vec<u8>>,
    /// The account of `Contracts::Instantiated`, if any.
    instantiated: Option<AccountId32>,
    fee: Balance,
    storage_deposit_held: Balance,
    storage_deposit_released: Balance,
}

/// Signs and submits `tx`, waits for finality and success, and reads its events.
async fn submit<S: Signer<PolkadotConfig>>(
    api: &OnlineClient<PolkadotConfig>,
    rpc: &LegacyRpcMethods<PolkadotConfig>,
    tx: &subxt::tx::DynamicPayload,
    signer: &S,
    contract: Option<AccountId32>,
    message: &'static str,
) -> Result<(u32, EventSummary), ChainError> {
    let origin: AccountId32 = signer.account_id().0;
    let params = next_tx_params(rpc, &signer.account_id()).await?;
    let finalized = api
        .tx()
        .sign_and_submit_then_watch(tx, signer, params)
        .await?
        .wait_for_finalized()
        .await?;
    let block_hash = finalized.block_hash();
    let events = finalized.wait_for_success().await?;
    let block = api.blocks().at(block_hash).await?.number();
    let mut summary = EventSummary::default();
    for event in events.iter() {
        let event = event?;
        let kind = event.variant_name();
        let bad = |e: parity_scale_codec::Error| ChainError::Decode {
            message,
            reason: format!("{kind}: {e}"),
        };
        let fields = &mut event.field_bytes();
        match (event.pallet_name(), kind) {
            ("Contracts", "ContractEmitted") => {
                let (from, data) = <(AccountId32, Vec<u8>)>::decode(fields).map_err(bad)?;
                if Some(from) == contract {
                    summary.contract_events.push(data);
                }
            }
            ("Contracts", "Instantiated") => {
                let (_deployer, account) =
                    <(AccountId32, AccountId32)>::decode(fields).map_err(bad)?;
                summary.instantiated = Some(account);
            }
            ("Contracts", "StorageDepositTransferredAndHeld") => {
                let (from, _to, amount) =
                    <(AccountId32, AccountId32, Balance)>::decode(fields).map_err(bad)?;
                if from == origin {
                    summary.storage_deposit_held += amount;
                }
            }
            ("Contracts", "StorageDepositTransferredAndReleased") => {
                let (_from, to, amount) =
                    <(AccountId32, AccountId32, Balance)>::decode(fields).map_err(bad)?;
                if to == origin {
                    summary.storage_deposit_released += amount;
                }
            }
            ("TransactionPayment", "TransactionFeePaid") => {
                let (_who, paid, tip) =
                    <(AccountId32, Balance, Balance)>::decode(fields).map_err(bad)?;
                summary.fee += paid + tip;
            }
            _ => {}
        }
    }
    Ok((block, summary))
}

/// A finalized contract call.
#[derive(Debug, Clone)]
pub struct Finalized {
    pub block: u32,
    /// `data` of every `Contracts::ContractEmitted` event of this contract, in order.
    pub contract_events: Vec<Vec<u8>>,
    /// The fee the signer paid (`TransactionPayment::TransactionFeePaid`, fee + tip).
    pub fee: Balance,
    /// Storage deposit the signer put on hold (opening) or got back (closing).
    pub storage_deposit_held: Balance,
    pub storage_deposit_released: Balance,
}

/// The slotpay contract on a node: read-only calls from any origin, and signed calls.
#[derive(Clone)]
pub struct ContractClient {
    api: OnlineClient<PolkadotConfig>,
    rpc: LegacyRpcMethods<PolkadotConfig>,
    contract: AccountId32,
}

/// A node connection: the subxt client, and the raw RPC methods on the same socket.
pub async fn connect(
    url: &str,
) -> Result<
    (
        OnlineClient<PolkadotConfig>,
        LegacyRpcMethods<PolkadotConfig>,
    ),
    ChainError,
> {
    let rpc = RpcClient::from_insecure_url(url).await?;
    let api = OnlineClient::<PolkadotConfig>::from_rpc_client(rpc.clone()).await?;
    Ok((api, LegacyRpcMethods::new(rpc)))
}

/// Transaction parameters for `signer`'s next transaction. The nonce comes from the node's
/// `system_accountNextIndex` (best block and transaction pool), not from the latest
/// finalized block as subxt's default does: after a node restart the last block can stay
/// unfinalized, and a nonce read there is already used ("Transaction is outdated"), which
/// on an instant-seal chain nothing would ever resolve.
pub async fn next_tx_params(
    rpc: &LegacyRpcMethods<PolkadotConfig>,
    signer: &subxt::utils::AccountId32,
) -> Result<
    <DefaultExtrinsicParams<PolkadotConfig> as ExtrinsicParams<PolkadotConfig>>::Params,
    ChainError,
> {
    let nonce = rpc.system_account_next_index(signer).await?;
    Ok(DefaultExtrinsicParamsBuilder::<PolkadotConfig>::new()
        .nonce(nonce)
        .build())
}

impl ContractClient {
    pub async fn connect(url: &str, contract: AccountId32) -> Result<Self, ChainError> {
        let (api, rpc) = connect(url).await?;
        Ok(Self { api, rpc, contract })
    }

    pub fn api(&self) -> &OnlineClient<PolkadotConfig> {
        &self.api
    }

    pub fn contract(&self) -> AccountId32 {
        self.contract
    }

    /// This chain's genesis hash with this contract's account.
    pub fn domain(&self) -> Domain {
        Domain {
            genesis_hash: self.api.genesis_hash().0,
            contract: self.contract,
        }
    }

    async fn dry_run(
        &self,
        origin: AccountId32,
        value: Balance,
        message: &'static str,
        args: &[u8],
    ) -> Result<(u32, DryRun), ChainError> {
        let mut input = selector(message).to_vec();
        input.extend_from_slice(args);
        let block = self.api.blocks().at_latest().await?;
        let call_args = (
            origin,
            self.contract,
            value,
            None::<Weight>,
            None::<Balance>,
            input,
        )
            .encode();
        let bytes = self
            .api
            .backend()
            .call("ContractsApi_call", Some(&call_args), block.hash())
            .await?;
        Ok((block.number(), decode_dry_run(&bytes, message)?))
    }

    /// Runs `message` read-only (as `origin`) and decodes its `MessageResult<T>`.
    pub async fn read<T: Decode>(
        &self,
        origin: AccountId32,
        message: &'static str,
        args: &[u8],
    ) -> Result<(u32, T), ChainError> {
        let (block, dry) = self.dry_run(origin, 0, message, args).await?;
        let (_, data) = dry.output(message)?;
        let value =
            <Result<T, u8>>::decode(&mut data.as_slice()).map_err(|e| ChainError::Decode {
                message,
                reason: e.to_string(),
            })?;
        let value = value.map_err(|lang| ChainError::Call {
            message,
            reason: format!("ink! LangError {lang}"),
        })?;
        Ok((block, value))
    }

    /// The contract's own domain (the genesis hash it was deployed with, its account).
    pub async fn contract_domain(&self) -> Result<Domain, ChainError> {
        Ok(self.read::<Domain>(self.contract, "domain", &[]).await?.1)
    }

    pub async fn read_channel(&self, id: ChannelId) -> Result<ChainRead, ChainError> {
        let (block, channel) = self.channel(id).await?;
        Ok(ChainRead {
            block,
            channel: channel.map(|c| ChannelView {
                payee: c.payee,
                authority: c.authority,
                deposit: c.deposit,
                expires_at: c.expires_at,
            }),
        })
    }

    /// The full on-chain channel (payer included), for clients.
    pub async fn channel(
        &self,
        id: ChannelId,
    ) -> Result<(u32, Option<OnChainChannel>), ChainError> {
        self.read::<Option<OnChainChannel>>(self.contract, "channel", &id.encode())
            .await
    }

    /// Calls `message` with `value` attached, signed by `signer`: dry-runs first (so a
    /// refusal costs no fee and names the contract's error), then submits and waits for
    /// finality.
    pub async fn call<S: Signer<PolkadotConfig>>(
        &self,
        signer: &S,
        value: Balance,
        message: &'static str,
        args: &[u8],
    ) -> Result<Finalized, ChainError> {
        self.call_batch(
            signer,
            &[ContractCall {
                value,
                message,
                args: args.to_vec(),
            }],
        )
        .await
    }

    /// Several calls as one transaction (`Utility::batch_all`: all or none), each dry-run
    /// first as in [`ContractClient::call`]. One fee and one block for many opens.
    pub async fn call_batch<S: Signer<PolkadotConfig>>(
        &self,
        signer: &S,
        calls: &[ContractCall],
    ) -> Result<Finalized, ChainError> {
        let origin: AccountId32 = signer.account_id().0;
        let mut txs = Vec::with_capacity(calls.len());
        for call in calls {
            let (_, dry) = self
                .dry_run(origin, call.value, call.message, &call.args)
                .await?;
            let (required, _) = dry.output(call.message)?;
            let mut input = selector(call.message).to_vec();
            input.extend_from_slice(&call.args);
            txs.push(subxt::dynamic::tx(
                "Contracts",
                "call",
                vec![
                    Value::unnamed_variant("Id", [Value::from_bytes(self.contract)]),
                    Value::u128(call.value),
                    gas_limit(required),
                    Value::unnamed_variant("None", []),
                    Value::from_bytes(input),
                ],
            ));
        }
        let message = match calls {
            [one] => one.message,
            _ => "batch",
        };
        let tx = match txs.len() {
            1 => txs.pop().expect("one call"),
            _ => subxt::dynamic::tx(
                "Utility",
                "batch_all",
                vec![Value::unnamed_composite(
                    txs.into_iter().map(|t| t.into_value()),
                )],
            ),
        };
        let (block, events) = submit(
            &self.api,
            &self.rpc,
            &tx,
            signer,
            Some(self.contract),
            message,
        )
        .await?;
        Ok(Finalized {
            block,
            contract_events: events.contract_events,
            fee: events.fee,
            storage_deposit_held: events.storage_deposit_held,
            storage_deposit_released: events.storage_deposit_released,
        })
    }
}

/// One message of a [`ContractClient::call_batch`].
#[derive(Debug, Clone)]
pub struct ContractCall {
    pub value: Balance,
    pub message: &'static str,
    /// SCALE-encoded arguments.
    pub args: Vec<u8>,
}

/// What `deploy` did.
#[derive(Debug, Clone)]
pub struct Deployed {
    pub contract: AccountId32,
    /// The genesis hash of the chain, bound into the contract by its constructor.
    pub genesis_hash: [u8; 32],
    pub code_hash: [u8; 32],
    pub block: u32,
    pub fee: Balance,
}

/// Uploads `code` and instantiates it with the constructor `new(genesis_hash)` of this
/// chain, signed by `signer`: dry-runs `ContractsApi_instantiate` for the weight, then
/// submits `Contracts::instantiate_with_code` and waits for finality.
pub async fn deploy<S: Signer<PolkadotConfig>>(
    url: &str,
    signer: &S,
    code: Vec<u8>,
    salt: Vec<u8>,
) -> Result<Deployed, ChainError> {
    let message = "new";
    let (api, rpc) = connect(url).await?;
    let genesis_hash = api.genesis_hash().0;
    let mut data = selector(message).to_vec();
    genesis_hash.encode_to(&mut data);
    let origin: AccountId32 = signer.account_id().0;
    let block = api.blocks().at_latest().await?;
    // Code::Upload(code) is variant 0.
    let args = (
        origin,
        0u128,
        None::<Weight>,
        None::<Balance>,
        0u8,
        &code,
        &data,
        &salt,
    )
        .encode();
    let bytes = api
        .backend()
        .call("ContractsApi_instantiate", Some(&args), block.hash())
        .await?;
    let (required, _) = decode_dry_run(&bytes, message)?.output(message)?;
    let tx = subxt::dynamic::tx(
        "Contracts",
        "instantiate_with_code",
        vec![
            Value::u128(0),
            gas_limit(required),
            Value::unnamed_variant("None", []),
            Value::from_bytes(&code),
            Value::from_bytes(&data),
            Value::from_bytes(&salt),
        ],
    );
    let (block, events) = submit(&api, &rpc, &tx, signer, None, message).await?;
    let contract = events.instantiated.ok_or(ChainError::Decode {
        message,
        reason: "no Contracts::Instantiated event".into(),
    })?;
    Ok(Deployed {
        contract,
        genesis_hash,
        code_hash: SoftHasher::blake2_256(&code),
        block,
        fee: events.fee,
    })
}

/// A reverted message: `MessageResult<Result<_, Error>>` as `Ok(Err(index))` is
/// `[0, 1, index]`.
fn refusal(message: &'static str, data: &[u8]) -> ChainError {
    match data {
        [0, 1, index] => ChainError::Refused {
            message,
            index: *index,
        },
        _ => ChainError::Call {
            message,
            reason: format!("reverted with 0x{}", hex::encode(data)),
        },
    }
}

/// The AS's side: the contract client and the AS's own key, which signs closes.
pub struct NodeChain {
    pub client: ContractClient,
    signer: Keypair,
    /// Channels read at the latest finalized block: a channel changes only in a new
    /// block, so every purchase within one block after the first is served from memory
    /// instead of a runtime call over RPC.
    views: Arc<Mutex<ViewCache>>,
    follower: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct ViewCache {
    /// The latest finalized block the follower has seen; `None` when it is not following.
    block: Option<u32>,
    views: HashMap<ChannelId, ChannelView>,
}

impl Drop for NodeChain {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

/// Follows finalized blocks, emptying the cache at each one.
async fn follow(api: OnlineClient<PolkadotConfig>, views: Arc<Mutex<ViewCache>>) {
    let forget = |block: Option<u32>| {
        if let Ok(mut cache) = views.lock() {
            cache.block = block;
            cache.views.clear();
        }
    };
    if let Ok(mut blocks) = api.blocks().subscribe_finalized().await {
        while let Some(Ok(block)) = blocks.next().await {
            forget(Some(block.number()));
        }
    }
    // Without a subscription every read goes to the chain.
    forget(None);
}

/// What a close transaction did, from its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed {
    pub block: u32,
    /// From the contract's `Closed` event.
    pub paid: Balance,
    pub refunded: Balance,
    /// What closing cost the AS, and the storage deposit it got back.
    pub fee: Balance,
    pub storage_deposit_released: Balance,
}

impl NodeChain {
    pub async fn connect(
        url: &str,
        contract: AccountId32,
        signer: Keypair,
    ) -> Result<Self, ChainError> {
        let client = ContractClient::connect(url, contract).await?;
        let views = Arc::new(Mutex::new(ViewCache::default()));
        let follower = tokio::spawn(follow(client.api().clone(), views.clone()));
        Ok(Self {
            client,
            signer,
            views,
            follower,
        })
    }

    pub fn account(&self) -> AccountId32 {
        self.signer.public_key().0
    }

    pub fn domain(&self) -> Domain {
        self.client.domain()
    }

    pub async fn contract_domain(&self) -> Result<Domain, ChainError> {
        self.client.contract_domain().await
    }

    /// Closes `channel` with a receipt, in one transaction.
    pub async fn close(
        &self,
        channel: ChannelId,
        amount: Balance,
        signature: &Signature,
        proof: Option<&MembershipProof>,
    ) -> Result<Closed, ChainError> {
        let args = (channel, amount, *signature, proof.cloned()).encode();
        let done = self.client.call(&self.signer, 0, "close", &args).await?;
        // Closed { channel, paid, refunded } is the one event close emits.
        let (_, paid, refunded) = done
            .contract_events
            .first()
            .map(|data| <(ChannelId, Balance, Balance)>::decode(&mut data.as_slice()))
            .transpose()
            .map_err(|e| ChainError::Decode {
                message: "close",
                reason: format!("Closed event: {e}"),
            })?
            .ok_or(ChainError::Decode {
                message: "close",
                reason: "no Closed event".into(),
            })?;
        Ok(Closed {
            block: done.block,
            paid,
            refunded,
            fee: done.fee,
            storage_deposit_released: done.storage_deposit_released,
        })
    }
}

impl ChannelReader for NodeChain {
    async fn read_channel(&self, id: ChannelId) -> Result<ChainRead, ChainError> {
        if let Ok(cache) = self.views.lock() {
            if let (Some(block), Some(view)) = (cache.block, cache.views.get(&id)) {
                return Ok(ChainRead {
                    block,
                    channel: Some(*view),
                });
            }
        }
        // Absent channels are not cached: one opened a moment ago must be seen at once.
        let read = self.client.read_channel(id).await?;
        if let (Some(view), Ok(mut cache)) = (read.channel, self.views.lock()) {
            if cache.block == Some(read.block) {
                cache.views.insert(id, view);
            }
        }
        Ok(read)
    }
}
