"""NVR bundles for the external FHIR R4 check, hand-written in the shape docs/nvr-api.md gives.

`bundles_to_validate()` is the list tests/integration/test_fhir_validator.py checks with HAPI FHIR's
validator (zero errors each); extend it with what services/nvr/mapping.py produces (and the
sandbox's vaccine list, a Bundle of Medications).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from services.nvr.mapping import build_bundle, change_entry, create_entry, to_immunization
from services.nvr.profile import NvrProfile
from services.sandboxes.nvr.catalog import VaccineList
from shared.contracts import EXAMPLES, VaccinationEvent
from tests.support.nvr_shapes import SHAPES, resource

PROFILE = NvrProfile()
SOURCE_SYSTEM = "journal-a"
COVID_VACCINE = ("20201214100018", "Comirnaty")
CHILDHOOD_VACCINE = ("20100818100039", "Infanrix hexa")
PNEUMOCOCCAL_VACCINE = ("20090311100021", "Prevenar 13")
CARE_GIVER_HSA_ID = "SE2321000016-1"
CARE_GIVER_ORG_NUMBER = "2321000016"
CARE_UNIT_HSA_ID = "SE2321000016-U000001"

Resource = dict[str, Any]


def patient(
    identity_number: str, *, samordningsnummer: bool = False, birth_date: str | None = None
) -> Resource:
    """The contained Patient `patient`: one 12-digit identity number, the birth date if known."""
    system = PROFILE.samordningsnummer_system if samordningsnummer else PROFILE.personnummer_system
    resource: Resource = {
        "resourceType": "Patient",
        "id": "patient",
        "identifier": [{"system": system, "value": identity_number}],
    }
    if birth_date is not None:
        resource["birthDate"] = birth_date
    return resource


def care_giver(name: str | None = "Region Stockholm") -> Resource:
    """The contained Organization `caregiver`: HSA-id and organisation number."""
    resource: Resource = {
        "resourceType": "Organization",
        "id": "caregiver",
        "identifier": [
            {"system": PROFILE.hsa_id_system, "value": CARE_GIVER_HSA_ID},
            {"system": PROFILE.organisation_number_system, "value": CARE_GIVER_ORG_NUMBER},
        ],
    }
    if name is not None:
        resource["name"] = name
    return resource


def care_unit(name: str | None = "Vårdcentralen Exempel") -> Resource:
    """The contained Location `unit`: HSA-id, managed by `#caregiver`."""
    resource: Resource = {
        "resourceType": "Location",
        "id": "unit",
        "identifier": [{"system": PROFILE.hsa_id_system, "value": CARE_UNIT_HSA_ID}],
        "managingOrganization": {"reference": "#caregiver"},
    }
    if name is not None:
        resource["name"] = name
    return resource


def immunization(
    record_id: str,
    *,
    patient_resource: Resource,
    vaccine: tuple[str, str],
    programme: str,
    date: str,
    lot_number: str,
    dose_number: int | None = None,
    resource_id: str | None = None,
) -> Resource:
    """One vaccination as NVR gets it: an Immunization with its parties contained."""
    npl_id, name = vaccine
    resource: Resource = {"resourceType": "Immunization"}
    if resource_id is not None:
        resource["id"] = resource_id
    resource |= {
        "contained": [copy.deepcopy(patient_resource), care_giver(), care_unit()],
        "identifier": [{"system": PROFILE.report_system(SOURCE_SYSTEM), "value": record_id}],
        "status": "completed",
        "vaccineCode": {
            "coding": [{"system": PROFILE.npl_id_system, "code": npl_id, "display": name}]
        },
        "patient": {"reference": "#patient"},
        "occurrenceDateTime": date,
        "primarySource": True,
        "location": {"reference": "#unit"},
        "lotNumber": lot_number,
        "performer": [{"actor": {"reference": "#caregiver"}}],
    }
    if dose_number is not None:
        resource["protocolApplied"] = [{"doseNumberPositiveInt": dose_number}]
    resource["extension"] = [
        {
            "url": PROFILE.programme_extension_url,
            "valueCoding": {"system": PROFILE.programme_system, "code": programme},
        }
    ]
    return resource


def batch_bundle(*entries: Resource) -> Resource:
    """A `batch` Bundle: an Immunization with an id is a change (PUT), else a report (POST)."""
    return {
        "resourceType": "Bundle",
        "type": PROFILE.bundle_type,
        "entry": [
            {"resource": entry, "request": {"method": "PUT", "url": f"Immunization/{entry['id']}"}}
            if "id" in entry
            else {"resource": entry, "request": {"method": "POST", "url": "Immunization"}}
            for entry in entries
        ],
    }


def sample_batch() -> Resource:
    """Four entries: COVID (dose 2) and childhood for personnummer, pneumococcal for a
    samordningsnummer (no birth date), and a change (PUT) of an earlier COVID report."""
    adult = patient("191212121212", birth_date="1912-12-12")
    return batch_bundle(
        immunization(
            "rec-1001",
            patient_resource=adult,
            vaccine=COVID_VACCINE,
            programme="covid19",
            date="2024-10-01",
            lot_number="FN1234",
            dose_number=2,
        ),
        immunization(
            "rec-1002",
            patient_resource=patient("201701012013", birth_date="2017-01-01"),
            vaccine=CHILDHOOD_VACCINE,
            programme="childhood",
            date="2017-03-05",
            lot_number="A21CB123A",
        ),
        immunization(
            "rec-1003",
            patient_resource=patient("197010632391", samordningsnummer=True),
            vaccine=PNEUMOCOCCAL_VACCINE,
            programme="pneumococcal_risk",
            date="2024-11-20",
            lot_number="LR4567",
        ),
        immunization(
            "rec-0999",
            patient_resource=adult,
            vaccine=COVID_VACCINE,
            programme="covid19",
            date="2024-04-02",
            lot_number="FN1200",
            dose_number=1,
            resource_id="6f1c2a8e-2c1b-4e0f-9a57-0b8f3c4d5e61",
        ),
    )


def mapped_events() -> list[VaccinationEvent]:
    """Vaccination events of every shape the mapping knows: COVID-19 with a dose, childhood,
    pneumococcal and tuberculosis programmes, a samordningsnummer, no birth date."""
    base = EXAMPLES["vaccination"]
    shapes: list[dict[str, Any]] = [
        {},
        {
            "patient": {"id_type": "SNR", "id": "197010632391"},
            "vaccine_npl_id": "20090917100028",
            "vaccine_name": "Infanrix hexa",
            "batch_number": "A21CE123A",
            "programme": "childhood",
            "dose_number": None,
        },
        {
            "programme": "pneumococcal_risk",
            "vaccine_npl_id": "20100401100013",
            "batch_number": "LR4567",
            "dose_number": None,
        },
        {
            "programme": "tuberculosis_child",
            "vaccine_npl_id": "19750101100019",
            "batch_number": "119039B",
            "vaccinated_on": "2025-06-02",
            "dose_number": None,
        },
    ]
    events = []
    for number, shape in enumerate(shapes):
        raw = copy.deepcopy(base)
        raw["record_id"] = f"vacc-sample-{number}"
        raw["event_id"] = f"5f2d8c1b-3e4a-4f6b-9d7c-2a1b0c9d8e{number:02d}"
        raw["payload"] = {**raw["payload"], **shape}
        raw["payload"] = {k: v for k, v in raw["payload"].items() if v is not None}
        events.append(VaccinationEvent.model_validate_json(json.dumps(raw)))
    return events


def mapped_bundle() -> Resource:
    """What services/nvr/mapping.py sends: creates of every shape and one change."""
    events = mapped_events()
    entries = [
        create_entry(e.event_id, to_immunization(e, PROFILE, unit_name="Vårdcentralen Ekbacken"))
        for e in events
    ]
    changed = to_immunization(events[0], PROFILE, care_giver_name="Region Exempel")
    change_event_id = "0c7e3a52-8d1f-4b6e-a9c4-5d2e1f0a9b87"  # a later event of the same record
    entries.append(change_entry(change_event_id, {**changed, "id": "nvr-000123"}))
    bundle: Resource = json.loads(build_bundle(entries, PROFILE))
    return bundle


def every_shape_bundle() -> Resource:
    """Every shape the NVR worker validates in full once (tests/support/nvr_shapes.py) under the
    default profile: a create of each shape without an NVR id, a change of each with one."""
    entries = []
    for index, shape in enumerate(s for s in SHAPES if s[0] == PROFILE):
        immunization = resource(index % 2, shape)
        event_id = f"00000000-0000-4000-8000-{index:012d}"
        if "id" in immunization:
            entries.append(change_entry(event_id, immunization))
        else:
            entries.append(create_entry(event_id, immunization))
    bundle: Resource = json.loads(build_bundle(entries, PROFILE))
    return bundle


def bundles_to_validate() -> list[tuple[str, Resource]]:
    """(name, Bundle) pairs that must pass HAPI FHIR's R4 validator with zero errors."""
    return [
        ("hand-written sample batch", sample_batch()),
        ("bundle built by services/nvr/mapping.py", mapped_bundle()),
        ("every shape services/nvr/fhir_check.py remembers", every_shape_bundle()),
        ("vaccine list served by the NVR sandbox", VaccineList().as_bundle(PROFILE)),
    ]


def broken_bundles() -> list[tuple[str, Resource, str]]:
    """(name, Bundle, text an error message must contain): each must fail validation."""
    without_status = sample_batch()
    del without_status["entry"][0]["resource"]["status"]
    dangling_unit = sample_batch()
    dangling_unit["entry"][1]["resource"]["contained"] = [
        resource
        for resource in dangling_unit["entry"][1]["resource"]["contained"]
        if resource["resourceType"] != "Location"
    ]
    dose_zero = sample_batch()
    dose_zero["entry"][0]["resource"]["protocolApplied"][0]["doseNumberPositiveInt"] = 0
    return [
        ("immunization without status", without_status, "Immunization.status"),
        ("reference to a missing contained unit", dangling_unit, "#unit"),
        ("dose number 0", dose_zero, "positiveInt"),
    ]
