"""From a request entry to what the rules read: FHIR structure first, then the reported parts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.immunization import Immunization
from fhir.resources.R4B.location import Location
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.reference import Reference
from fhir.resources.R4B.resource import Resource
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from pydantic import ValidationError

from services.nvr.profile import NvrProfile
from services.nvr.rules import ReportedVaccination
from shared.identifiers import mask_personal_ids

_R = TypeVar("_R", bound=Resource)
_CONTAINED: dict[str, type[Resource]] = {
    "Patient": Patient,
    "Organization": Organization,
    "Location": Location,
}


class StructureError(ValueError):
    """Not a FHIR R4 Immunization of valid structure; the message says where (no values)."""


@dataclass(frozen=True)
class CheckedImmunization:
    """An Immunization of valid structure and its contained resources by id."""

    immunization: Immunization
    contained: dict[str, Resource]


def immunization(resource: Any) -> CheckedImmunization:
    """The resource validated once by fhir.resources R4B, or `StructureError`.

    The contained resources are validated by their own classes, one by one: the same check as
    validating them inside the Immunization, without fhir.resources looking up each one's class
    by import (a quarter of the time).
    """
    if not isinstance(resource, dict):
        raise StructureError("must be a JSON object (an Immunization resource)")
    resource_type = resource.get("resourceType")
    if resource_type != "Immunization":
        raise StructureError(f"resourceType must be Immunization, got {resource_type!r}"[:200])
    contained = resource.get("contained")
    if contained is not None and not isinstance(contained, list):
        raise StructureError("Immunization.contained: must be a list of resources")
    checked: dict[str, Resource] = {}
    for index, part in enumerate(contained or []):
        where = f"Immunization.contained[{index}]"
        model = _resource(part, where)
        if model.id:
            checked[model.id] = model
    try:
        imm = Immunization.model_validate(
            {key: value for key, value in resource.items() if key != "contained"}
        )
    except ValidationError as error:
        raise StructureError(_describe(error, "Immunization")) from None
    return CheckedImmunization(imm, checked)


def reported(checked: CheckedImmunization, profile: NvrProfile) -> ReportedVaccination:
    """What NVR's rules look at; a part that is missing or of another system is None."""
    imm, contained = checked.immunization, checked.contained
    identifier = imm.identifier[0] if imm.identifier else None
    patient = _contained(contained, imm.patient, Patient)
    patient_id = patient.identifier[0] if patient is not None and patient.identifier else None
    coding = imm.vaccineCode.coding[0] if imm.vaccineCode.coding else None
    programme = _programme(imm, profile.programme_extension_url)
    dose: int | str | None = None
    if imm.protocolApplied:
        applied = imm.protocolApplied[0]
        dose = applied.doseNumberPositiveInt or applied.doseNumberString
    performer = imm.performer[0].actor if imm.performer else None
    caregiver = _contained(contained, performer, Organization)
    unit = _contained(contained, imm.location, Location)
    unit_id = unit.identifier[0] if unit is not None and unit.identifier else None
    return ReportedVaccination(
        report_system=identifier.system if identifier else None,
        report_value=identifier.value if identifier else None,
        patient_id_system=patient_id.system if patient_id else None,
        patient_id=patient_id.value if patient_id else None,
        vaccinated_on=_day(imm.occurrenceDateTime),
        npl_id=coding.code if coding else None,
        vaccine_system=coding.system if coding else None,
        batch=imm.lotNumber,
        programme=programme.code if programme else None,
        programme_system=programme.system if programme else None,
        dose_number=dose,
        unit_hsa_id=unit_id.value if unit_id else None,
        unit_system=unit_id.system if unit_id else None,
        caregiver_hsa_id=_identifier(caregiver, profile.hsa_id_system),
        caregiver_org_number=_identifier(caregiver, profile.organisation_number_system),
    )


def _contained(contained: dict[str, Any], reference: Reference | None, kind: type[_R]) -> _R | None:
    target = reference.reference if reference is not None else None
    if not target or not target.startswith("#"):
        return None
    resource = contained.get(target[1:])
    return resource if isinstance(resource, kind) else None


def _programme(imm: Immunization, url: str) -> Any:
    """The programme extension's valueCoding (the first such extension), or None."""
    for extension in imm.extension or []:
        if extension.url == url:
            return extension.valueCoding
    return None


def _identifier(resource: Organization | None, system: str) -> str | None:
    if resource is None:
        return None
    for identifier in resource.identifier or []:
        if identifier.system == system and identifier.value:
            return str(identifier.value)
    return None


def _day(value: date | datetime | None) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    return value


def _resource(part: Any, where: str) -> Resource:
    name = part.get("resourceType") if isinstance(part, dict) else None
    model: type[FHIRAbstractModel] | None = _CONTAINED.get(name) if isinstance(name, str) else None
    if model is None and isinstance(name, str):
        try:
            model = get_fhir_model_class(name)
        except ValueError:
            model = None
    if model is None:
        raise StructureError(f"{where}: not a FHIR resource with a known resourceType")
    try:
        validated = model.model_validate(part)
    except ValidationError as error:
        raise StructureError(_describe(error, where)) from None
    if not isinstance(validated, Resource):  # pragma: no cover - every model class is one
        raise StructureError(f"{where}: not a FHIR resource")
    return validated


def _describe(error: ValidationError, root: str) -> str:
    """Where and what, from pydantic's errors without their input values."""
    parts = []
    for detail in error.errors(include_input=False, include_url=False)[:5]:
        path = "".join(
            f"[{step}]" if isinstance(step, int) else f".{step}" for step in detail["loc"]
        )
        message = " ".join(str(detail["msg"]).split())
        parts.append(f"{root}{path}: {message}")
    more = error.error_count() - len(parts)
    text = "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
    return mask_personal_ids(text)
