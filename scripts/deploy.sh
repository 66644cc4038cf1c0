#!/usr/bin/env bash
# Builds the contract and deploys it with `slotpay deploy` (the one deploy path: upload,
# instantiate for this chain's genesis hash, wait for finality), writing the deployment
# file that the AS and the clients read.
#
#   scripts/deploy.sh [--url ws://127.0.0.1:19944] [--suri //Alice] [--out slotpay-deployment.json]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
slotpay_env

url=ws://127.0.0.1:${SLOTPAY_NODE_PORT:-$PORT_TEST_NODE}
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

say "building the contract (release) and the slotpay CLI"
contract_cargo contract build --release --quiet
tcargo root build --locked --quiet -p client --bin slotpay
bundle=$CONTRACT_BUNDLE
[ -f "$bundle" ] || die "no contract bundle at $bundle"
say "deploying to $url as $suri"
"$SLOTPAY_CACHE/target/root/debug/slotpay" deploy --url "$url" --suri "$suri" --bundle "$bundle" --out "$out"
