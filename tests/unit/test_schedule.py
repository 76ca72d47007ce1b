"""The shared scheduler: working days, periods, windows, wall-clock slots and claims."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from structlog.testing import capture_logs

from shared.delivery.clock import ManualClock
from shared.schedule import (
    DailySlots,
    DailyWindow,
    EmptyScheduleError,
    InvalidPeriodError,
    MonthlySlots,
    MonthlyWindow,
    NaiveDatetimeError,
    NoSuchWorkingDayError,
    Period,
    Schedule,
    ScheduleMetrics,
    SlotClaims,
    WorkingCalendar,
    parse_times,
    run_schedule,
    slot_id,
)
from shared.schedule.claims import slots
from shared.schedule.report import schedule_lines

STOCKHOLM = ZoneInfo("Europe/Stockholm")
CALENDAR = WorkingCalendar()
WINDOWS = MonthlyWindow(CALENDAR, STOCKHOLM)


def local(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=STOCKHOLM)


# --- working days -------------------------------------------------------------------------------


def test_january_2027_starts_working_on_the_4th_and_skips_epiphany() -> None:
    # Given the 1st (New Year's Day), the 2nd and 3rd (a weekend) and the 6th (Epiphany) off
    # When the first three working days are asked for
    first_three = [CALENDAR.nth_working_day(2027, 1, n) for n in (1, 2, 3)]
    # Then they are the 4th, 5th and 7th, as the handbook says
    assert first_three == [date(2027, 1, 4), date(2027, 1, 5), date(2027, 1, 7)]
    assert CALENDAR.working_days(2027, 1)[:3] == tuple(first_three)


@pytest.mark.parametrize(
    ("day", "why"),
    [
        (date(2027, 6, 25), "Midsummer Eve (a day off in practice)"),
        (date(2027, 12, 24), "Christmas Eve (a day off in practice)"),
        (date(2027, 12, 31), "New Year's Eve (a day off in practice)"),
        (date(2027, 1, 9), "a Saturday"),
        (date(2027, 1, 10), "a Sunday"),
        (date(2027, 3, 26), "Good Friday"),
        (date(2027, 3, 29), "Easter Monday"),
        (date(2027, 5, 6), "Ascension Day"),
        (date(2026, 5, 1), "May Day on a Friday"),
        (date(2026, 6, 19), "Midsummer Eve 2026"),
        (date(2026, 12, 24), "Christmas Eve 2026, a Thursday"),
    ],
)
def test_days_off_are_not_working_days(day: date, why: str) -> None:
    assert not CALENDAR.is_working_day(day), why


@pytest.mark.parametrize(
    "day",
    [
        date(2027, 1, 5),  # Twelfth Night: a half day at most, still a working day
        date(2027, 6, 24),  # the day before Midsummer Eve
        date(2027, 12, 23),
        date(2027, 12, 27),  # Christmas Day and Boxing Day fell on the weekend: no day in lieu
        date(2027, 3, 25),  # Maundy Thursday
    ],
)
def test_ordinary_weekdays_are_working_days(day: date) -> None:
    assert CALENDAR.is_working_day(day)


def test_the_days_off_in_practice_are_a_setting() -> None:
    # Given a calendar that counts the public holidays only
    public_only = WorkingCalendar(days_off_in_practice=False)
    # Then Midsummer Eve, Christmas Eve and New Year's Eve are worked, Christmas Day is not
    assert public_only.is_working_day(date(2027, 6, 25))
    assert public_only.is_working_day(date(2027, 12, 24))
    assert public_only.is_working_day(date(2027, 12, 31))
    assert not public_only.is_working_day(date(2026, 12, 25))


@pytest.mark.parametrize("year", range(2024, 2036))
def test_the_days_off_in_practice_are_the_three_eves(year: int) -> None:
    # Given the library's days off in practice in Sweden (its de_facto category)
    de_facto = holidays.country_holidays("SE", years=year, categories=("de_facto",))
    # Then they are the three eves, Midsummer Eve a Friday between 19 and 25 June
    (midsummer_eve,) = [day for day in de_facto if day.month == 6]
    assert set(de_facto) == {midsummer_eve, date(year, 12, 24), date(year, 12, 31)}
    assert midsummer_eve.weekday() == 4
    assert 19 <= midsummer_eve.day <= 25


def test_a_month_has_only_so_many_working_days() -> None:
    # Given February 2027: four full weeks, no holiday
    assert len(CALENDAR.working_days(2027, 2)) == 20
    # Then the 21st working day, or the 0th, does not exist
    with pytest.raises(NoSuchWorkingDayError, match="20 working days"):
        CALENDAR.nth_working_day(2027, 2, 21)
    with pytest.raises(NoSuchWorkingDayError):
        CALENDAR.nth_working_day(2027, 2, 0)


# --- periods ------------------------------------------------------------------------------------


def test_periods_step_across_year_ends() -> None:
    assert Period(2026, 12).next() == Period(2027, 1)
    assert Period(2027, 1).previous() == Period(2026, 12)
    assert Period(2027, 6).next().previous() == Period(2027, 6)
    assert Period(2026, 11) < Period(2026, 12) < Period(2027, 1)


def test_a_period_reads_and_writes_as_year_and_month() -> None:
    assert str(Period(2027, 1)) == "2027-01"
    assert Period.parse("2027-01") == Period(2027, 1)
    assert Period.of(date(2028, 2, 14)) == Period(2028, 2)
    assert Period(2028, 2).first_day == date(2028, 2, 1)
    assert Period(2028, 2).last_day == date(2028, 2, 29)  # a leap year
    assert Period(2027, 12).last_day == date(2027, 12, 31)


@pytest.mark.parametrize("text", ["2027-1", "2027-13", "27-01", "2027/01", "2027-0x"])
def test_a_period_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(InvalidPeriodError):
        Period.parse(text)


def test_a_day_is_a_period_too() -> None:
    day = Period.of(date(2027, 12, 31), "daily")
    assert (str(day), day.cadence, day.first_day, day.last_day) == (
        "2027-12-31",
        "daily",
        date(2027, 12, 31),
        date(2027, 12, 31),
    )
    assert Period.parse("2027-12-31") == day
    assert day.next() == Period(2028, 1, 1)
    assert Period(2028, 3, 1).previous() == Period(2028, 2, 29)  # a leap year
    assert date(2027, 12, 31) in day
    assert date(2027, 12, 30) not in day
    assert date(2027, 12, 30) in Period(2027, 12)


def test_periods_order_as_their_texts_do() -> None:
    # The state compares periods as text: a month sorts before its days, days in order
    periods = [Period(2027, 2), Period(2027, 1, 31), Period(2027, 1), Period(2027, 1, 2)]
    assert sorted(periods) == sorted(periods, key=str)
    assert [str(p) for p in sorted(periods)] == ["2027-01", "2027-01-02", "2027-01-31", "2027-02"]


@pytest.mark.parametrize("text", ["2027-02-29", "2027-02-00", "2027-02-1", "2027-02-01-01"])
def test_a_day_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(InvalidPeriodError):
        Period.parse(text)


# --- monthly windows ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "opens_at", "closes_at"),
    [
        # January 2027: the 1st, a weekend and Epiphany come first
        (Period(2026, 12), local(2027, 1, 4), local(2027, 1, 7, 15)),
        (Period(2027, 1), local(2027, 2, 1), local(2027, 2, 3, 15)),
        # April 2027: Thursday, Friday, then Monday; summer time (+02:00)
        (Period(2027, 3), local(2027, 4, 1), local(2027, 4, 5, 15)),
        # April 2024: starts on Easter Monday
        (Period(2024, 3), local(2024, 4, 2), local(2024, 4, 4, 15)),
    ],
)
def test_a_periods_window_is_the_first_three_working_days_of_the_next_month(
    period: Period, opens_at: datetime, closes_at: datetime
) -> None:
    # When the window of the period's file is asked for
    window = WINDOWS.window(period)
    # Then it opens at the start of the next month's first working day, closes at 15:00 on its
    # third, and the alarm is at the start of that third day
    assert window.period == period
    assert window.opens_at == opens_at
    assert window.closes_at == closes_at
    assert window.alarm_at == closes_at.replace(hour=0)


def test_the_january_2027_window_in_utc() -> None:
    window = WINDOWS.window(Period(2026, 12))
    assert window.opens_at.astimezone(UTC) == datetime(2027, 1, 3, 23, tzinfo=UTC)
    assert window.closes_at.astimezone(UTC) == datetime(2027, 1, 7, 14, tzinfo=UTC)
    assert window.is_open(datetime(2027, 1, 3, 23, tzinfo=UTC))
    assert not window.is_open(datetime(2027, 1, 3, 22, 59, tzinfo=UTC))
    assert not window.is_open(datetime(2027, 1, 7, 14, tzinfo=UTC))


def test_the_alarm_can_come_earlier() -> None:
    # Given an alarm at the start of the second working day
    early = MonthlyWindow(CALENDAR, STOCKHOLM, alarm_on_working_day=2)
    # Then January 2027's is at the start of the 5th
    assert early.window(Period(2026, 12)).alarm_at == local(2027, 1, 5)


@pytest.mark.parametrize(
    ("moment", "period"),
    [
        (local(2027, 1, 2, 12), Period(2026, 12)),  # before the window opens: the next to open
        (local(2027, 1, 4), Period(2026, 12)),  # open
        (local(2027, 1, 7, 14, 59), Period(2026, 12)),  # the last minute
        (local(2027, 1, 7, 15), Period(2027, 1)),  # closed: January's window is the next
        (local(2027, 1, 31, 23, 30), Period(2027, 1)),
        (datetime(2027, 1, 31, 23, 30, tzinfo=UTC), Period(2027, 1)),  # 1 February, local
        (local(2026, 12, 31, 23, 59), Period(2026, 12)),
    ],
)
def test_the_period_of_a_moment_is_the_one_whose_window_is_open_or_next(
    moment: datetime, period: Period
) -> None:
    assert WINDOWS.period_of(moment) == period


def test_the_next_window_opens_strictly_after_now() -> None:
    assert WINDOWS.next_window_after(local(2027, 1, 3, 12)).period == Period(2026, 12)
    assert WINDOWS.next_window_after(local(2027, 1, 4)).period == Period(2027, 1)
    assert WINDOWS.next_window_after(local(2027, 1, 5)).opens_at == local(2027, 2, 1)


def test_a_monthly_window_is_not_a_days() -> None:
    with pytest.raises(InvalidPeriodError, match="needs a month"):
        WINDOWS.window(Period(2027, 1, 15))


def test_a_window_that_closes_before_it_opens_is_refused() -> None:
    with pytest.raises(NoSuchWorkingDayError):
        MonthlyWindow(CALENDAR, STOCKHOLM, open_on_working_day=4, close_on_working_day=3)
    with pytest.raises(NoSuchWorkingDayError):
        MonthlyWindow(CALENDAR, STOCKHOLM, alarm_on_working_day=0)


def test_monthly_slots_fire_on_a_working_day_each_month() -> None:
    # Given the alarms of the windows: the start of each month's third working day
    alarms = WINDOWS.alarms
    # Then they fire on the 7th of January 2027 and the 3rd of February
    assert alarms.next_after(local(2027, 1, 1)) == local(2027, 1, 7)
    assert alarms.next_after(local(2027, 1, 7)) == local(2027, 2, 3)
    assert alarms.previous_at_or_before(local(2027, 1, 7)) == local(2027, 1, 7)
    assert alarms.previous_at_or_before(local(2027, 1, 6)) == local(2026, 12, 3)
    assert slot_id("alarm", local(2027, 1, 7)) == "alarm/2027-01-07T00:00+01:00"


def test_monthly_slots_at_a_time_of_day() -> None:
    reports = MonthlySlots(CALENDAR, STOCKHOLM, working_day=2, at=time(6, 30))
    assert reports.next_after(local(2027, 3, 31)) == local(2027, 4, 2, 6, 30)


# --- daily windows ------------------------------------------------------------------------------

DAYS = DailyWindow(STOCKHOLM, close_at=time(15), alarm_at=time(12))


def test_a_days_window_is_the_next_day_until_its_close_weekends_too() -> None:
    # Friday 8 January 2027's report goes on Saturday the 9th, as every day's does
    window = DAYS.window(Period(2027, 1, 8))
    assert (window.opens_at, window.alarm_at, window.closes_at) == (
        local(2027, 1, 9),
        local(2027, 1, 9, 12),
        local(2027, 1, 9, 15),
    )
    # New Year's Eve's on New Year's Day; the last of March 2027's across the spring change
    assert DAYS.window(Period(2027, 12, 31)).opens_at == local(2028, 1, 1)
    spring = DAYS.window(Period(2027, 3, 27))  # clocks go forward on Sunday 28 March
    assert spring.closes_at.astimezone(UTC) == datetime(2027, 3, 28, 13, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "period", "is_open"),
    [
        (local(2027, 1, 9, 0, 0), Period(2027, 1, 8), True),  # yesterday's window opens
        (local(2027, 1, 9, 14, 59), Period(2027, 1, 8), True),  # its last minute
        (local(2027, 1, 9, 15), Period(2027, 1, 9), False),  # closed: today's is the next
        (local(2027, 1, 9, 23, 59), Period(2027, 1, 9), False),
        (datetime(2027, 1, 9, 23, 30, tzinfo=UTC), Period(2027, 1, 9), True),  # 00:30, the 10th
    ],
)
def test_the_day_of_a_moment_is_the_one_whose_window_is_open_or_next(
    moment: datetime, period: Period, is_open: bool
) -> None:
    assert DAYS.period_of(moment) == period
    assert DAYS.window(period).is_open(moment) == is_open


def test_a_daily_windows_alarm_fires_every_day_and_comes_before_the_close() -> None:
    assert DAYS.alarms.next_after(local(2027, 1, 9, 12)) == local(2027, 1, 10, 12)
    assert DAYS.period_of(DAYS.alarms.next_after(local(2027, 1, 9, 13))) == Period(2027, 1, 9)
    with pytest.raises(NoSuchWorkingDayError, match="by the close"):
        DailyWindow(STOCKHOLM, close_at=time(9), alarm_at=time(12))
    with pytest.raises(InvalidPeriodError, match="needs a day"):
        DAYS.window(Period(2027, 1))


# --- daily slots --------------------------------------------------------------------------------


def test_a_daily_time_in_the_spring_gap_falls_past_it() -> None:
    # Given 02:30 every day, and 29 March 2026, when Stockholm skips from 02:00 to 03:00
    nightly = DailySlots(parse_times(["02:30"]), STOCKHOLM)
    # When the next slot after midnight is asked for
    at = nightly.next_after(local(2026, 3, 29))
    # Then it is past the gap: 03:30 summer time, one hour after 01:30 winter time
    assert at == local(2026, 3, 29, 3, 30)
    assert at.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert slot_id("nightly", at) == "nightly/2026-03-29T03:30+02:00"


def test_daily_slots_keep_their_real_order_across_the_gap() -> None:
    # Given 02:30 (pushed to 03:30 on the gap day) and 03:15
    slots_ = DailySlots(parse_times(["03:15", "02:30"]), STOCKHOLM)
    # Then on 29 March 2026 03:15 comes first, then 03:30, then the next day's 02:30
    first = slots_.next_after(local(2026, 3, 29, 1))
    second = slots_.next_after(first)
    third = slots_.next_after(second)
    assert (first, second, third) == (
        local(2026, 3, 29, 3, 15),
        local(2026, 3, 29, 3, 30),
        local(2026, 3, 30, 2, 30),
    )


def test_a_daily_time_that_repeats_in_autumn_fires_once() -> None:
    # Given 02:30 every day, and 25 October 2026, when Stockholm's 02:00-03:00 happens twice
    nightly = DailySlots(parse_times(["02:30"]), STOCKHOLM)
    # When the slot is asked for before the first 02:30, and again after it, in the repeated hour
    first = nightly.next_after(datetime(2026, 10, 25, 0, 15, tzinfo=UTC))  # 02:15 summer time
    after = nightly.next_after(datetime(2026, 10, 25, 1, 15, tzinfo=UTC))  # 02:15 winter time
    # Then the first 02:30 is the slot, and the second is not another one
    assert first.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert after == local(2026, 10, 26, 2, 30)
    assert nightly.previous_at_or_before(datetime(2026, 10, 25, 1, 45, tzinfo=UTC)) == first


def test_a_daily_slot_keeps_its_wall_clock_time_across_the_change() -> None:
    imports = DailySlots(parse_times(["11:30"]), STOCKHOLM)
    at = imports.next_after(local(2026, 3, 28, 11, 30))
    assert at == local(2026, 3, 29, 11, 30)
    elapsed = at.astimezone(UTC) - local(2026, 3, 28, 11, 30).astimezone(UTC)
    assert elapsed.total_seconds() == 23 * 3600  # the night was an hour short


def test_the_previous_slot_is_at_or_before_now() -> None:
    imports = DailySlots(parse_times(["11:30", "22:30"]), STOCKHOLM)
    assert imports.previous_at_or_before(local(2027, 1, 4, 11, 30)) == local(2027, 1, 4, 11, 30)
    assert imports.previous_at_or_before(local(2027, 1, 4, 11, 29)) == local(2027, 1, 3, 22, 30)
    assert imports.next_after(local(2027, 1, 4, 11, 30)) == local(2027, 1, 4, 22, 30)


def test_schedules_refuse_a_moment_without_a_zone_and_a_day_without_times() -> None:
    with pytest.raises(NaiveDatetimeError):
        DailySlots(parse_times(["11:30"]), STOCKHOLM).next_after(datetime(2027, 1, 4, 12))
    with pytest.raises(NaiveDatetimeError):
        WINDOWS.period_of(datetime(2027, 1, 4, 12))
    with pytest.raises(EmptyScheduleError):
        DailySlots(parse_times([]), STOCKHOLM)


# --- run_schedule and slot claims ---------------------------------------------------------------


class CountingClock(ManualClock):
    """A ManualClock that counts the sleeps begun on it, so a test knows when a loop is waiting."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.sleeps = 0
        self._slept = asyncio.Condition()

    async def sleep(self, seconds: float) -> None:
        async with self._slept:
            self.sleeps += 1
            self._slept.notify_all()
        await super().sleep(seconds)

    async def until_sleeps(self, count: int) -> None:
        """Until `count` sleeps have begun on this clock, however long the loops take."""
        async with self._slept:
            await self._slept.wait_for(lambda: self.sleeps >= count)


