//! The slotpay contract on a node, called through its interface: read-only messages as
//! dry runs, state-changing ones dry-run first (a refusal costs no fee and comes back as
//! the contract's error) and then submitted, alone or many in one transaction.
use crate::dry_run::{self, Weight};
use crate::events::slotpay_events;
use crate::node::{Finality, Included, Node};
use crate::{BlockHash, ChainError, SlotpayEvent};
use interface::messages::Message;
use interface::Error;
use parity_scale_codec::Decode;
use protocol::{AccountId32, Balance, Channel, ChannelId, Domain};
use subxt::dynamic::Value;
use subxt::tx::Signer;
use subxt::PolkadotConfig;

/// Where a read looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// The best block: the latest state, which a fork may still undo.
    Best,
    /// The latest finalized block: what no fork can undo (money is read here).
    Finalized,
    /// That block, by hash.
    Block(BlockHash),
}

/// A message's answer, split into its value and the contract's refusal.
pub trait Answer: Decode {
    /// What the message returns when it does not refuse.
    type Value;
    /// The value, or the contract's refusal.
    fn into_result(self) -> Result<Self::Value, Error>;
}

impl<T: Decode> Answer for Result<T, Error> {
    type Value = T;
    fn into_result(self) -> Result<T, Error> {
        self
    }
}

macro_rules! infallible {
    ($($t:ty),*) => {$(
        impl Answer for $t {
            type Value = $t;
            fn into_result(self) -> Result<$t, Error> {
                Ok(self)
            }
        }
    )*};
}
infallible!(Option<Channel>, Balance, Domain, ChannelId, ());

/// A dry run's answer.
#[derive(Debug, Clone)]
pub struct DryRun<T> {
    /// The number of the block the dry run ran on (a read's "as of").
    pub block: u32,
    /// What the message returned, the contract's refusal already taken out.
    pub value: T,
    /// The weight the dry run used.
    pub gas_consumed: Weight,
    /// The gas limit the call needs to succeed (may exceed `gas_consumed`); a real call
    /// is given twice this ([`Weight::with_headroom`]).
    pub gas_required: Weight,
    /// Storage deposit the call would charge the origin (positive) or refund it
    /// (negative), in the chain's smallest unit.
    pub storage_deposit: i128,
}

/// One message of a batch: its call data, value and name.
#[derive(Debug, Clone)]
pub struct Call {
    /// The message's label ([`Message::LABEL`]), to name it in a refusal.
    pub label: &'static str,
    /// The value transferred with it (non-zero only for a payable message).
    pub value: Balance,
    /// Selector and SCALE-encoded arguments ([`Message::call_data`]).
    pub data: Vec<u8>,
}

impl Call {
    /// The batch item for `message` sending `value`.
    pub fn new<M: Message>(message: &M, value: Balance) -> Self {
        Self {
            label: M::LABEL,
            value,
            data: message.call_data(),
        }
    }
}

/// How a batch treats a failing item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// `Utility::batch_all`: all or nothing.
    All,
    /// `Utility::force_batch`: every item runs; failures are reported per item.
    Force,
}

/// What became of one item of a batch.
#[derive(Debug)]
pub enum ItemOutcome {
    /// It ran in the block; these are its contract events.
    Done(Vec<SlotpayEvent>),
    /// Its dry run was refused, so it was not submitted.
    Refused(ChainError),
    /// It was submitted and failed in the block (a force batch goes on).
    Failed(String),
}

/// A submitted batch: its block and fee, and an outcome per item in order.
pub struct BatchOutcome {
    /// The transaction, if anything was submitted.
    pub included: Option<Included>,
    /// Each item's outcome, in order.
    pub items: Vec<ItemOutcome>,
    /// Each item's weight as its dry run required it (zero for a refused one).
    pub weights: Vec<Weight>,
}

/// One block of the best chain and the contract's events in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockEvents {
    /// Its number.
    pub number: u32,
    /// Its hash.
    pub hash: BlockHash,
    /// Its parent's hash.
    pub parent: BlockHash,
    /// The contract's events in it, in order.
    pub events: Vec<SlotpayEvent>,
}

