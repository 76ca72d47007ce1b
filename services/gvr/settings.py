"""The GVR worker's settings (``REGBRIDGE_GVR_…``): its topics, the register, its certificate."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, SecretStr, field_validator

from services.gvr.mapping import GvrPaths
from services.gvr.waits import WaitCodes
from shared.contracts.care_wait import CARE_WAITS_TOPIC
from shared.durations import parse_delay
from shared.settings import RegbridgeSettings, worker_config


class GvrSettings(RegbridgeSettings):
    """GVR worker (``REGBRIDGE_GVR_…``)."""

    model_config = worker_config("gvr")

    health_port: int = 8081
    input_topic: str = Field(default="care.contacts.v1", description="care contacts to deliver")
    waits_topic: str = Field(
        default=CARE_WAITS_TOPIC,
        description="waiting-list entries (care.wait) whose bookings go to GVR's availability "
        "service, read in the same consumer group; empty: not read",
    )
    wait_codes: WaitCodes = Field(default_factory=WaitCodes)
    # the register (services/gvr/client.py): mutual TLS with a SITHS function certificate
    base_url: str = Field(default="https://127.0.0.1:8443", description="GVR API (or its sandbox)")
    client_cert: str | None = Field(
        default=None, description="PEM client certificate (+ chain); its key in client_key"
    )
    client_key: str | None = Field(default=None, description="PEM private key of client_cert")
    client_p12: str | None = Field(
        default=None, description="PKCS#12 file with key + certificate; instead of cert/key"
    )
    client_p12_password: SecretStr | None = None
    ca_bundle: str | None = Field(
        default=None, description="PEM CA bundle for GVR's server certificate; None: the system's"
    )
    connect_timeout: float = Field(default=5.0, gt=0, description="seconds")
    read_timeout: float = Field(default=30.0, gt=0, description="seconds")
    write_timeout: float = Field(default=30.0, gt=0, description="seconds")
    pool_timeout: float = Field(default=30.0, gt=0, description="seconds to wait for a connection")
    max_connections: int = Field(default=64, ge=1, description="connection pool size")
    # resource paths (docs/gvr-api.md); configuration, to follow the official specification
    paths: GvrPaths = Field(default_factory=GvrPaths)
    catalog_ready_timeout: float = Field(
        default=600, gt=0, description="seconds to wait for the catalog at start"
    )
    counties: tuple[str, ...] = Field(
        default=("01",),
        description="county codes whose units report to GVR (Region Stockholm: 01); a contact "
        "whose own unit the catalog places in another county is skipped as not_ours",
    )
    unknown_unit_grace: str = Field(
        default="6h",
        description="how long a kombika the catalog does not know is retried (the code "
        "server's file may lag a new unit) before it is an unknown_unit dead letter; '0': at once",
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
