"""Prometheus gauges of a schedule: its last successful run, and the slots passed since."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Gauge

from shared.delivery.clock import Clock
from shared.schedule.claims import SlotRun
from shared.schedule.slots import Schedule, utc

MOST_SLOTS = 1_000  # counting stops here: a schedule that far behind is behind


class ScheduleMetrics:
    """`regbridge_schedule_last_success_timestamp_seconds` and
    `regbridge_schedule_slots_since_success` per schedule kind (computed when scraped).

    Only the replica that ran a slot knows at once that it succeeded; the others learn it when
    they start. Alerts therefore take the best replica: `max` of the timestamp, `min` of the
    slots (see deploy/prometheus/alerts.yml)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._last_success = Gauge(
            "regbridge_schedule_last_success_timestamp_seconds",
            "When the schedule's job last finished well, Unix time (0: not since start)",
            ["kind"],
            registry=registry,
        )
        self._since = Gauge(
            "regbridge_schedule_slots_since_success",
            "Slots whose time has passed since the last slot that finished well",
            ["kind"],
            registry=registry,
        )
        self._last_slot: dict[str, datetime] = {}

    def track(self, kind: str, schedule: Schedule, clock: Clock, last: SlotRun | None) -> None:
        """Follow `kind` from now: `last` is its latest good run as the claims remember it."""
        if last is not None and last.finished_at is not None:
            self.succeeded(kind, last.slot_at, last.finished_at)
        else:  # nothing good remembered: count the slots from now on
            self._last_slot[kind] = clock.now()
            self._last_success.labels(kind).set(0)
        self._since.labels(kind).set_function(lambda: self._slots_since(kind, schedule, clock))

    def succeeded(self, kind: str, slot_at: datetime, finished_at: datetime) -> None:
        if finished_at.tzinfo is None:  # SQLite gives back what was written in UTC, zone-less
            finished_at = finished_at.replace(tzinfo=UTC)
        self._last_slot[kind] = max(slot_at, self._last_slot.get(kind, slot_at), key=utc)
        self._last_success.labels(kind).set(finished_at.timestamp())

    def _slots_since(self, kind: str, schedule: Schedule, clock: Clock) -> float:
        at, now, count = self._last_slot[kind], utc(clock.now()), 0
        while count < MOST_SLOTS:
            at = schedule.next_after(at)
            if utc(at) > now:
                break
            count += 1
        return count
