//! `bench/contract-costs.md`: the node figures, beside the sandbox figures and the original
//! design's Ethereum gas (from `bench/contract-costs-sandbox.md`), the ink! example's
//! figures from the same run, and a profile of slotpay's close by difference.
use super::baseline::Baseline;
use super::gap::{priced_gap, Sizes};
use super::Row;
use chain::dry_run::Weight;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

/// (operation, construction) -> (sandbox ref_time, sandbox proof_size, Ethereum gas).
fn sandbox_rows(path: &Path) -> HashMap<(String, String), (String, String, String)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        eprintln!("no {}: the sandbox columns stay empty", path.display());
        return HashMap::new();
    };
    text.lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| operation") && !l.starts_with("| ---"))
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            match cells.as_slice() {
                [op, construction, r, p, _deposit, gas] => Some((
                    (op.to_string(), construction.to_string()),
                    (r.to_string(), p.to_string(), gas.to_string()),
                )),
                _ => None,
            }
        })
        .collect()
}

fn find<'a>(rows: &'a [Row], operation: &str, construction: &str) -> &'a Row {
    rows.iter()
        .find(|r| r.operation == operation && r.construction == construction)
        .unwrap_or_else(|| panic!("no row {operation} / {construction}"))
}

pub(crate) fn ratio(a: u64, b: u64) -> String {
    format!("{:.2}x", a as f64 / b as f64)
}

fn diff(a: Weight, b: Weight) -> (i128, i128) {
    (
        i128::from(a.ref_time) - i128::from(b.ref_time),
        i128::from(a.proof_size) - i128::from(b.proof_size),
    )
}

fn date() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

