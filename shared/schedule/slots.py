"""When a schedule fires: at local times every day, or on a working day of every month."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from shared.schedule.errors import EmptyScheduleError, NaiveDatetimeError, NoSuchWorkingDayError
from shared.schedule.periods import Period
from shared.schedule.working_days import WorkingCalendar


class Schedule(Protocol):
    """The moments a job runs at, as aware datetimes in the schedule's zone."""

    def next_after(self, now: datetime) -> datetime: ...

    def previous_at_or_before(self, now: datetime) -> datetime: ...


def slot_id(kind: str, at: datetime) -> str:
    """The name every replica gives one slot: its kind and its local time, to the minute."""
    return f"{kind}/{at.isoformat(timespec='minutes')}"


def parse_times(texts: Iterable[str]) -> tuple[time, ...]:
    """['22:30', '11:30'] → (time(11, 30), time(22, 30))."""
    return tuple(sorted(time.fromisoformat(text) for text in texts))


def wall_clock(day: date, at: time, zone: ZoneInfo) -> datetime:
    """`at` on `day` in `zone` as a moment that exists: a time the zone skips that day (spring
    forward) falls past the gap by the zone's rules; one it repeats (fall back) is the first."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC).astimezone(zone)


def utc(moment: datetime) -> datetime:
    """The same moment in UTC, where comparing and subtracting never trips on a zone's folds."""
    if moment.utcoffset() is None:
        raise NaiveDatetimeError(f"{moment.isoformat()} has no zone: which clock is it on?")
    return moment.astimezone(UTC)


def _first_after(moments: Iterable[datetime], now: datetime) -> datetime:
    after = utc(now)
    return min((at for at in moments if at > after), key=utc)


def _last_at_or_before(moments: Iterable[datetime], now: datetime) -> datetime:
    until = utc(now)
    return max((at for at in moments if at <= until), key=utc)


@dataclass(frozen=True)
class DailySlots:
    """Every day, weekends and holidays too, at the local wall-clock `times` in `zone`."""

    times: tuple[time, ...]
    zone: ZoneInfo

    def __post_init__(self) -> None:
        if not self.times:
            raise EmptyScheduleError("no times: the schedule would never fire")
        object.__setattr__(self, "times", tuple(sorted(set(self.times))))

    def next_after(self, now: datetime) -> datetime:
        return _first_after(self._around(now), now)

    def previous_at_or_before(self, now: datetime) -> datetime:
        return _last_at_or_before(self._around(now), now)

    def _around(self, now: datetime) -> Iterator[datetime]:
        today = utc(now).astimezone(self.zone).date()
        for days in range(-2, 2):
            for at in self.times:
                yield wall_clock(today + timedelta(days=days), at, self.zone)


@dataclass(frozen=True)
class MonthlySlots:
    """Every month at local time `at` on its `working_day`-th working day."""

    calendar: WorkingCalendar
    zone: ZoneInfo
    working_day: int = 1
    at: time = time(0)

    def __post_init__(self) -> None:
        if self.working_day < 1:
            raise NoSuchWorkingDayError(f"working days count from 1, not {self.working_day}")

    def in_month(self, month: Period) -> datetime:
        day = self.calendar.nth_working_day(month.year, month.month, self.working_day)
        return wall_clock(day, self.at, self.zone)

    def next_after(self, now: datetime) -> datetime:
        return _first_after(self._around(now), now)

    def previous_at_or_before(self, now: datetime) -> datetime:
        return _last_at_or_before(self._around(now), now)

    def _around(self, now: datetime) -> Iterator[datetime]:
        month = Period.of(utc(now).astimezone(self.zone).date())
        for period in (month.previous(), month, month.next()):
            yield self.in_month(period)
