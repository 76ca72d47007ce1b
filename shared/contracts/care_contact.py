"""Care contacts as journal systems publish them: outpatient visits, admissions, discharges and
availability data."""

from datetime import date
from typing import Annotated, Literal, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from shared.contracts.care_ersmo import CareEpisode, CareResponsibility
from shared.contracts.care_parts import (
    COMMISSION_DOC,
    CONDITIONS_DOC,
    END_DOC,
    END_UNIT_DOC,
    MAX_ROWS,
    UNIT_DOC,
    UNIT_HSA_DOC,
    AkutCode,
    CarePatient,
    CodeClass,
    Commission,
    Condition,
    EventRef,
    Medication,
    Product,
    ResourceGroup,
    SingleCode,
    UnitId,
    check_links,
    ends_after,
    one_unit,
)
from shared.contracts.envelope import CONTRACT_CONFIG, EventEnvelope
from shared.contracts.patient import Patient
from shared.contracts.types import (
    AkutFlag,
    AtcCode,
    CarePeriodCode,
    HsaId,
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
    diagnosis_index: int | None = Field(
        default=None,
        ge=0,
        description="0-based position in this payload's `diagnoses` of the linked diagnosis; "
        "optional (a procedure may stand alone or belong to a condition).",
    )
    condition_index: int | None = Field(
        default=None,
        ge=0,
        description="0-based position in this payload's `conditions` of a linked condition.",
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
        if procedure.diagnosis_index is not None and procedure.diagnosis_index >= len(diagnoses):
            raise PydanticCustomError(
                "diagnosis_link",
                "procedure {position} links diagnosis_index {index}, but only {count} "
                "diagnoses are given",
                {"position": position, "index": procedure.diagnosis_index, "count": len(diagnoses)},
            )
    return procedures


class OutpatientVisit(BaseModel):
    """An outpatient visit (Vårdkontakt öppenvård), or a home-care contact."""

    model_config = CONTRACT_CONFIG

    kind: Literal["outpatient_visit"] = Field(description="Payload kind: an outpatient visit.")
    patient: CarePatient = Field(description=_PATIENT)
    kombika: KombikaCode | None = Field(default=None, description=UNIT_DOC)
    unit_hsa_id: HsaId | None = Field(default=None, description=UNIT_HSA_DOC)
    visited_at: AwareDatetime | None = Field(
        default=None,
        description="Date and time of the visit, with zone offset (part of the record key). "
        "Give it, or `visited_on` when only the date is known.",
    )
    visited_on: date | None = Field(
        default=None,
        description="Date of the visit when its time is not known (YYYY-MM-DD), instead of "
        "`visited_at`.",
    )
    ends_on: date | None = Field(default=None, description=END_DOC)
    end_unit: UnitId | None = Field(default=None, description=END_UNIT_DOC)
    contact_form: Literal["outpatient", "home_care"] | None = Field(
        default=None,
        description="Form of the contact: outpatient (öppenvårdskontakt) or home care "
        "(hemsjukvårdskontakt). Optional; outpatient when not given.",
    )
    visit_type: RegionCode | None = Field(
        default=None,
        description="Visit type (BTYP) from the region's code server; ERSMO event type 013.",
    )
    professions: tuple[ProfessionCode, ...] = Field(
        default=(),
        max_length=20,
        description="Professions present (VDG), two characters each (01 physician, 02 nurse …); "
        "may be empty.",
    )
    akut: AkutCode | None = Field(
        default=None,
        description="Emergency flag (AKUT): 'J' / '1' emergency, 'N' / '2' planned. Optional.",
    )
    tariff: RegionCode | None = Field(
        default=None, description="Tariff (TAXA) valid on the visit date. Optional."
    )
    patient_fee: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]{1,2}$")] | None = Field(
        default=None,
        description="Patient fee code (ERSMO Patientavgift, 1-2 characters), of the table "
        "`patient_fee_class`.",
    )
    patient_fee_class: CodeClass | None = Field(
        default=None,
        description="The table of `patient_fee` (ERSMO Avgiftsklass; 006 = TAXA).",
    )
    care_period_code: CarePeriodCode | None = Field(
        default=None, description=f"{_CARE_PERIOD} Optional."
    )
    contact_type: RegionCode | None = Field(
        default=None,
        description="Type of care contact (kontakttyp, VKTYP); ERSMO event type 014. Optional.",
    )
    diagnoses: tuple[Icd10Se, ...] = Field(default=(), max_length=MAX_ROWS, description=_DIAGNOSES)
    conditions: tuple[Condition, ...] = Field(
        default=(), max_length=MAX_ROWS, description=CONDITIONS_DOC
    )
    procedures: tuple[Procedure, ...] = Field(
        default=(), max_length=MAX_ROWS, description=_PROCEDURES
    )
    atc_codes: tuple[AtcCode, ...] = Field(
        default=(),
        max_length=MAX_ROWS,
        description="Medicines given during the visit as ATC codes, e.g. A01AB13.",
    )
    medications: tuple[Medication, ...] = Field(
        default=(),
        max_length=MAX_ROWS,
        description="Medicines given as ATC rows with a date and a link to a diagnosis or "
        "condition (use `atc_codes` for bare codes).",
    )
    products: tuple[Product, ...] = Field(
        default=(), max_length=MAX_ROWS, description="Products used or handed out, with quantities."
    )
    resource_groups: tuple[ResourceGroup, ...] = Field(
        default=(), max_length=MAX_ROWS, description="Resource groups the contact is reimbursed in."
    )
    referring_kombika: KombikaCode | None = Field(
        default=None, description="Kombika of the referring unit, if the visit was referred."
    )
    referring_unit_hsa_id: HsaId | None = Field(
        default=None, description="HSA-id of the referring unit, when it is named that way."
    )
    referred_to_unit: UnitId | None = Field(
        default=None, description="Unit the patient was referred on to (kombika or HSA-id)."
    )
    stay_before: SingleCode | None = Field(
        default=None, description="Where the patient stayed before (VisteFöre, IKOD-like code)."
    )
    care_before: SingleCode | None = Field(
        default=None, description="Care before the contact (VårdFöre), one character."
    )
    stay_after: SingleCode | None = Field(
        default=None, description="Where the patient stays after (VisteEfter, UKOD-like code)."
    )
    care_after: SingleCode | None = Field(
        default=None, description="Care planned after the contact (VårdEfter, VPLAN)."
    )
    commission: Commission | None = Field(default=None, description=COMMISSION_DOC)
    belongs_to_care_responsibility: EventRef | None = Field(
        default=None,
        description="record_id of the care responsibility (vårdansvar) the contact belongs to.",
    )
    belongs_to_contact: EventRef | None = Field(
        default=None, description="record_id of another contact this one belongs to."
    )

    @field_validator("conditions", "procedures", "medications")
    @classmethod
    def _rows_link_existing_rows(
        cls, rows: tuple[BaseModel, ...], info: ValidationInfo
    ) -> tuple[BaseModel, ...]:
        if info.field_name == "procedures":
            check_procedure_links(rows, info)  # type: ignore[arg-type]
        return check_links(rows, info)

    @model_validator(mode="after")
    def _unit_and_time_given_once(self) -> Self:
        one_unit(self.kombika, self.unit_hsa_id)
        if (self.visited_at is None) == (self.visited_on is None):
            raise PydanticCustomError(
                "visit_time", "give `visited_at` or `visited_on` (exactly one of the two)"
            )
        ends_after(self.day, self.ends_on)
        return self

    @property
    def day(self) -> date:
        """The visit's date as given (`visited_at` in its own offset, or `visited_on`)."""
        if self.visited_at is not None:
            return self.visited_at.date()
        assert self.visited_on is not None  # the model validator saw to it
        return self.visited_on


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

    @field_validator("procedures")
    @classmethod
    def _no_conditions_to_link(cls, procedures: tuple[Procedure, ...]) -> tuple[Procedure, ...]:
        for position, procedure in enumerate(procedures):
            if procedure.condition_index is not None:
                raise PydanticCustomError(
                    "link",
                    "procedure {position} links a condition, but a discharge has no conditions",
                    {"position": position},
                )
        return procedures

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
    OutpatientVisit | Admission | Discharge | Availability | CareResponsibility | CareEpisode,
    Field(discriminator="kind"),
]
CARE_CONTACT_KINDS = (
    "outpatient_visit",
    "admission",
    "discharge",
    "availability",
    "care_responsibility",
    "care_period",
    "examination",
    "dispatch",
)


class CareContactEvent(EventEnvelope):
    """A care contact: a visit, an admission, a discharge, availability data, a care
    responsibility, a care period, an examination or a dispatch."""

    event_type: Literal["care.contact"] = Field(description="Always 'care.contact' for this event.")
    payload: CareContact = Field(
        description="The care contact; `kind` selects outpatient visit, admission, discharge, "
        "availability, care responsibility, care period, examination or dispatch."
    )
