"""Valid example events (per care-contact kind, per waiting-list outcome) for docs and tests."""

import uuid
from datetime import UTC, datetime
from typing import Any

# Identifiers are published test vectors (Skatteverket's test personnummer …); code values
# (BTYP, VDG, TAXA, IKOD, UKOD …) are illustrative: the region's code server decides what is valid.

_PATIENT = {"id_type": "PNR", "id": "191212121212"}


def demo_event(
    event_type: str, record_id: str, version: int, operation: str, payload: dict[str, Any]
) -> dict[str, Any]:
    """A fresh event as a demo journal system publishes it: a new event id, occurred now."""
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "source_system": "demo-journal",
        "record_id": record_id,
        "record_version": version,
        "operation": operation,
        "payload": payload,
    }


def _envelope(
    event_type: str, event_id: str, record_id: str, payload: dict[str, Any]
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": event_type,
        "schema_version": 1,
        "occurred_at": "2025-03-14T10:02:17.431+01:00",
        "source_system": "takecare-sll",
        "record_id": record_id,
        "record_version": 1,
        "operation": "create",
        "payload": payload,
    }


CARE_CONTACT_EXAMPLES: dict[str, dict[str, Any]] = {
    "outpatient_visit": _envelope(
        "care.contact",
        "0b6f4f0e-6a57-4c39-9a4e-3d8f5b7c2e11",
        "besok-2025-000184223",
        {
            "kind": "outpatient_visit",
            "patient": _PATIENT,
            "kombika": "11010046M30",
            "visited_at": "2025-03-14T09:30:00+01:00",
            "visit_type": "1",
            "professions": ["LK", "SJ"],
            "akut": "N",
            "tariff": "A101",
            "care_period_code": "11010046M300042",
            "contact_type": "1",
            "diagnoses": ["J069", "B341A"],
            "procedures": [
                {"code": "AQ014", "diagnosis_index": 0, "performed_on": "2025-03-14"},
            ],
            "atc_codes": ["J01CE02"],
            "referring_kombika": "19108011M04",
        },
    ),
    "admission": _envelope(
        "care.contact",
        "6d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6",
        "vtf-2025-000052117",
        {
            "kind": "admission",
            "patient": _PATIENT,
            "kombika": "11010046M30",
            "admitted_at": "2025-03-10T22:15:00+01:00",
            "admission_code": "1",
            "referring_kombika": "19108011M04",
            "akut": "J",
            "care_period_code": "11010046M300043",
        },
    ),
    "discharge": _envelope(
        "care.contact",
        "9a8b7c6d-5e4f-4a3b-9c2d-1e0f2a3b4c5d",
        "vtf-2025-000052117",
        {
            "kind": "discharge",
            "patient": _PATIENT,
            "admitting_kombika": "11010046M30",
            "discharging_kombika": "11010046M31",
            "discharged_at": "2025-03-14T11:40:00+01:00",
            "discharge_code": "1",
            "diagnoses": ["I050"],
            "procedures": [
                {"code": "NHP09", "diagnosis_index": 0, "performed_on": "2025-03-11"},
            ],
            "care_period_code": "11010046M300043",
        },
    ),
    "availability": _envelope(
        "care.contact",
        "c4d5e6f7-0812-4a3b-8c4d-5e6f7a8b9c0d",
        "tillg-2025-000007731",
        {
            "kind": "availability",
            "patient": {"id_type": "SNR", "id": "197010632391"},
            "kombika": "11010046M30",
            "contact_category": "outpatient",
            "care_guarantee": True,
            "booked_on": "2025-03-14",
            "appointment_at": "2025-04-02T13:00:00+02:00",
            "referral_received_on": "2025-03-03",
            "decided_on": "2025-03-12",
            "referral_type": "1",
        },
    ),
}


def _wait_event(
    event_id: str, record_id: str, version: int, operation: str, payload: dict[str, Any]
) -> dict[str, Any]:
    return _envelope("care.wait", event_id, record_id, payload) | {
        "record_version": version,
        "operation": operation,
    }


