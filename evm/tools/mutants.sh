#!/usr/bin/env bash
# Breaks the contract on purpose, one way at a time, and checks that the tests aimed at
# that way fail (then restores the source). About 15 minutes on 2 cores (each mutant
# compiles the contract and runs its tests, the invariants included). Run by `scripts/evm.sh mutants`; prints one
# line per mutant: CAUGHT (the named tests failed) or MISSED.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
src=src/SlotpayChannels.sol
backup=$(mktemp)
cp "$src" "$backup"
trap 'cp "$backup" "$src"; rm -f "$backup"' EXIT
forge_args=(--use "$PWD/tools/solc" --offline)

# mutant NAME TEST-REGEX PERL-SUBSTITUTION
mutant() {
    local name=$1 tests=$2 edit=$3
    cp "$backup" "$src"
    perl -0pi -e "$edit" "$src"
    if cmp -s "$backup" "$src"; then
        echo "BROKEN-MUTANT $name: the substitution matched nothing"
        return 1
    fi
    local log status=0
    log=$(mktemp)
    timeout 900 forge test "${forge_args[@]}" --match-test "$tests" --json >"$log" 2>"$log.err" || status=$?
    if [ $status -eq 124 ]; then
        echo "TIMEOUT $name"
        rm -f "$log" "$log.err"
        return 1
    fi
    if grep -q 'Compiler run failed' "$log.err" "$log"; then
        echo "BROKEN-MUTANT $name: it does not compile"
        sed -n '1,20p' "$log.err"
        rm -f "$log" "$log.err"
        return 1
    fi
    local failed
    failed=$(jq -r '[.[] | .test_results | to_entries[] | select(.value.status == "Failure") | .key | sub("\\(.*"; "")] | join(" ")' "$log")
    if [ -z "$failed" ]; then
        echo "MISSED $name: every test matching '$tests' passed"
        rm -f "$log" "$log.err"
        return 1
    fi
    echo "CAUGHT $name: failed $failed"
    rm -f "$log" "$log.err"
}

missed=0
mutant "high-s accepted (no low-s rule)" 'malleated' \
    's/if \(uint256\(s\) > HALF_CURVE_ORDER\) revert SignatureHighS\(\);//' || missed=1
mutant "v of 0/1 accepted (normalised)" 'malleated' \
    's/if \(v != 27 && v != 28\) revert InvalidRecoveryId\(v\);/if (v < 27) v += 27;/' || missed=1
mutant "domain separator cached across chain ids" 'replays|domain_separator' \
    's/if \(block.chainid == _cachedChainId && address\(this\) == _cachedThis\) return _cachedDomainSeparator;/return _cachedDomainSeparator;/' || missed=1
mutant "a failed push payment reverts the close (no owed)" 'reverting_payer|burns|refused_payments|invariant_' \
    's/if \(ok\) return;/require(ok);/' || missed=1
mutant "settle pays the whole total again (not the difference)" 'settle|invariant_' \
    's/paid = total - c.settled;\n        c.settled = total;/paid = total;\n        c.settled = total;/' || missed=1
mutant "no lock, payment before effects, 1,000,000 gas forwarded" 'reenter|replaying|invariant_' \
    's/if \(_locked != 0\) revert Reentered\(\);//; s/call\(PAYMENT_GAS, to/call(1000000, to/; s/(_save\(id, c\);\n)(\s*emit Settled\(id, c.epoch, total, paid\);\n)(\s*_pay\(id, c.payee, paid\);)/$3\n$2        $1/' || missed=1
mutant "the payer's refund depends on the payee's (one transfer of both)" 'reverting_payer|burns|invariant_' \
    's/_pay\(id, c.payee, paid\);\n        _pay\(id, c.payer, refunded\);/_pay(id, c.payee, paid);\n        (bool sent,) = c.payer.call{value: refunded}(""); require(sent || refunded == 0);/' || missed=1
mutant "a rotation takes effect one block late" 'rotation|invariant_' \
    's/now_ < c.effectiveAt\) return;/now_ <= c.effectiveAt) return;/' || missed=1
mutant "a receipt may claim past the deposit" 'settle|invariant_' \
    's/if \(total > c.deposit\) revert AmountExceedsDeposit\(\);//' || missed=1
mutant "proof direction bits beyond the length allowed" 'proof_shape' \
    's/if \(len < 32 && left >> len != 0\) revert NonCanonicalProof\(\);//' || missed=1
exit $missed
