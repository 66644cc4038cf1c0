//! Either settlement layer behind one type: the contract a deployment names
//! ([`AnyContract`]), its node ([`AnyNode`]) and who signs there ([`LayerSigner`]). The
//! one place the off-chain crates choose the layer: from the deployment file (or, where
//! there is none yet, `--layer`), never by testing the layer anywhere else.
use crate::contract::{Answer, At, Contract};
use crate::evm::{self, EvmContract, EvmIncluded, EvmMessage, EvmNode, EvmSigner};
use crate::node::{Finality, Included, Node};
use crate::signer::AnySigner;
use crate::{ChainError, SlotpayEvent};
use api::{Deployment, DeploymentLayer};
use interface::messages::{self, Message};
use protocol::{AccountId32, AnyDomain, AnyLayer, Balance, Channel, ChannelId};

/// Who signs transactions, on the layer it signs for.
#[derive(Clone)]
pub enum LayerSigner {
    /// A Substrate account (sr25519 or ECDSA).
    Substrate(AnySigner),
    /// An EVM account.
    Evm(EvmSigner),
}

impl LayerSigner {
    /// A signer for `layer` from a secret URI: on Substrate `//Alice`, a mnemonic or a 0x
    /// seed (sr25519); on an EVM a 0x secret or a dev name of [`evm::DEV_KEYS`].
    pub fn from_suri(layer: AnyLayer, suri: &str) -> Result<Self, ChainError> {
        match layer {
            AnyLayer::Substrate => AnySigner::from_suri(suri)
                .map(LayerSigner::Substrate)
                .map_err(|e| ChainError::Other(e.to_string())),
            AnyLayer::Evm => EvmSigner::from_suri(suri).map(LayerSigner::Evm),
        }
    }

    /// A signer for `layer` from a secp256k1 secret (a slotpay key file's): its ECDSA
    /// account on Substrate, its address on an EVM.
    pub fn from_ecdsa_secret(layer: AnyLayer, secret: &[u8; 32]) -> Result<Self, ChainError> {
        match layer {
            AnyLayer::Substrate => AnySigner::from_ecdsa_secret(secret)
                .map(LayerSigner::Substrate)
                .map_err(|e| ChainError::Other(e.to_string())),
            AnyLayer::Evm => EvmSigner::from_secret(secret).map(LayerSigner::Evm),
        }
    }

    /// Its account on its layer.
    pub fn account(&self) -> AccountId32 {
        match self {
            LayerSigner::Substrate(s) => s.account(),
            LayerSigner::Evm(s) => s.account(),
        }
    }

    /// Whether it is the key of a secp256k1 account (what the payer's-own-key
    /// construction binds): an ECDSA Substrate account, or any EVM account.
    pub fn is_ecdsa(&self) -> bool {
        matches!(
            self,
            LayerSigner::Substrate(AnySigner::Ecdsa(_)) | LayerSigner::Evm(_)
        )
    }

    fn evm(&self) -> Result<&EvmSigner, ChainError> {
        match self {
            LayerSigner::Evm(s) => Ok(s),
            LayerSigner::Substrate(_) => Err(ChainError::Other(
                "a Substrate key cannot sign for an EVM chain".into(),
            )),
        }
    }

    fn substrate(&self) -> Result<&AnySigner, ChainError> {
        match self {
            LayerSigner::Substrate(s) => Ok(s),
            LayerSigner::Evm(_) => Err(ChainError::Other(
                "an EVM key cannot sign for a Substrate chain".into(),
            )),
        }
    }
}

/// What a transaction did, on either layer.
#[derive(Debug, Clone)]
pub struct Done {
    /// Its block.
    pub block: u32,
    /// What its signer paid for it (on an EVM `gasUsed × effectiveGasPrice`).
    pub fee: Balance,
    /// Storage deposit it put on hold (Substrate; 0 on an EVM).
    pub storage_deposit_held: Balance,
    /// Storage deposit it got back (Substrate; 0 on an EVM).
    pub storage_deposit_released: Balance,
    /// On an EVM: the gas it used and the price of one gas.
    pub gas: Option<(u64, u128)>,
    /// The contract's events.
    pub events: Vec<SlotpayEvent>,
}

impl Done {
    fn substrate(included: &Included, account: &AccountId32, events: Vec<SlotpayEvent>) -> Self {
        let (held, released) = included.storage_deposit(account);
        Self {
            block: included.block,
            fee: included.fee,
            storage_deposit_held: held,
            storage_deposit_released: released,
            gas: None,
            events,
        }
    }