# Code values (the waiting-time register's codes, priorities) are illustrative: its code list is
# not public.
CARE_WAIT_EXAMPLES: dict[str, dict[str, Any]] = {
    "waiting": _wait_event(
        "3c1d7e52-8a94-4b0f-a6d3-5e2f1b9c7a40",
        "vantelista-2025-000031337",
        1,
        "create",
        {
            "patient": {"id_type": "PNR", "id": "200312242498"},
            "kombika": "11010046M30",
            "cvr_code": "F101",
            "wait_kind": "first_visit",
            "priority": "2",
            "guarantee_applies": True,
            "referral_received": "2025-02-20",
            "booked_on": "2025-03-12",
            "booked_for": "2025-04-08",
        },
    ),
    "patient_chosen": _wait_event(
        "8e4b2a6f-1c3d-4e5f-9a7b-0c1d2e3f4a5b",
        "vantelista-2024-000029881",
        4,
        "correct",
        {
            "patient": {"id_type": "SNR", "id": "197010632391"},
            "unit_hsa_id": "SE2321000016-14L1",
            "cvr_code": "B220",
            "wait_kind": "operation",
            "priority": "3",
            "guarantee_applies": True,
            "referral_received": "2024-11-04",
            "decided_on": "2024-12-02",
            "booked_on": "2025-02-26",
            "booked_for": "2025-05-20",
            "exceptions": [
                {"kind": "patient_chosen", "start": "2025-01-13", "end": "2025-02-23"},
            ],
        },
    ),
    "completed": _wait_event(
        "d2f6a8c0-4b7e-4c19-8e3a-6f5d4c3b2a19",
        "vantelista-2024-000027410",
        5,
        "correct",
        {
            "patient": {"id_type": "PNR", "id": "196508313159"},
            "kombika": "11010046M31",
            "cvr_code": "T340",
            "wait_kind": "treatment",
            "guarantee_applies": True,
            "referral_received": "2024-10-21",
            "decided_on": "2024-11-18",
            "booked_on": "2025-01-30",
            "booked_for": "2025-03-13",
            "completed_on": "2025-03-13",
            "exceptions": [
                {"kind": "medically_caused", "start": "2024-12-02", "end": "2025-01-10"},
            ],
        },
    ),
    "removed": _wait_event(
        "5a9c3e1b-7d2f-4a6e-b8c0-1e3f5a7b9c2d",
        "vantelista-2025-000030012",
        3,
        "correct",
        {
            "patient": {"id_type": "PNR", "id": "201501010191"},
            "kombika": "11010046M30",
            "cvr_code": "U110",
            "wait_kind": "examination",
            "priority": "4",
            "guarantee_applies": False,
            "referral_received": "2025-01-27",
            "removed_on": "2025-03-14",
            "removed_reason": "treated_elsewhere",
        },
    ),
}
"""A waiting-list entry (one event each: the entry's whole state) still waiting, with a
patient-chosen wait, completed, and removed."""

EXAMPLE_SETS: dict[str, dict[str, dict[str, Any]]] = {
    "care.contact": CARE_CONTACT_EXAMPLES,
    "care.wait": CARE_WAIT_EXAMPLES,
}
"""event_type → its examples by name, where one example does not show every shape."""

EXAMPLES: dict[str, dict[str, Any]] = {
    "care.contact": CARE_CONTACT_EXAMPLES["outpatient_visit"],
    "care.wait": CARE_WAIT_EXAMPLES["waiting"],
    "vaccination": _envelope(
        "vaccination",
        "5f2d8c1b-3e4a-4f6b-9d7c-2a1b0c9d8e7f",
        "vacc-2025-000310554",
        {
            "patient": {"id_type": "PNR", "id": "196508313159", "birth_date": "1965-08-31"},
            "vaccinated_on": "2025-03-14",
            "vaccine_npl_id": "20201214100018",
            "vaccine_name": "Comirnaty",
            "batch_number": "FN1234",
            "programme": "covid19",
            "dose_number": 4,
            "performing_unit_hsa_id": "SE2321000016-14L1",
            "care_provider": {
                "hsa_id": "SE2321000016-1000",
                "organisation_number": "2321000016",
            },
        },
    ),
    "hsa.unit-notification": _envelope(
        "hsa.unit-notification",
        "e1f2a3b4-c5d6-4e7f-8091-a2b3c4d5e6f7",
        "SE2321000131-E000000011111",
        {
            "hsa_id": "SE2321000131-E000000011111",
            "change_kind": "updated",
            "changed_attributes": ["publicName", "postalAddress"],
            "notified_at": "2025-03-14T10:01:58+01:00",
        },
    ),
}
"""event_type → a realistic, valid version-1 event (JSON-shaped: strings for ids and times)."""
