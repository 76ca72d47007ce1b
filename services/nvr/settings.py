"""The NVR worker's settings (``REGBRIDGE_NVR_…``): the register, its credentials, its profile."""

from __future__ import annotations

from datetime import date

from pydantic import Field, SecretStr

from services.nvr.profile import NvrProfile
from shared.delivery.options import RuntimeOptions
from shared.settings import RegbridgeSettings, secret_from, worker_config


class NvrRuntime(RuntimeOptions):
    """Bundles of up to 100 (NVR's limit), gathered for at most `batch_linger` seconds."""

    batch_size: int = Field(default=100, ge=1, le=100, description="vaccinations per bundle")
    batch_linger: float = Field(default=0.2, ge=0, description="seconds a bundle waits to fill")
    max_in_flight: int = Field(
        default=500, ge=1, description="vaccinations in flight (at least chunk_size: no wait)"
    )


class NvrSettings(RegbridgeSettings):
    """NVR worker (``REGBRIDGE_NVR_…``)."""

    model_config = worker_config("nvr")

    health_port: int = 8082
    input_topic: str = Field(default="care.vaccinations.v1", description="vaccinations to report")
    runtime: NvrRuntime = Field(default_factory=NvrRuntime)
    # the register (services/nvr/client.py): OAuth2 client credentials
    base_url: str = Field(default="http://127.0.0.1:8092", description="NVR API (or its sandbox)")
    client_id: str = Field(default="regbridge", description="OAuth2 client id")
    client_secret: SecretStr = Field(
        default=SecretStr(""), description="OAuth2 client secret (a Secret, never logged)"
    )
    client_secret_file: str | None = Field(
        default=None, description="file holding the client secret, instead of client_secret"
    )
    client_secret_expires_on: date | None = Field(
        default=None, description="when Folkhälsomyndigheten's access key expires (1 year)"
    )
    credential_warn_days: int = Field(
        default=30, ge=0, description="warn (and alert) this many days before it expires"
    )
    ca_bundle: str | None = Field(default=None, description="PEM CA bundle for https; None: system")
    connect_timeout: float = Field(default=5.0, gt=0, description="seconds")
    read_timeout: float = Field(default=60.0, gt=0, description="seconds (a bundle of 100)")
    write_timeout: float = Field(default=30.0, gt=0, description="seconds")
    pool_timeout: float = Field(default=30.0, gt=0, description="seconds to wait for a connection")
    max_connections: int = Field(default=16, ge=1, description="connection pool size")
    # the unpublished details (docs/nvr-api.md, services/nvr/profile.py)
    profile: NvrProfile = Field(default_factory=NvrProfile)
    catalog_ready_timeout: float = Field(
        default=600, gt=0, description="seconds to wait for the catalog at start"
    )

    def secret(self) -> SecretStr:
        """The client secret: from `client_secret_file` when set (a mounted Secret), else env."""
        return secret_from(self.client_secret, self.client_secret_file)
