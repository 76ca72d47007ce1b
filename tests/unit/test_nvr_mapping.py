"""Vaccination events → NVR's Immunization, field by field; entries, bundles, batch-responses."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fhir.resources.R4B.immunization import Immunization

from services.nvr.mapping import (
    build_bundle,
    build_immunization,
    change_entry,
    create_entry,
    search_params,
    to_immunization,
    validate_immunization,
)
from services.nvr.outcomes import (
    MalformedResponseError,
    parse_batch_response,
    parse_outcome,
    parse_status,
    resource_id,
)
from services.nvr.profile import NvrProfile
from shared.contracts import EXAMPLES, parse_event
from shared.contracts.vaccination import VaccinationEvent
from shared.delivery.classify import is_permanent, pauses_worker
from shared.delivery.errors import ConfigurationError, InvalidEventError

PROFILE = NvrProfile()
PNR = "196508313159"
SNR = "197010632391"
EVENT_ID = "5f2d8c1b-3e4a-4f6b-9d7c-2a1b0c9d8e7f"


def vaccination(**payload: Any) -> VaccinationEvent:
    """The contract's example vaccination (COVID-19, dose 4), payload fields replaced."""
    raw = copy.deepcopy(EXAMPLES["vaccination"])
    raw["payload"].update(payload)
    parsed = parse_event(json.dumps(raw).encode())
    assert isinstance(parsed, VaccinationEvent)
    return parsed


def childhood(**payload: Any) -> VaccinationEvent:
    return vaccination(programme="childhood", dose_number=None, **payload)


def contained(resource: dict[str, Any], resource_type: str) -> dict[str, Any]:
    (found,) = [r for r in resource["contained"] if r["resourceType"] == resource_type]
    return found


def test_immunization_field_by_field() -> None:
    resource = to_immunization(
        vaccination(), PROFILE, unit_name="Vårdcentralen Ekorren", care_giver_name="Region X"
    )

    assert resource == {
        "resourceType": "Immunization",
        "contained": [
            {
                "resourceType": "Patient",
                "id": "patient",
                "identifier": [
                    {"system": "http://electronichealth.se/identifier/personnummer", "value": PNR}
                ],
                "birthDate": "1965-08-31",
            },
            {
                "resourceType": "Organization",
                "id": "caregiver",
                "identifier": [
                    {"system": "urn:oid:1.2.752.29.4.19", "value": "SE2321000016-1000"},
                    {"system": "urn:oid:2.5.4.97", "value": "2321000016"},
                ],
                "name": "Region X",
            },
            {
                "resourceType": "Location",
                "id": "unit",
                "identifier": [{"system": "urn:oid:1.2.752.29.4.19", "value": "SE2321000016-14L1"}],
                "name": "Vårdcentralen Ekorren",
                "managingOrganization": {"reference": "#caregiver"},
            },
        ],
        "extension": [
            {
                "url": "urn:regbridge:nvr:extension:vaccination-programme",
                "valueCoding": {"system": "urn:regbridge:nvr:programme", "code": "covid19"},
            }
        ],
        "identifier": [
            {"system": "urn:regbridge:nvr:source/takecare-sll", "value": "vacc-2025-000310554"}
        ],
        "status": "completed",
        "vaccineCode": {
            "coding": [
                {
                    "system": "http://electronichealth.se/identifier/nplid",
                    "code": "20201214100018",
                    "display": "Comirnaty",
                }
            ]
        },
        "patient": {"reference": "#patient"},
        "occurrenceDateTime": "2025-03-14",
        "primarySource": True,
        "location": {"reference": "#unit"},
        "lotNumber": "FN1234",
        "performer": [{"actor": {"reference": "#caregiver"}}],
        "protocolApplied": [{"doseNumberPositiveInt": 4}],
    }


def test_the_source_system_is_in_the_identifier_system() -> None:
    # Given the example's source system
    event = vaccination()
    # Then the report identifier is (base/source_system, record_id), also what `find` searches
    assert event.source_system == "takecare-sll"
    assert search_params(event, PROFILE) == (
        "urn:regbridge:nvr:source/takecare-sll",
        "vacc-2025-000310554",
    )


def test_samordningsnummer_goes_under_its_own_system() -> None:
    resource = to_immunization(vaccination(patient={"id_type": "SNR", "id": SNR}), PROFILE)

    patient = contained(resource, "Patient")
    assert patient["identifier"] == [
        {"system": "http://electronichealth.se/identifier/samordningsnummer", "value": SNR}
    ]
    assert "birthDate" not in patient


