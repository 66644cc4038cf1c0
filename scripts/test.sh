#!/usr/bin/env bash
# slotpay's test command (README, and .ci/run). Runs set-up first (seconds when cached),
# then every suite: lint; the contract built and its interface checked against its
# metadata; the workspace's tests; no_std builds and the device firmware under QEMU; the
# contract's unit, property and in-process end-to-end tests; then, on two real
# substrate-contracts-nodes (one with finality lagging 8 s), the contract's node tests and
# the whole system; then the demo, checked to leave no process behind; then the fuzz
# targets' seed replay.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$SLOTPAY_ROOT"

step "set-up (cached after the first run)" "$SLOTPAY_ROOT/scripts/setup.sh" --for test
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
step "contract: cargo contract build --release" contract contract build --release
export SLOTPAY_CONTRACT_METADATA=$SLOTPAY_CACHE/target/contract/ink/slotpay_channels.json
step "workspace tests (protocol incl. properties, the contract interface vs its metadata, AS ledger, closer and HTTP API on SQLite, the CLI against a lying AS, device)" \
    tcargo root test --workspace --locked --exclude tests -- --skip postgres
# The same AS suites on PostgreSQL (each test process starts a throwaway cluster as the
# postgres user on loopback and stops it), and several AS instances and closers on one
# database.
step "AS ledger, closer and HTTP API on PostgreSQL; several instances and closers on one database" \
    tcargo root test --locked -p offchain-as -- postgres

# The CLI is a client: it must not carry the server's database or HTTP server.
cli_dependencies() {
    local found
    found=$(tcargo root tree --locked -p client -e normal --prefix none | grep -E '^(rusqlite|libsqlite3-sys|axum|hyper) ' | sort -u || true)
    [ -z "$found" ] || die "the slotpay CLI (package client) links: $found"
    echo "    cargo tree -p client: no rusqlite, axum or hyper"
}
step "the CLI links no SQLite, axum or hyper" cli_dependencies
step "protocol builds for wasm32-unknown-unknown without std (the contract's payment rules, and HOTP)" \
    tcargo root build -p protocol --no-default-features --features payments,hotp --target wasm32-unknown-unknown --locked
step "protocol's HOTP alone builds for the Cortex-M0 (thumbv6m-none-eabi: no SCALE, no alloc)" \
    tcargo root build -p protocol --no-default-features --features hotp --target thumbv6m-none-eabi --locked
step "device core builds for wasm32-unknown-unknown without std" \
    tcargo root build -p device --lib --no-default-features --target wasm32-unknown-unknown --locked
step "device provisioning file alone (device, features = [\"provision\"], as the AS links it)" \
    tcargo root build -p device --lib --no-default-features --features provision --locked
step "device firmware: rustfmt and clippy -D warnings (its own workspace, Cortex-M targets)" \
    "$SLOTPAY_ROOT/scripts/firmware.sh" lint
step "device firmware under QEMU: on-target checks and the one-device image on Cortex-M4F (mps2-an386), Cortex-M3 (lm3s6965evb), Cortex-M0 (microbit); the networked image served tokens over its LAN9118 (mps2-an385)" \
    "$SLOTPAY_ROOT/scripts/firmware.sh" check
step "contract: #[ink::test] unit tests, lifecycle property vs a reference model" contract test --locked
step "contract: end-to-end on pallet-contracts (in-process sandbox)" contract test --locked --features e2e-tests

step "build the binaries (slotpay, slotpay-as, slotpay-device)" tcargo root build --workspace --locked

LAG_PORT=$((${SLOTPAY_NODE_PORT:-19944} + 1))
stop_nodes() {
    "$SLOTPAY_ROOT/scripts/node.sh" stop >/dev/null 2>&1 || true
    SLOTPAY_NODE_PORT=$LAG_PORT "$SLOTPAY_ROOT/scripts/node.sh" stop >/dev/null 2>&1 || true
}
trap stop_nodes EXIT
node_e2e() {
    local port=${SLOTPAY_NODE_PORT:-19944}
    "$SLOTPAY_ROOT/scripts/node.sh" start
    # A second chain whose finality lags 8 s behind its best block, as a production
    # chain's does (--finalize-delay-sec).
    export SLOTPAY_LAG_SECONDS=8
    SLOTPAY_NODE_PORT=$LAG_PORT SLOTPAY_FINALIZE_DELAY=$SLOTPAY_LAG_SECONDS "$SLOTPAY_ROOT/scripts/node.sh" start
    local rc=0
    export SLOTPAY_NODE_URL=ws://127.0.0.1:$port
    export SLOTPAY_LAG_NODE_URL=ws://127.0.0.1:$LAG_PORT
    export SLOTPAY_CONTRACT_BUNDLE=$SLOTPAY_CACHE/target/contract/ink/slotpay_channels.contract
    # The device firmware (built by the firmware step above) for tests/tests/firmware.rs:
    # a token bought with `slotpay pay` granted by the firmware under QEMU.
    export SLOTPAY_FIRMWARE_ELF=${SLOTPAY_FIRMWARE_TARGET_DIR:-$SLOTPAY_CACHE/target/firmware}/thumbv6m-none-eabi/release/networked
    say "contract on the node (ink_e2e node backend, subxt)"
    contract test --locked --features e2e-node-tests --test node -- --test-threads 1 || rc=$?
    if [ $rc -eq 0 ]; then
        say "slotpay end to end: binaries as processes, real chains (revocation, settlement, closes under finality lag, node restarts, crashes, the device firmware under QEMU)"
        tcargo root test --locked -p tests -- --test-threads 1 || rc=$?
    fi
    # Stop the nodes however the tests ended.
    stop_nodes
    return $rc
}
step "end to end on substrate-contracts-node (contract, the whole system, crashes)" node_e2e

# The main job, as a user runs it; then nothing of it may be left running.
demo_leaves_nothing() {
    "$SLOTPAY_ROOT/scripts/demo.sh"
    local left
    left=$(pgrep -af 'slotpay-as|slotpay-device|substrate-contracts-node.*19954' || true)
    [ -z "$left" ] || die "the demo left processes running:
$left"
    echo "    no slotpay process and no demo node left"
}
step "the demo runs and leaves no process behind" demo_leaves_nothing

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
