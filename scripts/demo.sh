#!/usr/bin/env bash
# slotpay's main job, on loopback: a dev chain, the contract deployed, the Authorization
# Server and two devices; a channel of each construction (payer's own key, a delegated
# client key, a group of client keys with spending caps); clients buying slots, the
# group's members racing; the AS settling one channel without closing it; the payer
# removing a member from the group (the removed member refused, the others served); every
# channel closed by the AS; then a table of what each party paid and received, checked
# against the chain to the unit.
#
#   scripts/demo.sh            (runs set-up first: seconds when cached)
#
# Environment: SLOTPAY_DEMO_PORT (node RPC port, default 19954), SLOTPAY_DEMO_KEEP=1 keeps
# the work directory (keys, AS database, logs).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$SLOTPAY_ROOT"
# Set-up for the demo only (no fuzzing or firmware tools); seconds when cached, and on a
# fresh machine it prints its progress.
"$SLOTPAY_ROOT/scripts/setup.sh" --for demo || die "set-up failed (see above)"
slotpay_env

export SLOTPAY_NODE_PORT=${SLOTPAY_DEMO_PORT:-$PORT_DEMO_NODE}
url=ws://127.0.0.1:$SLOTPAY_NODE_PORT
work=$(mktemp -d "${TMPDIR:-/tmp}/slotpay-demo.XXXXXX")
# Every process the demo starts is started here, in the main shell, and recorded: the
# cleanup stops each however the demo ends.
pids=()
cleanup() {
    local rc=$?
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    "$SLOTPAY_ROOT/scripts/node.sh" stop >/dev/null 2>&1 || true
    if [ "${SLOTPAY_DEMO_KEEP:-0}" = 1 ] || [ $rc -ne 0 ]; then
        echo "work directory kept: $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bin=$SLOTPAY_CACHE/target/root/debug
step "build slotpay, slotpay-as, slotpay-device and the balance check" \
    tcargo root build --locked -p client -p offchain-as -p device-sim -p tests --bins
slotpay() { "$bin/slotpay" "$@"; }
json() { python3 -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1:]: v=v[k]
print(v)' "$@"; }

step "start a dev chain on $url" "$SLOTPAY_ROOT/scripts/node.sh" start
step "deploy the contract" "$SLOTPAY_ROOT/scripts/deploy.sh" --url "$url" --out "$work/deployment.json"
chain=(--url "$url" --deployment "$work/deployment.json")
price=1000000000 # 0.001 UNIT per slot

say "keys: AS = //Bob, payer = //Alice and an ECDSA payer; 1 delegated client; a group of 3 (caps: 5 slots each)"
echo "//Bob" >"$work/as.suri"
for k in payer delegate g1 g2 g3; do slotpay keygen "$work/$k.key" >/dev/null; done
slotpay group new --out "$work/group.json" --cap $((5 * price)) "$work/g1.key" "$work/g2.key" "$work/g3.key" >/dev/null
slotpay group remove --group "$work/group.json" --out "$work/group-without-g2.json" "$work/g2.key" >/dev/null
for d in lock-1 pump-2; do
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$work/$d.key"
    "$bin/slotpay-device" --id "$d" --key-file "$work/$d.key" --slot-seconds 30 --write-provision "$work/$d.device.toml" >/dev/null
done
alice=$(slotpay account --suri //Alice)
bob=$(slotpay account --suri //Bob)
dave=$(slotpay account --suri //Dave) # makes blocks (Charlie pays Dave), in no balance below
ecdsa_payer=$(slotpay --json show "$work/payer.key" | json account)
step "fund the ECDSA payer account" slotpay transfer --url "$url" --suri //Alice --to "$ecdsa_payer" --amount 100000000000000

as_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# The AS's configuration through its own writer (`slotpay-as init`, the tests' too). The
# dev chain seals a block per transaction, a few hundred ms apart at the fastest.
"$bin/slotpay-as" --config "$work/as.toml" init --rpc-url "$url" --price "$price" --max-slots 16 \
    --expiry-margin-blocks 5 --min-notice-blocks 8 --listen "127.0.0.1:$as_port" \
    --block-seconds 0.5 --remaining-below 0 --blocks-before-expiry 3 --interval-seconds 0.5 \
    --inclusion-seconds 1 --device lock-1.device.toml --device pump-2.device.toml >/dev/null
as_url=http://127.0.0.1:$as_port

say "start the Authorization Server on $as_url"
"$bin/slotpay-as" --config "$work/as.toml" serve >>"$work/as.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 150); do
    curl -sf "$as_url/v1/terms" >/dev/null 2>&1 && break
    kill -0 "${pids[-1]}" 2>/dev/null || die "the AS exited; last lines of $work/as.log:
$(tail -n 20 "$work/as.log")"
    sleep 0.2
done
curl -sf "$as_url/v1/terms" >/dev/null || die "the AS did not come up; last lines of $work/as.log:
$(tail -n 20 "$work/as.log")"

coap_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
lock_addr=127.0.0.1:$(coap_port)
pump_addr=127.0.0.1:$(coap_port)
for d in "lock-1 $lock_addr" "pump-2 $pump_addr"; do
    set -- $d
    "$bin/slotpay-device" --provision "$work/$1.device.toml" --state-file "$work/$1.state" \
        --listen "$2" >>"$work/devices.log" 2>&1 &
    pids+=($!)
done
say "devices: lock-1 at coap://$lock_addr, pump-2 at coap://$pump_addr"

slotpay --json balance --url "$url" "$alice" "$bob" "$ecdsa_payer" >"$work/balances-before.json"

open() {
    local name=$1
    shift
    slotpay --json open "${chain[@]}" --payee "$bob" --expires-in 500 --notice 10 "$@" >"$work/open-$name.json"
}
step "open: payer's own ECDSA key (deposit 0.02)" open account --ecdsa-key "$work/payer.key" --deposit 20000000000 account
step "open: delegated client key (deposit 0.05)" open delegate --suri //Alice --deposit 50000000000 delegate --client "$work/delegate.key"
step "open: group of 3 client keys (deposit 0.1)" open group --suri //Alice --deposit 100000000000 group --group "$work/group.json"
id() { json channel <"$work/open-$1.json"; }

pay() {
    local out=$1
    shift
    slotpay --json pay --as "$as_url" --deployment "$work/deployment.json" --max-price "$price" "$@" >>"$work/$out.jsonl"
}
buy() {
    pay account --channel "$(id account)" --device lock-1 --coap "$lock_addr" --key "$work/payer.key"
    pay account --channel "$(id account)" --device lock-1 --coap "$lock_addr" --key "$work/payer.key" --slots 2
    pay delegate --channel "$(id delegate)" --device pump-2 --coap "$pump_addr" --key "$work/delegate.key" --slots 3
    # The group's members buy at the same time on one channel: their receipts race for
    # the running total and the losers re-sign above the winner's (which the AS shows).
    local members=()
    for m in g1 g2 g3; do
        (for i in 1 2; do
            dev=lock-1 addr=$lock_addr
            [ $((i % 2)) = 0 ] && dev=pump-2 addr=$pump_addr
            pay "group-$m" --channel "$(id group)" --device $dev --coap "$addr" \
                --key "$work/$m.key" --group "$work/group.json"
        done) &
        members+=($!)
    done
    for pid in "${members[@]}"; do wait "$pid"; done
}
step "clients buy slots (group members racing)" buy

settle() {
    "$bin/slotpay-as" --config "$work/as.toml" settle "$(id delegate)" >"$work/settle-delegate.json"
    echo "    the AS was paid $(json paid <"$work/settle-delegate.json") for channel $(id delegate); it stays open"
    pay delegate --channel "$(id delegate)" --device pump-2 --coap "$pump_addr" --key "$work/delegate.key"
}
step "the AS settles the delegate channel without closing it; the client buys on" settle

remove_member() {
    slotpay --json rotate "${chain[@]}" --suri //Alice --channel "$(id group)" group --group "$work/group-without-g2.json" >"$work/rotate-group.json"
    local effective
    effective=$(json effective_at <"$work/rotate-group.json")
    echo "    g2 is out of the group from block $effective; until then the AS settles what it sold"
    "$bin/slotpay-as" --config "$work/as.toml" settle "$(id group)" >"$work/settle-group.json"
    # The dev chain seals a block per transaction: make blocks until the new root is in force.
    while [ "$(slotpay --json status "${chain[@]}" --channel "$(id group)" | json epoch)" = 0 ]; do
        slotpay transfer --url "$url" --suri //Charlie --to "$dave" --amount 1 >/dev/null
    done
    if pay removed --channel "$(id group)" --device lock-1 --coap "$lock_addr" --key "$work/g2.key" --group "$work/group.json" 2>"$work/removed.err"; then
        die "the removed member was served"
    fi
    echo "    g2 refused: $(grep -o 'the AS refused[^"]*' "$work/removed.err" | head -n 1)"
    pay group-g1 --channel "$(id group)" --device lock-1 --coap "$lock_addr" --key "$work/g1.key" --group "$work/group-without-g2.json"
    pay group-g3 --channel "$(id group)" --device pump-2 --coap "$pump_addr" --key "$work/g3.key" --group "$work/group-without-g2.json"
    echo "    g1 and g3 served in the new epoch"
}
step "the payer removes g2 from the group: g2 refused, the others served" remove_member

close_all() {
    for name in account delegate group; do
        "$bin/slotpay-as" --config "$work/as.toml" close "$(id $name)" >"$work/close-$name.json"
    done
}
step "the AS closes every channel (one transaction each)" close_all
slotpay --json balance --url "$url" "$alice" "$bob" "$ecdsa_payer" >"$work/balances-after.json"
for name in account delegate group; do
    slotpay --json status "${chain[@]}" --channel "$(id $name)" >"$work/status-$name.json"
done

# The one balance check (tests/src/accounting.rs, the whole-system tests' too).
"$bin/slotpay-balance-check" --dir "$work" --price "$price" --payee "$bob" \
    --channel "account:$ecdsa_payer:20000000000" --channel "delegate:$alice:50000000000" \
    --channel "group:$alice:100000000000" \
    --label "$alice=Alice (payer)" --label "$ecdsa_payer=ECDSA payer" --label "$bob=AS (Bob)"
