"""The versioned event envelope that every event type shares."""

from enum import StrEnum
from typing import Any, ClassVar, Literal, get_args
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from shared.contracts.types import NonEmptyText

SCHEMA_VERSION = 1

CONTRACT_CONFIG = ConfigDict(
    extra="forbid",
    frozen=True,
    strict=True,
    str_strip_whitespace=False,
)
"""Every contract model: unknown fields rejected, immutable, no silent type coercion."""


class Operation(StrEnum):
    """What the event does to the journal's record."""

    CREATE = "create"
    CORRECT = "correct"
    CANCEL = "cancel"


class EventEnvelope(BaseModel):
    """Fields common to every event; a concrete event adds `event_type` and `payload`."""

    model_config = CONTRACT_CONFIG

    event_id: UUID = Field(
        description="Unique id of this event (UUID); the de-duplication key. A replay keeps it."
    )
    event_type: str = Field(description="Which event this is; selects the payload's shape.")
    schema_version: Literal[1] = Field(
        description="Version of the event contract. This schema describes version 1."
    )
    occurred_at: AwareDatetime = Field(
        description="When the change happened in the journal, ISO 8601 with a zone offset."
    )
    source_system: NonEmptyText = Field(
        description="Id of the reporting (journal) system, agreed with the platform team."
    )
    record_id: NonEmptyText = Field(
        description=(
            "The journal's stable id of the record (a visit, a vaccination …): the same across "
            "its create, corrections and cancellation. Also the Kafka message key."
        )
    )
    record_version: int = Field(
        ge=1,
        le=2**63 - 1,
        description=(
            "Version of the record, increasing with each change; a lower version than one already "
            "delivered is skipped as stale."
        ),
    )
    operation: Operation = Field(
        description=(
            "create: a new record; correct: the whole record again, replacing the earlier one; "
            "cancel: the record is withdrawn (the payload still identifies it)."
        )
    )
    payload: Any = Field(description="The record itself; its shape depends on event_type.")

    EVENT_TYPE: ClassVar[str] = ""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        (cls.EVENT_TYPE,) = get_args(cls.model_fields["event_type"].annotation) or ("",)

    @field_validator("schema_version", mode="before")
    @classmethod
    def _version_is_an_integer(cls, value: object) -> object:
        if isinstance(value, bool):
            raise PydanticCustomError("schema_version", "schema_version must be the integer 1")
        return value
