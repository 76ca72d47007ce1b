"""The VGPV worker's settings (``REGBRIDGE_VGPV_…``): the register, its certificate, the window."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import Field, field_validator

from shared.durations import parse_delay
from shared.files.settings import FileWorkerSettings
from shared.settings import worker_config

Encoding = Literal["utf-8", "iso-8859-1"]
VGR_HSA_PREFIX = "SE2321000131-"  # Västra Götaland's HSA directory (identifiers.md)


class VgpvSettings(FileWorkerSettings):
    """VGPV worker (``REGBRIDGE_VGPV_…``); the window and the delivery runs are the file
    runtime's settings (`FileWorkerSettings`)."""

    model_config = worker_config("vgpv")

    health_port: int = 8084
    periods: Literal["monthly"] = Field(default="monthly", description="VGPV's file is monthly")
    input_topic: str = Field(default="care.contacts.v1", description="care contacts to place")
    # the register (services/vgpv/client.py): an upload over Sjunet with a SITHS certificate
    base_url: str = Field(default="https://127.0.0.1:8096", description="VGPV (or its sandbox)")
    client_cert: str | None = Field(
        default=None, description="PEM client certificate (+ chain); its key in client_key"
    )
    client_key: str | None = Field(default=None, description="PEM private key of client_cert")
    ca_bundle: str | None = Field(
        default=None, description="PEM CA bundle for VGPV's server certificate; None: the system's"
    )
    connect_timeout: float = Field(default=5.0, gt=0, description="seconds")
    read_timeout: float = Field(
        default=120.0, gt=0, description="seconds: the register validates a whole file first"
    )
    write_timeout: float = Field(default=60.0, gt=0, description="seconds")
    pool_timeout: float = Field(default=30.0, gt=0, description="seconds to wait for a connection")
    # the file (docs/vgpv-file.md)
    encoding: Encoding = Field(
        default="utf-8",
        description="the file's character encoding: utf-8, or iso-8859-1 for a receiver that "
        "reads Latin-1 (characters it cannot hold are written as \\uXXXX escapes)",
    )
    # which units, which patients (docs/vgpv.md)
    vardval_areas: tuple[str, ...] = Field(
        default=("primarvard", "rehab"),
        description="KIV's Vårdval areas (vgrVardValOmrade) whose units report to VGPV: "
        "VG Primärvård and Vårdval Rehab",
    )
    default_vardval_area: str = Field(
        default="primarvard",
        description="the area of a Vårdval unit whose KIV record names none (published before "
        "KIV said which)",
    )
    hsa_prefixes: tuple[str, ...] = Field(
        default=(VGR_HSA_PREFIX,),
        description="HSA-id prefixes of the region's directory: a unit the catalog does not know "
        "yet under one of them is retried (it may be new), any other is another region's",
    )
    visit_types: dict[str, str] = Field(
        default_factory=lambda: {
            "1": "mottagning",
            "2": "hembesok",
            "3": "telefon",
            "4": "digital",
            "5": "digital",
        },
        description="the journal's visit type (visit_type) → the file's besökstyp",
    )
    catalog_ready_timeout: float = Field(
        default=600, gt=0, description="seconds to wait for the catalog at start"
    )
    unknown_unit_grace: str = Field(
        default="24h",
        description="how long a unit the catalog does not know is retried (KIV and HSA may lag "
        "a new unit) before it is an unknown_unit dead letter; '0': at once",
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
