#!/usr/bin/env bash
# slotpay's test command (README, and .ci/run). Runs set-up first (seconds when cached),
# then every suite, one step each: lint and the architecture's dependency invariants; the
# contract built and its interface checked against its metadata; the workspace's tests;
# no_std builds and the device firmware under QEMU; the contract's unit, property and
# in-process end-to-end tests; the EVM contract's tests; the EVM layer on anvil
# (differential, end to end); then, on two real substrate-contracts-nodes (one with
# finality lagging 8 s), the contract's node tests and the whole system; then the demo on
# both layers, checked to leave no process behind; then the fuzz targets' seed replay.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$SLOTPAY_ROOT"

step "set-up (cached after the first run)" "$SLOTPAY_ROOT/scripts/setup.sh" --for test
slotpay_env
total=$SECONDS

step "rustfmt" cargo "+$SLOTPAY_TOOLCHAIN" fmt --all --check
step "rustfmt (contract)" contract_cargo fmt --check
step "clippy -D warnings" tcargo root clippy --workspace --all-targets --locked -- -D warnings
step "clippy -D warnings (contract)" contract_cargo clippy --all-targets --locked --features e2e-tests,e2e-node-tests -- -D warnings
step "every crate's dependencies are the ones ARCHITECTURE.md allows (cargo metadata, all four workspaces)" \
    python3 "$SLOTPAY_ROOT/scripts/check-architecture.py" --manifest contract/Cargo.toml \
    --manifest fuzz/Cargo.toml --manifest device-sim/firmware/Cargo.toml
step "contract: cargo contract build --release" contract_cargo contract build --release
export SLOTPAY_CONTRACT_METADATA=$CONTRACT_METADATA
step "protocol: the rules, RFC 4226/6238 vectors, receipts, Merkle groups, the channel against a model, properties" \
    tcargo root test --locked -p protocol
step "interface: the contract's messages, events and errors against the built metadata" \
    tcargo root test --locked -p interface
step "api and chain: wire types, error codes, codecs, block limits" \
    tcargo root test --locked -p api -p chain
step "AS: ledger on SQLite, the closer against a fake chain of bounded capacity, the HTTP API on a socket" \
    tcargo root test --locked -p offchain-as -- --skip postgres
# The same AS suites on PostgreSQL (each test process starts a throwaway cluster as the
# postgres user on loopback and stops it), several AS instances and closers on one
# database, and `slotpay-as migrate`.
step "AS on PostgreSQL: ledger, closer and HTTP API; several instances and closers on one database; migrate" \
    tcargo root test --locked -p offchain-as -- postgres
step "CLI: its checks, its record, against a lying AS" tcargo root test --locked -p client
step "device and its simulator: core, throttle, power cuts, CoAP over UDP" \
    tcargo root test --locked -p device -p device-sim
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
step "contract: #[ink::test] unit tests, lifecycle property vs a reference model" contract_cargo test --locked
step "contract: end-to-end on pallet-contracts (in-process sandbox)" contract_cargo test --locked --features e2e-tests
step "EVM contract: forge unit, fuzz and invariant tests (scripts/evm.sh)" \
    bash -c '"$0"/scripts/evm.sh setup && "$0"/scripts/evm.sh build && "$0"/scripts/evm.sh test' "$SLOTPAY_ROOT"

step "build the binaries (slotpay, slotpay-as, slotpay-device, slotpay-balance-check)" \
    tcargo root build --workspace --locked
# The EVM layer on anvil (each test starts its own on a free port and stops it, also when
# it fails): the Rust rule against the compiled contract, then the whole system.
step "EVM layer on anvil: the Rust rule vs the compiled contract over generated inputs (differential); the client's ABI vs the artifact" \
    tcargo root test --locked -p tests --test evm_differential -- --test-threads 1
step "EVM layer on anvil, end to end: every construction, settle, rotation, close, every balance to the wei; a reverting payer, a greedy member, a crowded expiry" \
    tcargo root test --locked -p tests --test evm_e2e -- --test-threads 1

