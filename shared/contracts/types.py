"""Annotated field types of the contract, each checked once by `shared.identifiers`."""

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

from shared.identifiers import (
    InvalidIdentifierError,
    PatientIdType,
    parse_kombika,
    validate_atc,
    validate_batch_number,
    validate_hsa_id,
    validate_icd10se,
    validate_kva,
    validate_npl_id,
    validate_organisationsnummer,
    validate_patient_id,
)


def identifier_error(error: InvalidIdentifierError) -> PydanticCustomError:
    """A pydantic error that names the identifier kind and the broken rule, never the value."""
    return PydanticCustomError(
        "invalid_identifier",
        "{kind}: {rule}",
        {"kind": str(error.kind), "rule": str(error.rule)},
    )


def _checked_by(check: Callable[[str], str]) -> AfterValidator:
    def run(value: str) -> str:
        try:
            return check(value)
        except InvalidIdentifierError as error:
            raise identifier_error(error) from None

    return AfterValidator(run)


def _string_schema(pattern: str | None = None, **extra: Any) -> WithJsonSchema:
    schema: dict[str, Any] = {"type": "string", **extra}
    if pattern is not None:
        schema["pattern"] = pattern
    return WithJsonSchema(schema)


def check_patient_id(id_type: PatientIdType, value: str) -> str:
    """Validate a patient id against its declared type (wraps `validate_patient_id`)."""
    try:
        return validate_patient_id(id_type, value)
    except InvalidIdentifierError as error:
        raise identifier_error(error) from None


def _kombika(value: str) -> str:
    return str(parse_kombika(value))


PatientIdValue = Annotated[
    str,
    _string_schema(r"^[0-9A-Z]{12}$", minLength=12, maxLength=12),
]
"""Twelve characters, no separator; checked against the declared id type by the model."""

HsaId = Annotated[
    str,
    _checked_by(validate_hsa_id),
    _string_schema(
        r"^SE(16)?[0-9]{10}-[A-Za-z0-9]+$", maxLength=31, examples=["SE2321000016-14L1"]
    ),
]
OrganisationNumber = Annotated[
    str,
    _checked_by(validate_organisationsnummer),
    _string_schema(r"^[0-9]{10}$", examples=["2321000016"]),
]
KombikaCode = Annotated[
    str,
    _checked_by(_kombika),
    _string_schema(r"^[0-9]{5} ?[0-9]{3} ?[A-Za-z0-9]{1,3}$", examples=["11010046M30"]),
]
Icd10Se = Annotated[
    str,
    _checked_by(validate_icd10se),
    _string_schema(r"^[A-Z][0-9]{2}[0-9A-Z]{0,3}$", examples=["J069", "B341A"]),
]
KvaCode = Annotated[
    str,
    _checked_by(validate_kva),
    _string_schema(r"^([A-Z]{3}[0-9]{2}|[A-Z]{2}[0-9]{3})$", examples=["NHP09", "AQ014"]),
]
AtcCode = Annotated[
    str,
    _checked_by(validate_atc),
    _string_schema(
        r"^[ABCDGHJLMNPRSV]([0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?)?$", examples=["A01AB13"]
    ),
]
NplId = Annotated[
    str,
    _checked_by(validate_npl_id),
    _string_schema(r"^[0-9]{1,14}$", examples=["20100512100144"]),
]
BatchNumber = Annotated[
    str,
    _checked_by(validate_batch_number),
    _string_schema(maxLength=80),
]

RegionCode = Annotated[
    str,
    StringConstraints(min_length=1, max_length=10, pattern=r"^[0-9A-Za-z]+$"),
]
"""A code from Region Stockholm's code server (BTYP, TAXA, IKOD, UKOD …), checked there by date."""

ProfessionCode = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]{2}$")]
"""A profession code (VDG): exactly two characters."""

CarePeriodCode = Annotated[
    str,
    StringConstraints(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z]+$"),
]
"""A care-period code (kombika + running number)."""

NonEmptyText = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"\S")]
"""Free text or an opaque id: at least one visible character, at most 256."""

AkutFlag = Literal["J", "N"]
"""Emergency flag (AKUT): 'J' (ja, emergency) or 'N' (nej, planned)."""

__all__ = [
    "AkutFlag",
    "AtcCode",
    "BatchNumber",
    "CarePeriodCode",
    "HsaId",
    "Icd10Se",
    "KombikaCode",
    "KvaCode",
    "NonEmptyText",
    "NplId",
    "OrganisationNumber",
    "PatientIdType",
    "PatientIdValue",
    "ProfessionCode",
    "RegionCode",
    "check_patient_id",
    "identifier_error",
]