    /// A transaction on an EVM chain.
    pub fn evm(included: EvmIncluded) -> Self {
        Self {
            block: included.block,
            fee: included.fee,
            storage_deposit_held: 0,
            storage_deposit_released: 0,
            gas: Some((included.gas_used, included.effective_gas_price)),
            events: included.events,
        }
    }

    /// What it cost its signer beyond the value it moved, as JSON fields: its fee and the
    /// storage deposit it put on hold or got back (and on an EVM the gas and its price).
    pub fn costs_json(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![
            ("fee", self.fee.to_string()),
            (
                "storage_deposit_held",
                self.storage_deposit_held.to_string(),
            ),
            (
                "storage_deposit_released",
                self.storage_deposit_released.to_string(),
            ),
        ];
        if let Some((gas, price)) = self.gas {
            out.push(("gas_used", gas.to_string()));
            out.push(("effective_gas_price", price.to_string()));
        }
        out
    }
}

/// A node of either layer.
#[derive(Clone)]
pub enum AnyNode {
    /// A Substrate node.
    Substrate(Node),
    /// An EVM node.
    Evm(EvmNode),
}

impl AnyNode {
    /// Connects to a `layer` node at `url`.
    pub async fn connect(layer: AnyLayer, url: &str) -> Result<Self, ChainError> {
        Ok(match layer {
            AnyLayer::Substrate => AnyNode::Substrate(Node::connect(url).await?),
            AnyLayer::Evm => AnyNode::Evm(EvmNode::connect(url).await?),
        })
    }

    /// The best block's number.
    pub async fn best(&self) -> Result<u32, ChainError> {
        Ok(match self {
            AnyNode::Substrate(n) => n.best().await?.0,
            AnyNode::Evm(n) => n.best().await?.0,
        })
    }

    /// How far finality lags the best block now, in seconds of block time.
    pub async fn finality_lag_seconds(&self) -> Result<f64, ChainError> {
        match self {
            AnyNode::Substrate(n) => n.finality_lag_seconds().await,
            AnyNode::Evm(n) => n.finality_lag_seconds().await,
        }
    }

    /// The finality lag as a start-up check should take it: the median of five readings
    /// a quarter of a second apart. Right after a block the node finalizes it a moment
    /// later, and a reading taken then counts the whole time since the block before (on
    /// a dev node, however long it stood still); the median leaves such a moment out
    /// without taking a chain's best moment (the minimum would read a lagging chain
    /// right after it finalized).
    pub async fn steady_finality_lag_seconds(&self) -> Result<f64, ChainError> {
        let mut readings = Vec::with_capacity(5);
        for i in 0..5 {
            if i > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            readings.push(self.finality_lag_seconds().await?);
        }
        readings.sort_by(f64::total_cmp);
        Ok(readings[readings.len() / 2])
    }

    /// The free balance of `account` at the best block.
    pub async fn balance(&self, account: &AccountId32) -> Result<Balance, ChainError> {
        match self {
            AnyNode::Substrate(n) => n.free_balance(account).await,
            AnyNode::Evm(n) => n.balance(account).await,
        }
    }

    /// Transfers `amount` to `to`; `keep_alive` (Substrate) refuses to take the sender
    /// below the existential deposit. Waits for finality on Substrate, for the receipt on
    /// an EVM.
    pub async fn transfer(
        &self,
        signer: &LayerSigner,
        to: &AccountId32,
        amount: Balance,
        keep_alive: bool,
    ) -> Result<Done, ChainError> {
        match self {
            AnyNode::Substrate(n) => {
                let signer = signer.substrate()?;
                let included = crate::balances::transfer(
                    n,
                    signer,
                    to,
                    amount,
                    keep_alive,
                    Finality::Finalized,
                )
                .await?;
                Ok(Done::substrate(&included, &signer.account(), Vec::new()))
            }
            AnyNode::Evm(n) => Ok(Done::evm(n.transfer(signer.evm()?, to, amount).await?)),
        }
    }
}

/// The slotpay contract a deployment names, on its layer.
#[derive(Clone)]
pub enum AnyContract {
    /// The ink! contract.
    Substrate(Contract),
    /// The Solidity contract.
    Evm(EvmContract),
}

impl AnyContract {
    /// The contract `deployment` names, through the node at `url` (default: the
    /// deployment's), after the checks of its layer: the node serves the deployment's
    /// chain, and the contract there answers for the deployment's receipt domain.
    pub async fn bind(deployment: &Deployment, url: Option<&str>) -> Result<Self, ChainError> {
        let url = url.unwrap_or(&deployment.url);
        let node = AnyNode::connect(deployment.layer(), url).await?;
        Self::bind_on(node, deployment).await
    }

