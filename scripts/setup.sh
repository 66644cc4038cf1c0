#!/usr/bin/env bash
# Installs what slotpay's commands need, once per machine, into $SLOTPAY_CACHE
# (default ~/.cache/slotpay). Idempotent: a second run checks and does nothing new.
#
#   scripts/setup.sh [--for all|demo|evm-demo|test] [--node-background | --no-node]
#
#   --for demo        what the demo needs: system packages, the contract toolchain,
#                     cargo-contract, the node (no fuzzing or firmware tools)
#   --for evm-demo    what `scripts/demo.sh --chain evm` needs: system packages, the
#                     toolchain, the EVM tools from npm (no cargo-contract, no node)
#   --for test        what the test command needs: all of the above, PostgreSQL 15 and
#                     HAProxy, the firmware tools (qemu-system-arm, Cortex-M targets) and
#                     the fuzzing tools (nightly, cargo-fuzz)
#   --for all         (default) everything
#   --node-background the node build in the background, everything else now
#   --no-node         skip the node (for unit tests only)
#
# The node: a substrate-contracts-node 0.42.0 you already have is used instead of a
# build: SLOTPAY_NODE_BIN=/path/to/substrate-contracts-node, or one on PATH. Its
# `--version` must say 0.42.0. Otherwise it is built from crates.io (40-75 minutes on 2
# cores); SLOTPAY_NODE_PROFILE=release (default, cargo's release profile) or light
# (opt-level 1, no debug info, no LTO) picks the build profile (README, "The node build",
# says what was measured and why release stays the default).
#
# Environment: SLOTPAY_CACHE (cache root), SLOTPAY_TOOLCHAIN_SOURCE=rustup|debian to force
# where the Rust 1.85 contract toolchain comes from (default: rustup if it can download
# 1.85 with rust-src and wasm32, else Debian bookworm's rustc-web 1.85 packages).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

NODE_VERSION=0.42.0
CARGO_CONTRACT_VERSION=5.0.3
CARGO_FUZZ_VERSION=0.13.2
DEBIAN_RUST_VERSION=1.85.0+dfsg3-1~deb12u3
DEBIAN_TOOLCHAIN=slotpay-1.85
NODE_BIN=$SLOTPAY_CACHE/node/bin/substrate-contracts-node
NODE_LOG=$SLOTPAY_CACHE/logs/node-build.log
NODE_PROFILE=${SLOTPAY_NODE_PROFILE:-release}
case $NODE_PROFILE in light | release) ;; *) echo "SLOTPAY_NODE_PROFILE must be light or release, not '$NODE_PROFILE'" >&2; exit 1 ;; esac

node_mode=foreground
purpose=all
while [ $# -gt 0 ]; do
    case $1 in
    --node-background) node_mode=background ;;
    --no-node) node_mode=skip ;;
    --node-only) node_mode=only ;;
    --for)
        [ $# -ge 2 ] || die "--for needs one of: all, demo, evm-demo, test"
        purpose=$2
        shift
        ;;
    --for=*) purpose=${1#--for=} ;;
    -h | --help)
        sed -n '2,28p' "$0"
        exit 0
        ;;
    *) die "unknown argument '$1' (try --help)" ;;
    esac
    shift
done
case $purpose in all | demo | evm-demo | test) ;; *) die "--for takes all, demo, evm-demo or test, not '$purpose'" ;; esac
[ "$purpose" != evm-demo ] || node_mode=skip

mkdir -p "$SLOTPAY_CACHE"/{logs,target,tools,node}

is_installed() {
    dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null | grep -q "^install ok installed ${2:-}"
}

apt_install() {
    command -v apt-get >/dev/null || die "need these packages but this is not a Debian system: $*"
    [ "$(id -u)" = 0 ] || die "installing $* needs root (run: sudo $0)"
    say "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades "$@" >/dev/null
}

system_packages() {
    # The node build needs protoc and clang; sqlite3 is the AS database's shell.
    local missing=()
    for pkg in protobuf-compiler clang libclang-dev sqlite3; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "    present: protobuf-compiler clang libclang-dev sqlite3"
    elif command -v apt-get >/dev/null; then
        apt_install "${missing[@]}"
    else
        for cmd in protoc clang; do
            command -v "$cmd" >/dev/null || die "install $cmd (protobuf compiler, clang) first"
        done
    fi
}

