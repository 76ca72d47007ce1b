"""The garbage collector's work in every Python process of a benchmark, process by process.

    GC_PROBE_DIR=/tmp/gc PYTHONPATH=benchmarks/gcprobe:. .venv/bin/python -m benchmarks.nvr_drain
    .venv/bin/python -m benchmarks.gcprobe /tmp/gc

Python imports `sitecustomize` at start-up from the path, so every process the benchmark starts
(the worker, the sandbox, the children) runs this: a `gc.callbacks` hook that adds up, per
generation, the collections, the objects they freed and the CPU time of the collecting thread
(`time.thread_time`, so that another thread's work does not count), and rewrites
`GC_PROBE_DIR/<pid>.json` every 50 collections and after each full one (with the process's CPU
at that moment). Two clock reads a collection; the figures are the collector's, in the process
as the benchmark ran it.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time

_DIR = os.environ.get("GC_PROBE_DIR")
_collections = [0, 0, 0]
_freed = [0, 0, 0]
_seconds = [0.0, 0.0, 0.0]
_started = [0.0]


def _write() -> None:
    figures = {
        "argv": list(getattr(sys, "argv", None) or ["?"]),
        "collections": _collections,
        "freed": _freed,
        "seconds": [round(s, 4) for s in _seconds],
        "process_cpu_s": round(time.process_time(), 3),
    }
    with open(os.path.join(_DIR or ".", f"{os.getpid()}.json"), "w") as out:
        json.dump(figures, out)


def _probe(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _started[0] = time.thread_time()
        return
    generation = info["generation"]
    _seconds[generation] += time.thread_time() - _started[0]
    _collections[generation] += 1
    _freed[generation] += info["collected"]
    if generation == 2 or sum(_collections) % 50 == 0:
        _write()


if _DIR:
    os.makedirs(_DIR, exist_ok=True)
    gc.callbacks.append(_probe)