def test_covid_dose_number_is_protocol_applied() -> None:
    resource = to_immunization(vaccination(dose_number=2), PROFILE)

    assert resource["protocolApplied"] == [{"doseNumberPositiveInt": 2}]
    assert resource["extension"] == [
        {
            "url": "urn:regbridge:nvr:extension:vaccination-programme",
            "valueCoding": {"system": "urn:regbridge:nvr:programme", "code": "covid19"},
        }
    ]


@pytest.mark.parametrize("programme", ["childhood", "pneumococcal_risk", "tuberculosis_child"])
def test_no_protocol_applied_without_covid(programme: str) -> None:
    resource = to_immunization(vaccination(programme=programme, dose_number=None), PROFILE)

    assert "protocolApplied" not in resource
    assert "programEligibility" not in resource
    assert resource["extension"][0]["valueCoding"] == {
        "system": "urn:regbridge:nvr:programme",
        "code": programme,
    }


def test_references_point_at_contained_resources() -> None:
    resource = to_immunization(childhood(), PROFILE)
    ids = {f"#{r['id']}" for r in resource["contained"]}

    assert ids == {"#patient", "#caregiver", "#unit"}
    assert resource["patient"]["reference"] == "#patient"
    assert resource["performer"][0]["actor"]["reference"] == "#caregiver"
    assert resource["location"]["reference"] == "#unit"
    assert contained(resource, "Location")["managingOrganization"]["reference"] == "#caregiver"
    assert [r["resourceType"] for r in resource["contained"]] == [
        "Patient",
        "Organization",
        "Location",
    ]


def test_names_are_left_out_when_unknown() -> None:
    resource = to_immunization(vaccination(vaccine_name=None), PROFILE)

    assert "name" not in contained(resource, "Organization")
    assert "name" not in contained(resource, "Location")
    assert "display" not in resource["vaccineCode"]["coding"][0]


def test_the_vaccine_lists_name_wins_over_the_events() -> None:
    resource = to_immunization(vaccination(), PROFILE, vaccine_name="Comirnaty JN.1")

    assert resource["vaccineCode"]["coding"][0]["display"] == "Comirnaty JN.1"


def test_a_change_carries_nvrs_id_and_validates() -> None:
    resource = to_immunization(childhood(), PROFILE, nvr_id="imm-42")

    assert resource["id"] == "imm-42"
    assert Immunization.model_validate(resource).id == "imm-42"


def test_the_profile_decides_the_systems() -> None:
    profile = NvrProfile(
        personnummer_system="urn:test:pnr",
        hsa_id_system="urn:test:hsa",
        npl_id_system="urn:test:npl",
        programme_system="urn:test:prog",
        programme_extension_url="urn:test:programme",
        report_identifier_base="urn:test:source",
        immunization_profiles=("urn:test:profile",),
    )
    resource = to_immunization(childhood(), profile)

    assert contained(resource, "Patient")["identifier"][0]["system"] == "urn:test:pnr"
    assert contained(resource, "Location")["identifier"][0]["system"] == "urn:test:hsa"
    assert resource["vaccineCode"]["coding"][0]["system"] == "urn:test:npl"
    assert resource["extension"] == [
        {
            "url": "urn:test:programme",
            "valueCoding": {"system": "urn:test:prog", "code": "childhood"},
        }
    ]
    assert resource["meta"] == {"profile": ["urn:test:profile"]}
    assert resource["identifier"][0]["system"] == "urn:test:source/takecare-sll"


def test_the_resource_validates_as_fhir_r4b_with_contained_parties() -> None:
    model = Immunization.model_validate(to_immunization(vaccination(), PROFILE))

    assert [type(r).__name__ for r in model.contained or []] == [
        "Patient",
        "Organization",
        "Location",
    ]


def test_invalid_fhir_is_a_permanent_error_without_the_identity_number() -> None:
    # Given a resource fhir.resources refuses (dose 0, and an unknown field in the Patient)
    resource = build_immunization(vaccination(), PROFILE)
    resource["protocolApplied"] = [{"doseNumberPositiveInt": 0}]
    resource["contained"][0]["nickname"] = PNR

    # When it is validated
    with pytest.raises(InvalidEventError) as caught:
        validate_immunization(resource)

    # Then the error names both fields, is permanent, and never shows the personnummer
    message = str(caught.value)
    assert "protocolApplied.0.doseNumberPositiveInt" in message
    assert "contained.0.nickname" in message
    assert is_permanent(caught.value)
    assert caught.value.error_class == "invalid_fhir"
    assert PNR not in message
    assert "6508313159" not in message


