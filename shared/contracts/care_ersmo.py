"""The event classes of the region's ERSMO format besides contacts: a care responsibility
(vårdansvar), and the care period, examination and dispatch reimbursed by dates and unit alone."""

from datetime import date
from typing import Literal, Self

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from shared.contracts.care_parts import (
    COMMISSION_DOC,
    CONDITIONS_DOC,
    END_DOC,
    END_UNIT_DOC,
    MAX_ROWS,
    UNIT_DOC,
    UNIT_HSA_DOC,
    CarePatient,
    Commission,
    Condition,
    UnitId,
    check_links,
    ends_after,
    one_unit,
)
from shared.contracts.envelope import CONTRACT_CONFIG
from shared.contracts.types import HsaId, Icd10Se, KombikaCode

_PATIENT = "The patient the event concerns."
_DIAGNOSES = (
    "Diagnoses as ICD-10-SE codes without the dot (J069, B341A), in order: the first is the main "
    "diagnosis."
)


class CareResponsibility(BaseModel):
    """A care responsibility (vårdansvar), e.g. for home care: from a date, at a unit."""

    model_config = CONTRACT_CONFIG

    kind: Literal["care_responsibility"] = Field(
        description="Payload kind: a care responsibility (vårdansvar)."
    )
    patient: CarePatient = Field(description=_PATIENT)
    kombika: KombikaCode | None = Field(default=None, description=UNIT_DOC)
    unit_hsa_id: HsaId | None = Field(default=None, description=UNIT_HSA_DOC)
    starts_on: date = Field(description="Date the responsibility starts (YYYY-MM-DD).")
    ends_on: date | None = Field(default=None, description=END_DOC)
    end_unit: UnitId | None = Field(default=None, description=END_UNIT_DOC)
    form: Literal["home_care", "unknown"] = Field(
        description="Form: home care (hemsjukvårdsansvar) or unknown (okänt)."
    )
    level: Literal["basic", "advanced", "unknown"] | None = Field(
        default=None, description="Level of home care: basic (basal), advanced (avancerad)."
    )
    diagnoses: tuple[Icd10Se, ...] = Field(default=(), max_length=MAX_ROWS, description=_DIAGNOSES)
    conditions: tuple[Condition, ...] = Field(
        default=(), max_length=MAX_ROWS, description=CONDITIONS_DOC
    )
    commission: Commission | None = Field(default=None, description=COMMISSION_DOC)

    @field_validator("conditions")
    @classmethod
    def _conditions_link_diagnoses(
        cls, rows: tuple[BaseModel, ...], info: ValidationInfo
    ) -> tuple[BaseModel, ...]:
        return check_links(rows, info)

    @model_validator(mode="after")
    def _unit_given_once(self) -> Self:
        one_unit(self.kombika, self.unit_hsa_id)
        ends_after(self.starts_on, self.ends_on)
        return self


class CareEpisode(BaseModel):
    """An event reimbursed by its dates and unit alone: a care period (vårdperiod), an
    examination (undersökning) or a dispatch (expediering)."""

    model_config = CONTRACT_CONFIG

    kind: Literal["care_period", "examination", "dispatch"] = Field(
        description="Payload kind: care_period, examination or dispatch."
    )
    patient: CarePatient = Field(description=_PATIENT)
    kombika: KombikaCode | None = Field(default=None, description=UNIT_DOC)
    unit_hsa_id: HsaId | None = Field(default=None, description=UNIT_HSA_DOC)
    starts_on: date = Field(description="Date the event starts (YYYY-MM-DD).")
    ends_on: date | None = Field(default=None, description=END_DOC)
    end_unit: UnitId | None = Field(default=None, description=END_UNIT_DOC)
    commission: Commission | None = Field(default=None, description=COMMISSION_DOC)

    @model_validator(mode="after")
    def _unit_given_once(self) -> Self:
        one_unit(self.kombika, self.unit_hsa_id)
        ends_after(self.starts_on, self.ends_on)
        return self
