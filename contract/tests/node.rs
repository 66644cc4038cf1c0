//! End-to-end on a real substrate-contracts-node: the whole life of a channel of each
//! construction (settled twice, then closed), every balance checked to the unit including
//! transaction fees and storage deposits, the reaped-payer attack with the chain's own
//! existential deposit, the expiry path, and a node restart between open and close.
//!
//! Needs a node at `SLOTPAY_NODE_URL` started by `scripts/node.sh` (scripts/test.sh does
//! this). Uses ink_e2e's node client, built at run time from that URL (ink_e2e's test
//! macro reads `CONTRACTS_NODE_URL` at compile time, which a changing port would defeat).
//! Run with `--test-threads 1`: the restart test stops the node for a moment.
#![cfg(feature = "e2e-node-tests")]

use ink::env::DefaultEnvironment;
use ink::primitives::AccountId;
use ink_e2e::subxt::dynamic::Value;
use ink_e2e::subxt::{self, OnlineClient};
use ink_e2e::{ChainBackend, ContractsBackend, Keypair, PolkadotConfig};
use scale::Decode;
use slotpay_channels::interface::events::{Closed, ContractEvent, PaymentDeferred, Withdrawn};
use slotpay_channels::interface::messages::{Message, Open};
use slotpay_channels::protocol::crypto::backend::SoftHasher;
use slotpay_channels::protocol::crypto::Hasher;
use slotpay_channels::protocol::keys::{self, SecretKey};
use slotpay_channels::protocol::{
    Authority, ChannelId, Domain, MembershipProof, Receipt, SignedReceipt,
};
use slotpay_channels::protocol::{Member, MerkleTree};
use slotpay_channels::slotpay_channels::{Error, SlotpayChannels, SlotpayChannelsRef};
use std::process::Command;

type Client = ink_e2e::Client<PolkadotConfig, DefaultEnvironment>;
type Events = subxt::blocks::ExtrinsicEvents<PolkadotConfig>;
type Balance = u128;

const UNIT: Balance = 1_000_000_000_000;
const DEPOSIT: Balance = 3 * UNIT;
const PRICE: Balance = 25_000_000_000;
const NOTICE: u32 = 5;

fn node_url() -> String {
    std::env::var("SLOTPAY_NODE_URL").expect(
        "SLOTPAY_NODE_URL is not set: start a node with scripts/node.sh (scripts/test.sh does)",
    )
}

async fn connect() -> (Client, OnlineClient<PolkadotConfig>) {
    let url = node_url();
    let rpc = ink_e2e::RpcClient::from_url(&url)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    let client = Client::new(rpc.clone(), ink_e2e::build_root_and_contract_dependencies())
        .await
        .expect("ink_e2e client");
    let api = OnlineClient::<PolkadotConfig>::from_rpc_client(rpc)
        .await
        .expect("subxt client");
    (client, api)
}

fn account_of(keypair: &Keypair) -> AccountId {
    AccountId::from(keypair.public_key().0)
}

fn raw(account: &AccountId) -> [u8; 32] {
    *AsRef::<[u8; 32]>::as_ref(account)
}

fn secret(seed: u8) -> SecretKey {
    SecretKey::from_slice(&[seed; 32]).expect("valid scalar")
}

/// The chain's existential deposit, from its constants.
fn existential_deposit(api: &OnlineClient<PolkadotConfig>) -> Balance {
    let constant = api
        .constants()
        .at(&subxt::dynamic::constant("Balances", "ExistentialDeposit"))
        .expect("Balances::ExistentialDeposit");
    Balance::decode(&mut constant.encoded()).expect("a u128")
}

/// The fee (plus tip) the extrinsic's signer paid, from `TransactionFeePaid`.
fn fee_paid(events: &Events) -> Balance {
    let mut total = 0;
    for event in events.iter() {
        let event = event.expect("decode event");
        if event.pallet_name() == "TransactionPayment"
            && event.variant_name() == "TransactionFeePaid"
        {
            let (_who, fee, tip) = <([u8; 32], Balance, Balance)>::decode(&mut event.field_bytes())
                .expect("TransactionFeePaid fields");
            total += fee + tip;
        }
    }
    assert!(total > 0, "every signed extrinsic pays a fee");
    total
}

