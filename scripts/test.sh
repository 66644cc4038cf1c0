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
step "clippy -D warnings (contract)" contract clippy --all-targets --locked --features e2e-tests -- -D warnings
step "workspace tests (protocol: RFC vectors, receipts, Merkle)" tcargo root test --workspace --locked
step "protocol builds for wasm32-unknown-unknown without std" \
    tcargo root build -p protocol --no-default-features --features hotp --target wasm32-unknown-unknown --locked
step "contract: cargo contract build --release" contract contract build --release
step "contract: #[ink::test] unit tests" contract test --locked
step "contract: end-to-end on pallet-contracts (in-process sandbox)" contract test --locked --features e2e-tests

node_e2e() {
    local port=${SLOTPAY_NODE_PORT:-19944}
    "$SLOTPAY_ROOT/scripts/node.sh" start
    local rc=0
    SLOTPAY_NODE_URL=ws://127.0.0.1:$port contract test --locked --features e2e-node-tests \
        --test node -- --test-threads 1 || rc=$?
    # Stop the node however the tests ended.
    "$SLOTPAY_ROOT/scripts/node.sh" stop
    return $rc
}
step "contract: end-to-end on substrate-contracts-node" node_e2e

say "all suites passed in $((SECONDS - total))s"
