"""Schedules on working days and wall clocks, each slot run once across replicas."""

from shared.schedule.claims import SlotClaims, SlotRun
from shared.schedule.errors import (
    EmptyScheduleError,
    InvalidPeriodError,
    NaiveDatetimeError,
    NoSuchWorkingDayError,
    ScheduleError,
)
from shared.schedule.metrics import ScheduleMetrics
from shared.schedule.periods import Cadence, Period
from shared.schedule.runner import run_schedule
from shared.schedule.slots import (
    DailySlots,
    MonthlySlots,
    Schedule,
    parse_times,
    slot_id,
    wall_clock,
)
from shared.schedule.window import DailyWindow, MonthlyWindow, PeriodWindows, Window
from shared.schedule.working_days import WorkingCalendar

__all__ = [
    "Cadence",
    "DailySlots",
    "DailyWindow",
    "EmptyScheduleError",
    "InvalidPeriodError",
    "MonthlySlots",
    "MonthlyWindow",
    "NaiveDatetimeError",
    "NoSuchWorkingDayError",
    "Period",
    "PeriodWindows",
    "Schedule",
    "ScheduleError",
    "ScheduleMetrics",
    "SlotClaims",
    "SlotRun",
    "Window",
    "WorkingCalendar",
    "parse_times",
    "run_schedule",
    "slot_id",
    "wall_clock",
]
