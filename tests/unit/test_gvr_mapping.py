"""Care-contact events → GVR requests: bodies field by field, methods, paths, query parameters."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest

from services.gvr.client import created_id, request_body
from services.gvr.mapping import (
    GvrCall,
    GvrPaths,
    GvrRequest,
    gvr_call,
    lookup_request,
    to_gvr_request,
)
from services.gvr.settings import GvrSettings
from shared.contracts import CARE_CONTACT_EXAMPLES, CareContactEvent, parse_event
from shared.delivery.classify import is_permanent, is_transient
from shared.delivery.errors import InvalidEventError, NotYetAppliedError
from shared.http import Reply, json_body

PATHS = GvrPaths()
SOURCE = {"kallsystem": "takecare-sll", "kallId": "besok-2025-000184223"}
PATIENT = {"patientId": "191212121212", "patientIdTyp": "PNR"}
WARD_M30 = {"inr": "11010", "klin": "046", "avd": "M30"}
VISIT_BODY: dict[str, Any] = {
    **PATIENT,
    "enhet": WARD_M30,
    **SOURCE,
    "besoksdatum": "2025-03-14",
    "besokstid": "09:30",
    "besokstyp": "1",
    "yrkeskategorier": ["LK", "SJ"],
    "akut": "N",
    "taxa": "A101",
    "vardperiodkod": "11010046M300042",
    "kontakttyp": "1",
    "diagnoser": [{"kod": "J069", "ordning": 1}, {"kod": "B341A", "ordning": 2}],
    "atgarder": [{"kod": "AQ014", "diagnosRad": 1, "datum": "2025-03-14"}],
    "lakemedel": [{"atc": "J01CE02"}],
    "remitterandeEnhet": {"inr": "19108", "klin": "011", "avd": "M04"},
}
VISIT_LOCATOR = (
    ("patientId", "191212121212"),
    ("enhet.inr", "11010"),
    ("enhet.klin", "046"),
    ("enhet.avd", "M30"),
    ("besoksdatum", "2025-03-14"),
    ("besokstid", "09:30"),
)


def event(kind: str, *, operation: str = "create", **payload: Any) -> CareContactEvent:
    """The contract's example of `kind`, with `operation` and payload fields replaced."""
    raw = copy.deepcopy(CARE_CONTACT_EXAMPLES[kind])
    raw["operation"] = operation
    raw["payload"].update(payload)
    parsed = parse_event(json.dumps(raw).encode())
    assert isinstance(parsed, CareContactEvent)
    return parsed


def create(kind: str, **payload: Any) -> GvrRequest:
    return to_gvr_request(event(kind, **payload), None, PATHS)


# --- create: one body per kind -------------------------------------------------------------------


def test_outpatient_visit_create_posts_the_documented_body() -> None:
    # Given the contract's outpatient-visit example (CET, +01:00)
    # When it is mapped as a create
    request = create("outpatient_visit")
    # Then it is a POST of exactly the documented besok body, keyed as GVR keys it
    assert request.method == "POST"
    assert request.path == "/vardhandelse/besok"
    assert request.params == ()
    assert request.resource == "besok"
    assert request.json == VISIT_BODY
    assert request.key == ("191212121212", "2025-03-14", "09:30", "11010046M30")
    assert request.operation == "create"
    assert request.reference is None


def test_admission_create_posts_the_documented_body() -> None:
    request = create("admission")
    assert (request.method, request.path, request.resource) == (
        "POST",
        "/vardhandelse/inskrivning",
        "inskrivning",
    )
    assert request.json == {
        **PATIENT,
        "enhet": WARD_M30,
        "kallsystem": "takecare-sll",
        "kallId": "vtf-2025-000052117",
        "inskrivningsdatum": "2025-03-10",
        "inskrivningstid": "22:15",
        "inskrivningskod": "1",
        "akut": "J",
        "vardperiodkod": "11010046M300043",
        "remitterandeEnhet": {"inr": "19108", "klin": "011", "avd": "M04"},
    }
    assert request.key == ("191212121212", "2025-03-10", "22:15", "11010046M30")


