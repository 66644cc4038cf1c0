#!/usr/bin/env bash
# Builds, uploads and instantiates the slotpay contract on a node, and records where it is
# in a deployment file that the AS and the CLI read.
#
#   scripts/deploy.sh [--url ws://127.0.0.1:19944] [--suri //Alice] [--out slotpay-deployment.json]
#
# The constructor binds the contract to the chain's genesis hash, read here over RPC.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
slotpay_env

url=ws://127.0.0.1:${SLOTPAY_NODE_PORT:-19944}
suri=//Alice
out=$PWD/slotpay-deployment.json
while [ $# -gt 0 ]; do
    case $1 in
    --url) url=$2; shift 2 ;;
    --suri) suri=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
    esac
done
http=${url/ws:/http:}
http=${http/wss:/https:}

genesis=$(curl -sf -m 5 -H 'Content-Type: application/json' \
    -d '{"id":1,"jsonrpc":"2.0","method":"chain_getBlockHash","params":[0]}' "$http" |
    sed -n 's/.*"result":"\(0x[0-9a-f]\{64\}\)".*/\1/p') || true
[ -n "$genesis" ] || die "no node answers at $url (start one with scripts/node.sh start)"

target=$SLOTPAY_CACHE/target/contract
say "building the contract (release)"
(cd "$SLOTPAY_ROOT/contract" && CARGO_TARGET_DIR=$target cargo "+$SLOTPAY_TOOLCHAIN" contract build --release --quiet)
bundle=$target/ink/slotpay_channels.contract
[ -f "$bundle" ] || die "no contract bundle at $bundle"

say "instantiating on $url (genesis $genesis) as $suri"
result=$(cd "$SLOTPAY_ROOT/contract" && cargo contract instantiate "$bundle" --url "$url" --suri "$suri" \
    --constructor new --args "$genesis" --salt "0x$(date +%s%N | sha256sum | cut -c1-16)" \
    --execute --skip-confirm --output-json) || die "instantiate failed: $result"
contract=$(printf '%s' "$result" | python3 -c 'import json,sys; print(json.load(sys.stdin)["contract"])')
# The bundle names the code hash (instantiate reports it only when it uploads the code).
code_hash=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["source"]["hash"])' "$bundle")
[ -n "$contract" ] && [ -n "$code_hash" ] || die "unexpected instantiate output: $result"

# The AS and the CLI read at the finalized block; the dev node finalizes a moment after
# sealing, so wait until the contract's block is final before handing it over.
rpc() {
    curl -sf -m 5 -H 'Content-Type: application/json' \
        -d "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"$1\",\"params\":${2:-[]}}" "$http"
}
number_of() { sed -n 's/.*"number":"\(0x[0-9a-f]*\)".*/\1/p'; }
best=$(($(rpc chain_getHeader | number_of)))
for _ in $(seq 1 100); do
    final_hash=$(rpc chain_getFinalizedHead | sed -n 's/.*"result":"\(0x[0-9a-f]*\)".*/\1/p')
    final=$(($(rpc chain_getHeader "[\"$final_hash\"]" | number_of)))
    [ "$final" -ge "$best" ] && break
    sleep 0.2
done
[ "$final" -ge "$best" ] || die "block $best did not become final within 20 s"

tmp=$out.tmp
cat >"$tmp" <<JSON
{
  "url": "$url",
  "genesis_hash": "$genesis",
  "contract": "$contract",
  "code_hash": "$code_hash",
  "metadata": "$bundle"
}
JSON
mv "$tmp" "$out"
say "deployed $contract (code hash $code_hash); wrote $out"
