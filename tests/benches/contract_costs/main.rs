//! Contract costs on a real substrate-contracts-node: every slotpay message dry-run through
//! `ContractsApi_call` (each construction, groups of 2, 2^10 and 2^20 keys, a close whose
//! refund the chain refuses and the withdraw after it), and in the same run the ink!
//! examples' `payment-channel` (5.1.1) measured the same way: its instantiation (its only
//! way to open a channel), its `withdraw` (its settle) and its `close`. Then a profile of
//! slotpay's close by difference of dry runs, and the wasm sizes.
//!
//! Writes `bench/contract-costs.md`, carrying over the sandbox figures and the original
//! design's Ethereum gas from `bench/contract-costs-sandbox.md` (written by
//! `cd contract && cargo run --example costs --features e2e-tests`).
//!
//! Needs SLOTPAY_NODE_URL, SLOTPAY_CONTRACT_BUNDLE (slotpay) and SLOTPAY_BASELINE_BUNDLE
//! (the example's `.contract`): `scripts/bench.sh` fetches and builds the example and
//! provides all three.
use chain::dry_run::{self, Code, Weight};
use chain::{balances, AnySigner, At, Contract, Finality, SlotpayEvent};
use interface::messages::*;
use protocol::crypto::backend::SoftHasher;
use protocol::keys::{self, SecretKey};
use protocol::{
    AccountId32, Authority, Balance, ChannelId, Domain, PublicKey, Receipt, SignedReceipt,
};
use protocol::{Member, MerkleTree};
use std::path::PathBuf;
use subxt::dynamic::Value;
use subxt_signer::sr25519::dev;
use tests::*;

const UNIT: Balance = 1_000_000_000_000;
const DEPOSIT: Balance = 3 * UNIT;
const AMOUNT: Balance = 4_321_000_000;
const NOTICE: u32 = 5;

struct Row {
    operation: String,
    construction: String,
    weight: Weight,
    storage_deposit: i128,
}

struct Bench {
    contract: Contract,
    domain: Domain,
    rows: Vec<Row>,
}

fn secret(seed: u8) -> SecretKey {
    SecretKey::from_slice(&[seed; 32]).expect("a valid secret")
}

fn ecdsa_signer(seed: u8) -> AnySigner {
    AnySigner::from_ecdsa_secret(&[seed; 32]).expect("a valid secret")
}

/// A group of `size` keys whose member 0 is `signer`; the rest only need to be distinct.
fn group(size: usize, signer: PublicKey) -> MerkleTree {
    let mut members = Vec::with_capacity(size);
    members.push(Member {
        key: signer,
        cap: DEPOSIT,
    });
    for i in 1..size {
        let mut key = [0x03u8; 33];
        key[1..9].copy_from_slice(&(i as u64).to_le_bytes());
        members.push(Member {
            key: PublicKey(key),
            cap: DEPOSIT,
        });
    }
    MerkleTree::build::<SoftHasher>(protocol::Substrate, &members).expect("distinct members")
}

fn env_path(name: &str) -> PathBuf {
    PathBuf::from(std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: scripts/bench.sh sets it");
    }))
}

impl Bench {
    /// Dry-runs `message` as `origin` with `value` and records it; panics if refused.
    async fn measure<M: Message>(
        &mut self,
        operation: &str,
        construction: &str,
        origin: AccountId32,
        value: Balance,
        message: &M,
    ) where
        M::Output: chain::Answer,
    {
        let dry = self
            .contract
            .dry_run(origin, value, message, At::Best)
            .await
            .unwrap_or_else(|e| panic!("{operation} ({construction}): {e}"));
        self.rows.push(Row {
            operation: operation.into(),
            construction: construction.into(),
            weight: dry.gas_consumed,
            storage_deposit: dry.storage_deposit,
        });
    }

    fn claim(
        &self,
        channel: ChannelId,
        amount: Balance,
        key: &SecretKey,
        tree: Option<&MerkleTree>,
    ) -> SignedReceipt {
        let receipt = Receipt {
            channel,
            epoch: 0,
            amount,
        };
        SignedReceipt::sign(
            receipt,
            &self.domain,
            key,
            tree.map(|t| t.proof(0).expect("member 0's proof")),
        )
    }

    async fn submit<M: Message>(
        &self,
        signer: &AnySigner,
        value: Balance,
        message: &M,
    ) -> Vec<SlotpayEvent>
    where
        M::Output: chain::Answer,
    {
        self.contract
            .call(signer, value, message, Finality::Best)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", M::LABEL))
            .1
    }