def test_discharge_create_posts_the_documented_body_keyed_by_the_discharging_unit() -> None:
    request = create("discharge")
    assert (request.method, request.path, request.resource) == (
        "POST",
        "/vardhandelse/utskrivning",
        "utskrivning",
    )
    assert request.json == {
        **PATIENT,
        "enhet": {"inr": "11010", "klin": "046", "avd": "M31"},
        "inskrivandeEnhet": WARD_M30,
        "kallsystem": "takecare-sll",
        "kallId": "vtf-2025-000052117",
        "utskrivningsdatum": "2025-03-14",
        "utskrivningstid": "11:40",
        "utskrivningskod": "1",
        "diagnoser": [{"kod": "I050", "ordning": 1}],
        "atgarder": [{"kod": "NHP09", "diagnosRad": 1, "datum": "2025-03-11"}],
        "vardperiodkod": "11010046M300043",
    }
    assert request.key == ("191212121212", "2025-03-14", "11:40", "11010046M31")


def test_availability_create_posts_the_documented_body_keyed_by_booking_date() -> None:
    request = create("availability")
    assert (request.method, request.path, request.resource) == (
        "POST",
        "/tillganglighet",
        "tillganglighet",
    )
    assert request.json == {
        "patientId": "197010632391",
        "patientIdTyp": "SNR",
        "enhet": WARD_M30,
        "kallsystem": "takecare-sll",
        "kallId": "tillg-2025-000007731",
        "kontaktkategori": "OPPENVARD",
        "vardgaranti": True,
        "bokningsdatum": "2025-03-14",
        "besokstid": "2025-04-02T13:00:00+02:00",
        "remissdatum": "2025-03-03",
        "beslutsdatum": "2025-03-12",
        "remisstyp": "1",
    }
    assert request.key == ("197010632391", "2025-03-14", "", "11010046M30")


@pytest.mark.parametrize(
    ("category", "expected"),
    [
        ("outpatient", "OPPENVARD"),
        ("inpatient", "SLUTENVARD"),
        ("rehab_coordinator", "REHABKOORDINATOR"),
    ],
)
def test_availability_contact_categories(category: str, expected: str) -> None:
    request = create("availability", contact_category=category)
    assert request.json is not None
    assert request.json["kontaktkategori"] == expected


def test_optional_fields_that_are_absent_are_left_out_and_lists_stay() -> None:
    # Given an outpatient visit with no optional field and no diagnoses, procedures or medicines
    request = create(
        "outpatient_visit",
        care_period_code=None,
        referring_kombika=None,
        diagnoses=[],
        procedures=[],
        atc_codes=[],
    )
    # Then the optional fields are not sent at all, and the lists are sent empty
    assert request.json is not None
    assert "vardperiodkod" not in request.json
    assert "remitterandeEnhet" not in request.json
    assert (request.json["diagnoser"], request.json["atgarder"], request.json["lakemedel"]) == (
        [],
        [],
        [],
    )


def test_optional_fields_that_are_given_are_sent() -> None:
    admission = create("admission", psychiatric_care_form="LPT")
    assert admission.json is not None
    assert admission.json["psykiatriskVardform"] == "LPT"
    discharge = create(
        "discharge", referred_to_kombika="19108011M04", died_at="2025-03-14T10:35:12.5Z"
    )
    assert discharge.json is not None
    assert discharge.json["utskrivenTill"] == {"inr": "19108", "klin": "011", "avd": "M04"}
    assert discharge.json["dodstid"] == "2025-03-14T11:35:12+01:00"  # local, to the second
    availability = create("availability", exception_code="PV")
    assert availability.json is not None
    assert availability.json["undantagskod"] == "PV"


