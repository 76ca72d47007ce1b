"""Two guards and their owner: the dead-letter limit (a bad deploy stops), the register's circuit
breaker, and `Guards`, which feeds them a chunk's facts and says whether the worker pauses."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from shared.delivery.errors import ConfigurationError
from shared.delivery.fates import DeadLettered, Fate, HandedBack, hand_back_dead_letters

if TYPE_CHECKING:
    from shared.delivery.record import Call


@dataclass
class DlqLimit:
    """Trips when more than `max_share` of the last `window` events were dead-lettered.

    Like Arroyo's DlqLimit: once tripped the worker stops consuming and alarms; it stays tripped
    until the process restarts, so a human looks before traffic flows again.
    """

    max_share: float = 0.5
    window: int = 200
    min_events: int = 50
    _recent: deque[bool] = field(default_factory=deque, repr=False)
    tripped: bool = False

    def would_trip(self, outcomes: list[bool]) -> bool:
        """Would recording these outcomes (True = dead-lettered) trip the limit?"""
        recent = deque(self._recent, maxlen=self.window)
        recent.extend(outcomes)
        return len(recent) >= self.min_events and sum(recent) / len(recent) > self.max_share

    def record(self, outcomes: list[bool]) -> None:
        self._recent = deque(self._recent, maxlen=self.window)
        self._recent.extend(outcomes)

    def trip(self) -> None:
        self.tripped = True


class CircuitState(StrEnum):
    CLOSED = "closed"  # calls flow
    OPEN = "open"  # register considered down: input paused, nothing sent
    HALF_OPEN = "half_open"  # one probe event at a time


@dataclass
class CircuitBreaker:
    """Opens when most recent calls failed transiently; probes with exponential backoff."""

    window: int = 20
    min_calls: int = 10
    failure_share: float = 0.5
    consecutive_failures: int = 5
    probe_after: timedelta = timedelta(seconds=5)
    max_probe_after: timedelta = timedelta(seconds=60)
    state: CircuitState = CircuitState.CLOSED
    opened_at: datetime | None = None
    _calls: deque[bool] = field(default_factory=deque, repr=False)  # True = transient failure
    _streak: int = 0
    _backoff: timedelta | None = None

    def record(self, *, failed: bool, now: datetime) -> None:
        if self._calls.maxlen != self.window:  # a new breaker (or its window changed)
            self._calls = deque(self._calls, maxlen=self.window)
        self._calls.append(failed)
        self._streak = self._streak + 1 if failed else 0
        if self.state is CircuitState.HALF_OPEN:
            if failed:
                self._open(now, backoff=min(self.max_probe_after, 2 * self.current_backoff))
            else:
                self.close()
            return
        share = sum(self._calls) / len(self._calls)
        too_many = len(self._calls) >= self.min_calls and share >= self.failure_share
        if self.state is CircuitState.CLOSED and (
            too_many or self._streak >= self.consecutive_failures
        ):
            self._open(now, backoff=self.probe_after)

    @property
    def current_backoff(self) -> timedelta:
        return self._backoff or self.probe_after

    def probe_due_at(self) -> datetime | None:
        if self.state is not CircuitState.OPEN or self.opened_at is None:
            return None
        return self.opened_at + self.current_backoff

    def trip(self, now: datetime) -> None:
        """Open at once with the longest backoff (a configuration error: probe rarely)."""
        self._open(now, backoff=self.max_probe_after)

    def half_open(self) -> None:
        self.state = CircuitState.HALF_OPEN

    def close(self) -> None:
        self.state = CircuitState.CLOSED
        self._calls.clear()
        self._streak = 0
        self._backoff = None
        self.opened_at = None

    def _open(self, now: datetime, *, backoff: timedelta) -> None:
        self.state = CircuitState.OPEN
        self.opened_at = now
        self._backoff = backoff


@dataclass(frozen=True)
class Pause:
    """Stop consuming (both the input and the retry tiers), with an alarm."""

    reason: str  # circuit_open | configuration | dlq_limit
    message: str


@dataclass(frozen=True)
class Resume:
    """The register answers again: consume again if paused for the circuit or configuration."""


Flow = Pause | Resume | None  # None: as it is (a probe is under way)


class Guards:
    """The one owner of the circuit breaker and the dead-letter limit. A chunk hands them its
    register calls and fates; they answer whether the register is down, which dead letters may
    leave, and whether consumption pauses."""

    def __init__(self, circuit: CircuitBreaker | None = None, dlq_limit: DlqLimit | None = None):
        self.circuit = circuit or CircuitBreaker()
        self.dlq_limit = dlq_limit or DlqLimit()

    def register_down(self, calls: Sequence[Call]) -> bool:
        """Count the chunk's calls; is the register down now (circuit not closed)?"""
        for call in calls:
            self.circuit.record(failed=call.failed, now=call.at)
        return self.circuit.state is not CircuitState.CLOSED

    def admit(self, fates: Sequence[Fate]) -> list[Fate]:
        """A bad deploy must not dead-letter a day of traffic: once more than the limit's share
        of recent events would be dead letters, none leaves (they stay in Kafka) from then on."""
        counted = [isinstance(f, DeadLettered) for f in fates if not isinstance(f, HandedBack)]
        if self.dlq_limit.tripped or self.dlq_limit.would_trip(counted):
            self.dlq_limit.trip()
            return hand_back_dead_letters(fates, "dead-letter limit tripped")
        self.dlq_limit.record(counted)
        return list(fates)

    def flow(self, configuration: ConfigurationError | None, now: datetime) -> Flow:
        """After a chunk: pause (and why), resume, or carry on as it is."""
        if configuration is not None:
            self.circuit.trip(now)  # one is enough: the event is not at fault
        if self.dlq_limit.tripped:
            return Pause(
                "dlq_limit",
                "dead-letter limit tripped: more than "
                f"{self.dlq_limit.max_share:.0%} of recent events were dead-lettered;"
                " consumption stopped until restart",
            )
        if configuration is not None:
            return Pause(
                "configuration",
                f"configuration error, not the events' fault: {configuration.message}",
            )
        if self.circuit.state is CircuitState.OPEN:
            return Pause(
                "circuit_open", "register unavailable: circuit open, input paused, probing"
            )
        if self.circuit.state is CircuitState.CLOSED:
            return Resume()
        return None
