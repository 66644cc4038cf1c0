#!/usr/bin/env bash
# slotpay's test command (README, and .ci/run). Runs set-up first (seconds when cached),
# then every suite: lint, protocol, the contract's unit tests, its end-to-end tests on
# pallet-contracts in process, and on a real substrate-contracts-node.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$SLOTPAY_ROOT"

step "set-up (cached after the first run)" "$SLOTPAY_ROOT/scripts/setup.sh"
slotpay_env
total=$SECONDS

contract() {
    (cd "$SLOTPAY_ROOT/contract" && CARGO_TARGET_DIR=$SLOTPAY_CACHE/target/contract \
        cargo "+$SLOTPAY_TOOLCHAIN" "$@")
}

step "rustfmt" cargo "+$SLOTPAY_TOOLCHAIN" fmt --all --check
step "rustfmt (contract)" contract fmt --check
step "clippy -D warnings" tcargo root clippy --workspace --all-targets --locked -- -D warnings
step "clippy -D warnings (contract)" contract clippy --all-targets --locked --features e2e-tests,e2e-node-tests -- -D warnings
step "workspace tests (protocol incl. properties, AS ledger and HTTP API, device, CLI)" \
    tcargo root test --workspace --locked --exclude slotpay-tests
step "protocol builds for wasm32-unknown-unknown without std" \
    tcargo root build -p protocol --no-default-features --features hotp --target wasm32-unknown-unknown --locked
step "device core builds for wasm32-unknown-unknown without std" \
    tcargo root build -p device-sim --lib --no-default-features --target wasm32-unknown-unknown --locked
step "device image (no_std, no heap) links for wasm32-unknown-unknown" \
    tcargo root build -p device-image --target wasm32-unknown-unknown --profile device-image --locked
step "contract: cargo contract build --release" contract contract build --release
step "contract: #[ink::test] unit tests, lifecycle property vs a reference model" contract test --locked
step "contract: end-to-end on pallet-contracts (in-process sandbox)" contract test --locked --features e2e-tests

step "build the binaries (slotpay, slotpay-as, slotpay-device)" tcargo root build --workspace --locked

node_e2e() {
    local port=${SLOTPAY_NODE_PORT:-19944}
    "$SLOTPAY_ROOT/scripts/node.sh" start
    local rc=0
    export SLOTPAY_NODE_URL=ws://127.0.0.1:$port
    say "contract on the node (ink_e2e node backend, subxt)"
    contract test --locked --features e2e-node-tests --test node -- --test-threads 1 || rc=$?
    if [ $rc -eq 0 ]; then
        say "slotpay end to end and crash survival: binaries as processes, real chain"
        tcargo root test --locked -p slotpay-tests -- --test-threads 1 || rc=$?
    fi
    # Stop the node however the tests ended.
    "$SLOTPAY_ROOT/scripts/node.sh" stop
    return $rc
}
step "end to end on substrate-contracts-node (contract, the whole system, crashes)" node_e2e

# The fuzz targets (nightly, cargo-fuzz) replay their committed seeds and regressions, so
# they keep building and every crash ever found stays fixed. scripts/fuzz.sh fuzzes.
fuzz_replay() {
    shopt -s nullglob
    cd "$SLOTPAY_ROOT/fuzz"
    export CARGO_TARGET_DIR=$SLOTPAY_CACHE/target/fuzz
    local t
    for t in receipt differential merkle device_otp as_purchase lifecycle; do
        local inputs=(seeds/"$t"/* regressions/"$t"/*)
        [ ${#inputs[@]} -gt 0 ] || continue
        cargo +nightly fuzz run -O -a --sanitizer none "$t" "${inputs[@]}" -- -runs=1 >/dev/null 2>&1 || {
            cargo +nightly fuzz run -O -a --sanitizer none "$t" "${inputs[@]}" -- -runs=1 2>&1 | tail -30
            return 1
        }
        echo "    $t: ${#inputs[@]} inputs replayed"
    done
}
if rustup toolchain list | grep -q '^nightly' && command -v cargo-fuzz >/dev/null; then
    step "fuzz targets replay their seeds and regressions" fuzz_replay
else
    say "skipping the fuzz seed replay: no nightly toolchain here (scripts/setup.sh said why)"
fi

say "all suites passed in $((SECONDS - total))s"
