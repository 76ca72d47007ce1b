"""The retry schedule: which tier comes next, and when an event has had its chances."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.durations import parse_delay


@dataclass(frozen=True)
class Tier:
    name: str  # "30s", as in the topic name <worker>.retry.<name>
    delay: timedelta


@dataclass(frozen=True)
class RetryPolicy:
    """Tiers shortest first; an event is retried at most once per tier and within `horizon`."""

    tiers: tuple[Tier, ...]
    horizon: timedelta

    @classmethod
    def from_names(cls, names: list[str], horizon: str = "1d") -> RetryPolicy:
        tiers = tuple(Tier(name, timedelta(seconds=parse_delay(name))) for name in names)
        return cls(tiers, timedelta(seconds=parse_delay(horizon)))

    def next_tier(
        self,
        failures_so_far: int,
        first_failure_at: datetime,
        now: datetime,
        *,
        at_least: float | None = None,
    ) -> Tier | None:
        """The tier for the next attempt after `failures_so_far` failures, or None: exhausted.

        `at_least` (a register's Retry-After, in seconds) skips to the first tier that long.
        """
        candidates = self.tiers[failures_so_far - 1 :] if failures_so_far >= 1 else self.tiers
        if at_least is not None:
            candidates = tuple(t for t in candidates if t.delay.total_seconds() >= at_least) or (
                candidates[-1:] if candidates else ()
            )
        if not candidates:
            return None
        tier = candidates[0]
        if now + tier.delay - first_failure_at > self.horizon:
            return None
        return tier

    def tier(self, name: str) -> Tier:
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise KeyError(f"no retry tier {name!r} (tiers: {[t.name for t in self.tiers]})")
