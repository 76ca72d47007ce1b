"""The CVR worker's settings (``REGBRIDGE_CVR_…``): the SFTP account, the units, the report's
window."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator

from shared.durations import parse_delay
from shared.files.settings import FileWorkerSettings
from shared.settings import worker_config

STOCKHOLM_HSA_PREFIX = "SE2321000016-"


class CvrSettings(FileWorkerSettings):
    """CVR worker (``REGBRIDGE_CVR_…``); the window and the delivery runs are the file runtime's
    settings (`FileWorkerSettings`)."""

    model_config = worker_config("cvr")

    health_port: int = 8085
    input_topic: str = Field(default="care.waits.v1", description="waiting-list entries")
    # the report's window: CVR has no payment deadline; a month's report goes in its first days
    close_on_working_day: int = Field(default=5, ge=1, description="the window closes on it …")
    alarm_on_working_day: int = Field(
        default=4,
        ge=1,
        description="a unit's report not yet accepted at the start of this working day alarms",
    )
    # the register: an SFTP account of the provider's (services/cvr/transfer.py)
    sftp_host: str = Field(default="127.0.0.1", description="CVR's SFTP server (or its sandbox)")
    sftp_port: int = Field(default=8222, ge=1, le=65535)
    sftp_username: str = Field(default="regbridge", description="the provider's account")
    sftp_key_file: str | None = Field(
        default=None, description="the account's private key (OpenSSH or PEM)"
    )
    sftp_known_hosts: str | None = Field(
        default=None,
        description="known_hosts file pinning CVR's host key: an unknown or changed key is a "
        "configuration alarm, never a retry",
    )
    sftp_connect_timeout: float = Field(default=10.0, gt=0, description="seconds")
    receipt_timeout: float = Field(
        default=300.0, gt=0, description="seconds to wait for the receipt in CVR's outbox"
    )
    receipt_poll_interval: float = Field(
        default=2.0, gt=0, description="seconds between looks in CVR's outbox for a receipt"
    )
    # which units
    counties: tuple[str, ...] = Field(
        default=("01",), description="county codes whose units report to this CVR"
    )
    hsa_prefixes: tuple[str, ...] = Field(
        default=(STOCKHOLM_HSA_PREFIX,),
        description="HSA-id prefixes of the region's directory: a unit the catalog does not know "
        "yet under one of them is retried, any other is another region's",
    )
    unknown_unit_grace: str = Field(
        default="6h", description="how long an unknown unit is retried; '0': at once"
    )
    catalog_ready_timeout: float = Field(
        default=600, gt=0, description="seconds to wait for the catalog at start"
    )

    @field_validator("unknown_unit_grace")
    @classmethod
    def _grace_parses(cls, value: str) -> str:
        if value != "0":
            parse_delay(value)
        return value

    def unknown_unit_grace_delta(self) -> timedelta:
        if self.unknown_unit_grace == "0":
            return timedelta(0)
        return timedelta(seconds=parse_delay(self.unknown_unit_grace))
