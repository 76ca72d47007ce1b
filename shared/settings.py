"""Settings: one pydantic-settings base, a prefix per worker, shared Kafka and topic sections."""

from __future__ import annotations

import socket
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.topics import parse_delay

ENV_PREFIX = "REGBRIDGE_"


def secret_from(value: SecretStr, file: str | None) -> SecretStr:
    """A secret from `file` when set (a mounted Kubernetes Secret), else `value`."""
    if file:
        return SecretStr(Path(file).read_text(encoding="utf-8").strip())
    return value


class LogFormat(StrEnum):
    AUTO = "auto"  # JSON when stdout is not a terminal, pretty console output when it is
    JSON = "json"
    CONSOLE = "console"


class KafkaSettings(BaseSettings):
    """How every worker reaches the Kafka cluster (``REGBRIDGE_KAFKA_…``)."""

    model_config = SettingsConfigDict(
        env_prefix=f"{ENV_PREFIX}KAFKA_", extra="ignore", populate_by_name=True
    )

    bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices(
            f"{ENV_PREFIX}KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"
        ),
        description="Comma-separated host:port list; KAFKA_BOOTSTRAP_SERVERS is accepted too.",
    )
    client_id: str = "regbridge"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: str | None = Field(
        default=None, description="file holding the SASL password (a mounted Secret)"
    )
    # SASL/OAUTHBEARER: a token from an OAuth2 client-credentials endpoint
    sasl_oauth_token_url: str | None = None
    sasl_oauth_client_id: str | None = None
    sasl_oauth_client_secret: SecretStr = SecretStr("")
    sasl_oauth_client_secret_file: str | None = None
    sasl_oauth_scope: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    request_timeout_ms: int = 40_000

    def password(self) -> SecretStr | None:
        """The SASL password: from `sasl_password_file` when set, else `sasl_password`."""
        if self.sasl_password_file:
            return secret_from(SecretStr(""), self.sasl_password_file)
        return self.sasl_password

    @property
    def bootstrap_list(self) -> list[str]:
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]


class TopicSettings(BaseSettings):
    """Topic names and shape (``REGBRIDGE_TOPICS_…``); defaults follow the architecture."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}TOPICS_", extra="ignore")

    partitions: Annotated[int, Field(ge=1)] = 12
    replication_factor: Annotated[int, Field(ge=1)] = 1
    retry_delays: list[str] = Field(
        default_factory=lambda: ["30s", "5m", "1h", "6h"],
        description="Delayed retry tiers, shortest first; each becomes <worker>.retry.<delay>.",
    )
    dlq_retention_ms: int = 90 * 24 * 3600 * 1000
    care_contacts: str = "care.contacts.v1"
    vaccinations: str = "care.vaccinations.v1"
    hsa_notifications: str = "catalog.hsa-notifications.v1"
    care_units: str = "catalog.care-units.v1"
    vaccines: str = "catalog.vaccines.v1"

    @field_validator("retry_delays")
    @classmethod
    def _delays_parse(cls, value: list[str]) -> list[str]:
        seconds = [parse_delay(v) for v in value]
        if seconds != sorted(seconds):
            raise ValueError("retry delays must be given shortest first")
        return value


class RegbridgeSettings(BaseSettings):
    """The base every worker's settings extend; subclasses set ``worker`` and their own prefix."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", secrets_dir=None, frozen=True
    )
    worker: ClassVar[str] = "regbridge"

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: LogFormat = LogFormat.AUTO
    database_url: SecretStr = Field(
        default=SecretStr("sqlite+aiosqlite:///./regbridge.db"),
        description="SQLAlchemy async URL of the submission ledger (PostgreSQL in production).",
    )
    database_url_file: str | None = Field(
        default=None, description="file holding the database URL (a mounted Secret)"
    )
    health_port: int = Field(default=8080, description="0 picks a free port")
    # the delivery runtime (see README "Delivery semantics")
    retry_horizon: str = Field(default="1d", description="no retry after this long: dead letter")
    chunk_size: int = Field(default=500, ge=1, description="records fetched and settled at once")
    max_in_flight: int = Field(default=64, ge=1, description="concurrent register calls")
    batch_size: int = Field(default=1, ge=1, description="events per register call (NVR: 100)")
    batch_linger: float = Field(default=0.02, ge=0, description="seconds a batch waits to fill")
    dlq_max_share: float = Field(default=0.5, gt=0, le=1)
    dlq_window: int = Field(default=200, ge=1)
    dlq_min_events: int = Field(default=50, ge=1)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)

    def ledger_url(self) -> str:
        """The ledger's database URL: from `database_url_file` when set, else `database_url`."""
        return secret_from(self.database_url, self.database_url_file).get_secret_value()