@pytest.fixture
async def engines(tmp_path: Path) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two replicas' engines on one SQLite database, the slot table created."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'slots.db'}"
    pair = (create_async_engine(url), create_async_engine(url))
    await SlotClaims(pair[0]).create_schema()
    yield pair
    for engine in pair:
        await engine.dispose()


async def test_two_schedules_of_one_process_create_the_slot_table_at_once(tmp_path: Path) -> None:
    """The catalog runs two schedules on one SlotClaims: both create the table at start."""
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'slots.db'}")
    claims = SlotClaims(engine)
    try:
        await asyncio.gather(*(claims.create_schema() for _ in range(4)))
        assert await claims.claim("kind/slot", "me", datetime(2026, 12, 5, tzinfo=UTC))
    finally:
        await engine.dispose()


async def slot_rows(engine: AsyncEngine) -> list[tuple[str, str, str | None]]:
    async with engine.connect() as conn:
        result = await conn.execute(select(slots.c.slot_id, slots.c.claimed_by, slots.c.outcome))
        return [(row.slot_id, row.claimed_by, row.outcome) for row in result]


def replica(
    name: str,
    schedule: Schedule,
    clock: ManualClock,
    engine: AsyncEngine,
    runs: list[str],
    *,
    catch_up: bool = False,
) -> asyncio.Task[None]:
    async def job() -> str:
        runs.append(name)
        return f"ran on {name}"

    loop = run_schedule(
        schedule,
        kind="import",
        clock=clock,
        claims=SlotClaims(engine),
        owner=name,
        job=job,
        catch_up=catch_up,
    )
    return asyncio.create_task(loop)


