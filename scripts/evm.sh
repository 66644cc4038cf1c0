#!/usr/bin/env bash
# slotpay's EVM layer (evm/): the SlotpayChannels contract, its forge tests, its gas.
#
#   scripts/evm.sh setup     npm install of the pinned tools into $SLOTPAY_CACHE/evm (idempotent)
#   scripts/evm.sh build     compile; the artifact is evm/out/SlotpayChannels.sol/SlotpayChannels.json
#   scripts/evm.sh test      every forge test: unit, fuzz, invariants (fixed seed and run counts), vectors
#   scripts/evm.sh gas       every message as a transaction on anvil; writes bench/evm-gas.md
#   scripts/evm.sh vectors   rewrites evm/test-vectors/eip712.json from the contract
#   scripts/evm.sh mutants   breaks the contract ten ways and checks the tests catch each
#   scripts/evm.sh resolc    compiles the contract for PolkaVM with @parity/resolc (pallet-revive)
#   scripts/evm.sh which T   prints the path of the installed binary T (anvil or forge)
#
# Nothing is downloaded but npm packages: forge and anvil come as @foundry-rs/* (native
# binaries inside), solc as solcjs (`solc` on npm) behind evm/tools/solc, which forge
# runs with `--use ... --offline`. node_modules lives in the cache, never in the checkout.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

EVM=$SLOTPAY_ROOT/evm
TOOLS=$SLOTPAY_CACHE/evm
PINNED=(@foundry-rs/anvil@1.7.1 @foundry-rs/forge@1.7.1 solc@0.8.30)
RESOLC=@parity/resolc@0.3.0
SEED=0x51075

# The native binaries inside the npm packages (the packages' own node launchers do not
# pass the binaries' exit status on).
bin_of() {
    local found
    found=$(find "$TOOLS/node_modules/@foundry-rs" -path "*/$1-*/bin/$1" -type f 2>/dev/null | head -1)
    [ -n "$found" ] || die "no $1 in $TOOLS: run scripts/evm.sh setup"
    echo "$found"
}

installed_version() {
    local pkg=$1
    node -p "try { require('$TOOLS/node_modules/$pkg/package.json').version } catch { '' }"
}

setup() {
    command -v node >/dev/null || die "node is needed (the image has node 20)"
    mkdir -p "$TOOLS"
    [ -f "$TOOLS/package.json" ] || echo '{"name": "slotpay-evm-tools", "private": true}' >"$TOOLS/package.json"
    local missing=() spec pkg version
    for spec in "${PINNED[@]}"; do
        pkg=${spec%@*}
        version=${spec##*@}
        [ "$(installed_version "$pkg")" = "$version" ] || missing+=("$spec")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "npm install ${missing[*]} into $TOOLS"
        (cd "$TOOLS" && npm install --no-audit --no-fund --save-exact "${missing[@]}")
    fi
    FORGE=$(bin_of forge)
    ANVIL=$(bin_of anvil)
    echo "    $("$FORGE" --version | head -1)"
    echo "    $("$ANVIL" --version | head -1)"
    echo "    solc $("$EVM/tools/solc" --version | sed -n 's/^Version: //p') (solcjs $(installed_version solc))"
}

tools() {
    FORGE=$(bin_of forge)
    ANVIL=$(bin_of anvil)
}

forge_() {
    (cd "$EVM" && "$FORGE" "$@" --use "$EVM/tools/solc" --offline)
}

build() {
    tools
    forge_ build
    local artifact=$EVM/out/SlotpayChannels.sol/SlotpayChannels.json
    [ -f "$artifact" ] || die "no artifact at $artifact"
    local size
    size=$(node -p "(require('$artifact').deployedBytecode.object.length - 2) / 2")
    echo "    artifact: evm/out/SlotpayChannels.sol/SlotpayChannels.json (abi, bytecode, deployedBytecode; runtime $size bytes)"
}

test_() {
    tools
    forge_ test --fuzz-seed "$SEED"
}

vectors() {
    tools
    SLOTPAY_WRITE_VECTORS=1 forge_ test --match-contract VectorsTest
    echo "    wrote evm/test-vectors/eip712.json"
}

mutants() {
    tools
    PATH=$(dirname "$FORGE"):$PATH "$EVM/tools/mutants.sh"
}

free_port() {
    node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close() })'
}

ANVIL_PID=
stop_anvil() {
    if [ -n "$ANVIL_PID" ] && kill -0 "$ANVIL_PID" 2>/dev/null; then
        kill "$ANVIL_PID"
        wait "$ANVIL_PID" 2>/dev/null || true
    fi
    ANVIL_PID=
}

rpc() {
    curl -sf -X POST -H 'content-type: application/json' \
        -d "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"$2\",\"params\":$3}" "$1"
}

