"""Settings: one pydantic-settings base, a prefix per worker, shared Kafka and topic sections.

Each worker's own settings class lives in its folder and extends `RegbridgeSettings`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.delivery.options import RuntimeOptions
from shared.durations import parse_delay

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
    # the catalog's compacted topics, which every worker reads (shared/catalog)
    care_units: str = "catalog.care-units.v1"
    vaccines: str = "catalog.vaccines.v1"
    kombikas: str = "catalog.kombikas.v1"  # Region Stockholm's code server: kombika → HSA-id

    @field_validator("retry_delays")
    @classmethod
    def _delays_parse(cls, value: list[str]) -> list[str]:
        seconds = [parse_delay(v) for v in value]
        if seconds != sorted(seconds):
            raise ValueError("retry delays must be given shortest first")
        return value


class CommonSettings(BaseSettings):
    """What every process reads (``REGBRIDGE_…``): logging, Kafka, topic shapes. Commands that
    serve no one worker (`topics ensure`, the demo) read only these."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="ignore",
        secrets_dir=None,
        frozen=True,
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: LogFormat = LogFormat.AUTO
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)


class RegbridgeSettings(CommonSettings):
    """The base every worker's settings extend: its own prefix (``REGBRIDGE_<WORKER>_``, see
    `worker_config`), its input topic, its ledger, its health port, and its runtime options
    nested (``REGBRIDGE_<WORKER>_RUNTIME__CHUNK_SIZE``)."""

    database_url: SecretStr = Field(
        default=SecretStr("sqlite+aiosqlite:///./regbridge.db"),
        description="SQLAlchemy async URL of the submission ledger (PostgreSQL in production).",
    )
    database_url_file: str | None = Field(
        default=None, description="file holding the database URL (a mounted Secret)"
    )
    health_port: int = Field(default=8080, description="0 picks a free port")
    input_topic: str = Field(description="the topic this worker consumes (each worker's default)")
    runtime: RuntimeOptions = Field(default_factory=RuntimeOptions)

    def ledger_url(self) -> str:
        """The ledger's database URL: from `database_url_file` when set, else `database_url`."""
        return secret_from(self.database_url, self.database_url_file).get_secret_value()


def worker_config(name: str) -> SettingsConfigDict:
    """The `model_config` of a worker's settings: ``REGBRIDGE_<NAME>_…``, sections nested by
    ``__``, frozen."""
    return SettingsConfigDict(
        env_prefix=f"{ENV_PREFIX}{name.upper()}_",
        env_nested_delimiter="__",
        extra="ignore",
        frozen=True,
    )
