#!/usr/bin/env bash
# A substrate-contracts-node --dev chain on loopback, for the demo and the tests.
#
#   scripts/node.sh start [--reuse-base]  start on a fresh temporary base path (or the last one)
#   scripts/node.sh stop [--keep-base]    stop the node this script started
#   scripts/node.sh restart               stop and start again on the same base path
#   scripts/node.sh status                running or not, with its URL
#   scripts/node.sh logs                  the node's log
#   scripts/node.sh url                   print the node's ws:// URL
#
# Environment: SLOTPAY_NODE_PORT (RPC port, default 19944), SLOTPAY_NODE_DIR (state,
# default $SLOTPAY_CACHE/run/node-<port>), CONTRACTS_NODE (the binary),
# SLOTPAY_FINALIZE_DELAY (seconds by which finality lags the best block, as on a
# production chain; default none: blocks are final at once; a restart keeps it).
# The dev chain uses instant seal: one block per transaction, no empty blocks.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PORT=${SLOTPAY_NODE_PORT:-$PORT_TEST_NODE}
DIR=${SLOTPAY_NODE_DIR:-$SLOTPAY_CACHE/run/node-$PORT}
BIN=${CONTRACTS_NODE:-$SLOTPAY_CACHE/node/bin/substrate-contracts-node}
PIDFILE=$DIR/pid
LOG=$DIR/node.log
URL=ws://127.0.0.1:$PORT

mkdir -p "$DIR"

rpc() {
    curl -sf -m 2 -H 'Content-Type: application/json' \
        -d "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"$1\",\"params\":${2:-[]}}" \
        "http://127.0.0.1:$PORT"
}

# The pid in the pid file, if that process is still our node binary.
our_pid() {
    [ -f "$PIDFILE" ] || return 1
    local pid
    pid=$(cat "$PIDFILE")
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--base-path" || return 1
    [ "$(readlink -f "/proc/$pid/exe")" = "$(readlink -f "$BIN")" ] || return 1
    echo "$pid"
}

start() {
    local reuse=${1:-}
    [ -x "$BIN" ] || die "no node binary at $BIN: run scripts/setup.sh (or set CONTRACTS_NODE)"
    if pid=$(our_pid); then
        echo "node already running (pid $pid) at $URL"
        return 0
    fi
    if rpc system_health >/dev/null 2>&1; then
        die "port $PORT is taken by another process: set SLOTPAY_NODE_PORT"
    fi
    local base
    if [ "$reuse" = --reuse-base ] && [ -f "$DIR/base" ] && [ -d "$(cat "$DIR/base")" ]; then
        base=$(cat "$DIR/base")
    else
        [ -f "$DIR/base" ] && rm -rf "$(cat "$DIR/base")"
        base=$(mktemp -d "$DIR/chain.XXXXXX")
        echo "$base" >"$DIR/base"
    fi
    local delay=${SLOTPAY_FINALIZE_DELAY:-}
    if [ "$reuse" = --reuse-base ] && [ -z "$delay" ] && [ -f "$DIR/finalize-delay" ]; then
        delay=$(cat "$DIR/finalize-delay")
    fi
    echo "$delay" >"$DIR/finalize-delay"
    local lag=()
    [ -n "$delay" ] && lag=(--finalize-delay-sec "$delay")
    # Loopback only: no --rpc-external, no peers, no telemetry.
    setsid "$BIN" --dev --base-path "$base" --rpc-port "$PORT" --port 0 "${lag[@]}" \
        --no-prometheus --no-telemetry --no-mdns --no-hardware-benchmarks \
        --rpc-max-connections 1000 --state-pruning archive \
        >>"$LOG" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    local waited=0
    while ! rpc chain_getBlockHash '[0]' 2>/dev/null | grep -q '"result":"0x'; do
        if ! our_pid >/dev/null; then
            die "the node exited during start-up; last lines of $LOG:
$(tail -n 25 "$LOG")"
        fi
        if [ $waited -ge 120 ]; then
            stop
            die "the node did not answer RPC on port $PORT within 120 s; last lines of $LOG:
$(tail -n 25 "$LOG")"
        fi
        sleep 0.5
        waited=$((waited + 1))
    done
    rpc system_health | grep -q '"isSyncing":false' || die "node answers but reports syncing"
    echo "node running (pid $(cat "$PIDFILE")) at $URL, base path $base${delay:+, finality $delay s behind}, log $LOG"
}

stop() {
    local keep=${1:-}
    if pid=$(our_pid); then
        kill "$pid"
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        echo "node (pid $pid) stopped"
    else
        echo "no node of ours is running on port $PORT"
    fi
    rm -f "$PIDFILE"
    if [ "$keep" != --keep-base ] && [ -f "$DIR/base" ]; then
        rm -rf "$(cat "$DIR/base")" "$DIR/base"
    fi
}

case ${1:-} in
start) start "${2:-}" ;;
stop) stop "${2:-}" ;;
restart)
    stop --keep-base
    start --reuse-base
    ;;
status)
    if pid=$(our_pid); then
        echo "running (pid $pid) at $URL; best block $(rpc chain_getHeader | sed -n 's/.*"number":"\(0x[0-9a-f]*\)".*/\1/p')"
    else
        echo "not running"
        exit 3
    fi
    ;;
logs) cat "$LOG" ;;
url) echo "$URL" ;;
*)
    sed -n '2,12p' "$0"
    exit 2
    ;;
esac
