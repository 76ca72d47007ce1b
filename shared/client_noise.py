"""The Kafka client's log lines, readable in an outage: retriable states warn, repeats summed.

aiokafka logs a line per retry: a 22-second broker outage wrote thousands. `ClientNoise` lets the
first line of each kind through (the state change), holds back its repeats for `window` seconds,
and lets the next one through with how many it held back (a periodic summary while it lasts).
Conditions the client retries by itself right after topics are created or leaders move (no
coordinator yet, not the leader) are warnings, not errors: a healthy start logs no error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

CLIENT_LOGGERS = ("aiokafka", "kafka")
RETRIABLE = (
    "GroupCoordinatorNotAvailable",
    "NotCoordinator",
    "CoordinatorLoadInProgress",
    "NotLeaderForPartition",
    "LeaderNotAvailable",
    "UnknownTopicOrPartition",
    "Marking the coordinator dead",
)


class ClientNoise(logging.Filter):
    """A handler filter for the Kafka client's warnings and errors (other records pass as is)."""

    def __init__(self, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window = window
        self._clock = clock
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}  # kind → (shown at, held back)

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(CLIENT_LOGGERS) or record.levelno < logging.WARNING:
            return True
        text = record.getMessage()
        if record.levelno >= logging.ERROR and any(mark in text for mark in RETRIABLE):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        kind = (record.name, str(record.msg))
        now = self._clock()
        shown_at, held = self._seen.get(kind, (None, 0))
        if shown_at is not None and now - shown_at < self.window:
            self._seen[kind] = (shown_at, held + 1)
            return False
        self._seen[kind] = (now, 0)
        if held:
            record.msg = f"{record.msg} (and {held} more like it in the last {self.window:.0f} s)"
        return True
