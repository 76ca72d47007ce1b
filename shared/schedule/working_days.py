"""Swedish working days: not a weekend, a public holiday, or a day off in practice."""

from __future__ import annotations

import calendar
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from types import MappingProxyType

from holidays.countries.sweden import Sweden

from shared.schedule.errors import NoSuchWorkingDayError, UnknownDayOffError


def _midsummer_eve(year: int) -> date:
    """The Friday between 19 and 25 June."""
    june_19 = date(year, 6, 19)
    return june_19 + timedelta(days=(calendar.FRIDAY - june_19.weekday()) % 7)


DAYS_OFF_RULES: Mapping[str, Callable[[int], date]] = MappingProxyType(
    {
        "midsummer_eve": _midsummer_eve,
        "christmas_eve": lambda year: date(year, 12, 24),
        "new_years_eve": lambda year: date(year, 12, 31),
    }
)
"""Days that are not public holidays but off in practice (the Annual Leave Act treats them as
Sundays), by the name `WorkingCalendar.days_off` uses: a rule per day, not a table of dates."""

DEFAULT_DAYS_OFF = frozenset(DAYS_OFF_RULES)


@dataclass(frozen=True)
class WorkingCalendar:
    """Monday to Friday, less Sweden's public holidays (from the maintained `holidays` library)
    and the `days_off` named in `DAYS_OFF_RULES` (a setting: all three by default)."""

    days_off: frozenset[str] = DEFAULT_DAYS_OFF

    def __post_init__(self) -> None:
        unknown = sorted(set(self.days_off) - DAYS_OFF_RULES.keys())
        if unknown:
            known = ", ".join(sorted(DAYS_OFF_RULES))
            raise UnknownDayOffError(f"unknown days off {unknown}; known: {known}")
        object.__setattr__(self, "days_off", frozenset(self.days_off))

    def is_working_day(self, day: date) -> bool:
        on_weekday = day.weekday() < calendar.SATURDAY
        return on_weekday and day not in _closed_days(day.year, self.days_off)

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
def _closed_days(year: int, days_off: frozenset[str]) -> frozenset[date]:
    """A year's public holidays and named days off."""
    public = Sweden(years=year, include_sundays=False)  # Sundays are weekend days already
    return frozenset(public) | {DAYS_OFF_RULES[name](year) for name in days_off}
