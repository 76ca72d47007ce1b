"""The parts of a care contact that the region's ERSMOIndata 2.2 carries beyond the first contract:
conditions, products, resource groups, dated ATC rows, units by HSA-id, the patient's residence."""

from datetime import date
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from shared.contracts.envelope import CONTRACT_CONFIG
from shared.contracts.patient import Patient
from shared.contracts.types import AtcCode, HsaId, KombikaCode, identifier_error
from shared.identifiers import InvalidIdentifierError, parse_kombika, validate_hsa_id

MAX_ROWS = 50
"""At most this many rows in any list of a care contact (diagnoses, procedures, products …)."""

UNIT_DOC = "Reporting unit as kombika: inrättning (5 digits), klinik (3), avdelning (1-3)."
UNIT_HSA_DOC = "Reporting unit as HSA-id, instead of `kombika` (give exactly one of the two)."
END_DOC = "Date the event ended (YYYY-MM-DD), when it spans days; not before its start."
END_UNIT_DOC = "Unit where the event ended, as kombika or HSA-id, when not the reporting unit."
COMMISSION_DOC = "The commission (ERSUPPDRAG, at most 7 characters) the event is reimbursed under."
CONDITIONS_DOC = (
    "Conditions recorded (e.g. ASA class), dated, each optionally linked to a diagnosis."
)


ErsmoCode = Annotated[
    str, StringConstraints(min_length=1, max_length=10, pattern=r"^[0-9A-Za-z]+$")
]
"""A code of one of the region's tables (ERSMO: at most 10 characters): a condition, a product."""

CodeClass = Annotated[str, StringConstraints(min_length=1, max_length=3, pattern=r"^[0-9]+$")]
"""The region's number of the table a code belongs to (ERSMO `Klass`, e.g. 010 conditions)."""

SingleCode = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]$")]
"""One letter or digit: stay and care before/after (ERSMO VisteFöre, VårdFöre …)."""

EventRef = Annotated[str, StringConstraints(min_length=1, max_length=33, pattern=r"\S")]
"""Another event's id (ERSMO's ersättningshändelse id: at most 33 characters)."""

Commission = Annotated[str, StringConstraints(min_length=1, max_length=7, pattern=r"^\S+$")]
"""The commission (ERSUPPDRAG) the event is reimbursed under: at most 7 characters."""

AkutCode = Literal["J", "N", "1", "2"]
"""Emergency flag: 'J'/'N' (ja/nej), or ERSMO's '1' (emergency) / '2' (planned)."""


def _unit_id(value: str) -> str:
    try:
        if value.startswith("SE"):
            return validate_hsa_id(value)
        return str(parse_kombika(value))
    except InvalidIdentifierError as error:
        raise identifier_error(error) from None


UnitId = Annotated[
    str,
    AfterValidator(_unit_id),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": 31,
            "pattern": r"^([0-9]{5} ?[0-9]{3} ?[A-Za-z0-9]{1,3}|SE(16)?[0-9]{10}-[A-Za-z0-9]+)$",
            "examples": ["11010046M30", "SE2321000016-14L1"],
        }
    ),
]
"""A unit as kombika (8 digits + 1-3 alphanumerics) or as HSA-id (SE…-…)."""


class CarePatient(Patient):
    """The patient of a care contact, with what the register takes besides the id (optional)."""

    lkf: str | None = Field(
        default=None,
        pattern=r"^[0-9A-Za-z]{6}$",
        description="Residence code LKF: county (län, 2) + municipality (kommun, 2) + parish "
        "(församling, 2), e.g. 010203.",
    )
    base_area: str | None = Field(
        default=None, pattern=r"^[0-9]{7}$", description="Region Stockholm's basområde, 7 digits."
    )
    birth_date: date | None = Field(default=None, description="Birth date (YYYY-MM-DD).")
    sex: Literal["K", "M"] | None = Field(
        default=None, description="Sex as the register records it: K (kvinna) or M (man)."
    )


