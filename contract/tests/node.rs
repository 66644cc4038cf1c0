//! End-to-end on a real substrate-contracts-node: the whole life of a channel of each
//! construction, every balance checked to the unit including transaction fees and
//! storage deposits, the expiry path, and a node restart between open and close.
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
use scale::{Decode, Encode};
use slotpay_channels::protocol::crypto::backend::SoftHasher;
use slotpay_channels::protocol::crypto::Hasher;
use slotpay_channels::protocol::merkle::MerkleTree;
use slotpay_channels::protocol::signature::keys::{self, SecretKey};
use slotpay_channels::protocol::{Authority, ChannelId, Domain, PublicKey, Receipt};
use slotpay_channels::slotpay_channels::{Error, SlotpayChannels, SlotpayChannelsRef};
use std::process::Command;

type Client = ink_e2e::Client<PolkadotConfig, DefaultEnvironment>;
type Events = subxt::blocks::ExtrinsicEvents<PolkadotConfig>;
type Balance = u128;

const UNIT: Balance = 1_000_000_000_000;
const DEPOSIT: Balance = 3 * UNIT;
const PRICE: Balance = 25_000_000_000;

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

fn secret(seed: u8) -> SecretKey {
    SecretKey::from_slice(&[seed; 32]).expect("valid scalar")
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
        if from == *AsRef::<[u8; 32]>::as_ref(origin) {
            net += amount as i128;
        }
        if to == *AsRef::<[u8; 32]>::as_ref(origin) {
            net -= amount as i128;
        }
    }
    net
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
        contract: *contract.account_id.as_ref(),
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

/// Open by an sr25519 payer, buy `slots` slots, close with the last receipt; balances to
/// the unit.
async fn sr25519_payer_life(
    authority_of: impl Fn() -> Authority,
    sign: impl Fn(
        &Domain,
        ChannelId,
        Balance,
        u32,
    ) -> (
        slotpay_channels::protocol::Signature,
        Option<slotpay_channels::protocol::MembershipProof>,
    ),
    slots: u32,
) {
    let (mut client, api) = connect().await;
    let mut contract = deploy(&mut client, &api).await;
    let payer = funded(&mut client).await;
    let payee = funded(&mut client).await;
    let (payer_id, payee_id) = (account_of(&payer), account_of(&payee));
    let payer_start = balance(&mut client, &payer_id).await;
    let payee_start = balance(&mut client, &payee_id).await;

    let expires_at = best_block(&api).await + 1_000;
    let open = contract.builder.open(payee_id, authority_of(), expires_at);
    let opened = client
        .call(&payer, &open)
        .value(DEPOSIT)
        .submit()
        .await
        .expect("open");
    let open_fee = fee_paid(&opened.events);
    let open_storage = storage_deposit(&opened.events, &payer_id);
    let channel = opened.return_value().expect("open succeeds");
    assert!(open_storage > 0);
    assert_eq!(
        balance(&mut client, &payer_id).await,
        payer_start - DEPOSIT - open_fee - open_storage as Balance
    );

    let mut last = None;
    for slot in 1..=slots {
        let total = PRICE * Balance::from(slot);
        last = Some((total, sign(&contract.domain, channel, total, slot)));
    }
    let (amount, (signature, proof)) = last.expect("a slot");
    let close = contract.builder.close(channel, amount, signature, proof);
    let closed = client.call(&payee, &close).submit().await.expect("close");
    let close_fee = fee_paid(&closed.events);
    let close_refund = -storage_deposit(&closed.events, &payee_id);
    assert_eq!(closed.return_value(), Ok(()));
    assert!(
        close_refund > 0 && close_refund <= open_storage,
        "the closer gets the storage deposit back (less the unit the pallet keeps): {close_refund} of {open_storage}"
    );

    assert_eq!(
        balance(&mut client, &payee_id).await,
        payee_start + amount + close_refund as Balance - close_fee,
        "payee: exactly the receipt amount, plus the storage refund, minus its fee"
    );
    assert_eq!(
        balance(&mut client, &payer_id).await,
        payer_start - amount - open_fee - open_storage as Balance,
        "payer: exactly the deposit minus the receipt back"
    );
    let gone = contract.builder.channel(channel);
    let state = client.call(&payee, &gone).dry_run().await.expect("query");
    assert_eq!(state.return_value(), None);
    let _ = contract.address;
}

#[tokio::test]
async fn delegated_client_key_channel_life_on_node() {
    let client_key = secret(0x31);
    sr25519_payer_life(
        || Authority::Delegate(keys::public_key(&client_key)),
        |domain, channel, total, _| {
            (
                Receipt {
                    channel,
                    amount: total,
                }
                .sign(domain, &client_key),
                None,
            )
        },
        30,
    )
    .await;
}

