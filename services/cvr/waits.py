"""A wait as SKR counts it, from a waiting-list entry's dates and exception periods. Pure.

- **The guarantee's start** (`garanti_start`): the referral's arrival for a first visit or an
  examination; the decision to treat for a treatment or an operation (the referral's arrival while
  no decision is recorded).
- **The wait's end**: the completion, the removal, or — still waiting — the report's cut-off.
- **Days waited** count the calendar days after the start, up to and including the end; a day
  inside a patient-chosen period (PVV) is not counted (`pvv_dagar`). `vantedagar` is the days
  waited minus the PVV days, never below zero.
- **Medically caused waits** (MOV) are reported (`mov` J) and left outside the guarantee's figures
  by the register; their days are counted as any other.

The register recomputes `vantedagar` from the row's own dates: a figure that disagrees is a
refused row (`VANTETID`), so this module is the one place both sides count from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

TREATMENTS = frozenset({"treatment", "operation"})


def guarantee_start(wait_kind: str, referral_received: date, decided_on: date | None) -> date:
    if wait_kind in TREATMENTS and decided_on is not None:
        return decided_on
    return referral_received


def overlap_days(start: date, end: date, first: date, last: date | None) -> int:
    """Days d with start < d ≤ end and first ≤ d ≤ last (an open period runs to `end`)."""
    low = max(first, start + timedelta(days=1))
    high = end if last is None else min(last, end)
    return max(0, (high - low).days + 1)


def wait_figures(
    wait_kind: str,
    referral_received: date,
    decided_on: date | None,
    exceptions: Iterable[Mapping[str, Any]],
    end: date,
) -> dict[str, Any]:
    """`garanti_start`, `pvv_dagar`, `mov` and `vantedagar` of a wait that ends on `end`."""
    start = guarantee_start(wait_kind, referral_received, decided_on)
    pvv = 0
    mov = False
    for period in exceptions:
        first = _day(period["start"])
        last = None if period.get("end") is None else _day(period["end"])
        days = overlap_days(start, end, first, last)
        if period["kind"] == "patient_chosen":
            pvv += days
        elif first <= end and (last is None or last >= start):  # MOV during the wait
            mov = True
    waited = max(0, (end - start).days)
    return {
        "garanti_start": start.isoformat(),
        "pvv_dagar": pvv,
        "mov": "J" if mov else "N",
        "vantedagar": max(0, waited - pvv),
    }


def _day(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)
