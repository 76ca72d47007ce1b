"""The delivery runtime's options: one frozen value, nested in a worker's settings, passed whole."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.durations import parse_delay


class RuntimeOptions(BaseModel):
    """How a worker consumes and calls its register (``REGBRIDGE_<WORKER>_RUNTIME__…``).

    A worker whose register wants other defaults subclasses this (batches of 100, say), so that
    setting one variable keeps the worker's other defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    retry_horizon: str = Field(default="1d", description="no retry after this long: dead letter")
    chunk_size: int = Field(default=500, ge=1, description="records fetched and settled at once")
    chunks_in_hand: int = Field(
        default=2, ge=1, description="chunks of one consumer overlapping (1: one at a time)"
    )
    max_in_flight: int = Field(default=64, ge=1, description="concurrent register calls")
    batch_size: int = Field(default=1, ge=1, description="events per register call")
    batch_linger: float = Field(default=0.02, ge=0, description="seconds a batch waits to fill")
    dlq_max_share: float = Field(
        default=0.5, gt=0, le=1, description="stop when more of recent events were dead letters"
    )
    dlq_window: int = Field(default=200, ge=1, description="recent events the DLQ limit counts")
    dlq_min_events: int = Field(default=50, ge=1, description="events before the limit applies")
    poll_timeout_ms: int = Field(default=250, ge=1, description="longest wait of one fetch")

    @field_validator("retry_horizon")
    @classmethod
    def _horizon_parses(cls, value: str) -> str:
        parse_delay(value)
        return value
