#!/usr/bin/env bash
# Runs every cargo-fuzz target for a fixed number of executions (libFuzzer -runs), first
# replaying the committed seeds and regressions, and writes docs/fuzz-results.md.
#
#   scripts/fuzz.sh                 every target, 1,000,000 executions each
#   scripts/fuzz.sh differential    one target
#
# Environment: SLOTPAY_FUZZ_RUNS (executions per target, default 1000000).
# Needs a nightly toolchain (cargo-fuzz's instrumentation) and cargo-fuzz, both installed
# by scripts/setup.sh. The working corpus lives in the cache ($SLOTPAY_CACHE/fuzz);
# fuzz/seeds/<target> (committed) seeds it. A crash stops the script: its input is in
# fuzz/artifacts/<target>/; copy it to fuzz/regressions/<target>/ and fix the bug, and
# every later run replays it first.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
slotpay_env
cd "$SLOTPAY_ROOT/fuzz"

runs=${SLOTPAY_FUZZ_RUNS:-1000000}
targets=("${FUZZ_TARGETS[@]}")
[ $# -gt 0 ] && targets=("$@")

rustup toolchain list | grep -q '^nightly' && command -v cargo-fuzz >/dev/null ||
    die "no nightly toolchain or cargo-fuzz: scripts/setup.sh installs them where rustup can download"
export CARGO_TARGET_DIR=$SLOTPAY_CACHE/target/fuzz
# No sanitizer: the code under test is safe Rust (the AS forbids unsafe), so ASan adds
# cost without finding more. Release build with debug assertions and overflow checks (-a).
fuzz() { cargo +nightly fuzz "$@"; }
step "build the fuzz targets" fuzz build -O -a --sanitizer none

report=$SLOTPAY_ROOT/docs/fuzz-results.md
rows=()
for t in "${targets[@]}"; do
    corpus=$SLOTPAY_CACHE/fuzz/corpus/$t
    mkdir -p "$corpus" "seeds/$t" "regressions/$t" "artifacts/$t"
    if compgen -G "regressions/$t/*" >/dev/null; then
        step "$t: replay regressions" fuzz run -O -a --sanitizer none "$t" regressions/"$t"/* -- -runs=1
    fi
    log=$SLOTPAY_CACHE/logs/fuzz-$t.log
    run_target() {
        fuzz run -O -a --sanitizer none "$t" "$corpus" "seeds/$t" -- \
            -runs="$runs" -print_final_stats=1 -artifact_prefix="artifacts/$t/" 2>&1 | tee "$log" |
            grep --line-buffered -E '^#[0-9]+.*(pulse|DONE)|Done|ERROR|panicked' || true
        grep -q "^Done $runs runs" "$log" || {
            tail -40 "$log"
            echo "fuzz target $t did not complete $runs runs: see artifacts/$t and $log" >&2
            return 1
        }
    }
    step "$t: $runs executions" run_target
    # Keep a small committed seed corpus: the first run's 16 smallest inputs.
    if ! compgen -G "seeds/$t/*" >/dev/null; then
        mapfile -t smallest < <(find "$corpus" -type f -printf '%s %p\n' | sort -n | cut -d' ' -f2-)
        cp "${smallest[@]:0:16}" "seeds/$t/"
    fi
    secs=$(grep -oE '^Done [0-9]+ runs in [0-9]+ second' "$log" | awk '{print $5}')
    cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+' | awk '{print $2}')
    ft=$(grep -E '^#[0-9]+' "$log" | tail -1 | grep -oE 'ft: [0-9]+' | awk '{print $2}')
    corpus_n=$(find "$corpus" -type f | wc -l)
    rows+=("| $t | $runs | $secs | $(( runs / (secs > 0 ? secs : 1) )) | ${cov:-?} | ${ft:-?} | $corpus_n | none |")
done

{
    echo "# Fuzzing results"
    echo
    echo "\`scripts/fuzz.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(cargo +nightly --version),"
    echo "libFuzzer through cargo-fuzz $(cargo-fuzz --version 2>/dev/null | awk '{print $2}'), release build with debug assertions and overflow checks (\`-O -a\`), no sanitizer."
    echo "Each target ran exactly the executions shown (libFuzzer \`-runs\`) after replaying its"
    echo "committed seeds and regressions. Targets are described in fuzz/fuzz_targets/*.rs."
    echo
    echo "| target | executions | seconds | exec/s | coverage (edges) | features | corpus | crashes |"
    echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
    printf '%s\n' "${rows[@]}"
} >"$report.tmp"
if [ ${#targets[@]} -eq 6 ] || [ ! -f "$report" ]; then
    mv "$report.tmp" "$report"
else
    # A partial run replaces its targets' rows, dated, and keeps the others.
    for row in "${rows[@]}"; do
        t=$(echo "$row" | cut -d'|' -f2 | tr -d ' ')
        dated="${row% |} (rerun $(date -u '+%Y-%m-%d %H:%M UTC')) |"
        awk -v t="$t" -v r="$dated" -F'|' '{ if ($2 == " " t " ") print r; else print }' "$report" >"$report.new"
        mv "$report.new" "$report"
    done
    rm -f "$report.tmp"
fi
say "fuzzing done: ${targets[*]}"
