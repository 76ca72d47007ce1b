"""Vaccination events → NVR's FHIR R4 Immunization and batch bundles: pure functions, no I/O.

Operations (docs/nvr-api.md; systems and bundle type from `NvrProfile`; ``id`` = NVR's id from
the ledger)

    create   a bundle entry  POST Immunization            the resource without id
    correct  a bundle entry  PUT Immunization/{id}        the whole resource again, with ``id``
             (or PUT {fhir_path}/Immunization/{id} alone, `NvrClient.put`)
    cancel   DELETE {fhir_path}/Immunization/{id}         no body (`NvrClient.delete`)
    lookup   GET {fhir_path}/Immunization?identifier={report system}|{record_id}

Each entry's ``fullUrl`` is ``urn:uuid:{event_id}``; a bundle holds 1 to
`NvrProfile.max_bundle_entries` (100) entries and is sent as compact UTF-8 JSON. Every resource
is valid FHIR R4 by ``fhir.resources.R4B`` (`Immunization.model_validate`, which validates the
contained resources too): `to_immunization` validates in full; the worker validates each shape in
full once and then only what varies (`services.nvr.fhir_check`). What either refuses is an
`InvalidEventError` (permanent). The dict that was validated is what is sent: serialising the
model again would cost more than validating it.

Field by field, contract → FHIR (``P`` = `NvrProfile`):

    Immunization
      resourceType                  ← "Immunization"
      id                            ← NVR's id (changes only)
      meta.profile                  ← P.immunization_profiles (left out when none)
      contained                     ← [Patient #patient, Organization #caregiver, Location #unit]
      identifier[0]                 ← {system: P.report_system(source_system), value: record_id}
                                      (the idempotency key: "system name + unique reference")
      status                        ← "completed"
      vaccineCode.coding[0]         ← {system: P.npl_id_system, code: payload.vaccine_npl_id,
                                      display: the vaccine list's name (catalog), else
                                      payload.vaccine_name; left out when neither is known}
      patient                       ← {reference: "#patient"}
      occurrenceDateTime            ← payload.vaccinated_on (YYYY-MM-DD)
      primarySource                 ← true (the journal that gave the dose reports it)
      location                      ← {reference: "#unit"}
      lotNumber                     ← payload.batch_number
      performer[0].actor            ← {reference: "#caregiver"}
      protocolApplied[0]            ← {doseNumberPositiveInt: payload.dose_number}; only when
                                      the dose number is set (COVID-19; the contract forbids it
                                      otherwise), no protocolApplied at all otherwise
      extension[0]                  ← {url: P.programme_extension_url, valueCoding: {system:
                                      P.programme_system, code: payload.programme}} — the
                                      programme (R4's protocolApplied needs a dose number,
                                      programEligibility is eligibility for funding)
    contained Patient, id "patient"
      identifier[0]                 ← {system: P.personnummer_system (PNR) or
                                      P.samordningsnummer_system (SNR), value: payload.patient.id}
      birthDate                     ← payload.patient.birth_date (left out when None)
    contained Organization, id "caregiver" (the care provider, vårdgivare)
      identifier                    ← [{system: P.hsa_id_system, value: care_provider.hsa_id},
                                      {system: P.organisation_number_system,
                                       value: care_provider.organisation_number}]
      name                          ← the catalog's care giver name (left out when unknown)
    contained Location, id "unit" (the performing care unit)
      identifier[0]                 ← {system: P.hsa_id_system, value: performing_unit_hsa_id}
      name                          ← the catalog's unit name (left out when unknown)
      managingOrganization          ← {reference: "#caregiver"}
    not sent: event_id (only as fullUrl), event_type, schema_version, occurred_at,
      record_version, operation (it picks the request method)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

import orjson
from fhir.resources.R4B.immunization import Immunization
from pydantic import ValidationError

from services.nvr.profile import NvrProfile
from shared.contracts.vaccination import VaccinationEvent
from shared.delivery.errors import ConfigurationError, InvalidEventError
from shared.identifiers import mask_personal_ids

RESOURCE_TYPE = "Immunization"
PATIENT_REF = {"reference": "#patient"}
CAREGIVER_REF = {"reference": "#caregiver"}
UNIT_REF = {"reference": "#unit"}

_ERRORS_SHOWN = 5


def build_immunization(
    event: VaccinationEvent,
    profile: NvrProfile,
    *,
    unit_name: str | None = None,
    care_giver_name: str | None = None,
    vaccine_name: str | None = None,
    nvr_id: str | None = None,
) -> dict[str, Any]:
    """The Immunization as a JSON-ready dict, not validated (see `to_immunization`)."""
    vaccination = event.payload
    person = vaccination.patient
    provider = vaccination.care_provider
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": "patient",
        "identifier": [
            {
                "system": profile.personnummer_system
                if person.id_type == "PNR"
                else profile.samordningsnummer_system,
                "value": person.id,
            }
        ],
    }
    _optional(patient, "birthDate", person.birth_date and person.birth_date.isoformat())
    caregiver: dict[str, Any] = {
        "resourceType": "Organization",
        "id": "caregiver",
        "identifier": [
            {"system": profile.hsa_id_system, "value": provider.hsa_id},
            {"system": profile.organisation_number_system, "value": provider.organisation_number},
        ],
    }
    _optional(caregiver, "name", care_giver_name)
    unit: dict[str, Any] = {
        "resourceType": "Location",
        "id": "unit",
        "identifier": [
            {"system": profile.hsa_id_system, "value": vaccination.performing_unit_hsa_id}
        ],
    }
    _optional(unit, "name", unit_name)
    unit["managingOrganization"] = dict(CAREGIVER_REF)
    coding: dict[str, Any] = {"system": profile.npl_id_system, "code": vaccination.vaccine_npl_id}
    _optional(coding, "display", vaccine_name or vaccination.vaccine_name)

    resource: dict[str, Any] = {"resourceType": RESOURCE_TYPE}
    _optional(resource, "id", nvr_id)
    if profile.immunization_profiles:
        resource["meta"] = {"profile": list(profile.immunization_profiles)}
    resource |= {
        "contained": [patient, caregiver, unit],
        "extension": [programme_extension(str(vaccination.programme), profile)],
        "identifier": [
            {"system": profile.report_system(event.source_system), "value": event.record_id}
        ],
        "status": "completed",
        "vaccineCode": {"coding": [coding]},
        "patient": dict(PATIENT_REF),
        "occurrenceDateTime": vaccination.vaccinated_on.isoformat(),
        "primarySource": True,
        "location": dict(UNIT_REF),
        "lotNumber": vaccination.batch_number,
        "performer": [{"actor": dict(CAREGIVER_REF)}],
    }
    if vaccination.dose_number is not None:
        resource["protocolApplied"] = [{"doseNumberPositiveInt": vaccination.dose_number}]
    return resource


def programme_extension(programme: str, profile: NvrProfile) -> dict[str, Any]:
    """The Immunization extension that names the vaccination programme (docs/nvr-api.md)."""
    return {
        "url": profile.programme_extension_url,
        "valueCoding": {"system": profile.programme_system, "code": programme},
    }


def to_immunization(
    event: VaccinationEvent,
    profile: NvrProfile,
    *,
    unit_name: str | None = None,
    care_giver_name: str | None = None,
    vaccine_name: str | None = None,
    nvr_id: str | None = None,
) -> dict[str, Any]:
    """The Immunization for `event`, validated by fhir.resources R4B; see the module docstring.

    `unit_name`, `care_giver_name` and `vaccine_name` come from the catalog (`CareUnit.name`,
    `CareUnit.care_giver_name`, `Vaccine.name`); `nvr_id` is NVR's id for a change. Raises
    InvalidEventError when the resource is not valid FHIR (no identity number in the message).
    """
    resource = build_immunization(
        event,
        profile,
        unit_name=unit_name,
        care_giver_name=care_giver_name,
        vaccine_name=vaccine_name,
        nvr_id=nvr_id,
    )
    validate_immunization(resource)
    return resource


def validate_immunization(resource: dict[str, Any]) -> None:
    """One `Immunization.model_validate` (contained resources included), or InvalidEventError."""
    try:
        Immunization.model_validate(resource)
    except ValidationError as exc:
        raise invalid_fhir(
            f"{'.'.join(str(part) for part in error['loc']) or RESOURCE_TYPE}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False, include_context=False)
        ) from None


def invalid_fhir(problems: Iterable[str]) -> InvalidEventError:
    """The permanent error of a resource that is not valid FHIR: the first problems, masked."""
    found = list(problems)
    more = len(found) - _ERRORS_SHOWN
    text = "; ".join(found[:_ERRORS_SHOWN]) + (f"; and {more} more" if more > 0 else "")
    return InvalidEventError(
        mask_personal_ids(f"not a valid FHIR R4 Immunization: {text}"),
        error_class="invalid_fhir",
    )


def create_entry(event_id: UUID | str, resource: dict[str, Any]) -> dict[str, Any]:
    """A bundle entry that reports `resource` as new (POST Immunization)."""
    if "id" in resource:
        raise ValueError("a new Immunization carries no id; NVR assigns it")
    return {
        "fullUrl": f"urn:uuid:{event_id}",
        "resource": resource,
        "request": {"method": "POST", "url": RESOURCE_TYPE},
    }


def change_entry(event_id: UUID | str, resource: dict[str, Any]) -> dict[str, Any]:
    """A bundle entry that replaces NVR's record `resource["id"]` (PUT Immunization/<id>)."""
    nvr_id = resource.get("id")
    if not isinstance(nvr_id, str) or not nvr_id:
        raise ValueError("a changed Immunization must carry NVR's id")
    return {
        "fullUrl": f"urn:uuid:{event_id}",
        "resource": resource,
        "request": {"method": "PUT", "url": f"{RESOURCE_TYPE}/{nvr_id}"},
    }


def build_bundle(entries: Sequence[dict[str, Any]], profile: NvrProfile) -> bytes:
    """The request bundle (type `profile.bundle_type`) as compact UTF-8 JSON.

    More than `profile.max_bundle_entries` is a ConfigurationError (the worker's batch size is
    set too high: every bundle would be refused with 413); none is a ValueError.
    """
    if not entries:
        raise ValueError("a bundle needs at least one entry")
    if len(entries) > profile.max_bundle_entries:
        raise ConfigurationError(
            f"{len(entries)} entries in one NVR bundle, at most {profile.max_bundle_entries} "
            "are allowed; lower batch_size",
            error_class="bundle_too_large",
        )
    bundle = {"resourceType": "Bundle", "type": profile.bundle_type, "entry": list(entries)}
    return orjson.dumps(bundle)  # compact UTF-8, as json.dumps(ensure_ascii=False) compact


def search_params(event: VaccinationEvent, profile: NvrProfile) -> tuple[str, str]:
    """(system, value) of `event`'s report identifier, for `NvrClient.find`."""
    return profile.report_system(event.source_system), event.record_id


def _optional(target: dict[str, Any], name: str, value: object) -> None:
    if value is not None:
        target[name] = value
