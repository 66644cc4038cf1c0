#!/usr/bin/env bash
# The device as Cortex-M firmware under QEMU (device-sim/firmware).
#
#   scripts/firmware.sh lint    rustfmt --check and clippy -D warnings on the firmware crate
#   scripts/firmware.sh check   build for the three cores, boot each under qemu-system-arm and
#                               run the on-target checks (RFC 4226 vectors, the replay
#                               window, throttling across a reboot, power cuts during the
#                               state save); boot the one-device image twice on each core
#                               from a provisioned flash file (CoAP requests answered, the
#                               grants still there at the second boot); then the networked
#                               image (Cortex-M0 code on mps2-an385's LAN9118, smoltcp) is
#                               served tokens from the host through QEMU's user networking
#                               (device-sim/tests/firmware.rs); fails if anything fails
#   scripts/firmware.sh bloat   where the one-device and networked images' bytes go, per
#                               crate and per symbol (GNU nm; device-sim/firmware/bloat.py)
#   scripts/firmware.sh bench   flash and RAM sizes, and exact instruction counts per
#                               token check beside a bare HMAC-SHA256: bench/firmware.md
#
# Cores: Cortex-M4F (thumbv7em-none-eabihf) on QEMU's mps2-an386, Cortex-M3
# (thumbv7m-none-eabi) on its lm3s6965evb (256 KiB flash, 64 KiB RAM), Cortex-M0
# (thumbv6m-none-eabi) on its microbit (nRF51, 256 KiB flash, 16 KiB RAM); the networked
# image on mps2-an385 (a Cortex-M3 with a LAN9118; it runs the Cortex-M0 build).
# Environment: SLOTPAY_FIRMWARE_TARGET_DIR (cargo target directory of the firmware,
# default $SLOTPAY_CACHE/target/firmware), SLOTPAY_HOST_TARGET_DIR (of the workspace's
# slotpay-device and host test, default $SLOTPAY_CACHE/target/root).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
slotpay_env
FW=$SLOTPAY_ROOT/device-sim/firmware
export CARGO_TARGET_DIR=${SLOTPAY_FIRMWARE_TARGET_DIR:-$SLOTPAY_CACHE/target/firmware}
HOST_TARGET_DIR=${SLOTPAY_HOST_TARGET_DIR:-$SLOTPAY_CACHE/target/root}
# The networked image: the Cortex-M0 build, on the mps2 board that has a NIC.
NET_TARGET=thumbv6m-none-eabi
NET_BOARD="-cpu cortex-m3 -machine mps2-an385"

TARGETS="thumbv7em-none-eabihf thumbv7m-none-eabi thumbv6m-none-eabi"

board() {
    case $1 in
    thumbv7em-none-eabihf) echo "-cpu cortex-m4 -machine mps2-an386" ;;
    thumbv7m-none-eabi) echo "-cpu cortex-m3 -machine lm3s6965evb" ;;
    thumbv6m-none-eabi) echo "-cpu cortex-m0 -machine microbit" ;;
    esac
}

core_name() {
    case $1 in
    thumbv7em-none-eabihf) echo "Cortex-M4F (mps2-an386)" ;;
    thumbv7m-none-eabi) echo "Cortex-M3 (lm3s6965evb)" ;;
    thumbv6m-none-eabi) echo "Cortex-M0 (microbit)" ;;
    esac
}

# cargo_fw TARGET SUBCOMMAND ARGS...: cargo in the firmware workspace for TARGET. A toolchain
# without that target's prebuilt core (Debian's rustc-web) builds core and alloc from
# its rust-src instead.
cargo_fw() {
    local t=$1 sub=$2
    shift 2
    local extra=()
    if [ ! -d "$(rustc "+$SLOTPAY_TOOLCHAIN" --print sysroot)/lib/rustlib/$t/lib" ]; then
        export RUSTC_BOOTSTRAP=1
        extra=(-Zbuild-std=core,alloc)
    fi
    (cd "$FW" && cargo "+$SLOTPAY_TOOLCHAIN" "$sub" --locked --target "$t" "${extra[@]}" "$@")
}

build() {
    command -v qemu-system-arm >/dev/null || die "qemu-system-arm is missing: run scripts/setup.sh"
    local t
    for t in $TARGETS; do
        cargo_fw "$t" build --release --bins
    done
}

lint() {
    (cd "$FW" && cargo "+$SLOTPAY_TOOLCHAIN" fmt --check)
    local t
    for t in $TARGETS; do
        cargo_fw "$t" clippy --release --all-targets -- -D warnings
    done
}

