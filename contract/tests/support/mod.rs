//! An in-process chain for the contract: pallet-contracts + pallet-balances running the
//! contract's compiled wasm, with any origin and with block production under the test's
//! control.
//!
//! The runtime is ink_sandbox's, but for one thing: a real existential deposit
//! ([`EXISTENTIAL_DEPOSIT`]; ink_sandbox's is 1, which no payment can fall below). With it,
//! an account that was reaped cannot receive less than the deposit, which is how a payer
//! could make a refund fail (see `sandbox.rs`, the reaped-payer attack). Tests read it
//! through [`Chain::existential_deposit`], from the runtime.
//!
//! ink_e2e's own sandbox client signs only as sr25519 keypairs and never builds blocks;
//! the payer's-own-ECDSA-key construction and the expiry path need both, so this drives
//! the runtime directly. Calls are encoded with the interface crate's message types, so
//! the tests also check that the interface and the compiled contract agree on selectors
//! and argument encoding.
#![allow(dead_code)]

pub(crate) mod runtime;

use ink_sandbox::api::prelude::*;
use ink_sandbox::pallet_contracts::{Determinism, StorageDeposit};
use ink_sandbox::{AccountId32, Sandbox, Weight};
pub(crate) use runtime::{SlotpayRuntime, SlotpaySandbox};
use scale::Decode;
use slotpay_channels::interface::events::ContractEvent;
use slotpay_channels::interface::messages::{
    ClaimExpired, Close, Extend, GetChannel, GetDomain, Message, NextChannelId, Open, Owed, Rotate,
    Settle, TopUp, Withdraw,
};
use slotpay_channels::protocol::crypto::backend::SoftHasher;
use slotpay_channels::protocol::crypto::Hasher;
use slotpay_channels::protocol::keys::{self, SecretKey};
use slotpay_channels::protocol::{
    Authority, Channel, ChannelId, Domain, MembershipProof, Receipt, SignedReceipt,
};
use slotpay_channels::slotpay_channels::Error;

pub(crate) type Balance = u128;
pub(crate) const GAS_LIMIT: Weight = Weight::from_parts(500_000_000_000, 4 * 1024 * 1024);
pub(crate) const START_BALANCE: Balance = 1_000_000_000_000;

/// What one call cost, returned and emitted.
#[derive(Debug, Clone)]
pub(crate) struct Outcome<T> {
    pub value: T,
    pub ref_time: u64,
    pub proof_size: u64,
    /// Positive: the origin was charged this storage deposit; negative: refunded.
    pub storage_deposit: i128,
    /// The contract's events: (topics, data).
    pub events: Vec<(Vec<[u8; 32]>, Vec<u8>)>,
}

impl<T> Outcome<T> {
    /// The events of type `E` this call emitted, recognised by their signature topic.
    pub(crate) fn events<E: ContractEvent>(&self) -> Vec<E> {
        self.events
            .iter()
            .filter(|(topics, _)| topics.first() == Some(&E::signature_topic()))
            .map(|(_, data)| E::decode(&mut &data[..]).expect("decode the event"))
            .collect()
    }

    /// The storage deposit as a balance change of the origin (refund positive).
    pub(crate) fn storage_refund(&self) -> i128 {
        -self.storage_deposit
    }
}

fn deposit_of(deposit: &StorageDeposit<Balance>) -> i128 {
    match deposit {
        StorageDeposit::Charge(x) => *x as i128,
        StorageDeposit::Refund(x) => -(*x as i128),
    }
}

/// The contract's wasm, built once per test binary by ink_e2e's builder.
pub(crate) fn contract_code() -> Vec<u8> {
    let paths = ink_e2e::build_root_and_contract_dependencies();
    let path = paths
        .iter()
        .find(|p| p.file_name().is_some_and(|n| n == "slotpay_channels.wasm"))
        .unwrap_or_else(|| panic!("slotpay_channels.wasm not among {paths:?}"));
    std::fs::read(path).expect("read the contract's wasm")
}

pub(crate) fn account(seed: u8) -> AccountId32 {
    AccountId32::new([seed; 32])
}

pub(crate) fn raw(account: &AccountId32) -> [u8; 32] {
    *account.as_ref()
}

/// The chain account of an ECDSA key: blake2_256 of the compressed public key.
pub(crate) fn ecdsa_account(secret: &SecretKey) -> AccountId32 {
    AccountId32::new(SoftHasher::blake2_256(&keys::public_key(secret).0))
}