/// Storage deposit moved by the extrinsic's origin: + charged, - refunded.
fn storage_deposit(events: &Events, origin: &AccountId) -> i128 {
    let mut net = 0i128;
    for event in events.iter() {
        let event = event.expect("decode event");
        if event.pallet_name() != "Contracts" {
            continue;
        }
        let (from, to, amount) = match event.variant_name() {
            "StorageDepositTransferredAndHeld" | "StorageDepositTransferredAndReleased" => {
                <([u8; 32], [u8; 32], Balance)>::decode(&mut event.field_bytes()).expect("fields")
            }
            _ => continue,
        };
        if from == raw(origin) {
            net += amount as i128;
        }
        if to == raw(origin) {
            net -= amount as i128;
        }
    }
    net
}

/// The contract events of type `E` among `events`, recognised by their signature topic.
fn contract_events<E: ContractEvent>(events: &Events) -> Vec<E> {
    let topic = E::signature_topic();
    let mut out = Vec::new();
    for event in events.iter() {
        let event = event.expect("decode event");
        if event.pallet_name() != "Contracts" || event.variant_name() != "ContractEmitted" {
            continue;
        }
        if event.topics().first().map(|t| t.0) != Some(topic) {
            continue;
        }
        let (_contract, data) =
            <([u8; 32], Vec<u8>)>::decode(&mut event.field_bytes()).expect("ContractEmitted");
        out.push(E::decode(&mut &data[..]).expect("decode the contract's event"));
    }
    out
}

/// `balance - charged`, where a negative charge is a refund.
fn less(balance: Balance, charged: i128) -> Balance {
    (balance as i128 - charged) as Balance
}

async fn balance(client: &mut Client, who: &AccountId) -> Balance {
    client.free_balance(*who).await.expect("free balance")
}

async fn best_block(api: &OnlineClient<PolkadotConfig>) -> u32 {
    api.blocks()
        .at_latest()
        .await
        .expect("latest block")
        .number()
}

struct Deployed {
    address: AccountId,
    domain: Domain,
    builder: <SlotpayChannels as ink::codegen::ContractCallBuilder>::Type,
}

async fn deploy(client: &mut Client, api: &OnlineClient<PolkadotConfig>) -> Deployed {
    let genesis: [u8; 32] = api.genesis_hash().0;
    let mut constructor = SlotpayChannelsRef::new(genesis);
    let contract = client
        .instantiate("slotpay_channels", &ink_e2e::alice(), &mut constructor)
        .submit()
        .await
        .expect("instantiate");
    let builder = contract.call_builder::<SlotpayChannels>();
    let domain = Domain {
        genesis_hash: genesis,
        contract: raw(&contract.account_id),
    };
    Deployed {
        address: contract.account_id,
        domain,
        builder,
    }
}

async fn funded(client: &mut Client) -> Keypair {
    client
        .create_and_fund_account(&ink_e2e::alice(), 100 * UNIT)
        .await
}

fn claim(
    domain: &Domain,
    channel: ChannelId,
    amount: Balance,
    key: &SecretKey,
    membership: Option<MembershipProof>,
) -> SignedReceipt {
    let receipt = Receipt {
        channel,
        epoch: 0,
        amount,
    };
    SignedReceipt::sign(receipt, domain, key, membership)
}