/// The slotpay contract at one address.
#[derive(Clone)]
pub struct Contract {
    node: Node,
    address: AccountId32,
}

const REVERT: u32 = 1;

impl Contract {
    /// The contract at `address` on `node`, unchecked: use [`Self::bind`] for one a
    /// deployment file names.
    pub fn new(node: Node, address: AccountId32) -> Self {
        Self { node, address }
    }

    /// The node this contract is called through.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The contract instance's account.
    pub fn address(&self) -> AccountId32 {
        self.address
    }

    /// This chain's genesis hash with this contract's account: what receipts must bind.
    pub fn domain(&self) -> Domain {
        Domain {
            genesis_hash: self.node.genesis_hash(),
            contract: self.address,
        }
    }

    /// The contract a deployment names (`domain`: its chain's genesis hash and the
    /// contract's account), on `node`, after checking both: that the node serves that
    /// chain, and that the contract there answers for it ([`Self::check_domain`]). The one
    /// check every caller (the CLI, the AS) makes before it trusts a deployment file.
    pub async fn bind(node: Node, domain: &Domain) -> Result<Self, ChainError> {
        if node.genesis_hash() != domain.genesis_hash {
            return Err(ChainError::WrongChain {
                expected: domain.genesis_hash,
                found: node.genesis_hash(),
                url: node.url().to_owned(),
            });
        }
        let contract = Self::new(node, domain.contract);
        contract.check_domain().await?;
        Ok(contract)
    }

    /// Checks that the contract at this address was deployed for this chain (its `domain()`
    /// is this chain's genesis hash and this address).
    pub async fn check_domain(&self) -> Result<(), ChainError> {
        let (_, domain) = self
            .read(&interface::messages::GetDomain, At::Finalized)
            .await?;
        if domain != self.domain() {
            return Err(ChainError::Other(format!(
                "the contract at 0x{} was deployed for chain 0x{}, but this node's chain is 0x{}",
                hex::encode(self.address),
                hex::encode(domain.genesis_hash),
                hex::encode(self.node.genesis_hash())
            )));
        }
        Ok(())
    }

    async fn block_at(&self, at: At) -> Result<(u32, BlockHash), ChainError> {
        match at {
            At::Best => self.node.best().await,
            At::Finalized => self.node.finalized().await,
            At::Block(hash) => {
                let number = self.node.api().blocks().at(hash).await?.number();
                Ok((number, hash))
            }
        }
    }

    /// Dry-runs `message` as `origin` sending `value`, at `at`. A revert with the
    /// contract's error is [`ChainError::Refused`].
    pub async fn dry_run<M: Message>(
        &self,
        origin: AccountId32,
        value: Balance,
        message: &M,
        at: At,
    ) -> Result<DryRun<<M::Output as Answer>::Value>, ChainError>
    where
        M::Output: Answer,
    {
        let (block, hash) = self.block_at(at).await?;
        let outcome = dry_run::call(
            self.node.api(),
            hash,
            origin,
            self.address,
            value,
            message.call_data(),
        )
        .await?;
        let (flags, data) = outcome.result.map_err(|reason| ChainError::Call {
            message: M::LABEL,
            reason,
        })?;
        // ink! answers MessageResult<Output>: Err is a LangError (e.g. unknown selector).
        let answer = <Result<M::Output, u8>>::decode(&mut data.as_slice())
            .map_err(|e| ChainError::decode(M::LABEL, e))?
            .map_err(|lang| ChainError::Call {
                message: M::LABEL,
                reason: format!("ink! LangError {lang}"),
            })?;
        let value = answer.into_result().map_err(|error| ChainError::Refused {
            message: M::LABEL,
            error,
        })?;
        if flags & REVERT != 0 {
            return Err(ChainError::Call {
                message: M::LABEL,
                reason: "reverted without a contract error".into(),
            });
        }
        Ok(DryRun {
            block,
            value,
            gas_consumed: outcome.gas_consumed,
            gas_required: outcome.gas_required,
            storage_deposit: outcome.storage_deposit,
        })
    }

