#!/usr/bin/env bash
# slotpay's main job, on loopback: a dev chain, the contract deployed, the Authorization
# Server and two devices; a channel of each construction (payer's own key, a delegated
# client key, a group of client keys); clients buying slots, the group's members
# interleaving; every channel closed by the AS; then a table of what each party paid and
# received, checked against the chain.
#
#   scripts/demo.sh            (set-up must have run; takes a minute when built)
#
# Environment: SLOTPAY_DEMO_PORT (node RPC port, default 19954), SLOTPAY_DEMO_KEEP=1 keeps
# the work directory (keys, AS database, logs).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
slotpay_env
cd "$SLOTPAY_ROOT"

export SLOTPAY_NODE_PORT=${SLOTPAY_DEMO_PORT:-19954}
url=ws://127.0.0.1:$SLOTPAY_NODE_PORT
work=$(mktemp -d "${TMPDIR:-/tmp}/slotpay-demo.XXXXXX")
pids=()
cleanup() {
    local rc=$?
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    "$SLOTPAY_ROOT/scripts/node.sh" stop >/dev/null 2>&1 || true
    if [ "${SLOTPAY_DEMO_KEEP:-0}" = 1 ] || [ $rc -ne 0 ]; then
        echo "work directory kept: $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT

bin=$SLOTPAY_CACHE/target/root/debug
step "build slotpay, slotpay-as and slotpay-device" \
    tcargo root build --locked -p slotpay -p slotpay-as -p device-sim
slotpay() { "$bin/slotpay" "$@"; }

step "start a dev chain on $url" "$SLOTPAY_ROOT/scripts/node.sh" start
step "deploy the contract" "$SLOTPAY_ROOT/scripts/deploy.sh" --url "$url" --out "$work/deployment.json"
chain=(--url "$url" --deployment "$work/deployment.json")

say "keys: AS = //Bob, payer = //Alice and an ECDSA payer; 1 delegated client; a group of 3"
echo "//Bob" >"$work/as.suri"
for d in lock-1 pump-2; do od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$work/$d.key"; done
for k in payer delegate g1 g2 g3; do slotpay keygen "$work/$k.key" >/dev/null; done
slotpay group --out "$work/group.json" "$work/g1.key" "$work/g2.key" "$work/g3.key"
alice=$(slotpay account --suri //Alice)
bob=$(slotpay account --suri //Bob)
ecdsa_payer=$(slotpay --json show "$work/payer.key" | python3 -c 'import json,sys; print(json.load(sys.stdin)["account"])')
step "fund the ECDSA payer account" slotpay transfer "${chain[@]}" --suri //Alice --to "$ecdsa_payer" --amount 100000000000000

price=1000000000 # 0.001 UNIT per slot
cat >"$work/as.toml" <<TOML
rpc_url = "$url"
deployment = "deployment.json"
account_key_file = "as.suri"
price = "$price"
slot_seconds = 30
expiry_margin_blocks = 5
database = "as.db"
listen = "127.0.0.1:0"

[close]
remaining_below = "0"
blocks_before_expiry = 3
interval_seconds = 3600

[[devices]]
id = "lock-1"
key_file = "lock-1.key"

[[devices]]
id = "pump-2"
key_file = "pump-2.key"
TOML
# A fixed free port for the AS: ask the kernel for one.
as_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -i "s/^listen = .*/listen = \"127.0.0.1:$as_port\"/" "$work/as.toml"
as_url=http://127.0.0.1:$as_port

start_as() {
    "$bin/slotpay-as" --config "$work/as.toml" serve >>"$work/as.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 100); do
        curl -sf "$as_url/v1/terms" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    die "the AS did not come up; last lines of $work/as.log:
$(tail -n 20 "$work/as.log")"
}
step "start the Authorization Server on $as_url" start_as

coap_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
lock_addr=127.0.0.1:$(coap_port)
pump_addr=127.0.0.1:$(coap_port)
"$bin/slotpay-device" --id lock-1 --key-file "$work/lock-1.key" --state-file "$work/lock-1.state" \
    --listen "$lock_addr" --slot-seconds 30 >>"$work/devices.log" 2>&1 &
pids+=($!)
"$bin/slotpay-device" --id pump-2 --key-file "$work/pump-2.key" --state-file "$work/pump-2.state" \
    --listen "$pump_addr" --slot-seconds 30 >>"$work/devices.log" 2>&1 &
pids+=($!)
say "devices: lock-1 at coap://$lock_addr, pump-2 at coap://$pump_addr"

slotpay --json balance --url "$url" "$alice" "$bob" "$ecdsa_payer" >"$work/balances-before.json"

open() {
    local name=$1
    shift
    slotpay --json open "${chain[@]}" --payee "$bob" --expires-in 500 "$@" >"$work/open-$name.json"
}
step "open: payer's own ECDSA key (deposit 0.02)" open account --ecdsa-key "$work/payer.key" --deposit 20000000000 account
step "open: delegated client key (deposit 0.05)" open delegate --suri //Alice --deposit 50000000000 delegate --client "$work/delegate.key"
step "open: group of 3 client keys (deposit 0.1)" open group --suri //Alice --deposit 100000000000 group --group "$work/group.json"
id() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["channel"])' "$work/open-$1.json"; }

pay() {
    local out=$1
    shift
    slotpay --json pay --as "$as_url" "$@" >>"$work/$out.jsonl"
}
buy() {
    pay account --channel "$(id account)" --device lock-1 --coap "$lock_addr" --key "$work/payer.key"
    pay account --channel "$(id account)" --device lock-1 --coap "$lock_addr" --key "$work/payer.key" --slots 2
    pay delegate --channel "$(id delegate)" --device pump-2 --coap "$pump_addr" --key "$work/delegate.key" --slots 3
    # The group's members buy at the same time on one channel: their receipts race for
    # the running total and the losers re-sign above the winner's.
    local members=()
    for m in g1 g2 g3; do
        (for i in 1 2 3; do
            dev=lock-1 addr=$lock_addr
            [ $((i % 2)) = 0 ] && dev=pump-2 addr=$pump_addr
            pay "group-$m" --channel "$(id group)" --device $dev --coap "$addr" \
                --key "$work/$m.key" --group "$work/group.json"
        done) &
        members+=($!)
    done
    for pid in "${members[@]}"; do wait "$pid"; done
}
step "clients buy slots (group members interleaving)" buy

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

python3 - "$work" "$price" "$alice" "$bob" "$ecdsa_payer" <<'PY'
import glob, json, os, sys
work, price, alice, bob, ecdsa = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
load = lambda p: json.load(open(os.path.join(work, p)))
before, after = load("balances-before.json"), load("balances-after.json")
delta = {k: int(after[k]) - int(before[k]) for k in before}
deposits = {"account": 20000000000, "delegate": 50000000000, "group": 100000000000}
payer_of = {"account": ecdsa, "delegate": alice, "group": alice}
rows, problems = [], []
expected = {k: 0 for k in before}
for name in ["account", "delegate", "group"]:
    opened, closed, status = load(f"open-{name}.json"), load(f"close-{name}.json"), load(f"status-{name}.json")
    slots = 0
    for path in glob.glob(os.path.join(work, f"{name}*.jsonl")):
        for line in open(path):
            slots += len(json.loads(line)["counters"])
    paid, refunded = int(closed["paid"]), int(closed["refunded"])
    bought = slots * price
    if paid != bought:
        problems.append(f"{name}: AS claimed {paid} but clients bought {bought}")
    if paid + refunded != deposits[name]:
        problems.append(f"{name}: paid + refunded = {paid + refunded} != deposit {deposits[name]}")
    if status["open"]:
        problems.append(f"{name}: still open on chain")
    payer = payer_of[name]
    expected[payer] += -deposits[name] - int(opened["fee"]) - int(opened["storage_deposit_held"]) + refunded
    expected[bob] += paid - int(closed["fee"]) + int(closed["storage_deposit_released"])
    rows.append((name, opened["channel"], deposits[name], slots, paid, refunded, int(opened["fee"]), int(closed["fee"])))
for who, label in [(alice, "Alice (payer)"), (ecdsa, "ECDSA payer"), (bob, "AS (Bob)")]:
    if delta[who] != expected[who]:
        problems.append(f"{label}: balance moved {delta[who]}, expected {expected[who]}")
unit = 1e12
print()
print(f"{'construction':<13}{'channel':>8}{'deposit':>11}{'slots':>7}{'AS got':>11}{'refund':>11}{'open fee':>11}{'close fee':>11}")
for name, ch, dep, slots, paid, ref, fo, fc in rows:
    print(f"{name:<13}{ch:>8}{dep/unit:>11.4f}{slots:>7}{paid/unit:>11.4f}{ref/unit:>11.4f}{fo/unit:>11.6f}{fc/unit:>11.6f}")
print()
print(f"{'party':<16}{'balance change (UNIT)':>24}{'expected from events':>24}")
for who, label in [(alice, "Alice (payer)"), (ecdsa, "ECDSA payer"), (bob, "AS (Bob)")]:
    print(f"{label:<16}{delta[who]/unit:>24.9f}{expected[who]/unit:>24.9f}")
print()
if problems:
    print("MISMATCH:\n  " + "\n  ".join(problems))
    sys.exit(1)
print("every balance matches the chain to the unit (fees and storage deposits included)")
PY
