"""The sandbox's kombika registry: which unit codes exist and on which days they are open."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from services.sandboxes.hsa.directory import HsaDirectory
from services.sandboxes.hsa.generator import Unit


class KombikaState(StrEnum):
    OPEN = "open"
    UNKNOWN = "unknown"
    CLOSED = "closed"  # not open on the day asked: ended, replaced, or not yet started


@dataclass(frozen=True)
class KombikaPeriod:
    """One kombika and the days it is open: `valid_from` … `valid_to` (inclusive; None = open)."""

    code: str
    valid_from: date
    valid_to: date | None = None
    hsa_id: str | None = None

    def open_on(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)

    def describe(self) -> str:
        end = self.valid_to.isoformat() if self.valid_to else "…"
        return f"{self.valid_from.isoformat()} … {end}"


def periods_of_unit(unit: Unit) -> Iterator[KombikaPeriod]:
    """A unit's kombikas: each open from its validFrom until the next one starts or the unit ends.

    Read as the catalog reads HSA: the next kombika's validFrom and the unit's hsaEndDate are the
    first days it is no longer open. A kombika starting after the unit ended is never open
    (valid_to before valid_from).
    """
    listed = sorted(unit.get("kombika") or [], key=lambda k: str(k.get("validFrom") or ""))
    end = unit.get("hsaEndDate")
    unit_end = date.fromisoformat(end) - timedelta(days=1) if end else None
    for position, entry in enumerate(listed):
        code, start = entry.get("code"), entry.get("validFrom")
        if not code or not start:
            continue
        valid_to = unit_end
        if position + 1 < len(listed):
            replaced = date.fromisoformat(listed[position + 1]["validFrom"]) - timedelta(days=1)
            valid_to = replaced if valid_to is None else min(valid_to, replaced)
        yield KombikaPeriod(str(code), date.fromisoformat(start), valid_to, unit["hsaIdentity"])


class KombikaRegistry:
    """Kombika → the periods it is open; built from an `HsaDirectory` so catalog and GVR agree.

    Thread-safe: `add` may be called (by tests, the admin API) while the server reads.
    """

    def __init__(self, periods: Iterable[KombikaPeriod] = ()) -> None:
        self._lock = threading.Lock()
        self._periods: dict[str, list[KombikaPeriod]] = {}
        self._base: dict[str, list[KombikaPeriod]] = {}
        for period in periods:
            self._periods.setdefault(period.code, []).append(period)
        self._base = {code: list(found) for code, found in self._periods.items()}

    @classmethod
    def from_directory(cls, directory: HsaDirectory) -> KombikaRegistry:
        """Every kombika of every unit in the directory (Region Stockholm's units carry them)."""
        return cls(period for unit in directory.iter_units() for period in periods_of_unit(unit))

    def __len__(self) -> int:
        with self._lock:
            return len(self._periods)

    def add(self, code: str, valid_from: date, valid_to: date | None = None) -> KombikaPeriod:
        """Add a period for `code` (kept until `reset`); the code is not checked here."""
        period = KombikaPeriod(code, valid_from, valid_to)
        with self._lock:
            self._periods.setdefault(code, []).append(period)
        return period

    def reset(self) -> None:
        """Back to the kombikas the registry was built with."""
        with self._lock:
            self._periods = {code: list(found) for code, found in self._base.items()}

    def periods(self, code: str) -> list[KombikaPeriod]:
        with self._lock:
            return list(self._periods.get(code, ()))

    def state(self, code: str, day: date | None) -> KombikaState:
        """OPEN, UNKNOWN or CLOSED on `day`; with no `day`, OPEN when the code exists at all."""
        periods = self.periods(code)
        if not periods:
            return KombikaState.UNKNOWN
        if day is None or any(period.open_on(day) for period in periods):
            return KombikaState.OPEN
        return KombikaState.CLOSED

    def examples(self, state: KombikaState, on: date, limit: int = 10) -> list[KombikaPeriod]:
        """Up to `limit` kombikas OPEN on `on` (their open period), or CLOSED on it after having
        been open (their last period, ended before `on`); in code order."""
        found: list[KombikaPeriod] = []
        with self._lock:
            items = sorted(self._periods.items())
        for _code, periods in items:
            if len(found) >= limit:
                break
            opened = [p for p in periods if p.open_on(on)]
            if state is KombikaState.OPEN and opened:
                found.append(opened[0])
            ended = [p for p in periods if p.valid_to is not None and p.valid_from <= p.valid_to]
            if state is KombikaState.CLOSED and ended and not opened:
                last = max(ended, key=lambda p: p.valid_from)
                if last.valid_to is not None and last.valid_to < on:
                    found.append(last)
        return found