/// Open by an sr25519 payer, buy `slots` slots, settle at a third and at two thirds of
/// them, close with the last receipt; balances to the unit after every step.
async fn sr25519_payer_life(
    authority: Authority,
    sign: impl Fn(&Domain, ChannelId, Balance, u32) -> SignedReceipt,
    slots: u32,
) {
    let (mut client, api) = connect().await;
    let mut contract = deploy(&mut client, &api).await;
    let payer = funded(&mut client).await;
    let payee = funded(&mut client).await;
    let (payer_id, payee_id) = (account_of(&payer), account_of(&payee));
    let mut payer_expected = balance(&mut client, &payer_id).await;
    let mut payee_expected = balance(&mut client, &payee_id).await;

    let expires_at = best_block(&api).await + 1_000;
    let open = contract
        .builder
        .open(payee_id, authority, expires_at, NOTICE);
    let opened = client
        .call(&payer, &open)
        .value(DEPOSIT)
        .submit()
        .await
        .expect("open");
    let open_storage = storage_deposit(&opened.events, &payer_id);
    let open_fee = fee_paid(&opened.events);
    let channel = opened.return_value().expect("open succeeds");
    assert!(open_storage > 0);
    payer_expected = less(payer_expected - DEPOSIT - open_fee, open_storage);
    assert_eq!(balance(&mut client, &payer_id).await, payer_expected);

    let mut settled = 0;
    for slot in [slots / 3, 2 * slots / 3] {
        let total = PRICE * Balance::from(slot);
        let settle = contract
            .builder
            .settle(sign(&contract.domain, channel, total, slot));
        let done = client.call(&payee, &settle).submit().await.expect("settle");
        payee_expected = less(
            payee_expected + total - settled - fee_paid(&done.events),
            storage_deposit(&done.events, &payee_id),
        );
        assert_eq!(done.return_value(), Ok(total - settled));
        assert_eq!(
            balance(&mut client, &payee_id).await,
            payee_expected,
            "payee: exactly what was settled, minus its fee"
        );
        settled = total;
    }

    let amount = PRICE * Balance::from(slots);
    let last = sign(&contract.domain, channel, amount, slots);
    let close = contract.builder.close(channel, Some(last));
    let closed = client.call(&payee, &close).submit().await.expect("close");
    assert_eq!(
        contract_events::<Closed>(&closed.events),
        [Closed {
            channel,
            paid: amount - settled,
            refunded: DEPOSIT - amount
        }]
    );
    let close_storage = storage_deposit(&closed.events, &payee_id);
    let close_fee = fee_paid(&closed.events);
    assert_eq!(closed.return_value(), Ok(()));
    assert!(
        close_storage < 0 && -close_storage <= open_storage,
        "the closer gets the storage deposit back (less what the pallet keeps): {close_storage} of {open_storage}"
    );
    payee_expected = less(payee_expected + amount - settled - close_fee, close_storage);
    payer_expected += DEPOSIT - amount;
    assert_eq!(
        balance(&mut client, &payee_id).await,
        payee_expected,
        "payee: exactly the receipt amount in all, plus the storage refund, minus its fees"
    );
    assert_eq!(
        balance(&mut client, &payer_id).await,
        payer_expected,
        "payer: exactly the deposit minus the receipt back"
    );
    let gone = contract.builder.channel(channel);
    let state = client.call(&payee, &gone).dry_run().await.expect("query");
    assert_eq!(state.return_value(), None);
    let _ = contract.address;
}

#[tokio::test]
async fn delegated_client_key_settled_twice_then_closed_on_node() {
    let client_key = secret(0x31);
    sr25519_payer_life(
        Authority::Delegate(keys::public_key(&client_key)),
        |domain, channel, total, _| claim(domain, channel, total, &client_key, None),
        30,
    )
    .await;
}

#[tokio::test]
async fn group_channel_settled_twice_then_closed_on_node() {
    let members: Vec<SecretKey> = (1..=4u8).map(|i| secret(0x50 + i)).collect();
    let leaves: Vec<Member> = members
        .iter()
        .map(|sk| Member {
            key: keys::public_key(sk),
            cap: DEPOSIT,
        })
        .collect();
    let tree = MerkleTree::build::<SoftHasher>(protocol::Substrate, &leaves).expect("group");
    let order = [2usize, 0, 3, 1, 1, 0];
    sr25519_payer_life(
        Authority::Group(tree.root()),
        |domain, channel, total, slot| {
            let member = order[(slot - 1) as usize];
            let proof = tree.proof(member).expect("proof");
            claim(domain, channel, total, &members[member], Some(proof))
        },
        order.len() as u32,
    )
    .await;
}

