#!/usr/bin/env bash
# slotpay's main job, on loopback: a dev chain, the contract deployed, the Authorization
# Server and two devices; a channel of each construction (payer's own key, a delegated
# client key, a group of client keys with spending caps); clients buying slots, the
# group's members racing; the AS settling one channel without closing it; the payer
# removing a member from the group (the removed member refused, the others served); every
# channel closed by the AS; then a table of what each party paid and received, checked
# against the chain to the unit.
#
#   scripts/demo.sh               (runs set-up first: seconds when cached)
#   scripts/demo.sh --chain evm   the same story on the EVM layer: the Solidity contract on
#                                 anvil (a block a second, finality two blocks behind), no
#                                 contracts node needed (anvil and forge from npm)
#
# Environment: SLOTPAY_DEMO_PORT (node RPC port, default 19954; anvil's 19955),
# SLOTPAY_DEMO_KEEP=1 keeps the work directory (keys, AS database, logs),
# SLOTPAY_DEMO_TARGET the cargo target directory's name under the cache (default root).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$SLOTPAY_ROOT"
layer=substrate
while [ $# -gt 0 ]; do
    case $1 in
    --chain)
        [ $# -ge 2 ] || die "--chain needs substrate or evm"
        layer=$2
        shift 2
        ;;
    *) die "unknown argument: $1 (scripts/demo.sh [--chain substrate|evm])" ;;
    esac
done
case $layer in substrate | evm) ;; *) die "--chain takes substrate or evm, not '$layer'" ;; esac
# Set-up for the demo only (no fuzzing or firmware tools); seconds when cached, and on a
# fresh machine it prints its progress. The EVM layer needs no contracts node: anvil,
# forge and solc come from the npm registry instead.
if [ "$layer" = evm ]; then
    "$SLOTPAY_ROOT/scripts/setup.sh" --for evm-demo || die "set-up failed (see above)"
else
    "$SLOTPAY_ROOT/scripts/setup.sh" --for demo || die "set-up failed (see above)"
fi
slotpay_env

if [ "$layer" = evm ]; then
    port=${SLOTPAY_DEMO_PORT:-$PORT_DEMO_ANVIL}
else
    export SLOTPAY_NODE_PORT=${SLOTPAY_DEMO_PORT:-$PORT_DEMO_NODE}
    port=$SLOTPAY_NODE_PORT