class GvrSettings(RegbridgeSettings):
    """GVR worker (``REGBRIDGE_GVR_…``)."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}GVR_")
    worker: ClassVar[str] = "gvr"
    health_port: int = 8081
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
    path_outpatient_visit: str = "/vardhandelse/besok"
    path_admission: str = "/vardhandelse/inskrivning"
    path_discharge: str = "/vardhandelse/utskrivning"
    path_availability: str = "/tillganglighet"
    catalog_ready_timeout: float = Field(
        default=600, gt=0, description="seconds to wait for the catalog at start"
    )


class NvrSettings(RegbridgeSettings):
    """NVR worker (``REGBRIDGE_NVR_…``)."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}NVR_")
    worker: ClassVar[str] = "nvr"
    health_port: int = 8082
    # bundles of up to 100 (NVR's limit), gathered for at most batch_linger seconds
    batch_size: int = Field(default=100, ge=1, le=100, description="vaccinations per bundle")
    batch_linger: float = Field(default=0.2, ge=0, description="seconds a bundle waits to fill")
    max_in_flight: int = Field(
        default=500, ge=1, description="vaccinations in flight (at least chunk_size: no wait)"
    )
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
    token_path: str = "/oauth2/token"  # noqa: S105 - a path, not a secret
    fhir_path: str = "/fhir"
    vaccines_path: str = "/vaccines"
    bundle_type: Literal["batch", "transaction"] = "batch"
    personnummer_system: str = "urn:oid:1.2.752.129.2.1.3.1"
    samordningsnummer_system: str = "urn:oid:1.2.752.129.2.1.3.3"
    hsa_id_system: str = "urn:oid:1.2.752.129.2.1.4.1"
    organisation_number_system: str = "urn:oid:2.5.4.97"
    npl_id_system: str = "urn:oid:1.2.752.129.2.1.5.1"
    programme_system: str = "urn:regbridge:nvr:programme"
    report_identifier_base: str = "urn:regbridge:nvr:source"
    catalog_ready_timeout: float = Field(
        default=600, gt=0, description="seconds to wait for the catalog at start"
    )

    def secret(self) -> SecretStr:
        """The client secret: from `client_secret_file` when set (a mounted Secret), else env."""
        return secret_from(self.client_secret, self.client_secret_file)


class CatalogSettings(RegbridgeSettings):
    """Catalog sync (``REGBRIDGE_CATALOG_…``)."""

    model_config = SettingsConfigDict(env_prefix=f"{ENV_PREFIX}CATALOG_")
    worker: ClassVar[str] = "catalog"
    health_port: int = 8083
    hsa_url: str = Field(default="http://127.0.0.1:8090", description="HSA (or its sandbox)")
    vaccines_url: str = Field(
        default="http://127.0.0.1:8092", description="NVR API base for the vaccine list"
    )
    vaccines_path: str = "/vaccines"
    nvr_token_path: str = "/oauth2/token"  # noqa: S105 - a path, not a secret
    nvr_client_id: str | None = Field(
        default=None, description="OAuth2 client id for NVR's vaccine list; None: no token"
    )
    nvr_client_secret: SecretStr = SecretStr("")
    nvr_client_secret_file: str | None = Field(
        default=None, description="file holding the client secret, instead of nvr_client_secret"
    )

    def nvr_secret(self) -> SecretStr:
        return secret_from(self.nvr_client_secret, self.nvr_client_secret_file)

    import_times: list[str] = Field(
        default_factory=lambda: ["11:30", "15:30", "22:30"],
        description="local times of the full HSA import, every day",
    )
    timezone: str = "Europe/Stockholm"
    vaccines_every: str = Field(default="6h", description="how often the vaccine list is read")
    max_removal_share: float = Field(
        default=0.05, gt=0, le=1, description="withhold removals above this share of the catalog"
    )
    instance_id: str = Field(
        default_factory=socket.gethostname, description="who claims a scheduled import slot"
    )
