"""A period's delivery window: a month's opens and closes on working days of the month after it,
a day's on the day after it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from typing import Protocol
from zoneinfo import ZoneInfo

from shared.schedule.errors import InvalidPeriodError, NoSuchWorkingDayError
from shared.schedule.periods import Period
from shared.schedule.slots import DailySlots, MonthlySlots, Schedule, utc, wall_clock
from shared.schedule.working_days import WorkingCalendar


@dataclass(frozen=True)
class Window:
    """When `period`'s file may be delivered, and when one not yet accepted raises the alarm."""

    period: Period
    opens_at: datetime
    closes_at: datetime
    alarm_at: datetime

    def is_open(self, moment: datetime) -> bool:
        return self.opens_at <= utc(moment) < self.closes_at


@dataclass(frozen=True)
class MonthlyWindow:
    """Each period's window in the month after it: from the start of working day
    `open_on_working_day` until `close_at` on working day `close_on_working_day`, local time in
    `zone`. The alarm is at the start of working day `alarm_on_working_day` (None: the closing
    day, so the last day is not spent unaware)."""

    calendar: WorkingCalendar
    zone: ZoneInfo
    open_on_working_day: int = 1
    close_on_working_day: int = 3
    close_at: time = time(15, 0)
    alarm_on_working_day: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.open_on_working_day <= self.close_on_working_day:
            raise NoSuchWorkingDayError(
                f"the window must open on a working day (from 1) no later than it closes: "
                f"{self.open_on_working_day}, {self.close_on_working_day}"
            )
        if not 1 <= self._alarm_day <= self.close_on_working_day:
            raise NoSuchWorkingDayError(
                f"the alarm must come by the closing day, not on {self._alarm_day}"
            )

    @property
    def openings(self) -> MonthlySlots:
        """The schedule of the windows' openings (a job that delivers runs on it)."""
        return MonthlySlots(self.calendar, self.zone, self.open_on_working_day, time(0))

    @property
    def closings(self) -> MonthlySlots:
        return MonthlySlots(self.calendar, self.zone, self.close_on_working_day, self.close_at)

    @property
    def alarms(self) -> MonthlySlots:
        """The schedule of the alarms (a job that checks for files not yet accepted runs on it)."""
        return MonthlySlots(self.calendar, self.zone, self._alarm_day, time(0))

    @property
    def _alarm_day(self) -> int:
        if self.alarm_on_working_day is None:
            return self.close_on_working_day
        return self.alarm_on_working_day

    def window(self, period: Period) -> Window:
        if period.day is not None:
            raise InvalidPeriodError(f"a monthly window needs a month, not the day {period}")
        month = period.next()
        return Window(
            period,
            opens_at=self.openings.in_month(month),
            closes_at=self.closings.in_month(month),
            alarm_at=self.alarms.in_month(month),
        )

    def period_of(self, moment: datetime) -> Period:
        """The period whose window is open at `moment`, or else the next one to open."""
        previous = Period.of(utc(moment).astimezone(self.zone).date()).previous()
        if utc(moment) < self.window(previous).closes_at:
            return previous
        return previous.next()

    def next_window_after(self, now: datetime) -> Window:
        """The first window that opens strictly after `now`."""
        opens_at = self.openings.next_after(now)
        return self.window(Period.of(opens_at.date()).previous())


@dataclass(frozen=True)
class DailyWindow:
    """Each day's window on the day after it, weekends and holidays too (a report that is
    machine-read, not a payment file): from the start of the next day until `close_at`, local
    time in `zone`; the alarm at `alarm_at` that day."""

    zone: ZoneInfo
    close_at: time = time(15, 0)
    alarm_at: time = time(12, 0)

    def __post_init__(self) -> None:
        if not time(0) < self.close_at:
            raise NoSuchWorkingDayError("a daily window cannot close at midnight, as it opens")
        if not self.alarm_at <= self.close_at:
            raise NoSuchWorkingDayError(
                f"the alarm must come by the close, not at {self.alarm_at.isoformat('minutes')} "
                f"after {self.close_at.isoformat('minutes')}"
            )

    @property
    def alarms(self) -> DailySlots:
        """The schedule of the alarms (a job that checks for files not yet accepted runs on it)."""
        return DailySlots((self.alarm_at,), self.zone)

    def window(self, period: Period) -> Window:
        if period.day is None:
            raise InvalidPeriodError(f"a daily window needs a day, not the month {period}")
        day = period.next().first_day
        return Window(
            period,
            opens_at=wall_clock(day, time(0), self.zone),
            closes_at=wall_clock(day, self.close_at, self.zone),
            alarm_at=wall_clock(day, self.alarm_at, self.zone),
        )

    def period_of(self, moment: datetime) -> Period:
        """The day whose window is open at `moment` (yesterday's, until it closes), or else the
        next one to open (today's)."""
        today = Period.of(utc(moment).astimezone(self.zone).date(), "daily")
        if utc(moment) < self.window(today.previous()).closes_at:
            return today.previous()
        return today


class PeriodWindows(Protocol):
    """A register's windows, one per period (`MonthlyWindow`, `DailyWindow`)."""

    @property
    def alarms(self) -> Schedule: ...

    def window(self, period: Period) -> Window: ...

    def period_of(self, moment: datetime) -> Period: ...