pub(crate) fn secret(seed: u8) -> SecretKey {
    SecretKey::from_slice(&[seed; 32]).expect("valid scalar")
}

pub(crate) struct Chain {
    pub sandbox: SlotpaySandbox,
    pub contract: AccountId32,
    pub genesis_hash: [u8; 32],
}

impl Chain {
    /// A fresh chain with `accounts` funded and the contract deployed.
    pub(crate) fn new(code: &[u8], accounts: &[&AccountId32]) -> Self {
        let mut sandbox = SlotpaySandbox::default();
        for who in accounts {
            sandbox
                .mint_into(who, START_BALANCE)
                .expect("mint test balance");
        }
        // The sandbox's block 0 hash stands in for a genesis hash.
        let genesis_hash: [u8; 32] =
            sandbox.execute_with(|| frame_system::Pallet::<SlotpayRuntime>::block_hash(0).into());
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
    pub(crate) fn instantiate(
        sandbox: &mut SlotpaySandbox,
        code: &[u8],
        deployer: &AccountId32,
        genesis_hash: [u8; 32],
        salt: u8,
    ) -> AccountId32 {
        let new = interface::messages::New { genesis_hash };
        let result = sandbox.deploy_contract(
            code.to_vec(),
            0,
            new.call_data(),
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

    /// The runtime's existential deposit: the least a new account can receive.
    pub(crate) fn existential_deposit(&self) -> Balance {
        use frame_support::traits::Get;
        <<SlotpayRuntime as ink_sandbox::pallet_balances::Config>::ExistentialDeposit as Get<
            Balance,
        >>::get()
    }

    pub(crate) fn domain(&self) -> Domain {
        Domain {
            genesis_hash: self.genesis_hash,
            contract: raw(&self.contract),
        }
    }

    pub(crate) fn balance(&mut self, who: &AccountId32) -> Balance {
        self.sandbox.free_balance(who)
    }

    /// Whether `who` has an account at all (a reaped one does not).
    pub(crate) fn exists(&mut self, who: &AccountId32) -> bool {
        self.sandbox
            .execute_with(|| frame_system::Pallet::<SlotpayRuntime>::account_exists(who))
    }

    pub(crate) fn mint(&mut self, who: &AccountId32, amount: Balance) {
        self.sandbox.mint_into(who, amount).expect("mint");
    }

    /// `from` sends `amount` to `to` with `Balances::transfer_allow_death`.
    pub(crate) fn transfer_allow_death(
        &mut self,
        from: &AccountId32,
        to: &AccountId32,
        amount: Balance,
    ) {
        let call = runtime::RuntimeCall::Balances(ink_sandbox::pallet_balances::Call::<
            SlotpayRuntime,
        >::transfer_allow_death {
            dest: to.clone().into(),
            value: amount,
        });
        self.sandbox
            .runtime_call(call, Some(from.clone()))
            .unwrap_or_else(|e| panic!("transfer_allow_death: {e:?}"));
    }

    pub(crate) fn block_number(&mut self) -> u32 {
        self.sandbox.block_number()
    }

    pub(crate) fn build_blocks(&mut self, n: u32) {
        self.sandbox.build_blocks(n);
    }

    /// Calls `message` (or dry-runs it: nothing it does is kept) and decodes its output.
    fn run<M: Message>(
        &mut self,
        origin: &AccountId32,
        value: Balance,
        message: &M,
        dry: bool,
    ) -> Outcome<M::Output> {
        // The call collects every event of the block so far: start from none.
        self.sandbox.reset_events();
        let contract = self.contract.clone();
        let data = message.call_data();
        let origin = origin.clone();
        let call = move |sandbox: &mut SlotpaySandbox| {
            sandbox.call_contract(
                contract,
                value,
                data,
                origin,
                GAS_LIMIT,
                None,
                Determinism::Enforced,
            )
        };
        let result = if dry {
            self.sandbox.dry_run(call)
        } else {
            call(&mut self.sandbox)
        };
        let returned = result.result.unwrap_or_else(|e| {
            panic!(
                "contract trapped: {e:?}; debug: {}",
                String::from_utf8_lossy(&result.debug_message)
            )
        });
        let value = <Result<M::Output, ink::LangError>>::decode(&mut &returned.data[..])
            .expect("decode the message's return value")
            .expect("no LangError");
        let events = result
            .events
            .unwrap_or_default()
            .into_iter()
            .filter_map(|record| match record.event {
                runtime::RuntimeEvent::Contracts(
                    ink_sandbox::pallet_contracts::Event::ContractEmitted { contract, data },
                ) if contract == self.contract => Some((
                    record.topics.iter().map(|t| t.to_fixed_bytes()).collect(),
                    data,
                )),
                _ => None,
            })
            .collect();
        Outcome {
            value,
            ref_time: result.gas_consumed.ref_time(),
            proof_size: result.gas_consumed.proof_size(),
            storage_deposit: deposit_of(&result.storage_deposit),
            events,
        }
    }

    /// Calls `message` as `origin` with `value`.
    pub(crate) fn send<M: Message>(
        &mut self,
        origin: &AccountId32,
        value: Balance,
        message: &M,
    ) -> Outcome<M::Output> {
        self.run(origin, value, message, false)
    }

    /// Dry-runs `message` as `origin`: its outcome, with nothing kept.
    pub(crate) fn dry<M: Message>(
        &mut self,
        origin: &AccountId32,
        message: &M,
    ) -> Outcome<M::Output> {
        self.run(origin, 0, message, true)
    }

    pub(crate) fn open(
        &mut self,
        payer: &AccountId32,
        payee: &AccountId32,
        authority: Authority,
        expires_at: u32,
        deposit: Balance,
    ) -> Outcome<Result<ChannelId, Error>> {
        self.open_with_notice(payer, payee, authority, expires_at, 10, deposit)
    }

    pub(crate) fn open_with_notice(
        &mut self,
        payer: &AccountId32,
        payee: &AccountId32,
        authority: Authority,
        expires_at: u32,
        notice: u32,
        deposit: Balance,
    ) -> Outcome<Result<ChannelId, Error>> {
        let open = Open {
            payee: raw(payee),
            authority,
            expires_at,
            notice,
        };
        self.send(payer, deposit, &open)
    }

    pub(crate) fn settle(
        &mut self,
        payee: &AccountId32,
        receipt: SignedReceipt,
    ) -> Outcome<Result<Balance, Error>> {
        self.send(payee, 0, &Settle { receipt })
    }

    pub(crate) fn close(
        &mut self,
        payee: &AccountId32,
        channel: ChannelId,
        receipt: Option<SignedReceipt>,
    ) -> Outcome<Result<(), Error>> {
        self.send(payee, 0, &Close { channel, receipt })
    }

    pub(crate) fn rotate(
        &mut self,
        payer: &AccountId32,
        channel: ChannelId,
        authority: Authority,
    ) -> Outcome<Result<u32, Error>> {
        self.send(payer, 0, &Rotate { channel, authority })
    }

    pub(crate) fn top_up(
        &mut self,
        payer: &AccountId32,
        channel: ChannelId,
        value: Balance,
    ) -> Outcome<Result<(), Error>> {
        self.send(payer, value, &TopUp { channel })
    }

    pub(crate) fn extend(
        &mut self,
        payer: &AccountId32,
        channel: ChannelId,
        expires_at: u32,
    ) -> Outcome<Result<(), Error>> {
        self.send(
            payer,
            0,
            &Extend {
                channel,
                expires_at,
            },
        )
    }

    pub(crate) fn claim_expired(
        &mut self,
        who: &AccountId32,
        channel: ChannelId,
    ) -> Outcome<Result<(), Error>> {
        self.send(who, 0, &ClaimExpired { channel })
    }

    pub(crate) fn withdraw(&mut self, who: &AccountId32) -> Outcome<Result<Balance, Error>> {
        self.send(who, 0, &Withdraw)
    }

    pub(crate) fn channel(&mut self, channel: ChannelId) -> Option<Channel> {
        self.dry(&account(0xDE), &GetChannel { channel }).value
    }

    pub(crate) fn owed(&mut self, who: &AccountId32) -> Balance {
        self.dry(&account(0xDE), &Owed { account: raw(who) }).value
    }

    pub(crate) fn contract_domain(&mut self) -> Domain {
        self.dry(&account(0xDE), &GetDomain).value
    }

    pub(crate) fn next_channel_id(&mut self) -> ChannelId {
        self.dry(&account(0xDE), &NextChannelId).value
    }

    /// A claim for `amount` in `epoch` of `channel`, signed by `key` for this contract.
    pub(crate) fn claim(
        &self,
        channel: ChannelId,
        epoch: u32,
        amount: Balance,
        key: &SecretKey,
        membership: Option<MembershipProof>,
    ) -> SignedReceipt {
        let receipt = Receipt {
            channel,
            epoch,
            amount,
        };
        SignedReceipt::sign(receipt, &self.domain(), key, membership)
    }
}
