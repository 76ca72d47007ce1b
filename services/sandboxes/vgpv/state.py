"""The VGPV sandbox's state: KIV's units, the window, its own movable clock, files and faults."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from services.sandboxes.faults import FaultState
from services.sandboxes.vgpv.store import FileStore
from services.sandboxes.vgpv.validation import KivUnits
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