stop_nodes() {
    SLOTPAY_NODE_PORT=$PORT_TEST_NODE "$SLOTPAY_ROOT/scripts/node.sh" stop >/dev/null 2>&1 || true
    SLOTPAY_NODE_PORT=$PORT_LAG_NODE "$SLOTPAY_ROOT/scripts/node.sh" stop >/dev/null 2>&1 || true
}
trap stop_nodes EXIT
start_nodes() {
    SLOTPAY_NODE_PORT=$PORT_TEST_NODE "$SLOTPAY_ROOT/scripts/node.sh" start
    # A second chain whose finality lags 8 s behind its best block, as a production
    # chain's does (--finalize-delay-sec).
    SLOTPAY_NODE_PORT=$PORT_LAG_NODE SLOTPAY_FINALIZE_DELAY=$SLOTPAY_LAG_SECONDS "$SLOTPAY_ROOT/scripts/node.sh" start
}
export SLOTPAY_LAG_SECONDS=8
export SLOTPAY_NODE_URL=ws://127.0.0.1:$PORT_TEST_NODE
export SLOTPAY_LAG_NODE_URL=ws://127.0.0.1:$PORT_LAG_NODE
export SLOTPAY_CONTRACT_BUNDLE=$CONTRACT_BUNDLE
# The device firmware (built by the firmware step above) for tests/tests/firmware.rs: a
# token bought with `slotpay pay` granted by the firmware under QEMU.
export SLOTPAY_FIRMWARE_ELF=${SLOTPAY_FIRMWARE_TARGET_DIR:-$SLOTPAY_CACHE/target/firmware}/thumbv6m-none-eabi/release/networked
step "start two substrate-contracts-nodes (one whose finality lags ${SLOTPAY_LAG_SECONDS} s)" start_nodes
step "contract on the node (ink_e2e node backend, subxt)" \
    contract_cargo test --locked --features e2e-node-tests --test node -- --test-threads 1
for suite in e2e revocation chain crash firmware instances closer_lease failover; do
    case $suite in
    e2e) what="every construction end to end, every balance to the unit; a replaced ledger" ;;
    revocation) what="a stolen key revoked, a group member removed" ;;
    chain) what="hundreds of channels expiring in one block, with and without finality lag; a node restart under load" ;;
    crash) what="SIGKILLs of the AS under load and of a device; node restarts during closes" ;;
    firmware) what="a token bought with slotpay pay granted by the firmware under QEMU" ;;
    instances) what="three AS instances on one PostgreSQL ledger behind HAProxy agree with the devices and the chain" ;;
    closer_lease) what="the closing instance killed, the next one paused past its lease: one close per channel, in time" ;;
    failover) what="the PostgreSQL primary killed under load, its synchronous standby promoted: no answered sale lost" ;;
    esac
    step "whole system on the nodes ($suite): $what" tcargo root test --locked -p tests --test "$suite" -- --test-threads 1
done
step "stop the nodes" stop_nodes

# The main job, as a user runs it; then nothing of it may be left running.
demo_leaves_nothing() {
    "$SLOTPAY_ROOT/scripts/demo.sh"
    local left
    left=$(pgrep -af "slotpay-as|slotpay-device|substrate-contracts-node.*--rpc-port ${SLOTPAY_DEMO_PORT:-$PORT_DEMO_NODE}" || true)
    [ -z "$left" ] || die "the demo left processes running:
$left"
    echo "    no slotpay process and no demo node left"
}
step "the demo runs and leaves no process behind" demo_leaves_nothing
evm_demo_leaves_nothing() {
    "$SLOTPAY_ROOT/scripts/demo.sh" --chain evm
    local left
    left=$(pgrep -af "slotpay-as|slotpay-device|anvil.*--port ${SLOTPAY_DEMO_PORT:-$PORT_DEMO_ANVIL}" || true)
    [ -z "$left" ] || die "the EVM demo left processes running:
$left"
    echo "    no slotpay process and no anvil left"
}
step "the demo on the EVM layer (anvil) runs and leaves no process behind" evm_demo_leaves_nothing

# The fuzz targets (nightly, cargo-fuzz) replay their committed seeds and regressions, so
# they keep building and every crash ever found stays fixed. scripts/fuzz.sh fuzzes.
fuzz_replay() {
    shopt -s nullglob
    cd "$SLOTPAY_ROOT/fuzz"
    export CARGO_TARGET_DIR=$SLOTPAY_CACHE/target/fuzz
    local t
    for t in "${FUZZ_TARGETS[@]}"; do
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