# qemu FLAGS... ELF: boots the image; semihosting carries its output and exit status
# (and, with SEMIHOSTING_ARGS, its command line: the flash file).
qemu() {
    local elf=${*: -1}
    local flags=("${@:1:$#-1}")
    # stderr dropped: the lm3s6965evb model prints "Timer with period zero" on every boot.
    timeout 600 qemu-system-arm "${flags[@]}" -nographic -monitor none \
        -semihosting-config "enable=on,target=native${SEMIHOSTING_ARGS:-}" -kernel "$elf" \
        </dev/null 2>/dev/null
}

# slotpay-device, for the flash files (the provisioning written as firmware reads it).
host_device() {
    (cd "$SLOTPAY_ROOT" && CARGO_TARGET_DIR=$HOST_TARGET_DIR cargo "+$SLOTPAY_TOOLCHAIN" build \
        --locked -q -p device-sim --bin slotpay-device)
    echo "$HOST_TARGET_DIR/debug/slotpay-device"
}

# flash_file DIR: a freshly provisioned flash file (a random key) in DIR; prints its path.
flash_file() {
    local dir=$1 sim
    sim=$(host_device)
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$dir/key"
    "$sim" --id one --key-file "$dir/key" --write-flash "$dir/flash.bin" >/dev/null
    echo "$dir/flash.bin"
}

# one_device TARGET FLASH: the one-device image on TARGET's board, booted from FLASH.
one_device() {
    # shellcheck disable=SC2046
    SEMIHOSTING_ARGS=",arg=one,arg=$2" qemu $(board "$1") "$CARGO_TARGET_DIR/$1/release/one"
}

check() {
    build
    local t out rc dir flash
    for t in $TARGETS; do
        echo "    $(core_name "$t"):"
        rc=0
        # shellcheck disable=SC2046
        out=$(qemu $(board "$t") "$CARGO_TARGET_DIR/$t/release/checks") || rc=$?
        sed 's/^/      /' <<<"$out"
        [ $rc -eq 0 ] && grep -q ' 0 failed$' <<<"$out" || die "on-target checks failed on $t (exit $rc)"
    done
    dir=$(mktemp -d)
    for t in $TARGETS; do
        echo "    one device on $(core_name "$t"), booted twice from one flash file:"
        flash=$(flash_file "$dir")
        for boot in 1 2; do
            rc=0
            out=$(one_device "$t" "$flash") || rc=$?
            sed 's/^/      /' <<<"$out"
            [ $rc -eq 0 ] || die "the one-device image failed on $t (exit $rc)"
        done
        # The second boot granted counter 1: counter 0, granted by the first, was saved.
        grep -q "granted 1 " <<<"$out" || die "the one-device image lost its state across a reboot on $t"
    done
    rm -rf "$dir"
    echo "    the networked image ($(core_name $NET_TARGET) code on mps2-an385: LAN9118, smoltcp), from the host:"
    if ! net_test | sed 's/^/      /'; then
        die "the networked firmware failed its host test (device-sim/tests/firmware.rs)"
    fi
}

bloat() {
    build
    local image
    for image in one networked; do
        echo "### $image image, $(core_name $NET_TARGET)"
        echo
        python3 "$FW/bloat.py" "$CARGO_TARGET_DIR/$NET_TARGET/release/$image" 15
        echo
    done
}

# size_row CORE IMAGE ELF STACK: one row of the size table.
size_row() {
    local vt text ro data bss uninit
    vt=$(section_hex "$3" .vector_table)
    text=$(section_hex "$3" .text)
    ro=$(section_hex "$3" .rodata)
    data=$(section_hex "$3" .data)
    bss=$(section_hex "$3" .bss)
    uninit=$(section_hex "$3" .uninit)
    printf '| %s | %s | %d | %d | %d | %d | %s |\n' "$1" "$2" "$text" "$ro" \
        "$((vt + text + ro + data))" "$((data + bss + uninit))" "$4"
}

high_water() {
    sed -n 's/^.*stack high water \([0-9]*\) bytes.*/\1/p' | tail -n 1
}

