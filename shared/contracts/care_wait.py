"""Waiting-list entries as journal systems publish them: each event the entry's whole state."""

from datetime import date
from itertools import pairwise
from typing import Annotated, Literal, Self

from pydantic import (
    BaseModel,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from shared.contracts.care_parts import UNIT_HSA_DOC, one_unit
from shared.contracts.envelope import CONTRACT_CONFIG, EventEnvelope
from shared.contracts.patient import Patient
from shared.contracts.types import HsaId, KombikaCode

CARE_WAITS_TOPIC = "care.waits.v1"
"""The default topic of `care.wait` events, keyed by record_id (the entry's id)."""

MAX_EXCEPTIONS = 50
"""At most this many exception periods on one entry."""

WaitCode = Annotated[
    str, StringConstraints(min_length=1, max_length=10, pattern=r"^[0-9A-Za-z]{1,10}$")
]
"""What is waited for, as the waiting-time register's code: 1-10 letters or digits."""

Priority = Annotated[
    str, StringConstraints(min_length=1, max_length=10, pattern=r"^[0-9A-Za-z]{1,10}$")
]
"""The entry's priority as the journal records it ('1'..'4', or a short code)."""

WaitKind = Literal["first_visit", "examination", "treatment", "operation"]
ExceptionKind = Literal["patient_chosen", "medically_caused"]
RemovalReason = Literal["treated_elsewhere", "declined", "deceased", "no_longer_needed", "other"]


class WaitException(BaseModel):
    """A period the wait does not count against the care guarantee: patient-chosen (PVV) or
    medically caused (MOV)."""

    model_config = CONTRACT_CONFIG

    kind: ExceptionKind = Field(
        description="patient_chosen: patientvald väntan (PVV), the patient chose to wait; "
        "medically_caused: medicinskt orsakad väntan (MOV), waiting is medically necessary."
    )
    start: date = Field(description="First day of the period (YYYY-MM-DD).")
    end: date | None = Field(
        default=None,
        description="Last day of the period, inclusive (YYYY-MM-DD); null or absent while the "
        "period is still open. Not before `start`.",
    )

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> Self:
        if self.end is not None and self.end < self.start:
            raise PydanticCustomError("exception_order", "end must not be before start")
        return self


class CareWait(BaseModel):
    """A waiting-list entry as it stands now: who waits, where, for what, since when, and how the
    wait ended (completed or removed), if it has."""

    model_config = CONTRACT_CONFIG

    patient: Patient = Field(description="The patient who waits.")
    kombika: KombikaCode | None = Field(
        default=None,
        description="Unit the patient waits at, as kombika: inrättning (5 digits), klinik (3), "
        "avdelning (1-3). Give it or `unit_hsa_id` (exactly one of the two).",
    )
    unit_hsa_id: HsaId | None = Field(default=None, description=UNIT_HSA_DOC)
    cvr_code: WaitCode = Field(
        description="What is waited for, as the waiting-time register's code (1-10 letters or "
        "digits). The register's code list is not public: the code is not checked against it."
    )
    wait_kind: WaitKind = Field(
        description="What kind of wait: first_visit, examination, treatment or operation."
    )
    priority: Priority | None = Field(
        default=None,
        description="Priority as the journal records it ('1'..'4' or a short code of at most "
        "10 letters or digits). Optional.",
    )
    guarantee_applies: bool = Field(
        description="Whether the care guarantee (vårdgaranti) applies to this wait."
    )
    referral_received: date = Field(
        description="Date the referral was received (remissdatum, YYYY-MM-DD): the start of the "
        "wait."
    )
    decided_on: date | None = Field(
        default=None,
        description="Date of the decision to treat (beslutsdatum), the start of the treatment "
        "guarantee. Not before `referral_received`.",
    )
    booked_on: date | None = Field(
        default=None, description="Date the appointment was booked (bokningsdatum), if booked."
    )
    booked_for: date | None = Field(
        default=None,
        description="Date of the booked appointment, if booked. Not before `booked_on`.",
    )
    completed_on: date | None = Field(
        default=None,
        description="Date the wait ended in the visit or treatment waited for. Not before "
        "`referral_received`; not together with `removed_on`.",
    )
    removed_on: date | None = Field(
        default=None,
        description="Date the entry was removed from the list (avförd) without the care waited "
        "for. Not before `referral_received`; needs `removed_reason`.",
    )
    removed_reason: RemovalReason | None = Field(
        default=None,
        validate_default=True,
        description="Why the entry was removed: treated_elsewhere, declined, deceased, "
        "no_longer_needed or other. Required with `removed_on`, refused without it.",
    )
    exceptions: tuple[WaitException, ...] = Field(
        default=(),
        max_length=MAX_EXCEPTIONS,
        description=f"Exception periods (PVV / MOV), at most {MAX_EXCEPTIONS}. Periods of the "
        "same kind must not overlap, none starts before `referral_received`, and a completed or "
        "removed entry has no open period.",
    )

    @field_validator("decided_on")
    @classmethod
    def _decided_after_referral(cls, value: date | None, info: ValidationInfo) -> date | None:
        referral = info.data.get("referral_received")
        if value is not None and referral is not None and value < referral:
            raise PydanticCustomError(
                "wait_order", "decided_on must not be before referral_received"
            )
        return value

    @field_validator("booked_for")
    @classmethod
    def _appointment_after_booking(cls, value: date | None, info: ValidationInfo) -> date | None:
        booked_on = info.data.get("booked_on")
        if value is not None and booked_on is not None and value < booked_on:
            raise PydanticCustomError("wait_order", "booked_for must not be before booked_on")
        return value

    @field_validator("completed_on", "removed_on")
    @classmethod
    def _ended_after_referral(cls, value: date | None, info: ValidationInfo) -> date | None:
        referral = info.data.get("referral_received")
        if value is not None and referral is not None and value < referral:
            raise PydanticCustomError(
                "wait_order",
                "{field} must not be before referral_received",
                {"field": info.field_name},
            )
        if info.field_name == "removed_on" and value is not None and info.data.get("completed_on"):
            raise PydanticCustomError(
                "wait_outcome",
                "an entry is completed or removed, not both: give completed_on or removed_on",
            )
        return value

    @field_validator("removed_reason")
    @classmethod
    def _reason_with_removal(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "removed_on" not in info.data:  # invalid, and reported on its own
            return value
        removed = info.data["removed_on"] is not None
        if removed and value is None:
            raise PydanticCustomError(
                "removed_reason_required", "required when removed_on is given"
            )
        if not removed and value is not None:
            raise PydanticCustomError(
                "removed_reason_forbidden", "allowed only when removed_on is given"
            )
        return value

    @field_validator("exceptions")
    @classmethod
    def _exceptions_fit_the_wait(
        cls, periods: tuple[WaitException, ...], info: ValidationInfo
    ) -> tuple[WaitException, ...]:
        referral = info.data.get("referral_received")
        ended = info.data.get("completed_on") or info.data.get("removed_on")
        for position, period in enumerate(periods):
            if referral is not None and period.start < referral:
                raise PydanticCustomError(
                    "exception_order",
                    "exception {position} starts before referral_received",
                    {"position": position},
                )
            if ended is not None and period.end is None:
                raise PydanticCustomError(
                    "exception_open",
                    "exception {position} is still open (no end), but the entry is {outcome}",
                    {
                        "position": position,
                        "outcome": "completed" if info.data.get("completed_on") else "removed",
                    },
                )
        check_no_overlap(periods)
        return periods

    @model_validator(mode="after")
    def _unit_given_once(self) -> Self:
        one_unit(self.kombika, self.unit_hsa_id)
        return self


def check_no_overlap(periods: tuple[WaitException, ...]) -> None:
    """Two periods of the same kind share no day (an open period runs on without end)."""
    by_start = sorted(enumerate(periods), key=lambda item: (item[1].kind, item[1].start))
    for (first, earlier), (second, later) in pairwise(by_start):
        if earlier.kind != later.kind:
            continue
        if earlier.end is None or later.start <= earlier.end:
            raise PydanticCustomError(
                "exception_overlap",
                "exceptions {first} and {second} overlap (both {kind})",
                {"first": min(first, second), "second": max(first, second), "kind": later.kind},
            )


class CareWaitEvent(EventEnvelope):
    """A waiting-list entry (record_id: the entry's id), its whole current state in every event: a
    new entry, the entry as changed, or the entry withdrawn (cancel: it was reported in error)."""

    event_type: Literal["care.wait"] = Field(description="Always 'care.wait' for this event.")
    payload: CareWait = Field(
        description="The waiting-list entry as it stands now (not a change): the latest "
        "record_version replaces every earlier one."
    )


__all__ = [
    "CARE_WAITS_TOPIC",
    "MAX_EXCEPTIONS",
    "CareWait",
    "CareWaitEvent",
    "ExceptionKind",
    "Priority",
    "RemovalReason",
    "WaitCode",
    "WaitException",
    "WaitKind",
    "check_no_overlap",
]
