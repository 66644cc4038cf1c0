#!/usr/bin/env bash
# The crash-survival tests at soak strength: 1,000 SIGKILLs of the AS under load, 1,000 of
# a device while OTPs are presented, 20 node restarts during a close, on a node this
# script starts and stops. (The test command runs the same tests with 100 / 100 / 4.)
#
#   scripts/soak.sh            (set-up must have run; 17 minutes measured here)
#
# Environment: SLOTPAY_CRASH_KILLS, SLOTPAY_CLOSE_RESTARTS, SLOTPAY_CRASH_SEED (replay).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
slotpay_env
cd "$SLOTPAY_ROOT"
export SLOTPAY_NODE_PORT=${SLOTPAY_SOAK_PORT:-19974}
export SLOTPAY_NODE_URL=ws://127.0.0.1:$SLOTPAY_NODE_PORT
export SLOTPAY_CRASH_KILLS=${SLOTPAY_CRASH_KILLS:-1000}
export SLOTPAY_CLOSE_RESTARTS=${SLOTPAY_CLOSE_RESTARTS:-20}
trap '"$SLOTPAY_ROOT/scripts/node.sh" stop >/dev/null 2>&1 || true' EXIT
step "build the binaries" tcargo root build --workspace --locked
step "start a dev chain" "$SLOTPAY_ROOT/scripts/node.sh" start
step "crash survival: $SLOTPAY_CRASH_KILLS kills each, $SLOTPAY_CLOSE_RESTARTS node restarts" \
    tcargo root test --locked -p tests --test crash -- --test-threads 1 --nocapture