#[tokio::test]
async fn group_channel_life_on_node() {
    let members: Vec<SecretKey> = (1..=4u8).map(|i| secret(0x50 + i)).collect();
    let public: Vec<PublicKey> = members.iter().map(keys::public_key).collect();
    let tree = MerkleTree::build::<SoftHasher>(&public).expect("group");
    let root = tree.root();
    let order = [2usize, 0, 3, 1, 1, 0];
    sr25519_payer_life(
        || Authority::Group(root),
        |domain, channel, total, slot| {
            let member = order[(slot - 1) as usize];
            (
                Receipt {
                    channel,
                    amount: total,
                }
                .sign(domain, &members[member]),
                Some(tree.proof(member).expect("proof")),
            )
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
        *AsRef::<[u8; 32]>::as_ref(&payer_id),
        SoftHasher::blake2_256(&keys::public_key(&payer_key).0)
    );
    // Fund the ECDSA account.
    client
        .runtime_call(
            &ink_e2e::alice(),
            "Balances",
            "transfer_allow_death",
            vec![
                Value::unnamed_variant(
                    "Id",
                    [Value::from_bytes(AsRef::<[u8; 32]>::as_ref(&payer_id))],
                ),
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
    let mut input = ink::selector_bytes!("open").to_vec();
    (payee_id, Authority::Account(*payer_id.as_ref()), expires_at).encode_to(&mut input);
    let open = subxt::dynamic::tx(
        "Contracts",
        "call",
        vec![
            Value::unnamed_variant(
                "Id",
                [Value::from_bytes(AsRef::<[u8; 32]>::as_ref(
                    &contract.address,
                ))],
            ),
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
    assert_eq!((state.payer, state.deposit), (payer_id, DEPOSIT));
    assert_eq!(
        balance(&mut client, &payer_id).await,
        payer_start - DEPOSIT - open_fee - open_storage as Balance
    );

    let amount = 7 * PRICE;
    let signature = Receipt {
        channel: next,
        amount,
    }
    .sign(&contract.domain, &payer_key);
    let close = contract.builder.close(next, amount, signature, None);
    let closed = client.call(&payee, &close).submit().await.expect("close");
    let refund = -storage_deposit(&closed.events, &payee_id);
    let close_fee = fee_paid(&closed.events);
    assert_eq!(closed.return_value(), Ok(()));
    assert_eq!(
        balance(&mut client, &payee_id).await,
        payee_start + amount + refund as Balance - close_fee
    );
    assert_eq!(
        balance(&mut client, &payer_id).await,
        payer_start - amount - open_fee - open_storage as Balance
    );
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
async fn expiry_returns_the_deposit_on_node() {
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

    let claim = contract.builder.claim_expired(channel);
    let early = client
        .call(&payer, &claim)
        .dry_run()
        .await
        .expect("dry run");
    assert_eq!(early.return_value(), Err(Error::NotExpired));
    advance_blocks(&mut client, &api, expires_at).await;
    let sig = Receipt {
        channel,
        amount: PRICE,
    }
    .sign(&contract.domain, &client_key);
    let late_close = contract.builder.close(channel, PRICE, sig, None);
    let late = client
        .call(&payee, &late_close)
        .dry_run()
        .await
        .expect("dry run");
    assert_eq!(late.return_value(), Err(Error::ChannelExpired));
    let by_payee = client
        .call(&payee, &claim)
        .dry_run()
        .await
        .expect("dry run");
    assert_eq!(by_payee.return_value(), Err(Error::NotPayer));

    let claimed = client.call(&payer, &claim).submit().await.expect("claim");
    fees += fee_paid(&claimed.events);
    let claim_storage = storage_deposit(&claimed.events, &payer_id);
    assert_eq!(claimed.return_value(), Ok(()));
    assert!(claim_storage < 0 && -claim_storage <= open_storage);
    assert_eq!(
        balance(&mut client, &payer_id).await,
        payer_start - fees - (open_storage + claim_storage) as Balance,
        "the payer has the whole deposit back, and the storage deposit but the unit the pallet keeps"
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
    let sig = Receipt { channel, amount }.sign(&contract.domain, &client_key);
    let close = contract.builder.close(channel, amount, sig, None);
    let closed = client
        .call(&payee, &close)
        .submit()
        .await
        .expect("close after restart");
    let refund = -storage_deposit(&closed.events, &payee_id);
    let close_fee = fee_paid(&closed.events);
    assert_eq!(closed.return_value(), Ok(()));
    assert_eq!(
        balance(&mut client, &payee_id).await,
        payee_start + amount + refund as Balance - close_fee
    );
    assert_eq!(
        balance(&mut client, &payer_id).await,
        payer_after_open + DEPOSIT - amount
    );
}