async def stop(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_two_replicas_run_a_slot_once(engines: tuple[AsyncEngine, AsyncEngine]) -> None:
    # Given two replicas of one schedule (11:30 Stockholm) sharing the slot table, at 11:29:50
    clock = CountingClock(datetime(2026, 11, 22, 10, 29, 50, tzinfo=UTC))  # 11:29:50 local
    imports = DailySlots(parse_times(["11:30"]), STOCKHOLM)
    runs: list[str] = []
    tasks = [replica(name, imports, clock, e, runs) for name, e in zip("ab", engines, strict=True)]
    await clock.until_sleeps(2)
    # When the clock passes 11:30 and both have gone back to sleep until the next day's slot
    clock.advance(15)
    await clock.until_sleeps(4)
    await stop(*tasks)
    # Then exactly one of them ran the job, and the slot's row says which and how it went
    assert len(runs) == 1
    assert await slot_rows(engines[0]) == [
        ("import/2026-11-22T11:30+01:00", runs[0], f"ran on {runs[0]}")
    ]


async def test_a_failed_job_is_noted_and_logged_and_the_next_slot_still_runs(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    # Given a job that fails the first time and succeeds the second
    clock = CountingClock(datetime(2027, 1, 3, 22, 59, tzinfo=UTC))  # 23:59 in Stockholm
    attempts: list[int] = []

    async def job() -> str:
        attempts.append(len(attempts) + 1)
        if len(attempts) == 1:
            raise RuntimeError("register unreachable")
        return "delivered"

    # and a schedule of the windows' openings (any schedule will do)
    loop = run_schedule(
        WINDOWS.openings,
        kind="file",
        clock=clock,
        claims=SlotClaims(engines[0]),
        owner="a",
        job=job,
        catch_up=False,
    )
    with capture_logs() as logs:
        task = asyncio.create_task(loop)
        await clock.until_sleeps(1)
        # When January's window opens, and then February's
        clock.advance(60)
        await clock.until_sleeps(2)
        clock.advance((local(2027, 2, 1).astimezone(UTC) - clock.now()).total_seconds())
        await clock.until_sleeps(3)
        await stop(task)
    # Then the failure is noted and logged, and the loop went on to the next slot
    assert attempts == [1, 2]
    assert await slot_rows(engines[0]) == [
        ("file/2027-01-04T00:00+01:00", "a", "failed: RuntimeError: register unreachable"),
        ("file/2027-02-01T00:00+01:00", "a", "delivered"),
    ]
    failed = [log for log in logs if log["event"] == "slot_failed"]
    assert [log["slot"] for log in failed] == ["file/2027-01-04T00:00+01:00"]


async def test_a_claimed_slot_is_not_claimed_again(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    first, second = SlotClaims(engines[0]), SlotClaims(engines[1])
    now = local(2027, 1, 4)
    assert await first.claim("import/x", "a", now)
    assert not await second.claim("import/x", "b", now)
    await first.finish("import/x", "ok", now)
    assert await slot_rows(engines[1]) == [("import/x", "a", "ok")]


async def test_a_slot_missed_while_no_replica_ran_is_run_once_at_start(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    # Given replicas that were all down at 11:30 and start at 12:05 Stockholm
    clock = CountingClock(datetime(2026, 11, 22, 11, 5, tzinfo=UTC))
    imports = DailySlots(parse_times(["11:30", "15:30"]), STOCKHOLM)
    runs: list[str] = []
    # When both start, catching up
    tasks = [
        replica(name, imports, clock, engine, runs, catch_up=True)
        for name, engine in zip("ab", engines, strict=True)
    ]
    await clock.until_sleeps(2)  # both past the catch-up, asleep until 15:30
    await stop(*tasks)
    # Then the 11:30 slot ran once, at start, by one of them; an earlier slot is not run
    assert len(runs) == 1
    assert await slot_rows(engines[0]) == [
        ("import/2026-11-22T11:30+01:00", runs[0], f"ran on {runs[0]}")
    ]
    # And when a replica restarts after it, nothing runs again
    again = replica("c", imports, clock, engines[1], runs, catch_up=True)
    await clock.until_sleeps(3)
    await stop(again)
    assert len(runs) == 1


async def test_schedule_metrics_count_the_slots_since_the_last_good_run(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    # Given a schedule at 11:30 and 15:30 whose job fails, watched from 12:05 on 22 November
    registry = CollectorRegistry()
    metrics = ScheduleMetrics(registry)
    clock = CountingClock(datetime(2026, 11, 22, 11, 5, tzinfo=UTC))
    outcome = ["failed"]

    async def job() -> str:
        if outcome[0] == "failed":
            raise RuntimeError("HSA answers 503")
        return "ok"

    def sample(name: str) -> float | None:
        return registry.get_sample_value(name, {"kind": "import"})

    loop = run_schedule(
        DailySlots(parse_times(["11:30", "15:30"]), STOCKHOLM),
        kind="import",
        clock=clock,
        claims=SlotClaims(engines[0]),
        owner="a",
        job=job,
        metrics=metrics,
    )
    task = asyncio.create_task(loop)
    await clock.until_sleeps(1)  # the missed 11:30 ran (and failed)
    behind_at_start = sample("regbridge_schedule_slots_since_success")
    # When 15:30 and the next day's 11:30 fail too, and then 15:30 succeeds
    for hours in (3.5, 20):
        clock.advance(hours * 3600)
        await clock.until_sleeps(clock.sleeps + 1)
    behind = sample("regbridge_schedule_slots_since_success")
    outcome[0] = "ok"
    clock.advance(4 * 3600)
    await clock.until_sleeps(clock.sleeps + 1)
    await stop(task)
    # Then the slots were counted from start, and a good run set them back to nought
    assert behind_at_start == 0
    assert behind == 2
    assert sample("regbridge_schedule_slots_since_success") == 0
    assert sample("regbridge_schedule_last_success_timestamp_seconds") == clock.now().timestamp()
    # and a schedule started later learns the last good run from the claims
    later = CollectorRegistry()
    ScheduleMetrics(later).track(
        "import",
        DailySlots(parse_times(["11:30", "15:30"]), STOCKHOLM),
        clock,
        await SlotClaims(engines[1]).last("import"),
    )
    assert later.get_sample_value("regbridge_schedule_slots_since_success", {"kind": "import"}) == 0


async def test_status_shows_the_last_good_run_and_the_latest_outcomes(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'status.db'}"
    engine = create_async_engine(url)
    claims = SlotClaims(engine)
    await claims.create_schema()
    at = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
    for slot, outcome in (
        ("import/2026-11-22T11:30+01:00", "units: 10 published"),
        ("import/2026-11-22T15:30+01:00", "failed: TruncatedExportError: export broke off"),
    ):
        assert await claims.claim(slot, "host-a", at)
        await claims.finish(slot, outcome, at + timedelta(minutes=2))
        at += timedelta(hours=4)
    await engine.dispose()

    lines = await schedule_lines(url, ["import"], datetime(2026, 11, 22, 16, 0, tzinfo=UTC))

    assert lines == [
        "  schedule  import",
        "    last success  slot 2026-11-22T11:30+01:00, 5 h 28 min ago",
        "    2026-11-22T15:30+01:00  host-a  failed: TruncatedExportError: export broke off",
        "    2026-11-22T11:30+01:00  host-a  units: 10 published",
    ]
