"""A period: one calendar month, as the monthly schedules count them."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date

from shared.schedule.errors import InvalidPeriodError


@dataclass(frozen=True, order=True)
class Period:
    """A calendar month; `str` gives `2027-01`, `Period.parse` reads it back."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise InvalidPeriodError(f"month must be 1 to 12, not {self.month}")
        if not 1 <= self.year <= 9999:
            raise InvalidPeriodError(f"year must be 1 to 9999, not {self.year}")

    @classmethod
    def of(cls, day: date) -> Period:
        return cls(day.year, day.month)

    @classmethod
    def parse(cls, text: str) -> Period:
        year, _, month = text.partition("-")
        if len(year) != 4 or len(month) != 2 or not (year + month).isdigit():
            raise InvalidPeriodError(f"expected a period as YYYY-MM, not {text!r}")
        return cls(int(year), int(month))

    def next(self) -> Period:
        if self.month == 12:
            return Period(self.year + 1, 1)
        return Period(self.year, self.month + 1)

    def previous(self) -> Period:
        if self.month == 1:
            return Period(self.year - 1, 12)
        return Period(self.year, self.month - 1)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"
