//! The gap between slotpay's close and the example's, item by item: each item priced with
//! the node's price list ([`super::prices`]) and set beside the measured part it belongs
//! to, with what cutting it would take.
use super::baseline::Baseline;
use super::prices::{self, Price};
use super::report::ratio;
use chain::dry_run::Weight;
use std::fmt::Write as _;

pub(crate) struct Sizes {
    pub code: u64,
    pub example_code: u64,
    /// A delegate channel's item as stored (SCALE).
    pub channel: u64,
    /// Bytes of source paths in the wasm (panic locations).
    pub paths: u64,
    /// The receipt's signing payload (keccak's input).
    pub payload: u64,
}

/// Bytes of the source file paths `wasm` carries: the panic locations that
/// `core::panicking` takes by reference survive optimisation, and with them the builder's
/// paths (so the code, and its hash, also depend on where it was built).
pub(crate) fn source_paths(wasm: &[u8]) -> u64 {
    let mut total = 0;
    // Paths sit back to back with other strings: each ends at ".rs" and starts at the
    // first '/' after the previous one's end.
    for run in wasm.split(|b| !b.is_ascii_graphic()) {
        let mut rest = run;
        while let Some(end) = rest.windows(3).position(|w| w == b".rs") {
            let segment = &rest[..end + 3];
            if let Some(start) = segment.iter().position(|&b| b == b'/') {
                total += (segment.len() - start) as u64;
            }
            rest = &rest[end + 3..];
        }
    }
    total
}

/// ink! 5 writes the storage root back after every `&mut self` message: slotpay's root is
/// `next_id` (u64) and `genesis_hash` ([u8; 32]).
const ROOT_BYTES: u64 = 8 + 32;
/// `Closed`'s data: channel (u64), paid and refunded (u128).
const CLOSED_BYTES: u64 = 8 + 16 + 16;
/// The example hashes (its account id, amount) with sha2 and the recovered 33-byte key
/// with blake2.
const EXAMPLE_SIGNED_BYTES: u64 = 32 + 16;
const PUBLIC_KEY_BYTES: u64 = 33;