sizes_rows() {
    local t=$1 dir flash one
    # shellcheck disable=SC2046
    size_row "$(core_name "$t")" "checks" "$CARGO_TARGET_DIR/$t/release/checks" \
        "$(qemu $(board "$t") "$CARGO_TARGET_DIR/$t/release/checks" | high_water)"
    # shellcheck disable=SC2046
    size_row "$(core_name "$t")" "insns (the old one-device row)" "$CARGO_TARGET_DIR/$t/release/insns" \
        "$(qemu $(board "$t") "$CARGO_TARGET_DIR/$t/release/insns" | high_water)"
    dir=$(mktemp -d)
    flash=$(flash_file "$dir")
    one_device "$t" "$flash" >/dev/null
    # The second boot: it decodes a saved state (the deeper path).
    one=$(one_device "$t" "$flash" | high_water)
    rm -rf "$dir"
    size_row "$(core_name "$t")" "**one device** (one)" "$CARGO_TARGET_DIR/$t/release/one" "$one"
    if [ "$t" = "$NET_TARGET" ]; then
        size_row "$(core_name "$t")" "networked device (networked)" "$CARGO_TARGET_DIR/$t/release/networked" \
            "$(net_test --nocapture | high_water)"
    else
        size_row "$(core_name "$t")" "networked device (networked)" "$CARGO_TARGET_DIR/$t/release/networked" "-"
    fi
}

# net_test ARGS: the host test of the networked image (device-sim/tests/firmware.rs).
net_test() {
    (cd "$SLOTPAY_ROOT" && SLOTPAY_FIRMWARE_ELF=$CARGO_TARGET_DIR/$NET_TARGET/release/networked \
        CARGO_TARGET_DIR=$HOST_TARGET_DIR cargo "+$SLOTPAY_TOOLCHAIN" test --locked -q \
        -p device-sim --test firmware -- --ignored --test-threads 1 "$@" 2>&1)
}