def test_procedures_point_at_their_diagnosis_row_by_its_ordning() -> None:
    request = create(
        "outpatient_visit",
        procedures=[
            {"code": "AQ014", "diagnosis_index": 1, "performed_on": "2025-03-13"},
            {"code": "NHP09", "diagnosis_index": 0, "performed_on": "2025-03-14"},
        ],
    )
    assert request.json is not None
    assert request.json["atgarder"] == [
        {"kod": "AQ014", "diagnosRad": 2, "datum": "2025-03-13"},
        {"kod": "NHP09", "diagnosRad": 1, "datum": "2025-03-14"},
    ]


def test_a_kombika_written_with_spaces_is_split_the_same() -> None:
    request = create("outpatient_visit", kombika="11010 046 M30")
    assert request.json is not None
    assert request.json["enhet"] == WARD_M30
    assert request.key[3] == "11010046M30"


# --- patient id types ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("id_type", "value", "gvr_type"),
    [
        ("PNR", "191212121212", "PNR"),
        ("SNR", "197010632391", "SNR"),
        ("RESERVE_SLL", "991981000010", "RESERV"),
    ],
)
def test_patient_id_types_gvr_accepts(id_type: str, value: str, gvr_type: str) -> None:
    request = create("outpatient_visit", patient={"id_type": id_type, "id": value})
    assert request.json is not None
    assert (request.json["patientId"], request.json["patientIdTyp"]) == (value, gvr_type)


@pytest.mark.parametrize(
    ("id_type", "value"), [("RESERVE_VGR", "19561110K064"), ("NRID", "22800101AB12")]
)
@pytest.mark.parametrize("operation", ["create", "correct", "cancel"])
def test_reserve_numbers_gvr_does_not_accept_are_invalid_events(
    id_type: str, value: str, operation: str
) -> None:
    # Given a valid event whose patient has a reserve number from outside Region Stockholm
    wrong = event(
        "outpatient_visit", operation=operation, patient={"id_type": id_type, "id": value}
    )
    # When it is mapped, Then it is a permanent InvalidEventError naming the field, not the value
    with pytest.raises(InvalidEventError) as raised:
        to_gvr_request(wrong, "GVR-0000001", PATHS)
    assert is_permanent(raised.value)
    assert raised.value.message == (
        "payload.patient.id_type: GVR accepts PNR, SNR or Region Stockholm reserve numbers"
    )
    assert value not in str(raised.value)
    with pytest.raises(InvalidEventError):
        lookup_request(wrong, PATHS)


# --- local time ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instant", "day", "time"),
    [
        ("2025-03-30T00:30:00Z", "2025-03-30", "01:30"),  # CET, before the spring change
        ("2025-03-30T01:30:00Z", "2025-03-30", "03:30"),  # CEST: 02:00-03:00 does not exist
        ("2025-03-14T23:30:00Z", "2025-03-15", "00:30"),  # the local date is the next day
        ("2025-03-14T09:30:59+01:00", "2025-03-14", "09:30"),  # seconds are dropped
        ("2025-07-01T12:00:00-04:00", "2025-07-01", "18:00"),  # any offset in, Stockholm out
        ("2025-10-26T00:30:00Z", "2025-10-26", "02:30"),  # CEST, first 02:30 …
        ("2025-10-26T01:30:00Z", "2025-10-26", "02:30"),  # … and CET, the repeated hour
    ],
)
def test_times_are_swedish_local_time(instant: str, day: str, time: str) -> None:
    request = create("outpatient_visit", visited_at=instant)
    assert request.json is not None
    assert (request.json["besoksdatum"], request.json["besokstid"]) == (day, time)
    assert request.key[1:3] == (day, time)


def test_zoned_times_carry_the_stockholm_offset_of_their_date() -> None:
    summer = create("availability", appointment_at="2025-03-30T01:30:00Z")
    assert summer.json is not None
    assert summer.json["besokstid"] == "2025-03-30T03:30:00+02:00"


# --- correct and cancel --------------------------------------------------------------------------