    /// [`Self::bind`] through `node`, a node of the deployment's layer.
    pub async fn bind_on(node: AnyNode, deployment: &Deployment) -> Result<Self, ChainError> {
        match (node, deployment.domain()) {
            (AnyNode::Substrate(node), AnyDomain::Substrate(domain)) => {
                Ok(AnyContract::Substrate(Contract::bind(node, &domain).await?))
            }
            (AnyNode::Evm(node), AnyDomain::Evm(domain)) => Ok(AnyContract::Evm(
                EvmContract::bind(node, &domain, Some(deployment.genesis_hash)).await?,
            )),
            _ => Err(ChainError::Other(
                "the node is of another settlement layer than the deployment".into(),
            )),
        }
    }

    /// Its layer.
    pub fn layer(&self) -> AnyLayer {
        match self {
            AnyContract::Substrate(_) => AnyLayer::Substrate,
            AnyContract::Evm(_) => AnyLayer::Evm,
        }
    }

    /// What receipts for it are bound to.
    pub fn domain(&self) -> AnyDomain {
        match self {
            AnyContract::Substrate(c) => AnyDomain::Substrate(c.domain()),
            AnyContract::Evm(c) => AnyDomain::Evm(c.domain()),
        }
    }

    /// Its node.
    pub fn node(&self) -> AnyNode {
        match self {
            AnyContract::Substrate(c) => AnyNode::Substrate(c.node().clone()),
            AnyContract::Evm(c) => AnyNode::Evm(c.node().clone()),
        }
    }

    /// Calls `message` with `value` attached, signed by `signer`: dry-run first (a
    /// refusal costs nothing and names the contract's error), then submitted; waits for
    /// finality on Substrate, for the receipt on an EVM.
    pub async fn call<M>(
        &self,
        signer: &LayerSigner,
        value: Balance,
        message: &M,
    ) -> Result<Done, ChainError>
    where
        M: Message + EvmMessage,
        <M as Message>::Output: Answer,
    {
        match self {
            AnyContract::Substrate(c) => {
                let signer = signer.substrate()?;
                let (included, events) =
                    c.call(signer, value, message, Finality::Finalized).await?;
                Ok(Done::substrate(&included, &signer.account(), events))
            }
            AnyContract::Evm(c) => Ok(Done::evm(c.call(signer.evm()?, value, message).await?)),
        }
    }

    /// The channel `id` at `at`, with the number of the block read.
    pub async fn channel(
        &self,
        id: ChannelId,
        at: At,
    ) -> Result<(u32, Option<Channel>), ChainError> {
        let message = messages::GetChannel { channel: id };
        match self {
            AnyContract::Substrate(c) => c.read(&message, at).await,
            AnyContract::Evm(c) => c.read(&message, at).await,
        }
    }

    /// What the contract owes `account` at `at`.
    pub async fn owed(&self, account: AccountId32, at: At) -> Result<Balance, ChainError> {
        let message = messages::Owed { account };
        Ok(match self {
            AnyContract::Substrate(c) => c.read(&message, at).await?.1,
            AnyContract::Evm(c) => c.read(&message, at).await?.1,
        })
    }

    /// The id the next `open` will assign, at `at`.
    pub async fn next_channel_id(&self, at: At) -> Result<u64, ChainError> {
        Ok(match self {
            AnyContract::Substrate(c) => c.read(&messages::NextChannelId, at).await?.1 .0,
            AnyContract::Evm(c) => c.read(&messages::NextChannelId, at).await?.1 .0,
        })
    }
}

/// Deploys the EVM contract from forge's artifact on the node at `url`, signed by
/// `signer`; the deployment it makes (layer, chain id, block 0's hash, the contract's
/// address, its runtime code's keccak256, the artifact) and the transaction.
pub async fn deploy_evm(
    url: &str,
    signer: &LayerSigner,
    artifact: &std::path::Path,
) -> Result<(Deployment, Done), ChainError> {
    let node = EvmNode::connect(url).await?;
    let (address, code_hash, included) = evm::deploy(&node, signer.evm()?, artifact).await?;
    let deployment = Deployment {
        url: url.to_owned(),
        layer: DeploymentLayer::Evm {
            chain_id: node.chain_id(),
        },
        genesis_hash: node.genesis_hash().await?,
        contract: protocol::evm_account(&address),
        code_hash,
        bundle: Some(std::fs::canonicalize(artifact).unwrap_or_else(|_| artifact.to_path_buf())),
    };
    Ok((deployment, Done::evm(included)))
}
