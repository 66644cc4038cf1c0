#!/usr/bin/env python3
"""Where a firmware image's bytes go, per crate and per symbol, from `nm --size-sort -S -C`
(GNU nm reads the ARM ELF as elf32-little; no ARM binutils needed).

    bloat.py ELF [TOP]        markdown tables: flash and RAM per crate, the TOP largest symbols

Flash symbols are nm's t/T/r/R (code, read-only data), RAM ones b/B/d/D. A symbol's crate
is the first path segment of its demangled name (for `<T as Trait>::f`, T's crate);
compiler intrinsics (`__aeabi_*`, `mem*`) count as compiler_builtins, cortex-m-rt's
entry points and vector table as cortex_m_rt, the image's own `main` as the firmware.
Anonymous read-only data (`.Lanon.*`: string and table constants) is its own line: nm
cannot say whose it is. Inlined code counts for the function it was inlined into.
"""
import re
import subprocess
import sys
from collections import defaultdict

RT = {"Reset", "__pre_init", "DefaultHandler", "DefaultHandler_", "HardFault",
      "HardFault_", "HardFaultTrampoline", "__INTERRUPTS", "__RESET_VECTOR",
      "__EXCEPTIONS", "DefaultPreInit", "main"}


PRIMITIVE = re.compile(r"^(T|[A-Z]|str|bool|char|u8|u16|u32|u64|u128|usize|i8|i16|i32|i64|i128|isize|f32|f64)$")


def first_segment(path: str) -> str:
    n = path
    while n.startswith("<"):
        n = n[1:]
    n = n.lstrip("&*").replace("mut ", "").replace("dyn ", "")
    return re.split(r"::|<| |\[|;|,|>", n, maxsplit=1)[0]


def crate_of(name: str, image: str) -> str:
    if name.startswith(".Lanon") or name.startswith("anon."):
        return "[anonymous constants]"
    if name.startswith("__aeabi") or name.startswith("__udivmod") or name.startswith("__divmod") \
            or name in {"memcpy", "memset", "memmove", "memcmp", "bcmp"} \
            or name.startswith("compiler_builtins"):
        return "compiler_builtins"
    if name in RT or name.startswith("__cortex_m_rt"):
        return "cortex_m_rt"
    if name in {"rust_begin_unwind", "SysTick"} or name.startswith("insn_mark") \
            or name == "thousand_nops":
        return "firmware (" + image + ")"
    crate = first_segment(name)
    # `<T as Trait>::f` with a generic or primitive T: the trait's crate.
    if PRIMITIVE.match(crate) and " as " in name:
        crate = first_segment(name.split(" as ", 1)[1])
    if crate in {image, "device_firmware"}:
        return "firmware (" + image + ")"
    return crate or name


def main() -> None:
    elf = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    image = elf.rsplit("/", 1)[-1]
    out = subprocess.run(["nm", "--size-sort", "-S", "-C", elf], check=True,
                         capture_output=True, text=True).stdout
    flash, ram = defaultdict(int), defaultdict(int)
    symbols = []
    for line in out.splitlines():
        parts = line.split(None, 3)
        if len(parts) != 4:
            continue
        size, kind, name = int(parts[1], 16), parts[2], parts[3]
        crate = crate_of(name, image)
        if kind in "tTrR":
            flash[crate] += size
            symbols.append((size, crate, name))
        elif kind in "bBdD":
            ram[crate] += size
    total = sum(flash.values())
    print(f"| crate | flash (symbols, bytes) | share | static RAM (bytes) |")
    print("| --- | ---: | ---: | ---: |")
    for crate in sorted(set(flash) | set(ram), key=lambda c: -flash.get(c, 0)):
        share = 100 * flash.get(crate, 0) / total if total else 0
        print(f"| {crate} | {flash.get(crate, 0)} | {share:.0f}% | {ram.get(crate, 0)} |")
    print(f"| total | {total} | | {sum(ram.values())} |")
    print()
    print(f"| largest flash symbols | crate | bytes |")
    print("| --- | --- | ---: |")
    for size, crate, name in sorted(symbols, reverse=True)[:top]:
        short = re.sub(r"::h[0-9a-f]{16}$", "", name)
        if len(short) > 90:
            short = short[:87] + "..."
        print(f"| `{short}` | {crate} | {size} |")


if __name__ == "__main__":
    main()