    /// A read-only message's answer at `at`, with the block it was read at.
    pub async fn read<M: Message>(
        &self,
        message: &M,
        at: At,
    ) -> Result<(u32, <M::Output as Answer>::Value), ChainError>
    where
        M::Output: Answer,
    {
        let dry = self.dry_run(self.address, 0, message, at).await?;
        Ok((dry.block, dry.value))
    }

    /// Calls `message` with `value` attached, signed by `signer`: dry-runs it (so a refusal
    /// costs no fee and names the contract's error), submits it and watches it until
    /// `finality`. Returns the inclusion and the contract's events.
    pub async fn call<M: Message, S: Signer<PolkadotConfig>>(
        &self,
        signer: &S,
        value: Balance,
        message: &M,
        finality: Finality,
    ) -> Result<(Included, Vec<SlotpayEvent>), ChainError>
    where
        M::Output: Answer,
    {
        let dry = self
            .dry_run(signer.account_id().0, value, message, At::Best)
            .await?;
        let tx = self.call_tx(&Call::new(message, value), dry.gas_required);
        let included = self.node.submit(signer, &tx, finality).await?;
        let events = self.events_of(&included)?;
        Ok((included, events))
    }

    fn call_tx(&self, call: &Call, required: Weight) -> subxt::tx::DynamicPayload {
        subxt::dynamic::tx(
            "Contracts",
            "call",
            vec![
                Value::unnamed_variant("Id", [Value::from_bytes(self.address)]),
                Value::u128(call.value),
                required.with_headroom().value(),
                Value::unnamed_variant("None", []),
                Value::from_bytes(&call.data),
            ],
        )
    }

    /// This contract's events among a transaction's events.
    pub fn events_of(&self, included: &Included) -> Result<Vec<SlotpayEvent>, ChainError> {
        let details = included.events.iter().collect::<Result<Vec<_>, _>>()?;
        slotpay_events(&details, &self.address)
    }

    /// This contract's events in block `block`, in order.
    pub async fn events_at(&self, block: BlockHash) -> Result<Vec<SlotpayEvent>, ChainError> {
        Ok(self.block(block).await?.1)
    }

    /// Block `block`'s parent, and this contract's events in it.
    async fn block(&self, block: BlockHash) -> Result<(BlockHash, Vec<SlotpayEvent>), ChainError> {
        let block = self.node.api().blocks().at(block).await?;
        let parent = block.header().parent_hash;
        let events = block.events().await?;
        let details = events
            .iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(subxt::Error::from)?;
        Ok((parent, slotpay_events(&details, &self.address)?))
    }

    /// Blocks `from..=to` of the best chain, each with its hash, its parent's and this
    /// contract's events; a number the node has no block for is an error (the chain moved
    /// under the read: read again).
    /// Eight blocks are read at a time.
    pub async fn blocks_in(&self, from: u32, to: u32) -> Result<Vec<BlockEvents>, ChainError> {
        use futures::{StreamExt as _, TryStreamExt as _};
        futures::stream::iter(from..=to)
            .map(|number| async move {
                let hash = self
                    .node
                    .rpc()
                    .chain_get_block_hash(Some(number.into()))
                    .await?
                    .ok_or_else(|| {
                        ChainError::Other(format!("no block {number} on the best chain"))
                    })?;
                let (parent, events) = self.block(hash).await?;
                Ok::<_, ChainError>(BlockEvents {
                    number,
                    hash,
                    parent,
                    events,
                })
            })
            .buffered(8)
            .try_collect()
            .await
    }