def test_create_and_change_entries() -> None:
    new = to_immunization(childhood(), PROFILE)
    changed = to_immunization(childhood(), PROFILE, nvr_id="imm-42")

    assert create_entry(EVENT_ID, new) == {
        "fullUrl": f"urn:uuid:{EVENT_ID}",
        "resource": new,
        "request": {"method": "POST", "url": "Immunization"},
    }
    assert change_entry(EVENT_ID, changed) == {
        "fullUrl": f"urn:uuid:{EVENT_ID}",
        "resource": changed,
        "request": {"method": "PUT", "url": "Immunization/imm-42"},
    }
    with pytest.raises(ValueError, match="no id"):
        create_entry(EVENT_ID, changed)
    with pytest.raises(ValueError, match="NVR's id"):
        change_entry(EVENT_ID, new)


def test_bundle_is_compact_utf8_json_of_the_profiles_type() -> None:
    event = childhood()
    entry = create_entry(event.event_id, to_immunization(event, PROFILE, unit_name="Vårdcentral"))

    body = build_bundle([entry], PROFILE)

    assert "Vårdcentral".encode() in body
    assert b", " not in body
    assert json.loads(body) == {"resourceType": "Bundle", "type": "batch", "entry": [entry]}
    transaction = json.loads(build_bundle([entry], NvrProfile(bundle_type="transaction")))
    assert transaction["type"] == "transaction"


def test_bundle_of_100_passes_and_101_pauses_the_worker() -> None:
    entry = create_entry(EVENT_ID, to_immunization(childhood(), PROFILE))

    assert len(json.loads(build_bundle([entry] * 100, PROFILE))["entry"]) == 100
    with pytest.raises(ConfigurationError, match="at most 100") as caught:
        build_bundle([entry] * 101, PROFILE)
    assert pauses_worker(caught.value)
    with pytest.raises(ValueError, match="at least one"):
        build_bundle([], PROFILE)


OUTCOME = {
    "resourceType": "OperationOutcome",
    "issue": [
        {
            "severity": "error",
            "code": "business-rule",
            "details": {
                "coding": [{"system": "urn:regbridge:nvr:rule", "code": "batch-not-for-vaccine"}],
                "text": "batch LR4567 is not a batch of vaccine 20201214100018",
            },
            "expression": ["Immunization.lotNumber"],
        },
        {"severity": "warning", "code": "informational", "diagnostics": "ignored"},
    ],
}


def test_batch_response_per_entry() -> None:
    body = {
        "resourceType": "Bundle",
        "type": "batch-response",
        "entry": [
            {"response": {"status": "201 Created", "location": "Immunization/a1/_history/1"}},
            {"response": {"status": "422 Unprocessable Entity", "outcome": OUTCOME}},
            {"response": {"status": "200 OK", "location": "Immunization/b2/_history/3"}},
        ],
    }

    created, refused, changed = parse_batch_response(json.dumps(body).encode())

    assert (created.status, created.id, created.ok) == (201, "a1", True)
    assert (changed.status, changed.id) == (200, "b2")
    assert (refused.status, refused.id, refused.ok) == (422, None, False)
    assert refused.reason == (
        "Immunization.lotNumber [batch-not-for-vaccine]: "
        "batch LR4567 is not a batch of vaccine 20201214100018"
    )


def test_reason_masks_identity_numbers_and_falls_back_to_the_issue_code() -> None:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "invalid",
                "diagnostics": f"person {PNR} has a check digit error",
                "expression": ["Immunization.patient"],
            }
        ],
    }
    (issue,) = parse_outcome(outcome)

    assert (
        issue.describe()
        == "Immunization.patient [invalid]: person 19650831**** has a check digit error"
    )
    assert PNR not in issue.describe()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"resourceType": "OperationOutcome"}',
        b'{"resourceType": "Bundle", "type": "searchset", "entry": []}',
        b'{"resourceType": "Bundle", "type": "batch-response", "entry": [{}]}',
        b'{"resourceType": "Bundle", "type": "batch-response", "entry": [{"response": {}}]}',
        b'{"resourceType": "Bundle", "type": "batch-response", "entry": {}}',
    ],
)
def test_malformed_batch_responses(body: bytes) -> None:
    with pytest.raises(MalformedResponseError):
        parse_batch_response(body)


def test_status_and_location_parsing() -> None:
    assert parse_status("409 Conflict") == 409
    assert parse_status("204") == 204
    with pytest.raises(MalformedResponseError):
        parse_status("Created")
    assert resource_id("Immunization/x-1/_history/2") == "x-1"
    assert resource_id("https://nvr.example/fhir/Immunization/x-1") == "x-1"
    assert resource_id("Immunization") is None