def test_correct_puts_the_whole_record_to_its_reference() -> None:
    request = to_gvr_request(event("outpatient_visit", operation="correct"), "GVR-0000042", PATHS)
    assert request.method == "PUT"
    assert request.path == "/vardhandelse/besok/GVR-0000042"
    assert request.json == VISIT_BODY
    assert request.params == ()
    assert (request.operation, request.reference) == ("correct", "GVR-0000042")


def test_a_reference_is_one_path_segment_whatever_it_holds() -> None:
    corrected = event("outpatient_visit", operation="correct")
    request = to_gvr_request(corrected, "../admin?x=1", PATHS)
    assert request.path == "/vardhandelse/besok/..%2Fadmin%3Fx%3D1"


@pytest.mark.parametrize(
    ("kind", "path", "when"),
    [
        ("outpatient_visit", "/vardhandelse/besok", VISIT_LOCATOR[4:]),
        (
            "admission",
            "/vardhandelse/inskrivning",
            (("inskrivningsdatum", "2025-03-10"), ("inskrivningstid", "22:15")),
        ),
        (
            "discharge",
            "/vardhandelse/utskrivning",
            (("utskrivningsdatum", "2025-03-14"), ("utskrivningstid", "11:40")),
        ),
        ("availability", "/tillganglighet", (("bokningsdatum", "2025-03-14"),)),
    ],
)
def test_cancel_deletes_with_dot_notation_query_parameters(
    kind: str, path: str, when: tuple[tuple[str, str], ...]
) -> None:
    cancelled = event(kind, operation="cancel")
    request = to_gvr_request(cancelled, "GVR-0000042", PATHS)
    assert (request.method, request.path, request.json) == ("DELETE", path, None)
    patient = cancelled.payload.patient.id
    avd = "M31" if kind == "discharge" else "M30"
    assert request.params == (
        ("id", "GVR-0000042"),
        ("patientId", patient),
        ("enhet.inr", "11010"),
        ("enhet.klin", "046"),
        ("enhet.avd", avd),
        *when,
    )
    assert (request.operation, request.reference) == ("cancel", "GVR-0000042")


@pytest.mark.parametrize("operation", ["correct", "cancel"])
@pytest.mark.parametrize("kind", list(CARE_CONTACT_EXAMPLES))
def test_correct_or_cancel_without_a_reference_is_not_yet_applied(
    kind: str, operation: str
) -> None:
    # Given a correction or cancellation whose create has no GVR id in the ledger yet
    # When it is mapped, Then it is transient: the create may still be on its way
    with pytest.raises(NotYetAppliedError) as raised:
        to_gvr_request(event(kind, operation=operation), None, PATHS)
    assert is_transient(raised.value)
    assert raised.value.error_class == "not_yet_applied"


def test_a_create_ignores_a_reference() -> None:
    assert to_gvr_request(event("outpatient_visit"), "GVR-1", PATHS) == create("outpatient_visit")


@pytest.mark.parametrize("kind", list(CARE_CONTACT_EXAMPLES))
def test_every_kind_maps_every_operation(kind: str) -> None:
    body = create(kind).json
    corrected = to_gvr_request(event(kind, operation="correct"), "GVR-7", PATHS)
    assert corrected.json == body
    assert corrected.key == create(kind).key


# --- lookup --------------------------------------------------------------------------------------


def test_lookup_gets_by_gvrs_key_and_expects_our_source_record() -> None:
    request = lookup_request(event("outpatient_visit"), PATHS)
    assert (request.method, request.path, request.json) == ("GET", "/vardhandelse/besok", None)
    assert request.params == VISIT_LOCATOR
    assert request.key == ("191212121212", "2025-03-14", "09:30", "11010046M30")
    assert dict(request.expect) == SOURCE


def test_lookup_of_a_correction_expects_the_whole_corrected_record() -> None:
    request = lookup_request(event("outpatient_visit", operation="correct", akut="J"), PATHS)
    assert dict(request.expect) == {**VISIT_BODY, "akut": "J"}


