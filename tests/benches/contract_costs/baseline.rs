//! The ink! examples' `payment-channel` (5.1.1) on the same node, dry-run the same way:
//! one channel per contract, opened by instantiating it; `withdraw` pays the recipient
//! part of a signed amount and keeps the channel open (slotpay's settle); `close` pays the
//! rest of it and terminates the contract, refunding the sender.
//!
//! Its signature check compares the signer with the *recipient* (the 5.1.1 source does
//! so), so the recipient here is an ECDSA account and signs the amounts itself.
use chain::dry_run::{self, Code, Weight};
use chain::Instantiated;
use chain::{balances, AnySigner, Finality, Node};
use parity_scale_codec::Encode;
use protocol::crypto::backend::SoftHasher;
use protocol::crypto::Hasher;
use protocol::keys::{self, SecretKey};
use protocol::{AccountId32, Balance};
use serde_json::Value as Json;
use sha2::Digest as _;
use subxt::dynamic::Value;

use super::{env_path, AMOUNT, DEPOSIT, UNIT};

pub(crate) struct Baseline {
    pub code_len: usize,
    pub upload_and_instantiate: Weight,
    pub instantiate: Weight,
    pub instantiate_deposit: i128,
    pub withdraw: Weight,
    pub close: Weight,
    /// A call that only reads its root (`get_sender`): its floor, as slotpay's `domain`.
    pub floor: Weight,
}

struct Bundle {
    code: Vec<u8>,
    json: Json,
}

impl Bundle {
    fn selector(&self, kind: &str, label: &str) -> Vec<u8> {
        let list = self.json["spec"][kind]
            .as_array()
            .unwrap_or_else(|| panic!("the baseline's metadata has no spec.{kind}"));
        let entry = list
            .iter()
            .find(|e| e["label"] == label)
            .unwrap_or_else(|| panic!("the baseline has no {label}"));
        let hex = entry["selector"].as_str().expect("a selector");
        api::from_hex::<4>(hex, "selector")
            .expect("a hex selector")
            .to_vec()
    }
}

fn load() -> Bundle {
    let path = env_path("SLOTPAY_BASELINE_BUNDLE");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read the baseline bundle {}: {e}", path.display()));
    let json: Json = serde_json::from_str(&text).expect("the baseline bundle is JSON");
    let code = chain::bundle_code(&path).expect("the baseline's code");
    Bundle { code, json }
}

/// The example's signed amount: sha2-256 of SCALE(contract account, amount), signed with
/// secp256k1 (65 bytes, v in {0, 1}).
fn signed(contract: &AccountId32, amount: Balance, key: &SecretKey) -> [u8; 65] {
    let message: [u8; 32] = sha2::Sha256::digest((contract, amount).encode()).into();
    keys::sign_hash(key, &message).0
}

async fn call_dry(
    node: &Node,
    origin: AccountId32,
    contract: AccountId32,
    input: Vec<u8>,
) -> dry_run::RawDryRun {
    let (_, best) = node.best().await.expect("best block");
    let outcome = dry_run::call(node.api(), best, origin, contract, 0, input)
        .await
        .expect("baseline dry run");
    match &outcome.result {
        Ok((flags, _)) if flags & 1 == 0 => {}
        other => panic!("the baseline's call failed: {other:?}"),
    }
    outcome
}

pub(crate) async fn measure(node: &Node, alice: &AnySigner) -> Baseline {
    let bundle = load();
    let recipient_key = SecretKey::from_slice(&[0x71; 32]).expect("secret");
    let recipient = AnySigner::from_ecdsa_secret(&[0x71; 32]).expect("secret");
    balances::transfer(
        node,
        alice,
        &recipient.account(),
        UNIT,
        true,
        Finality::Best,
    )
    .await
    .expect("fund the recipient");
    let close_duration: u64 = 3_600_000;
    let mut new = bundle.selector("constructors", "new");
    (recipient.account(), close_duration).encode_to(&mut new);

    let (_, best) = node.best().await.expect("best block");
    let upload = dry_run::instantiate(
        node.api(),
        best,
        alice.account(),
        0,
        Code::Upload(&bundle.code),
        new.clone(),
        b"baseline-dry",
    )
    .await
    .expect("baseline instantiate dry run");
    upload.result.as_ref().expect("the baseline instantiates");

    let gas = upload.gas_required.with_headroom();
    let tx = subxt::dynamic::tx(
        "Contracts",
        "instantiate_with_code",
        vec![
            Value::u128(0),
            gas.value(),
            Value::unnamed_variant("None", []),
            Value::from_bytes(&bundle.code),
            Value::from_bytes(&new),
            Value::from_bytes(format!("baseline-{}", std::process::id())),
        ],
    );
    let included = node
        .submit(alice, &tx, Finality::Best)
        .await
        .expect("instantiate the baseline");
    let contract = included
        .events
        .find_first::<Instantiated>()
        .expect("events")
        .expect("an Instantiated event")
        .contract
        .0;

    // Its open: instantiating the code already on chain (as a payer would).
    let (_, best) = node.best().await.expect("best block");
    let existing = dry_run::instantiate(
        node.api(),
        best,
        alice.account(),
        0,
        Code::Existing(SoftHasher::blake2_256(&bundle.code)),
        new,
        b"baseline-existing",
    )
    .await
    .expect("baseline instantiate (existing code) dry run");
    existing.result.as_ref().expect("the baseline instantiates");

    // The deposit is a plain transfer to the contract (its constructor is not payable).
    balances::transfer(node, alice, &contract, DEPOSIT, true, Finality::Best)
        .await
        .expect("fund the baseline channel");

    // withdraw half (submitted, as slotpay's settle is), then close at the full amount.
    let mut withdraw = bundle.selector("messages", "withdraw");
    (AMOUNT / 2, signed(&contract, AMOUNT / 2, &recipient_key)).encode_to(&mut withdraw);
    let withdraw_dry = call_dry(node, recipient.account(), contract, withdraw.clone()).await;
    let tx = subxt::dynamic::tx(
        "Contracts",
        "call",
        vec![
            Value::unnamed_variant("Id", [Value::from_bytes(contract)]),
            Value::u128(0),
            withdraw_dry.gas_required.with_headroom().value(),
            Value::unnamed_variant("None", []),
            Value::from_bytes(&withdraw),
        ],
    );
    node.submit(&recipient, &tx, Finality::Best)
        .await
        .expect("the baseline's withdraw");
    let floor_dry = call_dry(
        node,
        recipient.account(),
        contract,
        bundle.selector("messages", "get_sender"),
    )
    .await;
    let mut close = bundle.selector("messages", "close");
    (AMOUNT, signed(&contract, AMOUNT, &recipient_key)).encode_to(&mut close);
    let close_dry = call_dry(node, recipient.account(), contract, close).await;

    Baseline {
        code_len: bundle.code.len(),
        upload_and_instantiate: upload.gas_consumed,
        instantiate: existing.gas_consumed,
        instantiate_deposit: existing.storage_deposit,
        withdraw: withdraw_dry.gas_consumed,
        close: close_dry.gas_consumed,
        floor: floor_dry.gas_consumed,
    }
}
