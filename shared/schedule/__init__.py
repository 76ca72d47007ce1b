"""Schedules on working days and wall clocks, each slot run once across replicas."""

from shared.schedule.claims import SlotClaims
from shared.schedule.errors import (
    EmptyScheduleError,
    InvalidPeriodError,
    NaiveDatetimeError,
    NoSuchWorkingDayError,
    ScheduleError,
    UnknownDayOffError,
)
from shared.schedule.periods import Period
from shared.schedule.runner import run_schedule
from shared.schedule.slots import (
    DailySlots,
    MonthlySlots,
    Schedule,
    parse_times,
    slot_id,
    wall_clock,
)
from shared.schedule.window import MonthlyWindow, Window
from shared.schedule.working_days import DAYS_OFF_RULES, DEFAULT_DAYS_OFF, WorkingCalendar

__all__ = [
    "DAYS_OFF_RULES",
    "DEFAULT_DAYS_OFF",
    "DailySlots",
    "EmptyScheduleError",
    "InvalidPeriodError",
    "MonthlySlots",
    "MonthlyWindow",
    "NaiveDatetimeError",
    "NoSuchWorkingDayError",
    "Period",
    "Schedule",
    "ScheduleError",
    "SlotClaims",
    "UnknownDayOffError",
    "Window",
    "WorkingCalendar",
    "parse_times",
    "run_schedule",
    "slot_id",
    "wall_clock",
]