# section_hex ELF NAME: a section's size in bytes, from readelf (no ARM binutils needed).
section_hex() {
    local hex
    hex=$(readelf -S --wide "$1" | sed 's/^ *\[ *[0-9]*\] *//' | awk -v name="$2" '$1 == name { print $5 }')
    echo $((16#${hex:-0}))
}

# Instruction counts: the insns image under -singlestep (one guest instruction per
# translation block) with every block execution logged (-d exec,nochain); the count
# between two markers is exact (region 1-2, 1000 NOPs, reads 1000 + the overhead).
counts() {
    local t=$1 ins=$CARGO_TARGET_DIR/$1/release/insns log out
    log=$(mktemp)
    # shellcheck disable=SC2046
    out=$(timeout 600 qemu-system-arm $(board "$t") -nographic -monitor none \
        -semihosting-config enable=on,target=native -singlestep -d exec,nochain -D "$log" \
        -kernel "$ins" 2>/dev/null)
    grep -q 'regions ran as expected: true' <<<"$out" || die "instruction-count image failed on $t: $out"
    awk -v marks="$(awk '/^marker/ { print $3 }' <<<"$out" | tr '\n' ' ')" -f "$FW/count-insns.awk" "$log"
    rm -f "$log"
}

bench() {
    build
    local md=$SLOTPAY_ROOT/bench/firmware.md t
    {
        echo "# Device firmware on Cortex-M (QEMU)"
        echo
        echo "\`scripts/firmware.sh bench\` ($(date -u '+%Y-%m-%d'), rustc $(rustc "+$SLOTPAY_TOOLCHAIN" --version | cut -d' ' -f2), $(qemu-system-arm --version | head -n 1 | sed 's/ (.*//'));"
        echo "\`scripts/firmware.sh bloat\` prints the per-crate tables below. Images from"
        echo "\`device-sim/firmware\` (release: opt-level s, LTO, panic=abort), booted with"
        echo "\`qemu-system-arm -machine mps2-an386\` (Cortex-M4F), \`-machine lm3s6965evb\` (Cortex-M3)"
        echo "and \`-machine microbit\` (Cortex-M0, nRF51); the networked image's Cortex-M0 build on"
        echo "\`-machine mps2-an385\` (a Cortex-M3 with the LAN9118 NIC, executing the Armv6-M code)."
        echo
        echo "## Size"
        echo
        echo "Flash = .vector_table + .text + .rodata + .data; static RAM = .data + .bss + .uninit;"
        echo "stack = the deepest the stack went (painted at boot, read at the end). Images:"
        echo "**checks** (the on-target checks: two devices' worth of test state, 2 KiB of"
        echo "RAM-modelled flash); **insns** (instruction counts: one device on 1 KiB of RAM-modelled"
        echo "flash, five requests, the markers and 1000 calibration NOPs; the row called \"one device\""
        echo "before); **one device** (\`one\`: the device as it ships minus the network: boots from"
        echo "its flash file, provisioning page included, and answers five CoAP requests through"
        echo "\`CoapDevice\`; it also issues those requests' tokens, builds the requests and parses"
        echo "the answers, a client's work, and logs them: all counted, see below);"
        echo "**networked device** (\`networked\`: \`one\`'s device behind smoltcp and the LAN9118 driver;"
        echo "its stack is measured while the host test presents tokens to it)."
        echo
        echo "| core | image | .text | .rodata | flash total | static RAM | stack high water |"
        echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
        for t in $TARGETS; do sizes_rows "$t"; done
        echo
        echo "### Against the budget (one device: flash < 16 KiB, stack < 2 KiB, static RAM < 2 KiB)"
        echo
        cat <<'BUDGET'
**Met on every core** by the `one` image above (flash < 16,384 B, stack < 2,048 B, static
RAM < 2,048 B). What it counts: the whole image as linked, vector table included: the
device (boot from the flash file, provisioning record, A/B state pages, `CoapDevice`
with its deduplication, Echo, window, throttle, budget, answers), semihosting for the
flash file and the log, **and** the test's client side, which a shipped device would not
carry: issuing the two tokens (`one::tokens`, `Text`), building the requests and parsing
the answers (`one::request` without the device's inlined request handling,
`token_request_into`, `AnswerRef`), about 1.3 KB on the M0, and the log and the
stack/RAM report, about 0.5 KB. Nothing was taken out of the image to meet the budget:
the device alone is therefore some 1.8 KB under the row. The tightest margin is the
Cortex-M0's flash: 432 bytes (`opt-level = "z"` would give some 400 more, for more
instructions per check; not used).

Before (2026-11-26): 26,360 B of flash and 7,584 B of stack on the Cortex-M4F, and the
Cortex-M0 did not link. Then (main f11c804, 2026-12-03): 22,104 / 22,036 / 22,516 B of
flash, 4,800 / 4,800 / 4,912 B of stack and 2,040 B of static RAM on the M4F / M3 / M0.
Each cut on the Cortex-M0 (`one`, cumulative, in the order of the commits; flash and
static RAM from the ELF, stack QEMU's high water, or where marked * the bound from the
call graph's frames, which QEMU's reading was within 30 B of):

| cut | flash | stack | static RAM |
| --- | ---: | ---: | ---: |
| main f11c804 | 22,516 | 4,912 | 2,040 |
| no 64-bit division (`device::div_rem_u16`, a 32-bit `Throttle::cost_ms`: compiler_builtins -996 B); panics without location or message (core::fmt -872 B, .rodata -996 B) | 19,532 | (not measured) | 2,040 |
| the state decoded and resized in place (`ReplayWindow::set_from_le_bytes` and `resize`, `DeviceState::decode_from`, `CounterStore::load_into`); the booted device keeps its `DeviceState`, saved where it lies | 19,020 | 2,908 | 2,048 |
| HMAC-SHA256 from the key's two chaining values (`protocol::hotp::HmacSha256Keyed`, 64 bytes, instead of a cloned `hmac::Hmac` of about 200) for the token and the Echo | 17,560 | 2,212 | 1,872 |
| the image's client and log in functions of their own; the booted device's placeholder written straight into its slot (`Booted::blank`); answers logged as bytes (no UTF-8 validator) | 16,980 | 1,996* | 1,872 |
| `DeviceState::blank()` instead of a 296-byte constant in .rodata; `present`'s grant tail and `serve::boot` not inlined | 16,772 | 1,992* | 1,872 |
| fixed offsets in `Provisioned::decode` and `DeviceState::encode_into`, shorter boot texts, one decimal writer (`device::decimal`) | 16,304 | 1,964 | 1,872 |
| no `__aeabi_memset4` or unaligned `__aeabi_memclr` linked: the HMAC's blocks cleared whole, digit buffers zeroed, the ipad block the key XORed with 0x36 | 15,952 | 1,964 | 1,872 |

What is left, M0 (tables below): the device crate 7.6 KB (the request's decision: Echo,
parse, back-off, window, budget, grant, 2.4; the CoAP codec and answers 1.9, and its
request handling, inlined into `one::request`, about 1 KB more; the state's restore,
encoding and A/B pages 2.1; the provisioning record 0.7; boot 0.5), compiler_builtins
1.5 KB (memcpy and the aligned memclrs 0.8; the M0's software 32-bit division 0.4, which
the M3 and M4F do in hardware: their images are 390 B smaller), protocol 1 KB, SHA-256's
compression 0.4 KB. The deepest stack is the boot's (the booted device's placeholder,
0.5 KB, then the Echo key's derivation); a request goes about 1.8 KB deep (its 96- and
128-byte datagrams, the device's frames, one HMAC, and SHA-256's 64-word schedule, 0.4
KB, in the sha2 crate). The static RAM is the device: the 32-source table (896 B), the
booted state with its window (296 B), configuration (about 100 B) and keys (128 B), the
deduplication (384 B). The networked image (smoltcp and the LAN9118 driver on top) is
not held to the budget.
BUDGET
        echo
        if command -v python3 >/dev/null; then
            echo "## Where the bytes go ($(core_name $NET_TARGET))"
            echo
            echo "Per crate and largest symbols, from GNU nm (\`device-sim/firmware/bloat.py\`; inlined"
            echo "code counts for the function it was inlined into)."
            echo
            bloat | sed 's/^### /### /'
        fi
        echo "## Instructions per operation"
        echo
        echo "Exact counts of executed instructions (condition-failed ones included), not estimates:"
        echo "QEMU 7.2's TCG plugins (libinsn.so) are not shipped by Debian, so the image runs under"
        echo "\`-singlestep -d exec,nochain\`: every translation block is one instruction and every"
        echo "execution of one is logged; \`device-sim/firmware/count-insns.awk\` counts the log's"
        echo "lines between marker functions and checks each block held one instruction. The marker"
        echo "overhead (an empty region) is subtracted; the calibration region, a call to exactly"
        echo "1000 NOPs, reads 1002 (the NOPs, the call, the return). SHA-256 is the compact (looped)"
        echo "variant on every core: 2.4 KB less flash than the unrolled one, for more instructions."
        echo
        echo "| operation | $(core_name thumbv7em-none-eabihf) | x bare HMAC | $(core_name thumbv7m-none-eabi) | x bare HMAC | $(core_name thumbv6m-none-eabi) | x bare HMAC |"
        echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
        local a b c
        a=$(counts thumbv7em-none-eabihf)
        b=$(counts thumbv7m-none-eabi)
        c=$(counts thumbv6m-none-eabi)
        awk -v a="$a" -v b="$b" -v c="$c" 'BEGIN {
            n = split(a, la, "\n"); split(b, lb, "\n"); split(c, lc, "\n")
            for (i = 1; i <= n; i++) { split(la[i], x, " "); split(lb[i], y, " "); split(lc[i], z, " ");
                if (x[1] == "region") { A[x[2]] = x[3]; B[y[2]] = y[3]; C[z[2]] = z[3] } else if (x[1] == "multi") { M = x[2] + y[2] + z[2] } }
            oa = A[0]; ob = B[0]; oc = C[0]
            name[1] = "calibration: a call to 1000 NOPs (must read 1002: the NOPs, the call, the return)"
            name[2] = "bare HMAC-SHA256, 32-byte key, 8-byte counter, keying included"
            name[3] = "bare HMAC-SHA256 from the keyed state (the device keys once, at boot)"
            name[4] = "token check: parse `<counter>:<otp>`, one keyed HMAC for that counter, compare"
            name[5] = "device: a whole request that grants (Echo check, window, budget, token, state saved to flash)"
            name[6] = "device: a whole request with a wrong token (Echo check, token; no flash write)"
            name[7] = "device: a request without Echo (a spoofer): Echo issued, nothing checked"
            ha = A[2] - oa; hb = B[2] - ob; hc = C[2] - oc
            for (i = 1; i <= 7; i++)
                printf "| %s | %d | %.2f | %d | %.2f | %d | %.2f |\n", name[i], A[i] - oa, (A[i] - oa) / ha, B[i] - ob, (B[i] - ob) / hb, C[i] - oc, (C[i] - oc) / hc
            if (M > 0) printf "\nWARNING: %d translation blocks held more than one instruction\n", M
        }'
        echo
        echo "The whole request of a grant is two keyed HMACs (the Echo, the token), the state"
        echo "encoding with its CRC-32, and the erase and program of a 512-byte page of the"
        echo "RAM-modelled flash (about 14,000 instructions of the model; real flash controllers"
        echo "take time, not instructions). Host-side figures for the same operations: bench/device.md."
    } >"$md.tmp"
    mv "$md.tmp" "$md"
    cat "$md"
}

case ${1:-} in
lint) lint ;;
check) check ;;
bloat) bloat ;;
bench) bench ;;
*) die "usage: scripts/firmware.sh lint|check|bloat|bench" ;;
esac
