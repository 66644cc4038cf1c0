#!/usr/bin/env bash
# Every benchmark of the project, each beside its bare limit measured in the same run, and
# bench/RESULTS.md collecting them with the machine and the date:
#   protocol    cargo bench -p protocol          -> bench/protocol.md
#   device      cargo bench -p device-sim        -> bench/device.md
#               device image for wasm32          -> bench/device-image.md
#   contract    cargo run --example costs        -> bench/contract-costs.md
#   AS load     cargo bench --bench as_load      -> bench/as-load.md (real node, release AS)
#   end to end  (same binary: `slotpay pay` to the device's grant)
#
#   scripts/bench.sh            (set-up must have run; 7.5 minutes measured here, built)
#
# Environment: SLOTPAY_BENCH_NOTE (a remark written into each report, e.g. the machine's
# load), SLOTPAY_LOAD_CHANNELS / SLOTPAY_LOAD_SECONDS (AS load shape), SLOTPAY_BENCH_PORT
# (node RPC port, default 19964).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
slotpay_env
cd "$SLOTPAY_ROOT"
total=$SECONDS

export SLOTPAY_NODE_PORT=${SLOTPAY_BENCH_PORT:-19964}
trap '"$SLOTPAY_ROOT/scripts/node.sh" stop >/dev/null 2>&1 || true' EXIT

step "protocol micro-benchmarks (criterion)" tcargo root bench --locked -p protocol
step "device OTP check (criterion)" tcargo root bench --locked -p device-sim --bench device

image() {
    tcargo root build --locked -p device-image --target wasm32-unknown-unknown --profile device-image
    local wasm=$SLOTPAY_CACHE/target/root/wasm32-unknown-unknown/device-image/device_image.wasm
    local bytes
    bytes=$(stat -c %s "$wasm")
    cat >bench/device-image.md <<MD
# Device core image size

\`cargo build -p device-image --target wasm32-unknown-unknown --profile device-image\`
($(date -u '+%Y-%m-%d'), rustc $(rustc "+$SLOTPAY_TOOLCHAIN" --version | cut -d' ' -f2)): the no_std device core
(HOTP-SHA256 verifier with look-ahead and used-counter history, throttling, counter
persistence) linked as a stand-alone image with its flash interface, opt-level z, LTO,
panic=abort, stripped. A stand-in for a microcontroller image. Goal: under 16 KiB.

| image | bytes | KiB |
| --- | ---: | ---: |
| device_image.wasm | $bytes | $(awk "BEGIN { printf \"%.1f\", $bytes / 1024 }") |
MD
    cat bench/device-image.md
}
step "device core image for wasm32-unknown-unknown" image

step "contract costs on pallet-contracts (sandbox)" \
    bash -c 'cd contract && CARGO_TARGET_DIR=$SLOTPAY_CACHE/target/contract cargo "+$SLOTPAY_TOOLCHAIN" run --locked --example costs --features e2e-tests'

step "release binaries for the load benchmark" \
    tcargo root build --release --locked -p slotpay -p slotpay-as -p device-sim --bins
step "start a dev chain" "$SLOTPAY_ROOT/scripts/node.sh" start
export SLOTPAY_NODE_URL=ws://127.0.0.1:$SLOTPAY_NODE_PORT
step "AS load (open loop) and end-to-end latency" tcargo root bench --locked -p slotpay-tests --bench as_load
"$SLOTPAY_ROOT/scripts/node.sh" stop

results() {
    {
        echo "# slotpay benchmark results"
        echo
        echo "Written by \`scripts/bench.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), on $(nproc) cores"
        echo "($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/ {print $2}') GiB)."
        echo "Each section below is the report its own command wrote; every figure sits beside"
        echo "the bare limit measured in the same run. Goals are in issue 6 and docs."
        for f in protocol device device-image contract-costs as-load; do
            echo
            sed 's/^#/##/' "bench/$f.md"
        done
    } >bench/RESULTS.md
}
step "bench/RESULTS.md" results
say "benchmarks done in $((SECONDS - total))s: bench/RESULTS.md"
