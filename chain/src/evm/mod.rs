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
    pub(super) key: PrivateKeySigner,
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

mod codec;
mod contract;
mod decode;
mod node;

use codec::{account, address_of, decoded};
pub use codec::{authority_from_evm, authority_to_evm, close_data, settle_data, EvmMessage};
pub use contract::{abi_mismatches, deploy, gas_limit, EvmContract};
pub use decode::{decode_log, refusal};
use node::{b256, block_id, block_number, rpc};
pub use node::{EvmIncluded, EvmNode};
