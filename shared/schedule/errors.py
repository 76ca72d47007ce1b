"""The errors a schedule raises: all are mistakes in its configuration or in the caller's input.

ScheduleError (ValueError)
├── NaiveDatetimeError     a moment without a zone: it cannot be placed on any clock
├── EmptyScheduleError     a schedule with no times would never fire
├── InvalidPeriodError     a month that is not one (13, or "2027-1")
└── NoSuchWorkingDayError  the n-th working day of a month that has fewer
"""

from __future__ import annotations


class ScheduleError(ValueError):
    """Base: a schedule cannot be built or asked as given."""


class NaiveDatetimeError(ScheduleError):
    """A datetime without a zone was given where a moment is needed."""


class EmptyScheduleError(ScheduleError):
    """A schedule was given no times."""


class InvalidPeriodError(ScheduleError):
    """Not a calendar month."""


class NoSuchWorkingDayError(ScheduleError):
    """The month has fewer working days than asked for (or n < 1)."""