    /// Several calls in one transaction signed by `signer`, each dry-run first. With
    /// [`Batch::Force`] an item whose dry run is refused is left out and reported, and an
    /// item failing in the block does not stop the others; with [`Batch::All`] any refusal
    /// fails the whole call before anything is submitted.
    pub async fn batch<S: Signer<PolkadotConfig>>(
        &self,
        signer: &S,
        calls: &[Call],
        mode: Batch,
        finality: Finality,
    ) -> Result<BatchOutcome, ChainError> {
        let origin = signer.account_id().0;
        let (_, best) = self.node.best().await?;
        let mut items: Vec<Option<ItemOutcome>> = Vec::with_capacity(calls.len());
        let mut weights = Vec::with_capacity(calls.len());
        let mut txs = Vec::new();
        let outcomes = self.dry_run_all(origin, best, calls).await;
        for (call, outcome) in calls.iter().zip(outcomes) {
            let outcome = outcome?;
            let refusal = match &outcome.result {
                Err(reason) => Some(ChainError::Call {
                    message: call.label,
                    reason: reason.clone(),
                }),
                Ok((flags, data)) if flags & REVERT != 0 => Some(refusal(call.label, data)),
                Ok(_) => None,
            };
            match (refusal, mode) {
                (Some(e), Batch::All) => return Err(e),
                (Some(e), Batch::Force) => {
                    items.push(Some(ItemOutcome::Refused(e)));
                    weights.push(Weight::default());
                }
                (None, _) => {
                    items.push(None);
                    weights.push(outcome.gas_required);
                    txs.push(self.call_tx(call, outcome.gas_required).into_value());
                }
            }
        }
        if txs.is_empty() {
            return Ok(BatchOutcome {
                included: None,
                items: items.into_iter().flatten().collect(),
                weights,
            });
        }
        let name = match mode {
            Batch::All => "batch_all",
            Batch::Force => "force_batch",
        };
        let tx = subxt::dynamic::tx("Utility", name, vec![Value::unnamed_composite(txs)]);
        let included = self.node.submit(signer, &tx, finality).await?;
        let mut submitted = split_items(&included, &self.address)?.into_iter();
        let items = items
            .into_iter()
            .map(|item| {
                item.or_else(|| submitted.next())
                    .unwrap_or_else(|| ItemOutcome::Failed("no outcome reported".into()))
            })
            .collect();
        Ok(BatchOutcome {
            included: Some(included),
            items,
            weights,
        })
    }

    /// What each call would weigh as `origin` at the best block (`None`: its dry run
    /// failed or was refused), without submitting anything.
    pub async fn weigh(
        &self,
        origin: AccountId32,
        calls: &[Call],
    ) -> Result<Vec<Option<Weight>>, ChainError> {
        let (_, best) = self.node.best().await?;
        self.dry_run_all(origin, best, calls)
            .await
            .into_iter()
            .map(|outcome| {
                let outcome = outcome?;
                Ok(match outcome.result {
                    Ok((flags, _)) if flags & REVERT == 0 => Some(outcome.gas_required),
                    _ => None,
                })
            })
            .collect()
    }

    /// Every call's dry run as `origin` at block `at`, all at once: a batch's latency is
    /// one round trip, not one per call.
    async fn dry_run_all(
        &self,
        origin: AccountId32,
        at: BlockHash,
        calls: &[Call],
    ) -> Vec<Result<dry_run::RawDryRun, ChainError>> {
        futures::future::join_all(calls.iter().map(|call| {
            dry_run::call(
                self.node.api(),
                at,
                origin,
                self.address,
                call.value,
                call.data.clone(),
            )
        }))
        .await
    }
}

/// A reverted message's contract error, from its return data.
fn refusal(message: &'static str, data: &[u8]) -> ChainError {
    match <Result<Result<(), Error>, u8>>::decode(&mut &data[..]) {
        Ok(Ok(Err(error))) => ChainError::Refused { message, error },
        _ => ChainError::Call {
            message,
            reason: format!("reverted with 0x{}", hex::encode(data)),
        },
    }
}

/// The events of a batch's items: pallet-utility closes each item with `ItemCompleted`
/// or `ItemFailed`, after the item's own events.
fn split_items(
    included: &Included,
    contract: &AccountId32,
) -> Result<Vec<ItemOutcome>, ChainError> {
    let mut items = Vec::new();
    let mut current = Vec::new();
    for event in included.events.iter() {
        let event = event?;
        match (event.pallet_name(), event.variant_name()) {
            ("Utility", "ItemCompleted") => {
                items.push(ItemOutcome::Done(slotpay_events(&current, contract)?));
                current.clear();
            }
            ("Utility", "ItemFailed") => {
                let reason = event
                    .field_values()
                    .map(|v| v.to_string())
                    .unwrap_or_else(|e| e.to_string());
                items.push(ItemOutcome::Failed(reason));
                current.clear();
            }
            _ => current.push(event),
        }
    }
    Ok(items)
}
