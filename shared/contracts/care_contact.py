"""Care contacts as journal systems publish them: outpatient visits, admissions, discharges and
availability data."""

from datetime import date
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from shared.contracts.envelope import CONTRACT_CONFIG, EventEnvelope
from shared.contracts.patient import Patient
from shared.contracts.types import (
    AkutFlag,
    AtcCode,
    CarePeriodCode,
    Icd10Se,
    KombikaCode,
    KvaCode,
    ProfessionCode,
    RegionCode,
)
from shared.identifiers import parse_kombika

_PATIENT = "The patient the contact concerns."
_AKUT = "Emergency flag (AKUT): 'J' (ja, emergency) or 'N' (nej, planned)."
_DIAGNOSES = (
    "Diagnoses as ICD-10-SE codes without the dot (J069, B341A), in order: the first is the main "
    "diagnosis."
)
_PROCEDURES = "Procedures (KVÅ) in order: the first is the main procedure."
_CARE_PERIOD = "Care-period code (kombika + running number) that groups the contacts of one period."


class Procedure(BaseModel):
    """One procedure performed, linked to the diagnosis it was performed for."""

    model_config = CONTRACT_CONFIG

    code: KvaCode = Field(description="KVÅ procedure code, e.g. NHP09 or AQ014.")
    diagnosis_index: int = Field(
        ge=0,
        description="0-based position in this payload's `diagnoses` of the linked diagnosis.",
    )
    performed_on: date = Field(description="Date the procedure was performed (YYYY-MM-DD).")


def check_procedure_links(
    procedures: tuple[Procedure, ...], info: ValidationInfo
) -> tuple[Procedure, ...]:
    """Every procedure must point at a diagnosis of the same payload."""
    diagnoses = info.data.get("diagnoses")
    if diagnoses is None:  # diagnoses were invalid and are reported on their own
        return procedures
    for position, procedure in enumerate(procedures):
        if procedure.diagnosis_index >= len(diagnoses):
            raise PydanticCustomError(
                "diagnosis_link",
                "procedure {position} links diagnosis_index {index}, but only {count} "
                "diagnoses are given",
                {"position": position, "index": procedure.diagnosis_index, "count": len(diagnoses)},
            )
    return procedures


class OutpatientVisit(BaseModel):
    """An outpatient visit (Vårdkontakt öppenvård)."""

    model_config = CONTRACT_CONFIG

    kind: Literal["outpatient_visit"] = Field(description="Payload kind: an outpatient visit.")
    patient: Patient = Field(description=_PATIENT)
    kombika: KombikaCode = Field(
        description="Reporting unit as kombika: inrättning (5 digits), klinik (3), avdelning (1-3)."
    )
    visited_at: AwareDatetime = Field(
        description="Date and time of the visit, with zone offset (part of the record key)."
    )
    visit_type: RegionCode = Field(description="Visit type (BTYP) from the region's code server.")
    professions: tuple[ProfessionCode, ...] = Field(
        min_length=1, description="Professions present (VDG), two characters each; at least one."
    )
    akut: AkutFlag = Field(description=_AKUT)
    tariff: RegionCode = Field(description="Tariff (TAXA) valid on the visit date.")
    care_period_code: CarePeriodCode | None = Field(
        default=None, description=f"{_CARE_PERIOD} Optional."
    )
    contact_type: RegionCode = Field(description="Type of care contact (kontakttyp).")
    diagnoses: tuple[Icd10Se, ...] = Field(default=(), description=_DIAGNOSES)
    procedures: tuple[Procedure, ...] = Field(default=(), description=_PROCEDURES)
    atc_codes: tuple[AtcCode, ...] = Field(
        default=(), description="Medicines given during the visit as ATC codes, e.g. A01AB13."
    )
    referring_kombika: KombikaCode | None = Field(
        default=None, description="Kombika of the referring unit, if the visit was referred."
    )

    @field_validator("procedures")
    @classmethod
    def _procedures_link_diagnoses(
        cls, procedures: tuple[Procedure, ...], info: ValidationInfo
    ) -> tuple[Procedure, ...]:
        return check_procedure_links(procedures, info)