toolchain_works() {
    rustc "+$1" --version 2>/dev/null | grep -q '^rustc 1\.85\.' &&
        [ -d "$(rustc "+$1" --print sysroot)/lib/rustlib/src/rust/library" ]
}

record_toolchain() {
    printf 'SLOTPAY_TOOLCHAIN=%s\nSLOTPAY_TOOLCHAIN_SOURCE=%s\n' "$1" "$2" >"$SLOTPAY_CACHE/toolchain.env"
    echo "    using +$1 ($2): $(rustc "+$1" --version)"
}

toolchain_from_rustup() {
    command -v rustup >/dev/null || return 1
    timeout 600 rustup toolchain install 1.85 --profile minimal \
        --component rust-src,clippy,rustfmt --target wasm32-unknown-unknown || return 1
    rustup target list --installed --toolchain 1.85 | grep -q '^wasm32-unknown-unknown$' || return 1
    toolchain_works 1.85
}

toolchain_from_debian() {
    grep -q '^VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null ||
        die "rustup could not install Rust 1.85 with rust-src and wasm32, and this is not Debian bookworm: install a Rust 1.85 toolchain with rust-src and the wasm32-unknown-unknown target"
    local v=$DEBIAN_RUST_VERSION pkgs=() p
    for p in rustc-web cargo-web libstd-rust-web-dev rust-web-src rust-web-clippy; do
        is_installed "$p" "$v" || pkgs+=("$p=$v")
    done
    is_installed libstd-rust-web-1.85 || pkgs+=(libstd-rust-web-1.85)
    is_installed lld-19 || pkgs+=(lld-19)
    [ ${#pkgs[@]} -eq 0 ] || apt_install "${pkgs[@]}"
    command -v rustup >/dev/null || die "rustup is needed to name Debian's Rust 1.85 as a toolchain"
    rustup toolchain link "$DEBIAN_TOOLCHAIN" /usr
    toolchain_works "$DEBIAN_TOOLCHAIN"
}

contract_toolchain() {
    if [ -f "$SLOTPAY_CACHE/toolchain.env" ]; then
        # shellcheck source=/dev/null
        . "$SLOTPAY_CACHE/toolchain.env"
        if toolchain_works "$SLOTPAY_TOOLCHAIN"; then
            echo "    cached: +$SLOTPAY_TOOLCHAIN ($SLOTPAY_TOOLCHAIN_SOURCE)"
            return 0
        fi
    fi
    local source=${SLOTPAY_TOOLCHAIN_SOURCE_OVERRIDE:-${SLOTPAY_TOOLCHAIN_SOURCE:-auto}}
    if [ "$source" != debian ] && toolchain_from_rustup; then
        record_toolchain 1.85 rustup
    else
        echo "    rustup cannot provide Rust 1.85 + rust-src + wasm32 here: using Debian's rustc-web 1.85"
        toolchain_from_debian || die "Debian's Rust 1.85 toolchain does not work"
        record_toolchain "$DEBIAN_TOOLCHAIN" debian
    fi
}

# substrate-wasm-builder first probes a plain wasm32 build, so Debian's toolchain (which
# has rust-src but no wasm32 std) needs one built once from rust-src.
wasm_std() {
    slotpay_env
    local lib
    lib=$(rustc "+$SLOTPAY_TOOLCHAIN" --print sysroot)/lib/rustlib/wasm32-unknown-unknown/lib
    if compgen -G "$lib/libstd-*.rlib" >/dev/null; then
        echo "    present in $lib"
        return 0
    fi
    local dir=$SLOTPAY_CACHE/wasm-std/wstd
    [ -d "$dir" ] || cargo "+$SLOTPAY_TOOLCHAIN" new --lib -q "$dir"
    (cd "$dir" && RUSTC_BOOTSTRAP=1 RUSTFLAGS=-Cembed-bitcode=yes cargo "+$SLOTPAY_TOOLCHAIN" build -q \
        --release --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort)
    mkdir -p "$lib"
    cp "$dir"/target/wasm32-unknown-unknown/release/deps/lib*.rlib "$lib"/
    rm -f "$lib"/libwstd-*.rlib
}

cargo_contract() {
    local bin=$SLOTPAY_CACHE/tools/bin/cargo-contract
    if [ -x "$bin" ] && "$bin" --version | grep -q "cargo-contract-contract $CARGO_CONTRACT_VERSION\|cargo-contract $CARGO_CONTRACT_VERSION"; then
        echo "    cached: $("$bin" --version)"
        return 0
    fi
    echo "    building cargo-contract $CARGO_CONTRACT_VERSION from crates.io (about 10 minutes on 2 cores)"
    CARGO_TARGET_DIR=$SLOTPAY_CACHE/target/cargo-contract-install \
        cargo install cargo-contract --version "$CARGO_CONTRACT_VERSION" --locked \
        --root "$SLOTPAY_CACHE/tools" >"$SLOTPAY_CACHE/logs/cargo-contract-build.log" 2>&1 ||
        die "cargo-contract build failed; last lines of $SLOTPAY_CACHE/logs/cargo-contract-build.log:
$(tail -n 20 "$SLOTPAY_CACHE/logs/cargo-contract-build.log")"
}

# Fuzzing (scripts/fuzz.sh, and the seed replay in scripts/test.sh) needs a nightly
# toolchain for libFuzzer's instrumentation, and cargo-fuzz. Where rustup cannot download
# one, fuzzing is unavailable; everything else works and test.sh says it skips the replay.
fuzz_tools() {
    if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
        if ! rustup toolchain install nightly --profile minimal >"$SLOTPAY_CACHE/logs/nightly.log" 2>&1; then
            echo "    no nightly toolchain can be installed here: fuzzing unavailable (see $SLOTPAY_CACHE/logs/nightly.log)"
            return 0
        fi
    fi
    local bin=$SLOTPAY_CACHE/tools/bin/cargo-fuzz
    if [ -x "$bin" ] && "$bin" --version | grep -q "cargo-fuzz $CARGO_FUZZ_VERSION"; then
        echo "    cached: $("$bin" --version), $(cargo +nightly --version)"
        return 0
    fi
    echo "    building cargo-fuzz $CARGO_FUZZ_VERSION from crates.io (about 2 minutes)"
    CARGO_TARGET_DIR=$SLOTPAY_CACHE/target/tools \
        cargo +nightly install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked \
        --root "$SLOTPAY_CACHE/tools" >"$SLOTPAY_CACHE/logs/cargo-fuzz-build.log" 2>&1 ||
        die "cargo-fuzz build failed; last lines of $SLOTPAY_CACHE/logs/cargo-fuzz-build.log:
$(tail -n 20 "$SLOTPAY_CACHE/logs/cargo-fuzz-build.log")"
}

# The AS's PostgreSQL ledger and its several instances: the tests start their own
# PostgreSQL clusters (a primary and a synchronous standby, as the postgres user, on
# loopback) and HAProxy in front of several AS instances; Debian bookworm's PostgreSQL 15
# and HAProxy 2.6. No system cluster is created: nothing of them runs outside a test.
database_packages() {
    local missing=() pkg
    for pkg in postgresql-15 haproxy; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        mkdir -p /etc/postgresql-common/createcluster.d
        echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/slotpay.conf
        apt_install --no-install-recommends "${missing[@]}"
    fi
    echo "    present: $(/usr/lib/postgresql/15/bin/postgres --version), $(haproxy -v | head -n 1 | cut -d' ' -f1-3)"
}

# The device firmware (scripts/firmware.sh) runs under QEMU's Arm system emulator, built
# with the 1.85 toolchain for Cortex-M4F, Cortex-M3 and Cortex-M0 (the networked image's
# IP stack, smoltcp, is a crate: nothing more to install; scripts/firmware.sh bloat and
# bench use python3 for their per-crate tables when it is there).
FIRMWARE_TARGETS="thumbv7em-none-eabihf thumbv7m-none-eabi thumbv6m-none-eabi"
firmware_tools() {
    if command -v qemu-system-arm >/dev/null; then
        echo "    present: $(qemu-system-arm --version | head -n 1)"
    else
        apt_install --no-install-recommends qemu-system-arm
        echo "    installed: $(qemu-system-arm --version | head -n 1)"
    fi
    if [ "$SLOTPAY_TOOLCHAIN_SOURCE" = debian ]; then
        echo "    +$SLOTPAY_TOOLCHAIN is Debian's: scripts/firmware.sh builds core and alloc from rust-src"
        return 0
    fi
    local missing=() t
    for t in $FIRMWARE_TARGETS; do
        rustup target list --installed --toolchain "$SLOTPAY_TOOLCHAIN" | grep -qx "$t" || missing+=("$t")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        timeout 600 rustup target add --toolchain "$SLOTPAY_TOOLCHAIN" "${missing[@]}"
    fi
    echo "    targets of +$SLOTPAY_TOOLCHAIN: $FIRMWARE_TARGETS"
}

node_present() {
    [ -x "$NODE_BIN" ] && "$NODE_BIN" --version >/dev/null 2>&1
}

# A node binary the user already has: SLOTPAY_NODE_BIN, else one on PATH. Accepted when
# its version is the one slotpay is tested with; linked into the cache so that every
# script finds it in one place. Returns 1 when there is none to use.
user_node() {
    local candidate=${SLOTPAY_NODE_BIN:-} from=SLOTPAY_NODE_BIN
    if [ -z "$candidate" ]; then
        candidate=$(command -v substrate-contracts-node 2>/dev/null || true)
        from=PATH
        [ -n "$candidate" ] || return 1
        # Our own link, found through PATH in an environment set by slotpay_env.
        [ "$(readlink -f "$candidate")" != "$(readlink -f "$NODE_BIN" 2>/dev/null)" ] || return 1
    fi
    [ -x "$candidate" ] || die "SLOTPAY_NODE_BIN=$candidate is not an executable file"
    local version
    version=$("$candidate" --version 2>&1 | head -n 1) ||
        die "$candidate (from $from) does not run: $version"
    if ! printf '%s\n' "$version" | grep -q "^substrate-contracts-node $NODE_VERSION\b"; then
        die "$candidate (from $from) says '$version'; slotpay needs substrate-contracts-node $NODE_VERSION (unset SLOTPAY_NODE_BIN, or take it off PATH, to build that version here)"
    fi
    mkdir -p "$(dirname "$NODE_BIN")"
    ln -sfn "$(readlink -f "$candidate")" "$NODE_BIN"
    printf 'profile=user\nsource=%s\n' "$(readlink -f "$candidate")" >"$SLOTPAY_CACHE/node/build.env"
    echo "    using your $version ($from: $candidate)"
}

# Builds the node while printing a progress line a minute; holds a lock so a second
# setup (say, CI while a background build runs) waits instead of building twice.
build_node() {
    exec 9>"$SLOTPAY_CACHE/node-build.lock"
    if ! flock -n 9; then
        echo "    another node build is running (log: $NODE_LOG); waiting for it"
        flock 9
    fi
    if [ -n "${SLOTPAY_NODE_BIN:-}" ] || ! node_present; then
        user_node && return 0
    fi
    if node_present; then
        echo "    cached: $("$NODE_BIN" --version)"
        return 0
    fi
    slotpay_env
    cargo "+$SLOTPAY_TOOLCHAIN" info -q "contracts-node@$NODE_VERSION" >/dev/null 2>&1 || true
    local hint
    hint=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"contracts-node-$NODE_VERSION" 2>/dev/null | head -n 1)
    [ -f "$hint/Cargo.lock" ] || die "could not fetch contracts-node $NODE_VERSION's source from crates.io"
    echo "    building substrate-contracts-node $NODE_VERSION from crates.io: expect 60-75 minutes on"
    echo "    2 cores (cargo resumes an interrupted build). Log: $NODE_LOG"
    local start=$SECONDS
    # The hint makes the runtime's inner wasm build use the crate's own Cargo.lock:
    # re-resolving picks substrate-bip39 0.6.1, which breaks Rust 1.85.
    # `--dev` runs only contracts-node-runtime's wasm: the Rococo relay-chain and parachain
    # runtimes' wasm blobs (two more full wasm builds, a third of the build) serve only the
    # parachain mode, which slotpay never starts; their native code is still built.
    # The light profile (SLOTPAY_NODE_PROFILE=light) trades the release profile's
    # optimisation for build time; README "The node build" has what was measured.
    local profile_env=()
    if [ "$NODE_PROFILE" = light ]; then
        profile_env=(CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256
            CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_LTO=false
            CARGO_PROFILE_RELEASE_INCREMENTAL=false)
    fi
    echo "    profile: $NODE_PROFILE ${profile_env[*]}"
    # /usr/bin/time records the build's CPU time beside its wall time: the figure that
    # stays comparable when something else shares the cores.
    /usr/bin/time -o "$SLOTPAY_CACHE/logs/node-build.time" -f 'wall_s=%e user_s=%U sys_s=%S max_rss_kb=%M' \
    env "${profile_env[@]}" SKIP_ROCOCO_RUNTIME_WASM_BUILD=1 SKIP_CONTRACTS_PARACHAIN_RUNTIME_WASM_BUILD=1 \
    WASM_BUILD_WORKSPACE_HINT=$hint CARGO_TARGET_DIR=$SLOTPAY_CACHE/target/node-install-$NODE_PROFILE \
        cargo "+$SLOTPAY_TOOLCHAIN" install contracts-node --version "$NODE_VERSION" --locked \
        --root "$SLOTPAY_CACHE/node" >"$NODE_LOG" 2>&1 &
    local pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        # 9>&-: a sleep left behind by a killed set-up must not hold the build lock.
        sleep 60 9>&- &
        wait $! || true
        kill -0 "$pid" 2>/dev/null || break
        printf '    ... %s min, %s crates compiled, now: %s\n' "$(((SECONDS - start) / 60))" \
            "$(grep -c '^ *Compiling' "$NODE_LOG" || true)" \
            "$(grep '^ *Compiling' "$NODE_LOG" | tail -n 1 | sed 's/^ *Compiling //')"
    done
    wait "$pid" || die "node build failed; last lines of $NODE_LOG:
$(tail -n 30 "$NODE_LOG")"
    node_present || die "node build finished but $NODE_BIN does not run"
    printf 'profile=%s\nminutes=%s\n' "$NODE_PROFILE" "$(((SECONDS - start) / 60))" >"$SLOTPAY_CACHE/node/build.env"
    echo "    built: $("$NODE_BIN" --version)"
}

node_step() {
    case $node_mode in
    skip) echo "    skipped (--no-node)" ;;
    background)
        if { [ -n "${SLOTPAY_NODE_BIN:-}" ] || ! node_present; } && user_node; then
            :
        elif node_present; then
            echo "    cached: $("$NODE_BIN" --version)"
        elif ! flock -n "$SLOTPAY_CACHE/node-build.lock" true; then
            echo "    already building in the background; log: $NODE_LOG"
        else
            nohup "$0" --node-only >"$SLOTPAY_CACHE/logs/node-setup.log" 2>&1 &
            echo "    building in the background (pid $!); progress: $SLOTPAY_CACHE/logs/node-setup.log"
        fi
        ;;
    *) build_node ;;
    esac
}

