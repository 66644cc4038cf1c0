#!/usr/bin/env bash
# Every benchmark of the project, each beside its bare limit measured in the same run, and
# bench/RESULTS.md collecting them with the machine and the date:
#   protocol    cargo bench -p protocol          -> bench/protocol.md
#   device      cargo bench -p device            -> bench/device.md
#   firmware    scripts/firmware.sh bench        -> bench/firmware.md (Cortex-M under QEMU:
#                                                   flash/RAM, exact instructions per token)
#   contract    cargo run --example costs        -> bench/contract-costs-sandbox.md (in process)
#               cargo bench --bench contract_costs -> bench/contract-costs.md (real node, beside
#                                                   the ink! examples' payment channel 5.1.1,
#                                                   fetched and built here, never committed)
#   AS load     cargo bench --bench as_load      -> bench/as-load.md (real node, release AS)
#   end to end  (same binary: `slotpay pay` to the device's grant)
#
#   scripts/bench.sh            (set-up must have run; 7.5 minutes measured here, built)
#   scripts/bench.sh --results  only reassemble bench/RESULTS.md from the reports
#
# Environment: SLOTPAY_BENCH_NOTE (a remark written into each report, e.g. the machine's
# load), SLOTPAY_LOAD_CHANNELS / SLOTPAY_LOAD_SECONDS (AS load shape), SLOTPAY_BENCH_PORT
# (node RPC port, default 19964), SLOTPAY_INK_CHECKOUT (a local checkout of ink! v5.1.1,
# the directory holding integration-tests/public/payment-channel: the yardstick for the
# contract's costs is built from it; nothing of it is committed). Without one, the
# contract-costs-on-the-node step says what it needs and is skipped; every other
# benchmark runs.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
slotpay_env
cd "$SLOTPAY_ROOT"
results() {
    {
        echo "# slotpay benchmark results"
        echo
        echo "Assembled by \`scripts/bench.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), on $(nproc) cores"
        echo "($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB),"
        echo "from the reports below: each is what its own command wrote, with its own date (a"
        echo "report rerun alone, \`scripts/bench.sh --results\` reassembles this file); every"
        echo "figure sits beside the bare limit measured in the same run. Goals are in issue 6 and docs."
        for f in protocol device firmware contract-costs contract-costs-sandbox as-load; do
            echo
            sed 's/^#/##/' "bench/$f.md"
        done
    } >bench/RESULTS.md
}

if [ "${1:-}" = "--results" ]; then
    step "bench/RESULTS.md" results
    exit 0
fi

total=$SECONDS

export SLOTPAY_NODE_PORT=${SLOTPAY_BENCH_PORT:-$PORT_BENCH_NODE}
trap '"$SLOTPAY_ROOT/scripts/node.sh" stop >/dev/null 2>&1 || true' EXIT

step "protocol micro-benchmarks (criterion)" tcargo root bench --locked -p protocol
step "device token check (criterion)" tcargo root bench --locked -p device --bench device

step "device firmware on Cortex-M under QEMU: sizes, instructions per token check" \
    "$SLOTPAY_ROOT/scripts/firmware.sh" bench

step "contract costs on pallet-contracts (sandbox)" \
    contract_cargo run --locked --example costs --features e2e-tests

# The yardstick for the contract's costs: the ink! examples' payment channel as published
# at v5.1.1, built here from the user's checkout with the same cargo-contract. It has no
# lock file, so dependencies resolve to the newest that this Rust accepts.
BASELINE_DIR=${SLOTPAY_INK_CHECKOUT:+$SLOTPAY_INK_CHECKOUT/integration-tests/public/payment-channel}
baseline_contract() {
    [ -f "$BASELINE_DIR/Cargo.toml" ] || die "SLOTPAY_INK_CHECKOUT=$SLOTPAY_INK_CHECKOUT holds no integration-tests/public/payment-channel/Cargo.toml: give the root of an ink! v5.1.1 checkout"
    (cd "$BASELINE_DIR" &&
        CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback CARGO_TARGET_DIR=$SLOTPAY_CACHE/target/baseline \
            cargo "+$SLOTPAY_TOOLCHAIN" contract build --release --quiet)
    echo "    $(stat -c %s "$SLOTPAY_CACHE/target/baseline/ink/payment_channel.wasm") B of wasm"
}
if [ -n "$BASELINE_DIR" ]; then
    step "the ink! examples' payment channel v5.1.1 (from $SLOTPAY_INK_CHECKOUT, not committed)" baseline_contract
else
    say "no ink! checkout: the contract-costs-on-the-node benchmark compares slotpay with the ink!"
    echo "    examples' payment channel v5.1.1 and is skipped (bench/contract-costs.md keeps its last"
    echo "    run). To run it, get ink! v5.1.1 (git clone --branch v5.1.1 https://github.com/use-ink/ink,"
    echo "    or a source archive of that tag) and set SLOTPAY_INK_CHECKOUT to its directory."
fi
step "slotpay's contract (cargo contract build --release)" \
    contract_cargo contract build --release --quiet
export SLOTPAY_CONTRACT_BUNDLE=$CONTRACT_BUNDLE
export SLOTPAY_BASELINE_BUNDLE=$SLOTPAY_CACHE/target/baseline/ink/payment_channel.contract

step "release binaries for the load benchmark" \
    tcargo root build --release --locked -p client -p offchain-as -p device-sim --bins
step "start a dev chain" "$SLOTPAY_ROOT/scripts/node.sh" start
export SLOTPAY_NODE_URL=ws://127.0.0.1:$SLOTPAY_NODE_PORT
if [ -n "$BASELINE_DIR" ]; then
    step "contract costs on the node, beside the ink! example" \
        tcargo root bench --locked -p tests --bench contract_costs
fi
step "AS load (open loop) and end-to-end latency" tcargo root bench --locked -p tests --bench as_load
"$SLOTPAY_ROOT/scripts/node.sh" stop

step "bench/RESULTS.md" results
say "benchmarks done in $((SECONDS - total))s: bench/RESULTS.md"
