"""What every file register's worker is configured with (``REGBRIDGE_<WORKER>_…``): its periods
(months or days) and their windows, when deliveries run, and the intake's batches."""

from __future__ import annotations

import socket
from datetime import time
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator

from shared.delivery.options import RuntimeOptions
from shared.schedule import (
    Cadence,
    DailyWindow,
    MonthlyWindow,
    PeriodWindows,
    WorkingCalendar,
    parse_times,
)
from shared.settings import RegbridgeSettings


class IntakeRuntime(RuntimeOptions):
    """Events are stored a batch per transaction (the state is the intake's register)."""

    batch_size: int = Field(default=100, ge=1, description="events stored per transaction")
    max_in_flight: int = Field(default=500, ge=1, description="events stored at once")


class FileWorkerSettings(RegbridgeSettings):
    """The file runtime's part of a file register's settings."""

    runtime: IntakeRuntime = Field(default_factory=IntakeRuntime)
    periods: Cadence = Field(
        default="monthly",
        description="monthly: a file per owner and calendar month; daily: a file per owner and "
        "day (a register that says so; the working-day settings then do not apply)",
    )
    # a month's window: in the month after the period, from working day `open_on_working_day`
    # until `close_at` on working day `close_on_working_day`, local time in `zone`; a day's: the
    # next day, from its start until `close_at`, the alarm at `daily_alarm_at`
    zone: str = Field(default="Europe/Stockholm", description="the window's clock")
    open_on_working_day: int = Field(default=1, ge=1, description="the window opens at its start")
    close_on_working_day: int = Field(default=3, ge=1, description="the window closes on it …")
    close_at: time = Field(default=time(15, 0), description="… at this local time")
    alarm_on_working_day: int = Field(
        default=3,
        ge=1,
        description="an owner's file not yet accepted at the start of this working day alarms",
    )
    daily_alarm_at: time = Field(
        default=time(12, 0),
        description="daily periods: a file not yet accepted at this local time of the next day "
        "alarms",
    )
    days_off_in_practice: bool = Field(
        default=True,
        description="Midsummer Eve, Christmas Eve and New Year's Eve are not working days",
    )
    deliver_times: list[str] = Field(
        default=["00:05", "06:00", "08:00", "10:00", "12:00", "13:00", "14:00", "14:30"],
        description="local times of the delivery runs (each day; a run outside the window only "
        "finishes what a crash left)",
    )
    instance_id: str = Field(
        default_factory=socket.gethostname, description="who claims a run and holds the lease"
    )

    @field_validator("zone")
    @classmethod
    def _zone_exists(cls, value: str) -> str:
        ZoneInfo(value)
        return value

    @field_validator("deliver_times")
    @classmethod
    def _times_parse(cls, value: list[str]) -> list[str]:
        parse_times(value)
        return value

    @model_validator(mode="after")
    def _window_is_possible(self) -> FileWorkerSettings:
        self.window()  # raises NoSuchWorkingDayError (a ValueError) for an impossible one
        return self

    def window(self) -> PeriodWindows:
        """Each period's delivery window: a month's on the Swedish working-day calendar, a day's
        on the next day."""
        if self.periods == "daily":
            return DailyWindow(ZoneInfo(self.zone), self.close_at, self.daily_alarm_at)
        return MonthlyWindow(
            WorkingCalendar(days_off_in_practice=self.days_off_in_practice),
            ZoneInfo(self.zone),
            open_on_working_day=self.open_on_working_day,
            close_on_working_day=self.close_on_working_day,
            close_at=self.close_at,
            alarm_on_working_day=self.alarm_on_working_day,
        )