    async fn open(
        &self,
        payer: &AnySigner,
        authority: Authority,
        expires_in: u32,
        deposit: Balance,
    ) -> ChannelId {
        let expires_at = best_block(&self.contract).await + expires_in;
        let open = Open {
            payee: dev::bob().public_key().0,
            authority,
            expires_at,
            notice: NOTICE,
        };
        match self.submit(payer, deposit, &open).await.first() {
            Some(SlotpayEvent::Opened(o)) => o.channel,
            other => panic!("no Opened event: {other:?}"),
        }
    }

    /// Open, settle half, announce a rotation, close with the old key's receipt during
    /// the notice: the sequence the sandbox figures follow.
    async fn construction(
        &mut self,
        name: &str,
        payer: &AnySigner,
        authority: Authority,
        next: Authority,
        key: &SecretKey,
        tree: Option<&MerkleTree>,
    ) {
        let bob = AnySigner::from_suri("//Bob").expect("Bob");
        let payee = bob.account();
        let open = Open {
            payee,
            authority,
            expires_at: best_block(&self.contract).await + 1_000,
            notice: NOTICE,
        };
        self.measure("open", name, payer.account(), DEPOSIT, &open)
            .await;
        let channel = self.open(payer, authority, 1_000, DEPOSIT).await;
        let settle = Settle {
            receipt: self.claim(channel, AMOUNT / 2, key, tree),
        };
        self.measure("settle", name, payee, 0, &settle).await;
        self.submit(&bob, 0, &settle).await;
        let rotate = Rotate {
            channel,
            authority: next,
        };
        self.measure("rotate", name, payer.account(), 0, &rotate)
            .await;
        self.submit(payer, 0, &rotate).await;
        let close = Close {
            channel,
            receipt: Some(self.claim(channel, AMOUNT, key, tree)),
        };
        self.measure("close", name, payee, 0, &close).await;
        if name == "delegated client key" {
            let bare = Close {
                channel,
                receipt: None,
            };
            self.measure("close without a receipt", name, payee, 0, &bare)
                .await;
        }
    }
}