/// The gap to the example's close, item by item, each priced by the node's pallet and set
/// beside the measured part it belongs to.
pub(crate) fn priced_gap(
    o: &mut String,
    sizes: Sizes,
    (domain, channel, bare, close): (Weight, Weight, Weight, Weight),
    base: &Baseline,
) {
    let read = prices::get_storage(sizes.channel);
    let remove = prices::clear_storage(sizes.channel);
    let root_write = prices::set_storage(ROOT_BYTES, ROOT_BYTES);
    let event = prices::deposit_event(2, CLOSED_BYTES);
    let one_topic_less = prices::deposit_event(1, CLOSED_BYTES);
    let topic = Price {
        ref_time: event.ref_time - one_topic_less.ref_time,
        proof_size: event.proof_size - one_topic_less.proof_size,
    };
    let transfers = prices::transfer().times(2);
    let own = Price::sum(&[remove, root_write, event, transfers]);
    let code_gap = prices::code(sizes.code - sizes.example_code);
    writeln!(
        o,
        "\n### The gap, item by item, priced by the node\n\n\
         Every item below is priced with pallet-contracts 38.0.0's own weights (the version \
         substrate-contracts-node 0.42.0 is locked to: `SubstrateWeight` with `RocksDbWeight`, \
         `tests/benches/contract_costs/prices.rs`), and set beside the measured part it \
         belongs to. Two prices dominate: every access to contract storage pays a database \
         read (25,000,000 ps), a write if it writes (100,000,000 ps), and a full-trie \
         surcharge of 10,010 B of proof whatever the item's size; every event topic is a \
         read and a write of `System::EventTopics` (127,011,090 ps, 2,475 B).\n\n\
         | item | slotpay's close | ref_time (ps) | proof_size (B) | the example's close | ref_time (ps) | proof_size (B) |\n\
         | --- | --- | ---: | ---: | --- | ---: | ---: |"
    )
    .unwrap();
    let row = |o: &mut String, item: &str, ours: &str, p: Price, theirs: &str, q: Option<Price>| {
        let (r, s) = q.map_or(("0".into(), "0".into()), |q| {
            (q.ref_time.to_string(), q.proof_size.to_string())
        });
        writeln!(
            o,
            "| {item} | {ours} | {} | {} | {theirs} | {r} | {s} |",
            p.ref_time, p.proof_size
        )
        .unwrap();
    };
    let receipt = prices::keccak_256(sizes.payload).plus(prices::ecdsa_recover());
    let example_receipt = Price::sum(&[
        prices::sha2_256(EXAMPLE_SIGNED_BYTES),
        prices::ecdsa_recover(),
        prices::blake2_256(PUBLIC_KEY_BYTES),
    ]);
    let floor = |w: Weight| Price {
        ref_time: w.ref_time,
        proof_size: w.proof_size,
    };
    row(
        o,
        "a call's floor (measured)",
        &format!(
            "`domain`: the call, {} B of code, the root read",
            sizes.code
        ),
        floor(domain),
        &format!(
            "`get_sender`: the call, {} B of code, the root read",
            sizes.example_code
        ),
        Some(floor(base.floor)),
    );
    row(
        o,
        "the channel",
        &format!("a mapping item of {} B read", sizes.channel),
        read,
        "none: its root is the channel (in its floor)",
        None,
    );
    row(
        o,
        "ending the channel",
        "the item removed (its storage deposit back to the payer)",
        remove,
        "`terminate`: the whole contract removed",
        Some(prices::terminate()),
    );
    row(
        o,
        "the root written back",
        "ink! 5 writes the root after every `&mut self` message",
        root_write,
        "none: `terminate` never returns",
        None,
    );
    row(
        o,
        "the event",
        "`Closed`, 2 topics (signature, channel)",
        event,
        "none",
        None,
    );
    row(
        o,
        "payments",
        "two transfers (payee, payer)",
        transfers,
        "one transfer (the rest goes with `terminate`)",
        Some(prices::transfer()),
    );
    row(
        o,
        "the receipt",
        &format!("keccak of its {} B payload, ecdsa_recover", sizes.payload),
        receipt,
        "sha2 of 48 B, ecdsa_recover, blake2 of the key",
        Some(example_receipt),
    );
    let ours = Price::sum(&[
        floor(domain),
        read,
        remove,
        root_write,
        event,
        transfers,
        receipt,
    ]);
    let theirs = Price::sum(&[
        floor(base.floor),
        prices::terminate(),
        prices::transfer(),
        example_receipt,
    ]);
    let rest = |total: Weight, priced: Price| {
        (
            i128::from(total.ref_time) - i128::from(priced.ref_time),
            i128::from(total.proof_size) - i128::from(priced.proof_size),
        )
    };
    let (our_rest, their_rest) = (rest(close, ours), rest(base.close, theirs));
    writeln!(
        o,
        "| the rest (measured minus the rows above) | wasm execution: SCALE decoding of the \
         input and the channel, the rules, the payload; small host calls | {} \
         | {} | wasm execution and small host calls | {} | {} |\n\
         | **the close (measured)** | | **{}** | **{}** | | **{}** | **{}** |",
        our_rest.0,
        our_rest.1,
        their_rest.0,
        their_rest.1,
        close.ref_time,
        close.proof_size,
        base.close.ref_time,
        base.close.proof_size,
    )
    .unwrap();
    writeln!(
        o,
        "\nPriced against measured: the channel read, {}; close's own work (removal, root \
         write, event, transfers), {}. The rest of each part is wasm execution and \
         small host calls. Each floor holds its code (1 B of proof and 700 ps per byte): \
         slotpay's {} B against the example's {} B ({} B apart); the floors' proofs are {} B \
         apart.\n",
        read.against((
            i128::from(channel.ref_time) - i128::from(domain.ref_time),
            i128::from(channel.proof_size) - i128::from(domain.proof_size),
        )),
        own.against((
            i128::from(bare.ref_time) - i128::from(channel.ref_time),
            i128::from(bare.proof_size) - i128::from(channel.proof_size),
        )),
        sizes.code,
        sizes.example_code,
        sizes.code - sizes.example_code,
        i128::from(domain.proof_size) - i128::from(base.floor.proof_size),
    )
    .unwrap();
    writeln!(
        o,
        "Not met: slotpay's close stays above the example's ({} ref_time, {} proof_size). \
         What each item would take, without moving a rule off-chain:\n\n\
         - **The root written back** ({} ps, {} B on every close, settle, rotation, top-up, \
         extension and withdrawal): ink! 5 offers no message that changes storage without \
         writing the root back. A `&self` close writing its mapping entries directly would \
         skip it, but the metadata would then say that close leaves the contract's state \
         alone (`mutates: false`), which is false, and a tool that follows the metadata may \
         run such a message as a query. Kept: the interface must say what the message does.\n\
         - **The channel topic** ({} ps, {} B per event): it lets a light client find a \
         channel's events through `System::EventTopics` without scanning blocks; slotpay's \
         own tools scan their contract's events and recognise them by the signature topic \
         alone. Dropping it is the cheapest cut left, at the price of that lookup.\n\
         - **Removing the item, and the second transfer**: needed, since many channels share \
         one contract (no `terminate` can carry a refund) and the item's storage deposit goes \
         back to the payer with it; priced below the example's `terminate` in ref_time.\n\
         - **Code** ({} B of proof on every call): cargo-contract already builds with \
         opt-level z, LTO, one codegen unit and wasm-opt -Oz (setting them in the manifest \
         left the size unchanged, 21,894 B); {} B of it are source paths kept for panic \
         locations. The lever that remains is loading less of it per call: the rarely used messages (rotate, top_up, extend, withdraw) in a \
         second code blob called with `delegate_call`, so that close and settle load only \
         their own code. A second blob costs a `delegate_call` ({} ps, {} B, and its own \
         code) whenever it is used.\n\
         - **The channel read**: priced by access, not by size (the {} B item costs {} B of \
         proof, {} of it the full-trie surcharge), so a smaller item would save little; \
         the example has no item because its contract is the channel.",
        ratio(close.ref_time, base.close.ref_time),
        ratio(close.proof_size, base.close.proof_size),
        root_write.ref_time,
        root_write.proof_size,
        topic.ref_time,
        topic.proof_size,
        code_gap.proof_size,
        sizes.paths,
        DELEGATE_CALL.ref_time,
        DELEGATE_CALL.proof_size,
        sizes.channel,
        read.proof_size,
        10_010,
    )
    .unwrap();
}

/// `seal_delegate_call`'s base price (pallet-contracts 38.0.0).
const DELEGATE_CALL: Price = Price {
    ref_time: 115_083_000 + 25_000_000 * 2,
    proof_size: 3_895,
};
