"""The result message a worker publishes for every event, as journal systems read it."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ResultStatus = Literal["accepted", "skipped", "dead_lettered"]


class EventResult(BaseModel):
    """What became of one event: accepted by the register, skipped, or dead-lettered.

    Published once per event on the worker's results topic, keyed by `record_id`, after the
    event's fate is durable (a retry publishes nothing until the fate is known).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str | None = Field(
        description="The event's event_id; null when the message could not be read as an event."
    )
    record_id: str = Field(
        description="The event's record_id (the message key when it could not be read)."
    )
    record_version: int | None = Field(
        description="The event's record_version; null when it could not be read."
    )
    status: ResultStatus = Field(
        description=(
            "accepted: the register holds it; skipped: a duplicate or stale version, or "
            "another register's event, nothing done; dead_lettered: it needs a person (see reason "
            "and error_class)."
        )
    )
    at: str = Field(description="When the fate was decided, ISO 8601 with a zone offset.")
    reference: str | None = Field(
        default=None, description="accepted: the register's own id of the record."
    )
    reason: str | None = Field(
        default=None,
        description=(
            "skipped: duplicate, stale, not_ours, or the worker's own reason (such as "
            "no_booking: nothing for the register yet); dead_lettered: why, naming the field and "
            "rule or the register's answer (never a personal identity number)."
        ),
    )
    error_class: str | None = Field(
        default=None,
        description=(
            "dead_lettered: invalid_event, register_rejected, register_duplicate, "
            "retries_exhausted, blocked_by_earlier, …"
        ),
    )
