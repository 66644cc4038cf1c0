#!/usr/bin/env python3
"""Checks the crates' dependencies against the invariants ARCHITECTURE.md states.

ARCHITECTURE.md holds, in a ```deps block, one line per crate: `crate: allowed, ...`
(`-` for none, `*` for any workspace crate), then lines `crate !: external, ...` naming
crates.io packages that may not be in its normal dependency tree. This script reads
`cargo metadata` for the root workspace (and the manifests given as arguments, for the
other workspaces) and fails, naming each edge, when a crate depends on a workspace crate
its line does not allow, or links a forbidden package.

    scripts/check-architecture.py [--manifest PATH ...]
"""
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rules():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    block = re.search(r"```deps\n(.*?)```", text, re.S)
    if not block:
        sys.exit("ARCHITECTURE.md has no ```deps block")
    allowed, forbidden = {}, {}
    for line in block.group(1).splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([\w-]+)\s*(!?):\s*(.*)", line)
        if not m:
            sys.exit(f"ARCHITECTURE.md: cannot read deps line {line!r}")
        name, bang, rest = m.groups()
        items = {x.strip() for x in rest.split(",") if x.strip() and x.strip() != "-"}
        (forbidden if bang else allowed)[name] = items
    return allowed, forbidden


def metadata(manifest):
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked", "--manifest-path", str(manifest)],
        check=True, capture_output=True, text=True, cwd=ROOT,
    ).stdout
    return json.loads(out)


def main():
    manifests = [ROOT / "Cargo.toml"]
    args = sys.argv[1:]
    while args:
        if args[0] == "--manifest" and len(args) > 1:
            manifests.append(ROOT / args[1])
            args = args[2:]
        else:
            sys.exit(__doc__)
    allowed, forbidden = rules()
    problems, checked = [], 0
    for manifest in manifests:
        m = metadata(manifest)
        members = set(m["workspace_members"])
        packages = {p["id"]: p for p in m["packages"]}
        local = {p["name"] for p in m["packages"] if p["source"] is None}
        nodes = {n["id"]: n for n in m["resolve"]["nodes"]}
        for pid in members:
            p = packages[pid]
            name = p["name"]
            if name not in allowed:
                problems.append(f"{name}: no deps line in ARCHITECTURE.md")
                continue
            checked += 1
            normal = {
                d["name"] for d in p["dependencies"] if d.get("kind") is None and d["name"] in local
            } - {name}
            if "*" not in allowed[name]:
                for dep in sorted(normal - allowed[name]):
                    problems.append(f"{name} depends on {dep}, which ARCHITECTURE.md does not allow")
            if name in forbidden:
                # The normal dependency tree, transitively.
                seen, todo = set(), [pid]
                while todo:
                    node = nodes[todo.pop()]
                    for dep in node["deps"]:
                        if any(k.get("kind") is None for k in dep["dep_kinds"]) and dep["pkg"] not in seen:
                            seen.add(dep["pkg"])
                            todo.append(dep["pkg"])
                linked = {packages[d]["name"] for d in seen}
                for bad in sorted(linked & forbidden[name]):
                    problems.append(f"{name} links {bad}, which ARCHITECTURE.md forbids it")
    if problems:
        print("architecture invariants broken:\n  " + "\n  ".join(problems), file=sys.stderr)
        sys.exit(1)
    print(f"    {checked} crates: every dependency is one ARCHITECTURE.md allows")


if __name__ == "__main__":
    main()