fi
url=ws://127.0.0.1:$port
work=$(mktemp -d "${TMPDIR:-/tmp}/slotpay-demo.XXXXXX")
# Every process the demo starts is started here, in the main shell, and recorded: the
# cleanup stops each however the demo ends.
pids=()
cleanup() {
    local rc=$?
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    [ "$layer" = evm ] || "$SLOTPAY_ROOT/scripts/node.sh" stop >/dev/null 2>&1 || true
    if [ "${SLOTPAY_DEMO_KEEP:-0}" = 1 ] || [ $rc -ne 0 ]; then
        echo "work directory kept: $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# SLOTPAY_DEMO_TARGET names another target directory under the cache (a worktree's).
target=${SLOTPAY_DEMO_TARGET:-root}
bin=$SLOTPAY_CACHE/target/$target/debug
step "build slotpay, slotpay-as, slotpay-device and the balance check" \
    tcargo "$target" build --locked -p client -p offchain-as -p device-sim -p tests --bins
slotpay() { "$bin/slotpay" "$@"; }
json() { python3 -c 'import json,sys; v=json.load(sys.stdin)
for k in sys.argv[1:]: v=v[k]
print(v)' "$@"; }

# What differs between the layers: the chain, the deployment, the price's unit and the
# timing; the story below is one.
on=(--layer "$layer")
if [ "$layer" = evm ]; then
    start_anvil() {
        local anvil
        anvil=$("$SLOTPAY_ROOT/scripts/evm.sh" which anvil)
        "$anvil" --host 127.0.0.1 --port "$port" --block-time 1 --slots-in-an-epoch 1 --silent \
            >>"$work/anvil.log" 2>&1 &
        pids+=($!)
        for _ in $(seq 1 100); do
            (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
            sleep 0.1
        done
        die "anvil did not come up on port $port (see $work/anvil.log)"
    }
    # start_anvil records its pid in the main shell's list: not in a step's subshell.
    say "start anvil on $url (a block a second, finality two blocks behind)"
    start_anvil
    step "build the EVM contract (forge)" "$SLOTPAY_ROOT/scripts/evm.sh" build
    step "deploy the contract" "$bin/slotpay" deploy --layer evm --url "$url" --suri //Alice \
        --bundle "$SLOTPAY_ROOT/evm/out/SlotpayChannels.sol/SlotpayChannels.json" --out "$work/deployment.json"
    price=1000000000000000 # 0.001 ETH per slot
    fund=1000000000000000000
    unit=(--unit ETH=18)
    # A block a second; finality two blocks behind; a close lands in the next block.
    timing=(--expiry-margin-blocks 6 --min-notice-blocks 8 --block-seconds 1 --blocks-before-expiry 5
        --interval-seconds 0.2 --inclusion-seconds 1.5)
    address_field=evm_address
else
    step "start a dev chain on $url" "$SLOTPAY_ROOT/scripts/node.sh" start
    step "deploy the contract" "$SLOTPAY_ROOT/scripts/deploy.sh" --url "$url" --out "$work/deployment.json"
    price=1000000000 # 0.001 UNIT per slot
    fund=100000000000000
    unit=()
    # The dev chain seals a block per transaction, a few hundred ms apart at the fastest.
    timing=(--expiry-margin-blocks 5 --min-notice-blocks 8 --block-seconds 0.5 --blocks-before-expiry 3
        --interval-seconds 0.5 --inclusion-seconds 1)
    address_field=account
fi
chain=(--url "$url" --deployment "$work/deployment.json")
deposits=(account:$((20 * price)) delegate:$((50 * price)) group:$((100 * price)))
deposit() { local d; for d in "${deposits[@]}"; do [ "${d%%:*}" = "$1" ] && echo "${d#*:}"; done; }

say "keys: AS = //Bob, payer = //Alice and an ECDSA payer; 1 delegated client; a group of 3 (caps: 5 slots each)"
echo "//Bob" >"$work/as.suri"
for k in payer delegate g1 g2 g3; do slotpay keygen "$work/$k.key" >/dev/null; done
slotpay group new "${on[@]}" --out "$work/group.json" --cap $((5 * price)) "$work/g1.key" "$work/g2.key" "$work/g3.key" >/dev/null
slotpay group remove --group "$work/group.json" --out "$work/group-without-g2.json" "$work/g2.key" >/dev/null
for d in lock-1 pump-2; do
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$work/$d.key"
    "$bin/slotpay-device" --id "$d" --key-file "$work/$d.key" --slot-seconds 30 --write-provision "$work/$d.device.toml" >/dev/null
done
alice=$(slotpay account "${on[@]}" --suri //Alice)
bob=$(slotpay account "${on[@]}" --suri //Bob)
dave=$(slotpay account "${on[@]}" --suri //Dave) # makes blocks (Charlie pays Dave), in no balance below
ecdsa_payer=$(slotpay --json show "$work/payer.key" | json "$address_field")
step "fund the ECDSA payer account" slotpay transfer "${on[@]}" --url "$url" --suri //Alice --to "$ecdsa_payer" --amount "$fund"

as_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# The AS's configuration through its own writer (`slotpay-as init`, the tests' too), with
# the layer's timing (above).
"$bin/slotpay-as" --config "$work/as.toml" init --rpc-url "$url" --price "$price" --max-slots 16 \
    --listen "127.0.0.1:$as_port" --remaining-below 0 "${timing[@]}" \
    --device lock-1.device.toml --device pump-2.device.toml >/dev/null
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

slotpay --json balance "${on[@]}" --url "$url" "$alice" "$bob" "$ecdsa_payer" >"$work/balances-before.json"

open() {
    local name=$1
    shift
    slotpay --json open "${chain[@]}" --payee "$bob" --expires-in 500 --notice 10 "$@" >"$work/open-$name.json"
}
step "open: payer's own ECDSA key (deposit: 20 slots)" open account --ecdsa-key "$work/payer.key" --deposit "$(deposit account)" account
step "open: delegated client key (deposit: 50 slots)" open delegate --suri //Alice --deposit "$(deposit delegate)" delegate --client "$work/delegate.key"
step "open: group of 3 client keys (deposit: 100 slots)" open group --suri //Alice --deposit "$(deposit group)" group --group "$work/group.json"
id() { json channel <"$work/open-$1.json"; }
# The AS sells on a channel once it reads it in a finalized block: at once on the dev
# chain (`open` waits for finality there), two blocks later on anvil.
seen_by_as() {
    local name
    for name in account delegate group; do
        for _ in $(seq 1 100); do
            curl -sf "$as_url/v1/channels/$(id $name)" >/dev/null && continue 2
            sleep 0.2
        done
        die "the AS does not see channel $(id $name)"
    done
}
step "the AS sees the three channels" seen_by_as

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
    # The dev chain seals a block per transaction: make blocks until the new root is in
    # force (anvil makes one a second by itself).
    while [ "$(slotpay --json status "${chain[@]}" --channel "$(id group)" | json epoch)" = 0 ]; do
        if [ "$layer" = evm ]; then
            sleep 1
        else
            slotpay transfer --url "$url" --suri //Charlie --to "$dave" --amount 1 >/dev/null
        fi
    done
    # The AS answers in the new epoch once it reads it (final on anvil two blocks later).
    for _ in $(seq 1 60); do
        [ "$(curl -sf "$as_url/v1/channels/$(id group)" | json epoch 2>/dev/null)" = 1 ] && break
        sleep 0.5
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
slotpay --json balance "${on[@]}" --url "$url" "$alice" "$bob" "$ecdsa_payer" >"$work/balances-after.json"
for name in account delegate group; do
    slotpay --json status "${chain[@]}" --channel "$(id $name)" >"$work/status-$name.json"
done

# The one balance check (tests/src/accounting.rs, the whole-system tests' too).
"$bin/slotpay-balance-check" --dir "$work" --price "$price" --payee "$bob" \
    --channel "account:$ecdsa_payer:$(deposit account)" --channel "delegate:$alice:$(deposit delegate)" \
    --channel "group:$alice:$(deposit group)" \
    --label "$alice=Alice (payer)" --label "$ecdsa_payer=ECDSA payer" --label "$bob=AS (Bob)" "${unit[@]}"