/// The payer's own ECDSA account key: the payer signs extrinsics with it too.
#[tokio::test]
async fn payers_own_account_key_channel_life_on_node() {
    let (mut client, api) = connect().await;
    let mut contract = deploy(&mut client, &api).await;
    let payee = funded(&mut client).await;
    let payee_id = account_of(&payee);
    let seed = [0x41u8; 32];
    let ecdsa = subxt_signer::ecdsa::Keypair::from_seed(seed).expect("ecdsa keypair");
    let payer_key = SecretKey::from_slice(&seed).expect("same secret");
    assert_eq!(ecdsa.public_key().0, keys::public_key(&payer_key).0);
    let payer_id = AccountId::from(ecdsa.public_key().to_account_id().0);
    assert_eq!(
        raw(&payer_id),
        SoftHasher::blake2_256(&keys::public_key(&payer_key).0)
    );
    // Fund the ECDSA account.
    client
        .runtime_call(
            &ink_e2e::alice(),
            "Balances",
            "transfer_allow_death",
            vec![
                Value::unnamed_variant("Id", [Value::from_bytes(raw(&payer_id))]),
                Value::u128(100 * UNIT),
            ],
        )
        .await
        .expect("fund the ECDSA payer");
    let payer_start = balance(&mut client, &payer_id).await;
    let payee_start = balance(&mut client, &payee_id).await;

    let next = client
        .call(&payee, &contract.builder.next_channel_id())
        .dry_run()
        .await
        .expect("query")
        .return_value();
    let expires_at = best_block(&api).await + 1_000;
    // The call's input, as the interface crate encodes it (selector + arguments).
    let input = Open {
        payee: raw(&payee_id),
        authority: Authority::Account(raw(&payer_id)),
        expires_at,
        notice: NOTICE,
    }
    .call_data();
    let open = subxt::dynamic::tx(
        "Contracts",
        "call",
        vec![
            Value::unnamed_variant("Id", [Value::from_bytes(raw(&contract.address))]),
            Value::u128(DEPOSIT),
            Value::named_composite([
                ("ref_time", Value::u128(50_000_000_000)),
                ("proof_size", Value::u128(1_000_000)),
            ]),
            Value::unnamed_variant("None", []),
            Value::from_bytes(input),
        ],
    );
    let opened = api
        .tx()
        .sign_and_submit_then_watch_default(&open, &ecdsa)
        .await
        .expect("submit open")
        .wait_for_finalized_success()
        .await
        .expect("open included");
    let open_fee = fee_paid(&opened);
    let open_storage = storage_deposit(&opened, &payer_id);
    let state = client
        .call(&payee, &contract.builder.channel(next))
        .dry_run()
        .await
        .expect("query")
        .return_value()
        .expect("the channel is open");
    assert_eq!((state.payer, state.deposit), (raw(&payer_id), DEPOSIT));
    assert_eq!(
        balance(&mut client, &payer_id).await,
        less(payer_start - DEPOSIT - open_fee, open_storage)
    );

    let amount = 7 * PRICE;
    let close = contract.builder.close(
        next,
        Some(claim(&contract.domain, next, amount, &payer_key, None)),
    );
    let closed = client.call(&payee, &close).submit().await.expect("close");
    let close_fee = fee_paid(&closed.events);
    let close_storage = storage_deposit(&closed.events, &payee_id);
    assert_eq!(closed.return_value(), Ok(()));
    assert_eq!(
        balance(&mut client, &payee_id).await,
        less(payee_start + amount - close_fee, close_storage)
    );
    assert_eq!(
        balance(&mut client, &payer_id).await,
        less(payer_start - amount - open_fee, open_storage)
    );
}

