"""The VGPV sandbox's state: KIV's units, the window, its own movable clock, files and faults."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.sandboxes.faults import FaultState
from services.sandboxes.vgpv.store import FileStore, StoredFile, receipt_body
from services.sandboxes.vgpv.validation import KivUnits, judge
from shared.schedule import MonthlyWindow, WorkingCalendar


def utc_now() -> datetime:
    return datetime.now(UTC)


class SandboxClock:
    """The register's clock: the machine's (or a test's) plus an offset that `set` chooses, so
    a test or the dev stack can stand inside or after a window without waiting for it."""

    def __init__(self, base: Callable[[], datetime] = utc_now) -> None:
        self._base = base
        self._lock = threading.Lock()
        self._offset = timedelta(0)

    def __call__(self) -> datetime:
        with self._lock:
            return self._base() + self._offset

    @property
    def offset(self) -> timedelta:
        with self._lock:
            return self._offset

    def set(self, now: datetime | None) -> datetime:
        """From now on the clock reads `now` (and ticks on from it); None: the base clock."""
        with self._lock:
            self._offset = timedelta(0) if now is None else now - self._base()
        return self()


def vgpv_window() -> MonthlyWindow:
    """The region's window: working days 1 to 3 of the next month, closing 15:00 Swedish time."""
    return MonthlyWindow(WorkingCalendar(), ZoneInfo("Europe/Stockholm"))


@dataclass
class SandboxState:
    kiv: KivUnits
    clock: SandboxClock = field(default_factory=SandboxClock)
    window: MonthlyWindow = field(default_factory=vgpv_window)
    store: FileStore = field(default_factory=FileStore)
    faults: FaultState = field(default_factory=FaultState)

    def reset(self) -> None:
        """No files, no uploads, no faults, the clock unmoved (receipt ids keep counting)."""
        self.store.reset()
        self.faults.reset()
        self.clock.set(None)

    def receive(self, name: str, content: bytes) -> tuple[int, dict[str, Any]]:
        """An upload of `content` as `name`: (HTTP status, answer). 200 with the receipt when the
        file is read (its rows judged one by one), 422 with the receipt when it is refused whole,
        409 with the stored receipt when the name was received before (every upload counted)."""
        self.store.count_upload(name)
        known = self.store.get(name)
        if known is None:
            now = self.clock()
            judgement = judge(
                name, content, now=now, kiv=self.kiv, window=self.window, holding=self.store
            )
            receipt = receipt_body(self.store.next_receipt_id(), name, content, now, judgement)
            header = judgement.file.header if judgement.file is not None else None
            stored = StoredFile(name, content, receipt, header, judgement)
            if self.store.add(stored):
                return (422 if judgement.status == "avvisad" else 200), receipt
            known = self.store.get(name) or stored  # another upload of the name won the race
        same = known.receipt["kontrollsumma"] == hashlib.sha256(content).hexdigest()
        answer = {
            "kod": "DUBBLETT",
            "orsak": f"{name} is already received" + ("" if same else ", with other content"),
            "sammaInnehall": same,
            "kvitto": known.receipt,
        }
        return 409, answer
