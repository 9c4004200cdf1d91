"""`make bench`: run every benchmark in its own process, one after the other; each writes benchmarks/results/<name>.json.

    .venv/bin/python -m benchmarks                 # all
    .venv/bin/python -m benchmarks api rent_model  # some (names without the bench_ prefix)
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ("interpreter", "occupancy", "rent_model", "ingest", "feed", "query", "worker")


def main(argv: list[str]) -> int:
    """Run the named benchmarks (default: all that exist); return the number that failed."""
    names = argv or [n for n in ORDER if (HERE / f"bench_{n}.py").exists()]
    failed = 0
    for name in names:
        print(f"\n=== benchmarks.bench_{name} ===", flush=True)
        started = time.perf_counter()
        code = subprocess.call([sys.executable, "-m", f"benchmarks.bench_{name}"], cwd=HERE.parent)
        print(f"=== bench_{name}: exit {code} in {time.perf_counter() - started:.0f} s", flush=True)
        failed += code != 0
    return failed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
