"""Run each `bench/bench_*.py` `async def run() -> str` (a markdown section); write BENCHMARKS.md.

`python -m bench NAME...` runs only the named modules and rewrites only their sections.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import platform
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "BENCHMARKS.md"
_SECTION = re.compile(r"<!-- bench:(\w+) -->\n(.*?)<!-- /bench:\1 -->\n", re.S)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem}, Python {platform.python_version()}, {platform.system()}"


def main(argv: list[str]) -> None:
    names = argv or sorted(p.stem.removeprefix("bench_") for p in (ROOT / "bench").glob("bench_*.py"))
    old = dict(_SECTION.findall(OUT.read_text())) if OUT.exists() else {}
    for name in names:
        module = importlib.import_module(f"bench.bench_{name}")
        print(f"== {name}", flush=True)
        text = asyncio.run(module.run())
        print(text, flush=True)
        old[name] = text.rstrip() + "\n"
    body = "".join(f"<!-- bench:{k} -->\n{v}<!-- /bench:{k} -->\n\n" for k, v in sorted(old.items()))
    OUT.write_text(f"# Benchmarks\n\nLast run on: {machine()}\n\nRun with `make bench`.\n\n{body}")


if __name__ == "__main__":
    main(sys.argv[1:])
