"""A long-running process's heap: what start-up built frozen, and the collector's thresholds."""

from __future__ import annotations

import gc

GC_THRESHOLDS = (50_000, 10, 10)
"""The garbage collector's thresholds once a worker or sandbox has started (`freeze_heap`)."""


def freeze_heap() -> None:
    """What start-up built (modules, settings, the catalog view …) lives as long as the process
    (a worker under `regbridge run`; a sandbox once it serves): it is moved out of the garbage
    collector's generations, so that no collection walks it again. Each full collection
    otherwise walks the whole heap while the chunks' short-lived objects trigger them;
    `benchmarks.runtime_overhead` measured ~25 % of the runtime's CPU gone to it. A frozen object
    that dies later is still freed by its reference count; only one caught in a reference cycle
    would stay (start-up's long-lived objects are not replaced in cycles).

    Then the youngest generation is collected after `GC_THRESHOLDS`' first figure, not
    Python's 700: the collector counts objects made less objects freed, and the chunks in hand
    hold tens of thousands while they are alive (freed by their reference counts when done).
    At 700 it ran a collection every few events, each moving the chunk's live objects on
    towards the full collections that walk the whole heap: 15 to 17 % of a worker's CPU in
    the drains (`docs/benchmarks.md`, garbage collection). What needs the collector at all is
    garbage in cycles, which a worker's hot path does not make (`shared.http.RegisterClient`)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
