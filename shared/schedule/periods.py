"""A period: one calendar month (the monthly schedules' periods), or one day (a daily report's)."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from functools import total_ordering
from typing import Literal

from shared.schedule.errors import InvalidPeriodError

Cadence = Literal["monthly", "daily"]
"""How long a register's periods are: a calendar month or a day."""


@total_ordering
@dataclass(frozen=True)
class Period:
    """A calendar month (`day` None; `str` gives `2027-01`) or one day of it (`2027-01-15`);
    `Period.parse` reads either back. Periods of one cadence order by time, and so do their
    texts."""

    year: int
    month: int
    day: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise InvalidPeriodError(f"month must be 1 to 12, not {self.month}")
        if not 1 <= self.year <= 9999:
            raise InvalidPeriodError(f"year must be 1 to 9999, not {self.year}")
        if self.day is not None:
            last = calendar.monthrange(self.year, self.month)[1]
            if not 1 <= self.day <= last:
                raise InvalidPeriodError(
                    f"day must be 1 to {last} in {self.year:04d}-{self.month:02d}, not {self.day}"
                )

    @classmethod
    def of(cls, day: date, cadence: Cadence = "monthly") -> Period:
        """The period of `cadence` that `day` falls in."""
        if cadence == "daily":
            return cls(day.year, day.month, day.day)
        return cls(day.year, day.month)

    @classmethod
    def parse(cls, text: str) -> Period:
        """`YYYY-MM` (a month) or `YYYY-MM-DD` (a day)."""
        parts = text.split("-")
        if (
            len(parts) not in (2, 3)
            or len(parts[0]) != 4
            or any(len(part) != 2 for part in parts[1:])
            or not "".join(parts).isdigit()
        ):
            raise InvalidPeriodError(f"expected a period as YYYY-MM or YYYY-MM-DD, not {text!r}")
        numbers = [int(part) for part in parts]
        return cls(numbers[0], numbers[1], numbers[2] if len(numbers) == 3 else None)

    @property
    def cadence(self) -> Cadence:
        return "monthly" if self.day is None else "daily"

    def next(self) -> Period:
        if self.day is not None:
            return Period.of(self.first_day + timedelta(days=1), "daily")
        if self.month == 12:
            return Period(self.year + 1, 1)
        return Period(self.year, self.month + 1)

    def previous(self) -> Period:
        if self.day is not None:
            return Period.of(self.first_day - timedelta(days=1), "daily")
        if self.month == 1:
            return Period(self.year - 1, 12)
        return Period(self.year, self.month - 1)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, self.day or 1)

    @property
    def last_day(self) -> date:
        if self.day is not None:
            return self.first_day
        return date(self.year, self.month, calendar.monthrange(self.year, self.month)[1])

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Period):
            return NotImplemented
        return self._order < other._order

    @property
    def _order(self) -> tuple[int, int, int]:
        """A month before its days, as its text sorts (`2027-01` < `2027-01-01`)."""
        return (self.year, self.month, self.day or 0)

    def __contains__(self, day: date) -> bool:
        return self.first_day <= day <= self.last_day

    def __str__(self) -> str:
        month = f"{self.year:04d}-{self.month:02d}"
        return month if self.day is None else f"{month}-{self.day:02d}"
