//! An in-process chain for the contract: ink_sandbox's runtime (pallet-contracts +
//! pallet-balances) running the contract's compiled wasm, with any origin and with block
//! production under the test's control.
//!
//! ink_e2e's own sandbox client signs only as sr25519 keypairs and never builds blocks;
//! the payer's-own-ECDSA-key construction and the expiry path need both, so this drives
//! the same runtime directly.
#![allow(dead_code)]

use ink_sandbox::api::prelude::*;
use ink_sandbox::pallet_contracts::{Determinism, StorageDeposit};
use ink_sandbox::{AccountId32, DefaultSandbox, Sandbox, Weight};
use scale::{Decode, Encode};
use slotpay_channels::protocol::crypto::backend::SoftHasher;
use slotpay_channels::protocol::crypto::Hasher;
use slotpay_channels::protocol::signature::keys::{self, SecretKey};
use slotpay_channels::protocol::{
    Authority, ChannelId, Domain, MembershipProof, Receipt, Signature,
};
use slotpay_channels::slotpay_channels::{Channel, Error};

pub type Balance = u128;
pub const GAS_LIMIT: Weight = Weight::from_parts(500_000_000_000, 4 * 1024 * 1024);
pub const START_BALANCE: Balance = 1_000_000_000_000;

/// What one extrinsic cost and returned.
#[derive(Debug, Clone)]
pub struct Outcome<T> {
    pub value: T,
    pub ref_time: u64,
    pub proof_size: u64,
    /// Positive: the origin was charged this storage deposit; negative: refunded.
    pub storage_deposit: i128,
}

fn deposit_of(deposit: &StorageDeposit<Balance>) -> i128 {
    match deposit {
        StorageDeposit::Charge(x) => *x as i128,
        StorageDeposit::Refund(x) => -(*x as i128),
    }
}

/// The contract's wasm, built once per test binary by ink_e2e's builder.
pub fn contract_code() -> Vec<u8> {
    let paths = ink_e2e::build_root_and_contract_dependencies();
    let path = paths
        .iter()
        .find(|p| p.file_name().is_some_and(|n| n == "slotpay_channels.wasm"))
        .unwrap_or_else(|| panic!("slotpay_channels.wasm not among {paths:?}"));
    std::fs::read(path).expect("read the contract's wasm")
}

pub fn account(seed: u8) -> AccountId32 {
    AccountId32::new([seed; 32])
}

/// The chain account of an ECDSA key: blake2_256 of the compressed public key.
pub fn ecdsa_account(secret: &SecretKey) -> AccountId32 {
    AccountId32::new(SoftHasher::blake2_256(&keys::public_key(secret).0))
}

pub fn secret(seed: u8) -> SecretKey {
    SecretKey::from_slice(&[seed; 32]).expect("valid scalar")
}

pub struct Chain {
    pub sandbox: DefaultSandbox,
    pub contract: AccountId32,
    pub genesis_hash: [u8; 32],
}

impl Chain {
    /// A fresh chain with `accounts` funded and the contract deployed.
    pub fn new(code: &[u8], accounts: &[&AccountId32]) -> Self {
        let mut sandbox = DefaultSandbox::default();
        for who in accounts {
            sandbox
                .mint_into(who, START_BALANCE)
                .expect("mint test balance");
        }
        // The sandbox's block 0 hash stands in for a genesis hash.
        let genesis_hash: [u8; 32] = sandbox.execute_with(|| {
            ink_sandbox::frame_system::Pallet::<<DefaultSandbox as Sandbox>::Runtime>::block_hash(0)
                .into()
        });
        let deployer = account(0xDE);
        sandbox.mint_into(&deployer, START_BALANCE).expect("mint");
        let contract = Self::instantiate(&mut sandbox, code, &deployer, genesis_hash, 0);
        Self {
            sandbox,
            contract,
            genesis_hash,
        }
    }