class Condition(BaseModel):
    """A condition recorded for the contact (ERSMO Tillstånd: e.g. ASA class), dated."""

    model_config = CONTRACT_CONFIG

    code: ErsmoCode = Field(description="Condition code, e.g. ASA6.")
    code_class: CodeClass | None = Field(
        default=None, description="The region's table of the code (ERSMO Klass, e.g. 010)."
    )
    recorded_on: date = Field(description="Date the condition applies from (YYYY-MM-DD).")
    diagnosis_index: int | None = Field(
        default=None, ge=0, description="0-based position in `diagnoses` of a linked diagnosis."
    )


class Product(BaseModel):
    """A product used or handed out (ERSMO Produkt), with its quantity."""

    model_config = CONTRACT_CONFIG

    code: ErsmoCode = Field(description="Product code, e.g. K1234.")
    code_class: CodeClass | None = Field(
        default=None, description="The region's table of the code (ERSMO Klass, e.g. 005)."
    )
    quantity: int = Field(ge=1, le=9999, description="How many (1-9999).")


class ResourceGroup(BaseModel):
    """A resource group the contact is reimbursed in (ERSMO Resursgrupp)."""

    model_config = CONTRACT_CONFIG

    code: Annotated[
        str, StringConstraints(min_length=1, max_length=4, pattern=r"^[0-9A-Za-z]+$")
    ] = Field(description="Resource group code, 1-4 letters or digits, e.g. 1234.")
    code_class: CodeClass | None = Field(
        default=None, description="The region's table of the code (ERSMO Klass, e.g. 012)."
    )


class Medication(BaseModel):
    """A medicine given (ATC), optionally dated and linked to a diagnosis or a condition."""

    model_config = CONTRACT_CONFIG

    atc: AtcCode = Field(description="ATC code, e.g. A01AB13.")
    given_on: date | None = Field(default=None, description="Date given (YYYY-MM-DD).")
    diagnosis_index: int | None = Field(
        default=None, ge=0, description="0-based position in `diagnoses` of a linked diagnosis."
    )
    condition_index: int | None = Field(
        default=None, ge=0, description="0-based position in `conditions` of a linked condition."
    )


def check_links(rows: tuple[BaseModel, ...], info: ValidationInfo) -> tuple[BaseModel, ...]:
    """Every `diagnosis_index` / `condition_index` of `rows` points at a row of this payload."""
    for position, row in enumerate(rows):
        for field, target in (("diagnosis_index", "diagnoses"), ("condition_index", "conditions")):
            index = getattr(row, field, None)
            if index is None:
                continue
            if target not in info.data:  # invalid (reported on its own) or declared later
                continue
            count = len(info.data[target])
            if index >= count:
                raise PydanticCustomError(
                    "link",
                    "row {position} links {field} {index}, but only {count} {target} are given",
                    {
                        "position": position,
                        "field": field,
                        "index": index,
                        "count": count,
                        "target": target,
                    },
                )
    return rows


def one_unit(kombika: str | None, hsa_id: str | None) -> None:
    """The reporting unit is given once: as kombika or as HSA-id."""
    if (kombika is None) == (hsa_id is None):
        raise PydanticCustomError(
            "unit", "give the unit as `kombika` or as `unit_hsa_id` (exactly one of the two)"
        )


def ends_after(start: date, end: date | None) -> None:
    if end is not None and end < start:
        raise PydanticCustomError("ends_on", "ends_on must not be before the event's start date")


__all__ = [
    "COMMISSION_DOC",
    "CONDITIONS_DOC",
    "END_DOC",
    "END_UNIT_DOC",
    "MAX_ROWS",
    "UNIT_DOC",
    "UNIT_HSA_DOC",
    "AkutCode",
    "CarePatient",
    "CodeClass",
    "Commission",
    "Condition",
    "ErsmoCode",
    "EventRef",
    "HsaId",
    "KombikaCode",
    "Medication",
    "Product",
    "ResourceGroup",
    "SingleCode",
    "UnitId",
    "check_links",
    "ends_after",
    "one_unit",
]
