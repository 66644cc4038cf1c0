//! Writes `bench/contract-costs-sandbox.md`: weight (ref_time, proof_size) and storage deposit of
//! `open`, `settle`, `rotate` and `close` for each construction, of a group `close` for
//! groups of 2, 2^10 and 2^20 keys, and of a close whose refund the chain refuses (a
//! reaped payer) followed by the payer's `withdraw`, measured on pallet-contracts running
//! the compiled contract in process.
//!
//!     cd contract && cargo run --example costs --features e2e-tests
#[path = "../tests/support/mod.rs"]
mod support;

use slotpay_channels::protocol::crypto::backend::SoftHasher;
use slotpay_channels::protocol::keys::{self, SecretKey};
use slotpay_channels::protocol::{Authority, MembershipProof, PublicKey};
use slotpay_channels::protocol::{Member, MerkleTree};
use slotpay_channels::slotpay_channels::Error;
use std::fmt::Write as _;
use support::*;

const DEPOSIT: Balance = 1_000_000;
const AMOUNT: Balance = 4_321;

struct Row {
    operation: String,
    construction: String,
    outcome: Outcome<()>,
    ethereum_gas: &'static str,
}

fn measured<T: std::fmt::Debug>(o: Outcome<Result<T, Error>>) -> Outcome<()> {
    o.value.as_ref().expect("the measured call succeeds");
    Outcome {
        value: (),
        ref_time: o.ref_time,
        proof_size: o.proof_size,
        storage_deposit: o.storage_deposit,
        events: o.events,
    }
}

/// A group of `size` keys whose member 0 is the real signer; the rest only need to be
/// distinct 33-byte leaves for the tree.
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

