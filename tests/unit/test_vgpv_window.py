"""VGPV's window for every month of 2026–2028, a table written by hand from the Swedish calendar,
against what the settings' MonthlyWindow computes.

Each row: the month the window lies in → its first three working days. The window opens at the
start of the first, raises the alarm at the start of the third, closes at 15:00 on the third,
Stockholm time. Holidays near the start of a month: New Year's Day, Epiphany (6 Jan), Good Friday
and Easter Monday (Easter 2026-04-05, 2027-03-28, 2028-04-16), 1 May, Ascension (Easter + 39),
National Day (6 June); Midsummer Eve, Christmas and New Year's Eve fall late in their months.
"""

# The en dash of year ranges is meant.
# ruff: noqa: RUF002

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.vgpv.settings import VgpvSettings
from shared.schedule import Period

STOCKHOLM = ZoneInfo("Europe/Stockholm")
WINDOW = VgpvSettings().window()

FIRST_THREE_WORKING_DAYS: dict[tuple[int, int], tuple[int, int, int]] = {
    (2026, 1): (2, 5, 7),  # the 1st a Thu; 1 Jan New Year's Day (Thu), 6 Jan Epiphany (Tue)
    (2026, 2): (2, 3, 4),  # the 1st a Sun
    (2026, 3): (2, 3, 4),  # the 1st a Sun
    (2026, 4): (1, 2, 7),  # the 1st a Wed; 3 Apr Good Friday, 6 Apr Easter Monday
    (2026, 5): (4, 5, 6),  # the 1st a Fri; 1 May (Fri)
    (2026, 6): (1, 2, 3),  # the 1st a Mon; 6 June is a Saturday
    (2026, 7): (1, 2, 3),  # the 1st a Wed
    (2026, 8): (3, 4, 5),  # the 1st a Sat
    (2026, 9): (1, 2, 3),  # the 1st a Tue
    (2026, 10): (1, 2, 5),  # the 1st a Thu
    (2026, 11): (2, 3, 4),  # the 1st a Sun
    (2026, 12): (1, 2, 3),  # the 1st a Tue
    (2027, 1): (4, 5, 7),  # the 1st a Fri; 1 Jan (Fri), 6 Jan Epiphany (Wed)
    (2027, 2): (1, 2, 3),  # the 1st a Mon
    (2027, 3): (1, 2, 3),  # the 1st a Mon
    (2027, 4): (1, 2, 5),  # the 1st a Thu
    (2027, 5): (3, 4, 5),  # the 1st a Sat (1 May); Ascension the 6th, after
    (2027, 6): (1, 2, 3),  # the 1st a Tue
    (2027, 7): (1, 2, 5),  # the 1st a Thu
    (2027, 8): (2, 3, 4),  # the 1st a Sun
    (2027, 9): (1, 2, 3),  # the 1st a Wed
    (2027, 10): (1, 4, 5),  # the 1st a Fri
    (2027, 11): (1, 2, 3),  # the 1st a Mon
    (2027, 12): (1, 2, 3),  # the 1st a Wed
    (2028, 1): (3, 4, 5),  # the 1st a Sat; 1 Jan is a Saturday; Epiphany the 6th, after
    (2028, 2): (1, 2, 3),  # the 1st a Tue
    (2028, 3): (1, 2, 3),  # the 1st a Wed
    (2028, 4): (3, 4, 5),  # the 1st a Sat
    (2028, 5): (2, 3, 4),  # the 1st a Mon; 1 May (Mon)
    (2028, 6): (1, 2, 5),  # the 1st a Thu; 6 June National Day (Tue) is after the window
    (2028, 7): (3, 4, 5),  # the 1st a Sat
    (2028, 8): (1, 2, 3),  # the 1st a Tue
    (2028, 9): (1, 4, 5),  # the 1st a Fri
    (2028, 10): (2, 3, 4),  # the 1st a Sun
    (2028, 11): (1, 2, 3),  # the 1st a Wed
    (2028, 12): (1, 4, 5),  # the 1st a Fri
}


def at(year: int, month: int, day: int, clock: time) -> datetime:
    return datetime.combine(date(year, month, day), clock, tzinfo=STOCKHOLM)


@pytest.mark.parametrize(("month", "days"), FIRST_THREE_WORKING_DAYS.items())
def test_the_window_of_every_month_2026_to_2028(
    month: tuple[int, int], days: tuple[int, int, int]
) -> None:
    year, number = month
    period = Period(year, number).previous()  # the window in January is December's

    window = WINDOW.window(period)

    assert window.period == period
    assert window.opens_at == at(year, number, days[0], time(0))
    assert window.alarm_at == at(year, number, days[2], time(0))
    assert window.closes_at == at(year, number, days[2], time(15))
    assert window.is_open(window.closes_at - timedelta(seconds=1))
    assert not window.is_open(window.closes_at)
    assert not window.is_open(window.opens_at - timedelta(seconds=1))


def test_the_table_covers_every_month_of_the_three_years() -> None:
    assert list(FIRST_THREE_WORKING_DAYS) == [
        (year, month) for year in (2026, 2027, 2028) for month in range(1, 13)
    ]


def test_the_close_is_15_00_swedish_time_in_winter_and_in_summer() -> None:
    january = WINDOW.window(Period(2026, 12))  # closes 7 January 2027, CET
    july = WINDOW.window(Period(2027, 6))  # closes 5 July 2027, CEST
    assert january.closes_at.astimezone(UTC) == datetime(2027, 1, 7, 14, 0, tzinfo=UTC)
    assert july.closes_at.astimezone(UTC) == datetime(2027, 7, 5, 13, 0, tzinfo=UTC)


def test_the_open_window_is_the_one_a_moment_delivers_to() -> None:
    assert WINDOW.period_of(at(2027, 1, 7, time(14, 59))) == Period(2026, 12)
    assert WINDOW.period_of(at(2027, 1, 7, time(15, 0))) == Period(2027, 1)  # the next to open


def test_vgpvs_file_is_monthly_and_cannot_be_set_daily() -> None:
    with pytest.raises(ValueError, match="monthly"):
        VgpvSettings(periods="daily")  # what an environment can say
