# Shared helpers for slotpay's scripts. Source it; do not run it.
# shellcheck shell=bash

SLOTPAY_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The one cache root: toolchain choice, cargo-contract, the node binary, cargo target
# directories. Outside the checkout so fresh clones (CI) reuse it.
export SLOTPAY_CACHE=${SLOTPAY_CACHE:-$HOME/.cache/slotpay}

# The ports each command starts its chain on, one table so that the demo, the tests and
# the benchmark can run side by side (each is overridable by its own variable).
PORT_TEST_NODE=19944  # the test command's node, and scripts/node.sh's default
PORT_LAG_NODE=19945   # the test command's node whose finality lags
PORT_DEMO_NODE=19954  # scripts/demo.sh (SLOTPAY_DEMO_PORT)
PORT_DEMO_ANVIL=19955 # scripts/demo.sh --chain evm (SLOTPAY_DEMO_PORT)
PORT_BENCH_NODE=19964 # scripts/bench.sh (SLOTPAY_BENCH_PORT)

# What `cargo contract build --release` writes, and the fuzz targets, named once.
CONTRACT_BUNDLE=$SLOTPAY_CACHE/target/contract/ink/slotpay_channels.contract
CONTRACT_METADATA=$SLOTPAY_CACHE/target/contract/ink/slotpay_channels.json
FUZZ_TARGETS=(receipt differential merkle device_otp as_purchase lifecycle)

die() {
    printf '\nslotpay: error: %s\n' "$*" >&2
    exit 1
}

say() {
    printf '==> %s\n' "$*"
}

# step NAME COMMAND...: runs COMMAND, printing the step's name and how long it took.
step() {
    local name=$1 start end
    shift
    start=$(date +%s)
    say "$name"
    # A subshell that is not part of a condition keeps errexit on inside the step.
    local rc=0
    set +e
    (
        set -e
        "$@"
    )
    rc=$?
    set -e
    [ $rc -eq 0 ] || die "step '$name' failed (exit $rc; see the output above)"
    end=$(date +%s)
    printf '    done: %s (%ss)\n' "$name" "$((end - start))"
}

# Exports the environment every cargo invocation of the project needs: the contract
# toolchain chosen by setup.sh, the cached tools on PATH, the node binary.
slotpay_env() {
    local toolchain_file=$SLOTPAY_CACHE/toolchain.env
    [ -f "$toolchain_file" ] || die "no toolchain recorded in $toolchain_file: run scripts/setup.sh first"
    # shellcheck source=/dev/null
    . "$toolchain_file"
    export SLOTPAY_TOOLCHAIN SLOTPAY_TOOLCHAIN_SOURCE
    # Every cargo the scripts run uses it (rust-toolchain.toml says 1.85 for plain cargo;
    # Debian's toolchain has another name). `cargo +nightly` still overrides it.
    export RUSTUP_TOOLCHAIN=$SLOTPAY_TOOLCHAIN
    if [ "$SLOTPAY_TOOLCHAIN_SOURCE" = debian ]; then
        export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-19
    fi
    # Several crates declare an MSRV above 1.85 in newer releases; resolve to older ones.
    export CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback
    export PATH=$SLOTPAY_CACHE/tools/bin:$SLOTPAY_CACHE/node/bin:$PATH
    export CONTRACTS_NODE=${CONTRACTS_NODE:-$SLOTPAY_CACHE/node/bin/substrate-contracts-node}
    link_targets
}

# The checkout's `target` directories point into the cache, so that plain cargo commands
# run by hand (`cargo build` at the root, `cargo contract call` in contract/, which looks
# for the built artifacts there) share the scripts' builds.
link_targets() {
    local pair link dest
    for pair in "target:root" "contract/target:contract"; do
        link=$SLOTPAY_ROOT/${pair%%:*}
        dest=$SLOTPAY_CACHE/target/${pair##*:}
        mkdir -p "$dest"
        if [ ! -e "$link" ] && [ ! -L "$link" ]; then
            ln -s "$dest" "$link"
        fi
    done
}

# cargo with the contract toolchain, and a per-workspace target directory in the cache.
# Usage: tcargo TARGET_NAME cargo-args...
tcargo() {
    local target=$1
    shift
    CARGO_TARGET_DIR=$SLOTPAY_CACHE/target/$target cargo "+$SLOTPAY_TOOLCHAIN" "$@"
}

# cargo in the contract's own workspace, with its target directory in the cache (where
# `cargo contract build` leaves CONTRACT_BUNDLE). Usage: contract_cargo cargo-args...
contract_cargo() {
    (cd "$SLOTPAY_ROOT/contract" && CARGO_TARGET_DIR=$SLOTPAY_CACHE/target/contract \
        cargo "+$SLOTPAY_TOOLCHAIN" "$@")
}
