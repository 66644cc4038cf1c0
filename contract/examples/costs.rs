//! Writes `bench/contract-costs.md`: weight (ref_time, proof_size) and storage deposit of
//! `open` and `close` for each construction, and of a group `close` for groups of 2, 2^10
//! and 2^20 keys, measured on pallet-contracts running the compiled contract in process.
//!
//!     cd contract && cargo run --example costs --features e2e-tests
#[path = "../tests/support/mod.rs"]
mod support;

use slotpay_channels::protocol::crypto::backend::SoftHasher;
use slotpay_channels::protocol::merkle::MerkleTree;
use slotpay_channels::protocol::signature::keys;
use slotpay_channels::protocol::{Authority, MembershipProof, PublicKey, Signature};
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

fn measured<T: std::fmt::Debug>(
    o: Outcome<Result<T, slotpay_channels::slotpay_channels::Error>>,
) -> Outcome<()> {
    o.value.as_ref().expect("the measured call succeeds");
    Outcome {
        value: (),
        ref_time: o.ref_time,
        proof_size: o.proof_size,
        storage_deposit: o.storage_deposit,
    }
}

/// A group of `size` keys whose member 0 is the real signer; the rest only need to be
/// distinct 33-byte leaves for the tree.
fn group(size: usize, signer: PublicKey) -> MerkleTree {
    let mut members = Vec::with_capacity(size);
    members.push(signer);
    for i in 1..size {
        let mut key = [0x03u8; 33];
        key[1..9].copy_from_slice(&(i as u64).to_le_bytes());
        members.push(PublicKey(key));
    }
    MerkleTree::build::<SoftHasher>(&members).expect("distinct members")
}

fn main() {
    let code = contract_code();
    let payee = account(2);
    let mut rows = Vec::new();

    // Each construction on a fresh chain: open, then close with one receipt.
    let client = secret(0x31);
    let payer_key = secret(0x41);
    let group_signer = secret(0x51);
    type Case<'a> = (
        &'a str,
        &'static str,
        &'static str,
        Box<dyn Fn(&Chain) -> Authority + 'a>,
    );
    let cases: Vec<Case> = vec![
        (
            "payer's own key",
            "43,700",
            "36,258",
            Box::new(|_| Authority::Account(*ecdsa_account(&payer_key).as_ref())),
        ),
        (
            "delegated client key",
            "50,388",
            "36,258",
            Box::new(|_| Authority::Delegate(keys::public_key(&client))),
        ),
        (
            "group of 2 keys",
            "50,388",
            "36,330",
            Box::new(|_| Authority::Group(group(2, keys::public_key(&group_signer)).root())),
        ),
    ];
    for (name, open_gas, close_gas, authority) in &cases {
        let payer = if name.starts_with("payer") {
            ecdsa_account(&payer_key)
        } else {
            account(1)
        };
        let mut chain = Chain::new(&code, &[&payer, &payee]);
        let auth = authority(&chain);
        let opened = chain.open(&payer, &payee, auth, 1_000, DEPOSIT);
        let channel = *opened.value.as_ref().expect("open");
        rows.push(Row {
            operation: "open".into(),
            construction: name.to_string(),
            outcome: measured(opened),
            ethereum_gas: open_gas,
        });
        let (signature, proof): (Signature, Option<MembershipProof>) = match auth {
            Authority::Account(_) => (chain.sign(channel, AMOUNT, &payer_key), None),
            Authority::Delegate(_) => (chain.sign(channel, AMOUNT, &client), None),
            Authority::Group(_) => (
                chain.sign(channel, AMOUNT, &group_signer),
                Some(
                    group(2, keys::public_key(&group_signer))
                        .proof(0)
                        .expect("proof"),
                ),
            ),
        };
        let closed = chain.close(&payee, channel, AMOUNT, signature, proof);
        rows.push(Row {
            operation: "close".into(),
            construction: name.to_string(),
            outcome: measured(closed),
            ethereum_gas: close_gas,
        });
    }

    // Group close against group size: the proof grows by one hash per doubling.
    for log2 in [1u32, 10, 20] {
        let size = 1usize << log2;
        eprintln!("building a group of {size} keys ...");
        let tree = group(size, keys::public_key(&group_signer));
        let proof = tree.proof(0).expect("proof");
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
        let sig = chain.sign(channel, AMOUNT, &group_signer);
        let closed = chain.close(&payee, channel, AMOUNT, sig, Some(proof.clone()));
        rows.push(Row {
            operation: format!("close, proof of {} hashes", proof.siblings.len()),
            construction: format!("group of 2^{log2} keys"),
            outcome: measured(closed),
            ethereum_gas: if log2 == 1 { "36,330" } else { "n/a" },
        });
    }

    let mut out = String::new();
    writeln!(out, "# Contract costs").unwrap();
    writeln!(out).unwrap();
    writeln!(
        out,
        "Measured by `cd contract && cargo run --example costs --features e2e-tests` on {} \
         (pallet-contracts in ink_sandbox 5.1.1's runtime, running the compiled contract; \
         storage deposit there is 1 unit per byte and per item). Weight is what the call \
         consumed (`gas_consumed`). The Ethereum column is the original design's gas.",
        std::process::Command::new("date")
            .arg("-u")
            .arg("+%Y-%m-%d")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
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
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../bench/contract-costs.md");
    std::fs::create_dir_all(concat!(env!("CARGO_MANIFEST_DIR"), "/../bench"))
        .expect("create bench/");
    std::fs::write(path, &out).expect("write bench/contract-costs.md");
    print!("{out}");
}
