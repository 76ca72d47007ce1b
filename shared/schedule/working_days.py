"""Swedish working days: not a weekend, a public holiday, or a day off in practice."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from holidays.countries.sweden import Sweden

from shared.schedule.errors import NoSuchWorkingDayError


@dataclass(frozen=True)
class WorkingCalendar:
    """Monday to Friday, less Sweden's public holidays and, by default, the days off in practice
    (Midsummer Eve, Christmas Eve, New Year's Eve: the Annual Leave Act treats them as Sundays),
    both from the maintained `holidays` library (its `public` and `de_facto` categories)."""

    days_off_in_practice: bool = True

    def is_working_day(self, day: date) -> bool:
        on_weekday = day.weekday() < calendar.SATURDAY
        return on_weekday and day not in _closed_days(day.year, self.days_off_in_practice)

    def working_days(self, year: int, month: int) -> tuple[date, ...]:
        days = (date(year, month, d) for d in range(1, calendar.monthrange(year, month)[1] + 1))
        return tuple(day for day in days if self.is_working_day(day))

    def nth_working_day(self, year: int, month: int, n: int) -> date:
        """The n-th (1-based) working day of the month."""
        days = self.working_days(year, month)
        if not 1 <= n <= len(days):
            raise NoSuchWorkingDayError(f"{year}-{month:02d} has {len(days)} working days, not {n}")
        return days[n - 1]


@lru_cache(maxsize=64)
def _closed_days(year: int, days_off_in_practice: bool) -> frozenset[date]:
    """A year's public holidays (and days off in practice); Sundays are weekend days already."""
    categories = ("public", "de_facto") if days_off_in_practice else ("public",)
    return frozenset(Sweden(years=year, include_sundays=False, categories=categories))