#[tokio::main]
async fn main() {
    let url = node_url();
    let dir = work_dir("contract-costs");
    let deployment = deploy(&dir, &url);
    let contract = contract(&url, &deployment).await;
    let node = contract.node().clone();
    let alice = AnySigner::from_suri("//Alice").expect("Alice");
    let mut bench = Bench {
        domain: contract.domain(),
        contract,
        rows: Vec::new(),
    };

    // The payer's own (ECDSA) account needs funds to open and fees to rotate.
    let payer_key = secret(0x41);
    let own = ecdsa_signer(0x41);
    balances::transfer(
        &node,
        &alice,
        &own.account(),
        10 * UNIT,
        true,
        Finality::Best,
    )
    .await
    .expect("fund the ECDSA payer");
    let client = secret(0x31);
    let next = Authority::Delegate(keys::public_key(&secret(0x61)));
    let group_signer = secret(0x51);
    let two = group(2, keys::public_key(&group_signer));
    let next_two = group(2, keys::public_key(&secret(0x62)));
    bench
        .construction(
            "payer's own key",
            &own,
            Authority::Account(own.account()),
            next,
            &payer_key,
            None,
        )
        .await;
    bench
        .construction(
            "delegated client key",
            &alice,
            Authority::Delegate(keys::public_key(&client)),
            next,
            &client,
            None,
        )
        .await;
    bench
        .construction(
            "group of 2 keys",
            &alice,
            Authority::Group(two.root()),
            Authority::Group(next_two.root()),
            &group_signer,
            Some(&two),
        )
        .await;

    // The payer's other messages and the readers, on a delegate channel.
    let channel = bench
        .open(
            &alice,
            Authority::Delegate(keys::public_key(&client)),
            1_000,
            DEPOSIT,
        )
        .await;
    let payer = alice.account();
    let d = "delegated client key";
    bench
        .measure("top_up", d, payer, UNIT, &TopUp { channel })
        .await;
    let expires_at = best_block(&bench.contract).await + 2_000;
    bench
        .measure(
            "extend",
            d,
            payer,
            0,
            &Extend {
                channel,
                expires_at,
            },
        )
        .await;
    bench
        .measure("channel (read)", d, payer, 0, &GetChannel { channel })
        .await;
    let (_, stored) = bench
        .contract
        .read(&GetChannel { channel }, At::Best)
        .await
        .expect("read the channel");
    let channel_bytes = parity_scale_codec::Encode::encoded_size(&stored.expect("open channel"));
    let receipt_payload = Receipt {
        channel,
        epoch: 0,
        amount: AMOUNT,
    }
    .signing_payload(&bench.domain)
    .len();
    bench
        .measure("owed (read)", "-", payer, 0, &Owed { account: payer })
        .await;
    bench
        .measure("domain (read)", "-", payer, 0, &GetDomain)
        .await;
    bench
        .measure("next_channel_id (read)", "-", payer, 0, &NextChannelId)
        .await;

    // Expiry: blocks are made by transactions on this node, so make a few.
    let expiring = bench
        .open(
            &alice,
            Authority::Delegate(keys::public_key(&client)),
            2,
            DEPOSIT,
        )
        .await;
    for _ in 0..3 {
        balances::transfer(
            &node,
            &alice,
            &dev::charlie().public_key().0,
            UNIT,
            true,
            Finality::Best,
        )
        .await
        .expect("a block");
    }
    bench
        .measure(
            "claim_expired",
            d,
            payer,
            0,
            &ClaimExpired { channel: expiring },
        )
        .await;

    // Group close against group size: one more hash per doubling.
    for log2 in [1u32, 10, 20] {
        eprintln!("building a group of 2^{log2} keys ...");
        let tree = group(1 << log2, keys::public_key(&group_signer));
        let channel = bench
            .open(&alice, Authority::Group(tree.root()), 1_000, DEPOSIT)
            .await;
        let close = Close {
            channel,
            receipt: Some(bench.claim(channel, AMOUNT, &group_signer, Some(&tree))),
        };
        let hashes = tree.proof(0).expect("proof").siblings.len();
        bench
            .measure(
                &format!("close, proof of {hashes} hashes"),
                &format!("group of 2^{log2} keys"),
                dev::bob().public_key().0,
                0,
                &close,
            )
            .await;
    }

    // A reaped payer: the refund (1 unit, below the existential deposit) is refused and
    // owed; the payer, funded again, withdraws it.
    let reaped =
        AnySigner::from_suri(&format!("//CostsReaped{}", std::process::id())).expect("suri");
    balances::transfer(&node, &alice, &reaped.account(), UNIT, true, Finality::Best)
        .await
        .expect("fund the payer");
    let channel = bench
        .open(
            &reaped,
            Authority::Delegate(keys::public_key(&client)),
            1_000,
            AMOUNT + 1,
        )
        .await;
    let all = subxt::dynamic::tx(
        "Balances",
        "transfer_all",
        vec![
            Value::unnamed_variant("Id", [Value::from_bytes(alice.account())]),
            Value::bool(false),
        ],
    );
    node.submit(&reaped, &all, Finality::Best)
        .await
        .expect("reap the payer");
    let close = Close {
        channel,
        receipt: Some(bench.claim(channel, AMOUNT, &client, None)),
    };
    let bob = AnySigner::from_suri("//Bob").expect("Bob");
    bench
        .measure(
            "close, refund refused and owed",
            d,
            bob.account(),
            0,
            &close,
        )
        .await;
    bench.submit(&bob, 0, &close).await;
    balances::transfer(&node, &alice, &reaped.account(), UNIT, true, Finality::Best)
        .await
        .expect("fund the payer again");
    bench
        .measure(
            "withdraw",
            "(what a close owed)",
            reaped.account(),
            0,
            &Withdraw,
        )
        .await;

    let slotpay_code = chain::bundle_code(&contract_bundle()).expect("slotpay's code");
    let slotpay_deploy = dry_run::instantiate(
        node.api(),
        node.best().await.expect("best").1,
        alice.account(),
        0,
        Code::Upload(&slotpay_code),
        New {
            genesis_hash: node.genesis_hash(),
        }
        .call_data(),
        b"costs-dry",
    )
    .await
    .expect("slotpay instantiate dry run");

    let baseline = baseline::measure(&node, &alice).await;
    report::write(
        &bench.rows,
        &slotpay_code,
        channel_bytes as u64,
        receipt_payload as u64,
        slotpay_deploy.gas_consumed,
        &baseline,
    );
}

mod baseline;
mod gap;
mod prices;
mod report;