def test_lookup_of_a_cancellation_expects_a_makulerad_record() -> None:
    request = lookup_request(event("availability", operation="cancel"), PATHS)
    assert request.params == (
        ("patientId", "197010632391"),
        ("enhet.inr", "11010"),
        ("enhet.klin", "046"),
        ("enhet.avd", "M30"),
        ("bokningsdatum", "2025-03-14"),
    )
    assert dict(request.expect) == {
        "kallsystem": "takecare-sll",
        "kallId": "tillg-2025-000007731",
        "status": "MAKULERAD",
    }


# --- the worker's call: both requests from one mapping -------------------------------------------


@pytest.mark.parametrize("operation", ["create", "correct", "cancel"])
@pytest.mark.parametrize("kind", list(CARE_CONTACT_EXAMPLES))
def test_gvr_call_is_the_apply_request_and_the_lookup(kind: str, operation: str) -> None:
    # Given an event of every kind and operation, with GVR's id of its record
    contact = event(kind, operation=operation)
    # When the worker's call is mapped
    call = gvr_call(contact, "GVR-7", PATHS)
    # Then it is the request that applies it and the GET that finds it, mapped each on its own
    assert call == GvrCall(to_gvr_request(contact, "GVR-7", PATHS), lookup_request(contact, PATHS))
    assert call.lookup is not None
    assert call.lookup.key == call.apply.key


@pytest.mark.parametrize("operation", ["correct", "cancel"])
def test_gvr_call_without_a_reference_is_not_yet_applied(operation: str) -> None:
    with pytest.raises(NotYetAppliedError):
        gvr_call(event("discharge", operation=operation), None, PATHS)


# --- paths ---------------------------------------------------------------------------------------


def test_paths_are_configuration() -> None:
    paths = GvrPaths(outpatient_visit="/v2/besok")
    request = to_gvr_request(event("outpatient_visit", operation="correct"), "GVR-1", paths)
    assert request.path == "/v2/besok/GVR-1"
    assert lookup_request(event("outpatient_visit"), paths).path == "/v2/besok"


def test_settings_default_to_the_same_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    assert GvrSettings().paths == GvrPaths()
    monkeypatch.setenv("REGBRIDGE_GVR_PATHS__AVAILABILITY", "/gvr/tillganglighet")
    assert GvrSettings().paths.availability == "/gvr/tillganglighet"


def test_mapping_is_pure() -> None:
    contact = event("discharge")
    assert to_gvr_request(contact, None, PATHS) == to_gvr_request(contact, None, PATHS)
    assert contact == event("discharge")


# --- the body on the wire ------------------------------------------------------------------------


def _values(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _values(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _values(item)]
    return [value]


@pytest.mark.parametrize("operation", ["create", "correct"])
@pytest.mark.parametrize("kind", list(CARE_CONTACT_EXAMPLES))
def test_the_client_sends_the_bytes_httpx_would_for_every_body(kind: str, operation: str) -> None:
    # Given every kind's body, with every optional field the examples carry
    request = to_gvr_request(event(kind, operation=operation), "GVR-7", PATHS)
    assert request.json is not None
    # Then it holds only what orjson writes as the standard library does (no floats) …
    assert all(isinstance(leaf, str | int | bool | None) for leaf in _values(request.json))
    # … and the client's body is the bytes httpx's json= sends
    sent = httpx.Request("POST", "https://gvr.test/r", json=request.json).read()
    assert request_body(request.json) == sent == json_body(request.json)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"id":"GVR-1"}', "GVR-1"),
        ('\ufeff{"id": "GVR-2"}'.encode(), "GVR-2"),  # a BOM: orjson refuses, json reads it
        (b'{"id": "GVR-3", "x": NaN}', "GVR-3"),  # NaN: likewise
        (b'{"id":""}', None),
        (b'{"id":12345678901234567890123}', None),
        (b'["GVR-1"]', None),
        (b"not json", None),
        (b"", None),
    ],
)
def test_the_id_of_a_create_is_read_as_the_standard_library_reads_it(
    content: bytes, expected: str | None
) -> None:
    assert created_id(Reply(201, {"content-type": "application/json"}, content)) == expected