fn main() {
    let code = contract_code();
    let payee = account(2);
    let mut rows = Vec::new();
    let mut row = |operation: &str, construction: &str, outcome, ethereum_gas| {
        rows.push(Row {
            operation: operation.into(),
            construction: construction.into(),
            outcome,
            ethereum_gas,
        })
    };

    // Each construction on a fresh chain: open, settle half, announce a rotation (to a
    // key of the same construction), then close with the old key's receipt during the
    // notice.
    let client = secret(0x31);
    let payer_key = secret(0x41);
    let group_signer = secret(0x51);
    let next_key = secret(0x61);
    let two = group(2, keys::public_key(&group_signer));
    let next_two = group(2, keys::public_key(&next_key));
    let cases: [(&str, &str, &str, Authority, Authority, &SecretKey); 3] = [
        (
            "payer's own key",
            "43,700",
            "36,258",
            Authority::Account(*ecdsa_account(&payer_key).as_ref()),
            // An account authority can only be the payer's own: rotate to a delegate.
            Authority::Delegate(keys::public_key(&next_key)),
            &payer_key,
        ),
        (
            "delegated client key",
            "50,388",
            "36,258",
            Authority::Delegate(keys::public_key(&client)),
            Authority::Delegate(keys::public_key(&next_key)),
            &client,
        ),
        (
            "group of 2 keys",
            "50,388",
            "36,330",
            Authority::Group(two.root()),
            Authority::Group(next_two.root()),
            &group_signer,
        ),
    ];
    for (name, open_gas, close_gas, authority, next, signer) in cases {
        let payer = if name.starts_with("payer") {
            ecdsa_account(&payer_key)
        } else {
            account(1)
        };
        let proof =
            || matches!(authority, Authority::Group(_)).then(|| two.proof(0).expect("proof"));
        let mut chain = Chain::new(&code, &[&payer, &payee]);
        let opened = chain.open(&payer, &payee, authority, 1_000, DEPOSIT);
        let channel = *opened.value.as_ref().expect("open");
        row("open", name, measured(opened), open_gas);
        let settle = chain.claim(channel, 0, AMOUNT / 2, signer, proof());
        row(
            "settle",
            name,
            measured(chain.settle(&payee, settle)),
            "n/a",
        );
        row(
            "rotate",
            name,
            measured(chain.rotate(&payer, channel, next)),
            "n/a",
        );
        let last = chain.claim(channel, 0, AMOUNT, signer, proof());
        row(
            "close",
            name,
            measured(chain.close(&payee, channel, Some(last))),
            close_gas,
        );
    }

    // Group close against group size: the proof grows by one hash per doubling.
    for log2 in [1u32, 10, 20] {
        let size = 1usize << log2;
        eprintln!("building a group of {size} keys ...");
        let tree = group(size, keys::public_key(&group_signer));
        let proof: MembershipProof = tree.proof(0).expect("proof");
        let payer = account(1);
        let mut chain = Chain::new(&code, &[&payer, &payee]);
        let channel = chain
            .open(
                &payer,
                &payee,
                Authority::Group(tree.root()),
                1_000,
                DEPOSIT,
            )
            .value
            .expect("open");
        let last = chain.claim(channel, 0, AMOUNT, &group_signer, Some(proof.clone()));
        let closed = chain.close(&payee, channel, Some(last));
        row(
            &format!("close, proof of {} hashes", proof.siblings.len()),
            &format!("group of 2^{log2} keys"),
            measured(closed),
            if log2 == 1 { "36,330" } else { "n/a" },
        );
    }

    // A close whose refund the chain refuses (the payer reaped its account): the payee's
    // payment goes through, the refund is owed; then the payer, funded again, withdraws.
    {
        let payer = account(1);
        let mut chain = Chain::new(&code, &[&payer, &payee]);
        let channel = chain
            .open(
                &payer,
                &payee,
                Authority::Delegate(keys::public_key(&client)),
                1_000,
                AMOUNT + 1,
            )
            .value
            .expect("open");
        let everything = chain.balance(&payer);
        chain.transfer_allow_death(&payer, &account(9), everything);
        let last = chain.claim(channel, 0, AMOUNT, &client, None);
        row(
            "close, refund refused and owed",
            "delegated client key",
            measured(chain.close(&payee, channel, Some(last))),
            "n/a",
        );
        let ed = chain.existential_deposit();
        chain.mint(&payer, 10 * ed);
        row(
            "withdraw",
            "(what a close owed)",
            measured(chain.withdraw(&payer)),
            "n/a",
        );
    }

    let mut out = String::new();
    writeln!(out, "# Contract costs").unwrap();
    writeln!(out).unwrap();
    writeln!(
        out,
        "Measured by `cd contract && cargo run --example costs --features e2e-tests` on {} \
         (pallet-contracts in ink_sandbox 5.1.1's runtime, with an existential deposit of \
         {}, running the compiled contract; storage deposit there is 1 unit per byte and \
         per item). Weight is what the call consumed (`gas_consumed`). The Ethereum column \
         is the original design's gas.",
        std::process::Command::new("date")
            .arg("-u")
            .arg("+%Y-%m-%d")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default(),
        runtime::EXISTENTIAL_DEPOSIT,
    )
    .unwrap();
    writeln!(out).unwrap();
    writeln!(out, "| operation | construction | ref_time (ps) | proof_size (bytes) | storage deposit | Ethereum gas (original) |").unwrap();
    writeln!(out, "| --- | --- | ---: | ---: | ---: | ---: |").unwrap();
    for row in &rows {
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            row.operation,
            row.construction,
            row.outcome.ref_time,
            row.outcome.proof_size,
            row.outcome.storage_deposit,
            row.ethereum_gas
        )
        .unwrap();
    }
    let group_closes: Vec<&Row> = rows
        .iter()
        .filter(|r| r.construction.starts_with("group of 2^"))
        .collect();
    if let [two, .., largest] = group_closes.as_slice() {
        writeln!(out).unwrap();
        writeln!(
            out,
            "Group close, 2^20 keys against 2 keys: {:.3}x ref_time, {:.3}x proof_size \
             (goal: at most 1.5x).",
            largest.outcome.ref_time as f64 / two.outcome.ref_time as f64,
            largest.outcome.proof_size as f64 / two.outcome.proof_size as f64
        )
        .unwrap();
    }
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../bench/contract-costs-sandbox.md"
    );
    std::fs::create_dir_all(concat!(env!("CARGO_MANIFEST_DIR"), "/../bench"))
        .expect("create bench/");
    std::fs::write(path, &out).expect("write bench/contract-costs-sandbox.md");
    print!("{out}");
}