gas() {
    tools
    build >/dev/null
    trap stop_anvil EXIT
    local port url log
    port=$(free_port)
    url=http://127.0.0.1:$port
    log=$(mktemp)
    # Automine (a block per transaction); --steps-tracing keeps the opcode traces the
    # report itemises.
    "$ANVIL" --host 127.0.0.1 --port "$port" --steps-tracing >"$log" 2>&1 &
    ANVIL_PID=$!
    local i
    for i in $(seq 1 100); do
        rpc "$url" eth_blockNumber '[]' >/dev/null 2>&1 && break
        kill -0 "$ANVIL_PID" 2>/dev/null || die "anvil exited: $(tail -5 "$log")"
        sleep 0.1
    done
    rpc "$url" eth_blockNumber '[]' >/dev/null || die "anvil does not answer on $url"
    echo "    anvil on $url (pid $ANVIL_PID)"
    rm -rf "$EVM/broadcast/Gas.s.sol"
    local script=(script script/Gas.s.sol --rpc-url "$url" --broadcast --slow)
    forge_ "${script[@]}" --sig 'phase1()' >"$log.phase1" 2>&1 || { tail -30 "$log.phase1"; die "phase 1 failed"; }
    # Past every rotation's notice (5) and the short channels' expiry (120).
    rpc "$url" anvil_mine '["0x80"]' >/dev/null
    forge_ "${script[@]}" --sig 'phase2()' >"$log.phase2" 2>&1 || { tail -30 "$log.phase2"; die "phase 2 failed"; }
    GAS_COMMAND="scripts/evm.sh gas" \
        GAS_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')" \
        GAS_FORGE="$("$FORGE" --version | head -1)" \
        GAS_ANVIL="$("$ANVIL" --version | head -1)" \
        GAS_SOLC="$(node -p "require('$TOOLS/node_modules/solc').version()")" \
        GAS_SETTINGS="$(settings)" \
        node "$EVM/tools/gas-report.mjs" "$url" "$EVM" "$SLOTPAY_ROOT/bench/evm-gas.md"
    rm -f "$log" "$log.phase1" "$log.phase2"
    stop_anvil
    trap - EXIT
}

# The optimizer settings, as foundry.toml states them.
settings() {
    local optimizer runs via_ir evm
    optimizer=$(sed -n 's/^optimizer = //p' "$EVM/foundry.toml")
    runs=$(sed -n 's/^optimizer_runs = //p' "$EVM/foundry.toml")
    via_ir=$(sed -n 's/^via_ir = //p' "$EVM/foundry.toml")
    evm=$(sed -n 's/^evm_version = //p' "$EVM/foundry.toml" | tr -d '"')
    echo "optimizer $optimizer, $runs runs, via_ir $via_ir, EVM version $evm (evm/foundry.toml)"
}

resolc() {
    local dir=$TOOLS/resolc
    mkdir -p "$dir"
    [ -f "$dir/package.json" ] || echo '{"name": "slotpay-resolc", "private": true}' >"$dir/package.json"
    if [ "$(node -p "try { require('$dir/node_modules/@parity/resolc/package.json').version } catch { '' }")" != "${RESOLC##*@}" ]; then
        (cd "$dir" && npm install --no-audit --no-fund --save-exact "$RESOLC")
    fi
    local bin=$dir/node_modules/@parity/resolc/dist/bin.js out blob
    out=$(mktemp -d)
    echo "    resolc $(node "$bin" --version) (its own solc: solcjs $(node -p "require('$dir/node_modules/solc').version()"); optimizer mode z, its default)"
    # No --diff-stats: it runs `npx solc@latest`, another compiler than the contract's.
    (cd "$EVM" && node "$bin" --bin src/SlotpayChannels.sol -o "$out")
    blob=$out/src_SlotpayChannels_sol_SlotpayChannels.polkavm
    [ -f "$blob" ] || die "resolc wrote no PolkaVM blob"
    [ "$(head -c 3 "$blob")" = PVM ] || die "$blob is not a PolkaVM blob"
    echo "    PolkaVM blob: $(stat -c %s "$blob") bytes (the EVM runtime: see scripts/evm.sh build)"
    rm -rf "$out"
}

case ${1:-} in
setup) step "EVM tools (npm, into $TOOLS)" setup ;;
build) step "build the EVM contract" build ;;
test) step "EVM contract tests (forge: unit, fuzz, invariants, vectors; seed $SEED)" test_ ;;
gas) step "EVM gas on anvil (bench/evm-gas.md)" gas ;;
vectors) step "EVM test vectors" vectors ;;
mutants) step "EVM mutants (the attack tests against broken contracts)" mutants ;;
resolc) step "compile for PolkaVM (resolc)" resolc ;;
which)
    case ${2:-} in anvil | forge) bin_of "$2" ;; *) die "usage: scripts/evm.sh which anvil|forge" ;; esac
    ;;
*) die "usage: scripts/evm.sh setup|build|test|gas|vectors|mutants|resolc|which" ;;
esac