    /// Another instance of the same code on the same chain.
    pub fn instantiate(
        sandbox: &mut DefaultSandbox,
        code: &[u8],
        deployer: &AccountId32,
        genesis_hash: [u8; 32],
        salt: u8,
    ) -> AccountId32 {
        let mut data = ink::selector_bytes!("new").to_vec();
        genesis_hash.encode_to(&mut data);
        let result = sandbox.deploy_contract(
            code.to_vec(),
            0,
            data,
            vec![salt],
            deployer.clone(),
            GAS_LIMIT,
            None,
        );
        result
            .result
            .unwrap_or_else(|e| panic!("instantiate failed: {e:?}"))
            .account_id
    }

    pub fn domain(&self) -> Domain {
        Domain {
            genesis_hash: self.genesis_hash,
            contract: *self.contract.as_ref(),
        }
    }

    pub fn balance(&mut self, who: &AccountId32) -> Balance {
        self.sandbox.free_balance(who)
    }

    pub fn block_number(&mut self) -> u32 {
        self.sandbox.block_number()
    }

    pub fn build_blocks(&mut self, n: u32) {
        self.sandbox.build_blocks(n);
    }

    /// Calls message `selector` with SCALE `args` and decodes its return value `R`.
    pub fn call<R: Decode>(
        &mut self,
        origin: &AccountId32,
        value: Balance,
        selector: [u8; 4],
        args: impl Encode,
    ) -> Outcome<R> {
        let mut data = selector.to_vec();
        args.encode_to(&mut data);
        let result = self.sandbox.call_contract(
            self.contract.clone(),
            value,
            data,
            origin.clone(),
            GAS_LIMIT,
            None,
            Determinism::Enforced,
        );
        let returned = result.result.unwrap_or_else(|e| {
            panic!(
                "contract trapped: {e:?}; debug: {}",
                String::from_utf8_lossy(&result.debug_message)
            )
        });
        let value = <Result<R, ink::LangError>>::decode(&mut &returned.data[..])
            .expect("decode the message's return value")
            .expect("no LangError");
        Outcome {
            value,
            ref_time: result.gas_consumed.ref_time(),
            proof_size: result.gas_consumed.proof_size(),
            storage_deposit: deposit_of(&result.storage_deposit),
        }
    }

    pub fn open(
        &mut self,
        payer: &AccountId32,
        payee: &AccountId32,
        authority: Authority,
        expires_at: u32,
        deposit: Balance,
    ) -> Outcome<Result<ChannelId, Error>> {
        let payee: [u8; 32] = *payee.as_ref();
        self.call(
            payer,
            deposit,
            ink::selector_bytes!("open"),
            (payee, authority, expires_at),
        )
    }

    pub fn close(
        &mut self,
        payee: &AccountId32,
        channel: ChannelId,
        amount: Balance,
        signature: Signature,
        proof: Option<MembershipProof>,
    ) -> Outcome<Result<(), Error>> {
        self.call(
            payee,
            0,
            ink::selector_bytes!("close"),
            (channel, amount, signature, proof),
        )
    }

    pub fn top_up(
        &mut self,
        payer: &AccountId32,
        channel: ChannelId,
        value: Balance,
    ) -> Outcome<Result<(), Error>> {
        self.call(payer, value, ink::selector_bytes!("top_up"), channel)
    }

    pub fn extend(
        &mut self,
        payer: &AccountId32,
        channel: ChannelId,
        expires_at: u32,
    ) -> Outcome<Result<(), Error>> {
        self.call(
            payer,
            0,
            ink::selector_bytes!("extend"),
            (channel, expires_at),
        )
    }

    pub fn claim_expired(
        &mut self,
        who: &AccountId32,
        channel: ChannelId,
    ) -> Outcome<Result<(), Error>> {
        self.call(who, 0, ink::selector_bytes!("claim_expired"), channel)
    }

    pub fn channel(&mut self, channel: ChannelId) -> Option<Channel> {
        let anyone = account(0xDE);
        self.call(&anyone, 0, ink::selector_bytes!("channel"), channel)
            .value
    }

    pub fn contract_domain(&mut self) -> Domain {
        let anyone = account(0xDE);
        self.call(&anyone, 0, ink::selector_bytes!("domain"), ())
            .value
    }

    pub fn sign(&self, channel: ChannelId, amount: Balance, key: &SecretKey) -> Signature {
        Receipt { channel, amount }.sign(&self.domain(), key)
    }
}
