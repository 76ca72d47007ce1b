"""The patient of a care event: an explicit id type and an id checked against it."""

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from shared.contracts.envelope import CONTRACT_CONFIG
from shared.contracts.types import PatientIdType, PatientIdValue, check_patient_id

PATIENT_ID_DESCRIPTION = (
    "The patient's id in its 12-character register form, no separator "
    "(personnummer 'YYYYMMDDNNNC', e.g. 191212121212); validated against id_type."
)


class Patient(BaseModel):
    """A patient identified by personnummer, samordningsnummer or a reserve number."""

    model_config = CONTRACT_CONFIG

    id_type: PatientIdType = Field(
        description=(
            "Kind of id: PNR personnummer, SNR samordningsnummer, RESERVE_SLL Region Stockholm "
            "reserve number, RESERVE_VGR Västra Götaland reserve number, NRID national reserve id."
        )
    )
    id: PatientIdValue = Field(description=PATIENT_ID_DESCRIPTION)

    @field_validator("id")
    @classmethod
    def _id_matches_its_type(cls, value: str, info: ValidationInfo) -> str:
        id_type = info.data.get("id_type")
        if id_type is None:  # the id type itself was invalid and is reported on its own
            return value
        return check_patient_id(id_type, value)
