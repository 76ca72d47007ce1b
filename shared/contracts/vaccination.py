"""Vaccinations as journal systems publish them, with what the vaccination register needs."""

from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from shared.contracts.envelope import CONTRACT_CONFIG, EventEnvelope
from shared.contracts.patient import PATIENT_ID_DESCRIPTION
from shared.contracts.types import (
    BatchNumber,
    HsaId,
    NonEmptyText,
    NplId,
    OrganisationNumber,
    PatientIdType,
    PatientIdValue,
    check_patient_id,
)


class VaccinationProgramme(StrEnum):
    """The reporting obligation a vaccination falls under."""

    CHILDHOOD = "childhood"
    PNEUMOCOCCAL_RISK = "pneumococcal_risk"
    TUBERCULOSIS_CHILD = "tuberculosis_child"
    COVID19 = "covid19"
    OTHER = "other"


class VaccinatedPerson(BaseModel):
    """The vaccinated person; the register accepts only personnummer and samordningsnummer."""

    model_config = CONTRACT_CONFIG

    id_type: Literal["PNR", "SNR"] = Field(
        description="Kind of id: PNR personnummer or SNR samordningsnummer (the register takes no "
        "others)."
    )
    id: PatientIdValue = Field(description=PATIENT_ID_DESCRIPTION)
    birth_date: date | None = Field(default=None, description="Date of birth, if known.")

    @field_validator("id")
    @classmethod
    def _id_matches_its_type(cls, value: str, info: ValidationInfo) -> str:
        id_type = info.data.get("id_type")
        if id_type is None:  # the id type itself was invalid and is reported on its own
            return value
        return check_patient_id(PatientIdType(id_type), value)


class CareProvider(BaseModel):
    """The responsible care provider (vårdgivare)."""

    model_config = CONTRACT_CONFIG

    hsa_id: HsaId = Field(description="The care provider's HSA-id, e.g. SE2321000016-14L1.")
    organisation_number: OrganisationNumber = Field(
        description="The care provider's organisation number, 10 digits without hyphen."
    )


class Vaccination(BaseModel):
    """One vaccination given, as it must be reported."""

    model_config = CONTRACT_CONFIG

    patient: VaccinatedPerson = Field(description="The vaccinated person.")
    vaccinated_on: date = Field(description="Date of vaccination (YYYY-MM-DD).")
    vaccine_npl_id: NplId = Field(
        description="The vaccine's NPL-id (numeric, up to 14 digits), as on the register's vaccine "
        "list."
    )
    vaccine_name: NonEmptyText | None = Field(
        default=None, description="The vaccine's product name, for people reading the event."
    )
    batch_number: BatchNumber = Field(
        description="Batch (lot) number, 0-80 characters, as on the register's batch list for the "
        "vaccine."
    )
    programme: VaccinationProgramme = Field(
        description=(
            "Reporting obligation: childhood programme, pneumococcal vaccination of risk groups, "
            "tuberculosis vaccination of children, COVID-19, or other."
        )
    )
    dose_number: int | None = Field(
        default=None,
        ge=1,
        le=99,
        validate_default=True,
        description=(
            "Dose number 1-99; required for COVID-19 and forbidden otherwise (4 when unsure; "
            "4 or more counts as a booster)."
        ),
    )
    performing_unit_hsa_id: HsaId = Field(
        description="HSA-id of the care unit that performed the vaccination."
    )
    care_provider: CareProvider = Field(
        description="The care provider (vårdgivare) responsible for the vaccination."
    )

    @field_validator("vaccinated_on")
    @classmethod
    def _not_before_birth(cls, value: date, info: ValidationInfo) -> date:
        patient = info.data.get("patient")
        if patient is not None and patient.birth_date is not None and value < patient.birth_date:
            raise PydanticCustomError(
                "vaccinated_before_birth", "vaccination date is before the person's birth date"
            )
        return value

    @field_validator("dose_number")
    @classmethod
    def _dose_only_for_covid19(cls, value: int | None, info: ValidationInfo) -> int | None:
        programme = info.data.get("programme")
        if programme is VaccinationProgramme.COVID19 and value is None:
            raise PydanticCustomError("dose_number_required", "required when programme is covid19")
        if programme not in (None, VaccinationProgramme.COVID19) and value is not None:
            raise PydanticCustomError(
                "dose_number_forbidden", "allowed only when programme is covid19"
            )
        return value


class VaccinationEvent(EventEnvelope):
    """A vaccination: given, corrected or deleted."""

    event_type: Literal["vaccination"] = Field(description="Always 'vaccination' for this event.")
    payload: Vaccination = Field(description="The vaccination.")
