"""A dependency that fails softly: retried with back-off, its outage logged when it starts, once a
minute while it lasts and when it ends, never a line per attempt."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from shared.logging import get_logger

log = get_logger(__name__)
T = TypeVar("T")


@dataclass
class Outage:
    """One dependency's state: up, or down since when and after how many attempts."""

    dependency: str  # "ledger", "slot claims"
    fields: dict[str, Any] = field(default_factory=dict)  # worker=… on every line
    first_delay: float = 1.0
    max_delay: float = 30.0
    summary_every: float = 60.0
    clock: Callable[[], float] = time.monotonic
    since: float | None = None
    attempts: int = 0
    delay: float = 0.0
    _summarised_at: float = 0.0

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, error: BaseException) -> float:
        """Note a failed attempt; the seconds to wait before the next one."""
        now = self.clock()
        reason = f"{type(error).__name__}: {error}"
        if self.since is None:
            self.since, self.attempts, self.delay, self._summarised_at = (
                now,
                1,
                self.first_delay,
                now,
            )
            log.error("dependency_down", dependency=self.dependency, error=reason, **self.fields)
            return self.delay
        self.attempts += 1
        self.delay = min(self.max_delay, self.delay * 2)
        if now - self._summarised_at >= self.summary_every:
            self._summarised_at = now
            log.error(
                "dependency_still_down",
                dependency=self.dependency,
                seconds=round(now - self.since),
                attempts=self.attempts,
                error=reason,
                **self.fields,
            )
        return self.delay

    def recovered(self) -> None:
        """The dependency answered: log the end of its outage, if there was one."""
        if self.since is None:
            return
        log.info(
            "dependency_back",
            dependency=self.dependency,
            seconds=round(self.clock() - self.since, 1),
            attempts=self.attempts,
            **self.fields,
        )
        self.since, self.attempts, self.delay = None, 0, 0.0


async def until_available(
    attempt: Callable[[], Awaitable[T]],
    outage: Outage,
    transient: Callable[[BaseException], bool],
    sleep: Callable[[float], Awaitable[None]],
) -> T:
    """`attempt()` until it succeeds: a transient failure waits (back-off), any other raises."""
    while True:
        try:
            result = await attempt()
        except Exception as exc:
            if not transient(exc):
                raise
            await sleep(outage.failed(exc))
            continue
        outage.recovered()
        return result
