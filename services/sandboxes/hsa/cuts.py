"""When the sandbox's export is cut: like HSA's, a snapshot taken a lead before each import slot.

HSA builds the export file 1.5 hours before the consumer's import (11:30, 15:30, 22:30) and the file
holds HSA as of that moment (`../shared/domain/catalog.md`). The sandbox does the same: at each
cut (slot minus lead) it freezes the directory; `/export` serves the last frozen snapshot with its
`asOf` time, so a change made after the cut is in notifications and lookups but not in the export.
A lead of zero serves the directory as it is now (benchmarks that measure the import alone).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.sandboxes.hsa.directory import SWEDEN, DirectorySnapshot, HsaDirectory

DEFAULT_LEAD = timedelta(hours=1, minutes=30)
DEFAULT_SLOTS = (time(11, 30), time(15, 30), time(22, 30))


@dataclass(frozen=True)
class FrozenExport:
    as_of: datetime  # aware
    snapshot: DirectorySnapshot


class ExportCuts:
    """The export as of the last cut; `cut()` freezes the directory now (the admin route)."""

    def __init__(
        self,
        directory: HsaDirectory,
        *,
        lead: timedelta = DEFAULT_LEAD,
        slots: Sequence[time] = DEFAULT_SLOTS,
        zone: ZoneInfo = SWEDEN,
    ) -> None:
        if lead < timedelta(0):
            raise ValueError(f"the export's lead must not be negative, got {lead}")
        if not slots:
            raise ValueError("the export needs at least one slot time")
        self.directory = directory
        self.lead = lead
        self.slots = tuple(sorted(slots))
        self.zone = zone
        self._lock = threading.Lock()
        self._frozen: FrozenExport | None = None

    @property
    def live(self) -> bool:
        return self.lead == timedelta(0)

    def last_cut(self, now: datetime) -> datetime:
        """The latest cut (a slot minus the lead) at or before `now` (aware)."""
        local = now.astimezone(self.zone)
        for days_back in range(3):
            day = local.date() - timedelta(days=days_back)
            cuts = [self._cut(day, at) for at in reversed(self.slots)]
            earlier = [c for c in cuts if c <= now]
            if earlier:
                return max(earlier)
        raise AssertionError("a cut lies within three days of any moment")  # lead < 2 days

    def next_cut(self, now: datetime) -> datetime:
        local = now.astimezone(self.zone)
        for days_ahead in range(4):
            day = local.date() + timedelta(days=days_ahead)
            later = [c for c in (self._cut(day, at) for at in self.slots) if c > now]
            if later:
                return min(later)
        raise AssertionError("a cut lies within four days of any moment")

    def cut(self, as_of: datetime | None = None) -> FrozenExport:
        """Freeze the directory now, labelled `as_of` (default: now)."""
        frozen = FrozenExport(as_of or self.directory.clock(), self.directory.snapshot())
        with self._lock:
            self._frozen = frozen
        return frozen

    def reset(self) -> None:
        """The directory was reset: the export holds it (as generated) as of the last cut."""
        if not self.live:
            self.cut(self.last_cut(self.directory.clock()))

    def export(self) -> FrozenExport:
        """What `/export` serves: the live directory (lead 0) or the last frozen snapshot.

        Before the first cut the directory is the generated one, unchanged since the last cut
        time: it is frozen as of that time."""
        if self.live:
            return FrozenExport(self.directory.clock(), self.directory.snapshot())
        with self._lock:
            frozen = self._frozen
        return frozen or self.cut(self.last_cut(self.directory.clock()))

    async def run(self) -> None:
        """Forever: freeze the directory at each cut (the sandbox's lifespan runs this)."""
        if self.live:
            return
        self.export()  # the first snapshot, as of the last cut
        due = self.next_cut(self.directory.clock())
        while True:
            await asyncio.sleep(max(0.0, (due - self.directory.clock()).total_seconds()))
            self.cut(due)
            due = self.next_cut(max(due, self.directory.clock()))

    def _cut(self, day: date, at: time) -> datetime:
        return datetime.combine(day, at, tzinfo=self.zone) - self.lead
