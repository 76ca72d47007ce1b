"""Print what `benchmarks/gcprobe/sitecustomize.py` wrote: the collector's work per process
(collections and the CPU seconds they took, by generation, then in all), most first.

.venv/bin/python -m benchmarks.gcprobe DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    rows = [json.loads(path.read_text()) for path in sorted(Path(sys.argv[1]).glob("*.json"))]
    print(f"{'process':<48}{'collections 0/1/2':>20}{'GC CPU s 0/1/2':>24}{'in all':>10}")
    for row in sorted(rows, key=lambda row: -sum(row["seconds"])):
        name = " ".join(arg.rsplit("/", 1)[-1] for arg in row.get("argv") or ["?"])[:47]
        counts = "/".join(str(n) for n in row["collections"])
        seconds = "/".join(f"{s:.2f}" for s in row["seconds"])
        print(f"{name:<48}{counts:>20}{seconds:>24}{sum(row['seconds']):>10.2f}")


if __name__ == "__main__":
    main()