/// The reaped-payer attack on a real chain: the payer opens with n slots' price + 1 unit,
/// buys n slots, then sends everything it has away (`Balances::transfer_all`, not kept
/// alive), so its account is reaped and the 1-unit refund is below the chain's existential
/// deposit. The payee's close still goes through and pays it exactly the receipt; the
/// refund is owed, and the payer, funded again, withdraws exactly it.
#[tokio::test]
async fn a_reaped_payer_cannot_block_the_close_on_node() {
    let (mut client, api) = connect().await;
    let ed = existential_deposit(&api);
    assert!(
        ed > 1,
        "the attack needs an existential deposit above 1 unit, the chain has {ed}"
    );
    let mut contract = deploy(&mut client, &api).await;
    let payer = funded(&mut client).await;
    let payee = funded(&mut client).await;
    let (payer_id, payee_id) = (account_of(&payer), account_of(&payee));
    let client_key = secret(0x35);
    let amount = 9 * PRICE;
    let deposit = amount + 1;

    let expires_at = best_block(&api).await + 1_000;
    let open = contract.builder.open(
        payee_id,
        Authority::Delegate(keys::public_key(&client_key)),
        expires_at,
        NOTICE,
    );
    let opened = client
        .call(&payer, &open)
        .value(deposit)
        .submit()
        .await
        .expect("open");
    let channel = opened.return_value().expect("open succeeds");
    let last = claim(&contract.domain, channel, amount, &client_key, None);

    client
        .runtime_call(
            &payer,
            "Balances",
            "transfer_all",
            vec![
                Value::unnamed_variant(
                    "Id",
                    [Value::from_bytes(raw(&account_of(&ink_e2e::alice())))],
                ),
                Value::bool(false),
            ],
        )
        .await
        .expect("the payer empties its account");
    assert_eq!(
        balance(&mut client, &payer_id).await,
        0,
        "the payer is reaped"
    );

    let payee_start = balance(&mut client, &payee_id).await;
    let close = contract.builder.close(channel, Some(last));
    let closed = client.call(&payee, &close).submit().await.expect("close");
    let close_fee = fee_paid(&closed.events);
    let close_storage = storage_deposit(&closed.events, &payee_id);
    let closed_event = contract_events::<Closed>(&closed.events);
    let deferred = contract_events::<PaymentDeferred>(&closed.events);
    assert_eq!(
        closed.return_value(),
        Ok(()),
        "the payee's close goes through"
    );
    assert_eq!(
        balance(&mut client, &payee_id).await,
        less(payee_start + amount - close_fee, close_storage),
        "the payee gets exactly the receipt amount (storage deposits and its fee aside)"
    );
    assert_eq!(
        closed_event,
        [Closed {
            channel,
            paid: amount,
            refunded: 1
        }]
    );
    assert_eq!(
        deferred,
        [PaymentDeferred {
            account: raw(&payer_id),
            amount: 1,
            owed: 1
        }]
    );
    let owed = client
        .call(&payee, &contract.builder.owed(payer_id))
        .dry_run()
        .await
        .expect("query")
        .return_value();
    assert_eq!(owed, 1);

    // Funded again, the payer withdraws exactly the rest.
    client
        .runtime_call(
            &ink_e2e::alice(),
            "Balances",
            "transfer_allow_death",
            vec![
                Value::unnamed_variant("Id", [Value::from_bytes(raw(&payer_id))]),
                Value::u128(UNIT),
            ],
        )
        .await
        .expect("fund the payer again");
    let withdraw = contract.builder.withdraw();
    let withdrawn = client
        .call(&payer, &withdraw)
        .submit()
        .await
        .expect("withdraw");
    assert_eq!(
        contract_events::<Withdrawn>(&withdrawn.events),
        [Withdrawn {
            account: raw(&payer_id),
            amount: 1
        }]
    );
    let withdraw_fee = fee_paid(&withdrawn.events);
    let withdraw_storage = storage_deposit(&withdrawn.events, &payer_id);
    assert_eq!(withdrawn.return_value(), Ok(1));
    assert_eq!(
        balance(&mut client, &payer_id).await,
        less(UNIT + 1 - withdraw_fee, withdraw_storage),
        "the payer gets exactly the 1-unit rest (and the owed entry's storage deposit)"
    );
    let again = client
        .call(&payer, &withdraw)
        .dry_run()
        .await
        .expect("dry run");
    assert_eq!(again.return_value(), Err(Error::NothingToWithdraw));
}

/// Instant seal makes one block per transaction; remarks move the chain forward.
async fn advance_blocks(client: &mut Client, api: &OnlineClient<PolkadotConfig>, to: u32) {
    while best_block(api).await < to {
        client
            .runtime_call(
                &ink_e2e::alice(),
                "System",
                "remark",
                vec![Value::from_bytes(b"tick")],
            )
            .await
            .expect("remark");
    }
}