if [ "$node_mode" = only ]; then
    step "substrate-contracts-node $NODE_VERSION" build_node
    exit 0
fi

say "slotpay set-up for $purpose; cache: $SLOTPAY_CACHE"
total=$SECONDS
step "system packages" system_packages
step "contract toolchain (Rust 1.85 + rust-src + wasm32)" contract_toolchain
slotpay_env
if [ "$SLOTPAY_TOOLCHAIN_SOURCE" = debian ]; then
    step "wasm32 standard library for +$SLOTPAY_TOOLCHAIN" wasm_std
fi
case $purpose in all | test)
    step "PostgreSQL 15 and HAProxy (the AS's shared ledger, several instances, failover)" database_packages
    step "device firmware tools (qemu-system-arm, Cortex-M targets)" firmware_tools
    ;;
esac
[ "$purpose" = evm-demo ] || step "cargo-contract $CARGO_CONTRACT_VERSION" cargo_contract
case $purpose in all | test)
    step "fuzzing tools (nightly toolchain, cargo-fuzz $CARGO_FUZZ_VERSION)" fuzz_tools
    ;;
esac
case $purpose in all | test | evm-demo)
    step "EVM tools (anvil, forge, solc from the npm registry)" "$SLOTPAY_ROOT/scripts/evm.sh" setup
    ;;
esac
step "substrate-contracts-node $NODE_VERSION" node_step
say "set-up complete in $((SECONDS - total))s"