pub(crate) fn write(
    rows: &[Row],
    slotpay_code: &[u8],
    channel_bytes: u64,
    receipt_payload: u64,
    slotpay_deploy: Weight,
    base: &Baseline,
) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let sandbox = sandbox_rows(&root.join("bench/contract-costs-sandbox.md"));
    let mut out = String::new();
    let o = &mut out;
    writeln!(o, "# Contract costs\n").unwrap();
    writeln!(
        o,
        "Measured on {} by `scripts/bench.sh` (step \"contract costs on the node\": \
         `cargo bench -p tests --bench contract_costs`), on one substrate-contracts-node \
         0.42.0 (`--dev`, instant seal): every figure is a `ContractsApi_call` (or \
         `ContractsApi_instantiate`) dry run's `gas_consumed` against the best block, \
         the same way for both contracts in the same run. The sandbox columns are \
         pallet-contracts in ink_sandbox 5.1.1's runtime (`cd contract && cargo run \
         --example costs --features e2e-tests`, `bench/contract-costs-sandbox.md`), whose \
         weights differ from the node's. The Ethereum column is the original design's gas.\n",
        date()
    )
    .unwrap();

    writeln!(o, "## slotpay on the node\n").unwrap();
    writeln!(
        o,
        "| operation | construction | ref_time (ps) | proof_size (B) | storage deposit | \
         sandbox ref_time | sandbox proof_size | Ethereum gas (original) |"
    )
    .unwrap();
    writeln!(o, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |").unwrap();
    for r in rows {
        let (sr, sp, gas) = sandbox
            .get(&(r.operation.clone(), r.construction.clone()))
            .cloned()
            .unwrap_or_else(|| ("-".into(), "-".into(), "-".into()));
        writeln!(
            o,
            "| {} | {} | {} | {} | {} | {sr} | {sp} | {gas} |",
            r.operation, r.construction, r.weight.ref_time, r.weight.proof_size, r.storage_deposit
        )
        .unwrap();
    }
    let two = find(rows, "close, proof of 1 hashes", "group of 2^1 keys").weight;
    let big = find(rows, "close, proof of 20 hashes", "group of 2^20 keys").weight;
    writeln!(
        o,
        "\nGroup close, 2^20 keys against 2 keys: {} ref_time, {} proof_size (goal: at most 1.5x).\n",
        ratio(big.ref_time, two.ref_time),
        ratio(big.proof_size, two.proof_size)
    )
    .unwrap();

    let d = "delegated client key";
    let open = find(rows, "open", d).weight;
    let settle = find(rows, "settle", d).weight;
    let close = find(rows, "close", d).weight;
    writeln!(
        o,
        "## Against the ink! examples' payment channel (5.1.1), same node, same run\n"
    )
    .unwrap();
    writeln!(
        o,
        "The example keeps one channel per contract (opening one is instantiating it), has no \
         replay domain, no groups, no rotation, no expiry by block and no deferred payments. \
         Its `withdraw` is the counterpart of slotpay's `settle`. Its source was fetched at tag \
         v5.1.1 and built with cargo-contract 5.0.3 by `scripts/bench.sh` (not part of this \
         repository).\n"
    )
    .unwrap();
    writeln!(o, "| | slotpay ref_time | slotpay proof_size | example ref_time | example proof_size | ref_time ratio | proof_size ratio |").unwrap();
    writeln!(o, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |").unwrap();
    let mut line = |what: &str, s: Weight, e: Weight| {
        writeln!(
            o,
            "| {what} | {} | {} | {} | {} | {} | {} |",
            s.ref_time,
            s.proof_size,
            e.ref_time,
            e.proof_size,
            ratio(s.ref_time, e.ref_time),
            ratio(s.proof_size, e.proof_size)
        )
        .unwrap();
    };
    line("close (delegate; example: close)", close, base.close);
    line(
        "settle (delegate; example: withdraw)",
        settle,
        base.withdraw,
    );
    line(
        "open (delegate; example: instantiate from code on chain)",
        open,
        base.instantiate,
    );
    line(
        "constructor (instantiate dry run; the upload itself is not in gas_consumed)",
        slotpay_deploy,
        base.upload_and_instantiate,
    );
    writeln!(
        o,
        "\nwasm (optimized, as deployed): slotpay {} B, example {} B. Storage deposit of an \
         open: slotpay {} (one channel item), example {} (a contract account, its code \
         reference and its storage). slotpay's wasm was 14,719 B when issue 14 was filed; \
         settle, rotation with epochs and notice, and payments deferred to `withdraw` (the \
         revocation and money-safety issues, commit bd125b9) brought it here.\n",
        slotpay_code.len(),
        base.code_len,
        find(rows, "open", d).storage_deposit,
        base.instantiate_deposit
    )
    .unwrap();

    // The profile: what each part of a close costs, by difference of dry runs that differ
    // in exactly that part.
    let domain = find(rows, "domain (read)", "-").weight;
    let channel = find(rows, "channel (read)", d).weight;
    let bare = find(rows, "close without a receipt", d).weight;
    writeln!(o, "## Where slotpay's close spends its weight\n").unwrap();
    writeln!(
        o,
        "By difference of dry runs on the node that differ in one part each.\n"
    )
    .unwrap();
    writeln!(o, "| part | measured as | ref_time (ps) | proof_size (B) |").unwrap();
    writeln!(o, "| --- | --- | ---: | ---: |").unwrap();
    let mut part = |name: &str, how: &str, (r, p): (i128, i128)| {
        writeln!(o, "| {name} | {how} | {r} | {p} |").unwrap();
    };
    part(
        "a call's floor: load the code, decode the selector, read the root",
        "`domain` (read)",
        (domain.ref_time.into(), domain.proof_size.into()),
    );
    part(
        "read and decode a channel",
        "`channel` - `domain`",
        diff(channel, domain),
    );
    part(
        "close's own work: checks, two transfers, remove the channel, the event",
        "close without a receipt - `channel`",
        diff(bare, channel),
    );
    part(
        "the receipt: SCALE payload, keccak, ecdsa_recover, key check",
        "close - close without a receipt",
        diff(close, bare),
    );
    part(
        "19 more Merkle hashes (2^20 keys against 2)",
        "group close 2^20 - 2^1",
        diff(big, two),
    );
    writeln!(
        o,
        "\nThe example's close does one sha2 hash, one ecdsa_recover, one blake2 hash, one \
         transfer and a terminate, with {} B of code. Gap of slotpay's close: {} ps \
         ref_time, {} B proof_size.",
        base.code_len,
        i128::from(close.ref_time) - i128::from(base.close.ref_time),
        i128::from(close.proof_size) - i128::from(base.close.proof_size)
    )
    .unwrap();

    priced_gap(
        o,
        Sizes {
            code: slotpay_code.len() as u64,
            paths: super::gap::source_paths(slotpay_code),
            payload: receipt_payload,
            example_code: base.code_len as u64,
            channel: channel_bytes,
        },
        (domain, channel, bare, close),
        base,
    );

    let path = root.join("bench/contract-costs.md");
    std::fs::write(&path, &out).expect("write bench/contract-costs.md");
    print!("{out}");
}