#[tokio::test]
async fn expiry_returns_the_rest_on_node() {
    let (mut client, api) = connect().await;
    let mut contract = deploy(&mut client, &api).await;
    let payer = funded(&mut client).await;
    let payee = funded(&mut client).await;
    let (payer_id, payee_id) = (account_of(&payer), account_of(&payee));
    let client_key = secret(0x61);
    let payer_start = balance(&mut client, &payer_id).await;

    // Margin: subxt reads the latest finalized block, which may trail the head.
    let expires_at = best_block(&api).await + 10;
    let open = contract.builder.open(
        payee_id,
        Authority::Delegate(keys::public_key(&client_key)),
        expires_at,
        NOTICE,
    );
    let opened = client
        .call(&payer, &open)
        .value(DEPOSIT)
        .submit()
        .await
        .expect("open");
    let mut fees = fee_paid(&opened.events);
    let open_storage = storage_deposit(&opened.events, &payer_id);
    let channel = opened.return_value().expect("open succeeds");
    let settle =
        contract
            .builder
            .settle(claim(&contract.domain, channel, PRICE, &client_key, None));
    let settled = client.call(&payee, &settle).submit().await.expect("settle");
    assert_eq!(settled.return_value(), Ok(PRICE));

    let claim_expired = contract.builder.claim_expired(channel);
    let early = client
        .call(&payer, &claim_expired)
        .dry_run()
        .await
        .expect("dry run");
    assert_eq!(early.return_value(), Err(Error::NotExpired));
    advance_blocks(&mut client, &api, expires_at).await;
    let late_close = contract.builder.close(
        channel,
        Some(claim(
            &contract.domain,
            channel,
            2 * PRICE,
            &client_key,
            None,
        )),
    );
    let late = client
        .call(&payee, &late_close)
        .dry_run()
        .await
        .expect("dry run");
    assert_eq!(late.return_value(), Err(Error::ChannelExpired));
    let by_payee = client
        .call(&payee, &claim_expired)
        .dry_run()
        .await
        .expect("dry run");
    assert_eq!(by_payee.return_value(), Err(Error::NotPayer));

    let claimed = client
        .call(&payer, &claim_expired)
        .submit()
        .await
        .expect("claim");
    fees += fee_paid(&claimed.events);
    let claim_storage = storage_deposit(&claimed.events, &payer_id);
    assert_eq!(claimed.return_value(), Ok(()));
    assert!(claim_storage < 0 && -claim_storage <= open_storage);
    assert_eq!(
        balance(&mut client, &payer_id).await,
        less(payer_start - PRICE - fees, open_storage + claim_storage),
        "the payer has the deposit less what was settled back, and the storage deposit but what the pallet keeps"
    );
}

/// The channel survives a node restart between open and close (same base path).
#[tokio::test]
async fn node_restart_between_open_and_close() {
    let (mut client, api) = connect().await;
    let mut contract = deploy(&mut client, &api).await;
    let payer = funded(&mut client).await;
    let payee = funded(&mut client).await;
    let (payer_id, payee_id) = (account_of(&payer), account_of(&payee));
    let client_key = secret(0x71);
    let expires_at = best_block(&api).await + 1_000;
    let open = contract.builder.open(
        payee_id,
        Authority::Delegate(keys::public_key(&client_key)),
        expires_at,
        NOTICE,
    );
    let opened = client
        .call(&payer, &open)
        .value(DEPOSIT)
        .submit()
        .await
        .expect("open");
    let channel = opened.return_value().expect("open succeeds");
    let payer_after_open = balance(&mut client, &payer_id).await;
    let payee_start = balance(&mut client, &payee_id).await;
    drop((client, api));

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/node.sh");
    let status = Command::new(script)
        .arg("restart")
        .status()
        .expect("run scripts/node.sh");
    assert!(status.success(), "node restart failed");

    let (mut client, _api) = connect().await;
    let amount = 11 * PRICE;
    let close = contract.builder.close(
        channel,
        Some(claim(&contract.domain, channel, amount, &client_key, None)),
    );
    let closed = client
        .call(&payee, &close)
        .submit()
        .await
        .expect("close after restart");
    let close_fee = fee_paid(&closed.events);
    let close_storage = storage_deposit(&closed.events, &payee_id);
    assert_eq!(closed.return_value(), Ok(()));
    assert_eq!(
        balance(&mut client, &payee_id).await,
        less(payee_start + amount - close_fee, close_storage)
    );
    assert_eq!(
        balance(&mut client, &payer_id).await,
        payer_after_open + DEPOSIT - amount
    );
}