class Admission(BaseModel):
    """The start of an inpatient care episode (inskrivning)."""

    model_config = CONTRACT_CONFIG

    kind: Literal["admission"] = Field(description="Payload kind: an inpatient admission.")
    patient: Patient = Field(description=_PATIENT)
    kombika: KombikaCode = Field(description="Admitting unit as kombika.")
    admitted_at: AwareDatetime = Field(description="Admission date and time, with zone offset.")
    admission_code: RegionCode = Field(description="Admission code (IKOD): how the patient came.")
    referring_kombika: KombikaCode | None = Field(
        default=None, description="Kombika of the referring unit, if any."
    )
    akut: AkutFlag = Field(description=_AKUT)
    psychiatric_care_form: RegionCode | None = Field(
        default=None, description="Psychiatric care form (e.g. compulsory care), if applicable."
    )
    care_period_code: CarePeriodCode = Field(description=_CARE_PERIOD)


class Discharge(BaseModel):
    """The end of an inpatient care episode (utskrivning), with its diagnoses and procedures."""

    model_config = CONTRACT_CONFIG

    kind: Literal["discharge"] = Field(description="Payload kind: an inpatient discharge.")
    patient: Patient = Field(description=_PATIENT)
    admitting_kombika: KombikaCode = Field(description="Kombika of the unit that admitted.")
    discharging_kombika: KombikaCode = Field(
        description="Kombika of the discharging unit; may differ only within the same clinic."
    )
    discharged_at: AwareDatetime = Field(description="Discharge date and time, with zone offset.")
    discharge_code: RegionCode = Field(description="Discharge code (UKOD): where the patient went.")
    referred_to_kombika: KombikaCode | None = Field(
        default=None, description="Kombika of the unit the patient was referred to, if any."
    )
    died_at: AwareDatetime | None = Field(
        default=None, description="Time of death, with zone offset, if the patient died."
    )
    diagnoses: tuple[Icd10Se, ...] = Field(default=(), description=_DIAGNOSES)
    procedures: tuple[Procedure, ...] = Field(default=(), description=_PROCEDURES)
    care_period_code: CarePeriodCode = Field(description=_CARE_PERIOD)

    @field_validator("procedures")
    @classmethod
    def _procedures_link_diagnoses(
        cls, procedures: tuple[Procedure, ...], info: ValidationInfo
    ) -> tuple[Procedure, ...]:
        return check_procedure_links(procedures, info)

    @field_validator("discharging_kombika")
    @classmethod
    def _same_clinic_as_admission(cls, value: str, info: ValidationInfo) -> str:
        admitting = info.data.get("admitting_kombika")
        if admitting is None:
            return value
        left, right = parse_kombika(admitting), parse_kombika(value)
        if (left.inr, left.klin) != (right.inr, right.klin):
            raise PydanticCustomError(
                "discharge_other_clinic",
                "discharging unit must belong to the admitting unit's clinic "
                "(same inrättning and klinik)",
            )
        return value


class Availability(BaseModel):
    """Availability data (Tillgänglighet): a booking and its waiting-time dates."""

    model_config = CONTRACT_CONFIG

    kind: Literal["availability"] = Field(description="Payload kind: availability data.")
    patient: Patient = Field(description=_PATIENT)
    kombika: KombikaCode = Field(description="Unit the patient waits for, as kombika.")
    contact_category: Literal["outpatient", "inpatient", "rehab_coordinator"] = Field(
        description="Type of contact waited for: outpatient, inpatient or rehab coordinator."
    )
    care_guarantee: bool = Field(
        description="Whether the contact falls under the care guarantee (vårdgaranti)."
    )
    booked_on: date = Field(description="Date the booking was created (YYYY-MM-DD).")
    appointment_at: AwareDatetime | None = Field(
        default=None, description="Booked appointment time, with zone offset, if known."
    )
    referral_received_on: date | None = Field(
        default=None, description="Date the referral was received, if the contact is referred."
    )
    decided_on: date | None = Field(
        default=None, description="Date of the decision to treat (beslutsdatum), if made."
    )
    referral_type: RegionCode | None = Field(
        default=None, description="Referral type code, if referred."
    )
    exception_code: RegionCode | None = Field(
        default=None,
        description="Exception code for the wait, e.g. a patient-chosen later time.",
    )


CareContact = Annotated[
    OutpatientVisit | Admission | Discharge | Availability, Field(discriminator="kind")
]
CARE_CONTACT_KINDS = ("outpatient_visit", "admission", "discharge", "availability")


class CareContactEvent(EventEnvelope):
    """A care contact: a visit, an admission, a discharge or availability data."""

    event_type: Literal["care.contact"] = Field(description="Always 'care.contact' for this event.")
    payload: CareContact = Field(
        description="The care contact; `kind` selects outpatient visit, admission, discharge or "
        "availability."
    )
