"""The waiting-list entry (`care.wait`): its examples, every impossible order refused with its
reason, its bounds, its unit, its JSON Schema and its AsyncAPI channel."""

import copy
import json
from typing import Any

import jsonschema
import pytest

from services.cli.schema import worker_channels
from services.registry import REGISTRY
from shared.contracts import (
    CARE_WAIT_EXAMPLES,
    CARE_WAITS_TOPIC,
    EVENT_TYPES,
    EXAMPLES,
    MAX_EXCEPTIONS,
    CareWait,
    CareWaitEvent,
    ContractViolationError,
    parse_event,
)
from shared.contracts.asyncapi import asyncapi_document
from shared.contracts.schema import event_schema

PVV = "patient_chosen"
MOV = "medically_caused"


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def entry(name: str, **changes: Any) -> dict[str, Any]:
    """A deep copy of an example with payload fields changed (None: the field left out)."""
    event = copy.deepcopy(CARE_WAIT_EXAMPLES[name])
    for field, value in changes.items():
        if value is None:
            event["payload"].pop(field, None)
        else:
            event["payload"][field] = value
    return event


def period(kind: str, start: str, end: str | None = None) -> dict[str, Any]:
    return {"kind": kind, "start": start} | ({"end": end} if end is not None else {})


def parsed(event: dict[str, Any]) -> CareWait:
    result = parse_event(encode(event))
    assert isinstance(result, CareWaitEvent)
    return result.payload


def reasons(event: dict[str, Any]) -> list[str]:
    with pytest.raises(ContractViolationError) as caught:
        parse_event(encode(event))
    return [str(violation) for violation in caught.value.violations]


# --- examples -------------------------------------------------------------------------------------


def test_care_wait_is_a_registered_event_type_with_its_examples() -> None:
    assert EVENT_TYPES["care.wait"] is CareWaitEvent
    assert EXAMPLES["care.wait"] is CARE_WAIT_EXAMPLES["waiting"]
    assert sorted(CARE_WAIT_EXAMPLES) == ["completed", "patient_chosen", "removed", "waiting"]


@pytest.mark.parametrize("name", sorted(CARE_WAIT_EXAMPLES))
def test_every_example_parses_and_survives_a_round_trip(name: str) -> None:
    event = parse_event(encode(CARE_WAIT_EXAMPLES[name]))
    assert isinstance(event, CareWaitEvent)
    assert event.record_id == CARE_WAIT_EXAMPLES[name]["record_id"]
    assert parse_event(event.model_dump_json().encode()) == event


def test_the_examples_show_what_their_names_say() -> None:
    waiting = parsed(entry("waiting"))
    assert (waiting.completed_on, waiting.removed_on, waiting.exceptions) == (None, None, ())
    assert [p.kind for p in parsed(entry("patient_chosen")).exceptions] == [PVV]
    completed = parsed(entry("completed"))
    assert completed.completed_on is not None
    assert completed.removed_on is None
    removed = parsed(entry("removed"))
    assert (removed.completed_on, removed.removed_reason) == (None, "treated_elsewhere")


def test_a_cancellation_withdraws_the_entry_and_still_identifies_it() -> None:
    event = entry("waiting") | {"operation": "cancel", "record_version": 2}
    result = parse_event(encode(event))
    assert result.operation == "cancel"
    assert isinstance(result.payload, CareWait)


def test_a_wait_still_open_may_have_an_open_exception() -> None:
    payload = parsed(entry("waiting", exceptions=[period(PVV, "2025-03-01")]))
    assert payload.exceptions[0].end is None


def test_periods_that_touch_or_differ_in_kind_are_accepted() -> None:
    # one PVV ends, the next begins the day after; a MOV runs across both
    periods = [
        period(PVV, "2025-03-01", "2025-03-05"),
        period(PVV, "2025-03-06"),
        period(MOV, "2025-03-02", "2025-03-10"),
    ]
    assert len(parsed(entry("waiting", exceptions=periods)).exceptions) == 3


def test_one_day_exception_and_same_day_dates_are_accepted() -> None:
    payload = parsed(
        entry(
            "completed",
            decided_on="2024-10-21",
            booked_on="2025-03-13",
            booked_for="2025-03-13",
            exceptions=[period(MOV, "2024-10-21", "2024-10-21")],
        )
    )
    assert payload.decided_on == payload.referral_received


# --- impossible orders ----------------------------------------------------------------------------

IMPOSSIBLE = {
    "completed before the referral": (
        entry("completed", completed_on="2024-10-20"),
        "payload.completed_on: completed_on must not be before referral_received",
    ),
    "removed before the referral": (
        entry("removed", removed_on="2025-01-26"),
        "payload.removed_on: removed_on must not be before referral_received",
    ),
    "decided before the referral": (
        entry("completed", decided_on="2024-10-20"),
        "payload.decided_on: decided_on must not be before referral_received",
    ),
    "appointment before its booking": (
        entry("waiting", booked_for="2025-03-11"),
        "payload.booked_for: booked_for must not be before booked_on",
    ),
    "an exception ending before it starts": (
        entry("patient_chosen", exceptions=[period(PVV, "2025-01-13", "2025-01-12")]),
        "payload.exceptions.0: end must not be before start",
    ),
    "overlapping exceptions of one kind": (
        entry(
            "patient_chosen",
            exceptions=[
                period(PVV, "2025-01-13", "2025-02-01"),
                period(MOV, "2025-01-20", "2025-01-25"),
                period(PVV, "2025-02-01", "2025-02-10"),  # shares 1 February with the first
            ],
        ),
        "payload.exceptions: exceptions 0 and 2 overlap (both patient_chosen)",
    ),
    "a period after an open one of its kind": (
        entry(
            "waiting",
            exceptions=[period(MOV, "2025-03-10", "2025-03-12"), period(MOV, "2025-03-01")],
        ),
        "payload.exceptions: exceptions 0 and 1 overlap (both medically_caused)",
    ),
    "an exception starting before the referral": (
        entry("patient_chosen", exceptions=[period(PVV, "2024-11-03", "2024-11-30")]),
        "payload.exceptions: exception 0 starts before referral_received",
    ),
    "an open exception on a completed entry": (
        entry("completed", exceptions=[period(MOV, "2024-12-02")]),
        "payload.exceptions: exception 0 is still open (no end), but the entry is completed",
    ),
    "an open exception on a removed entry": (
        entry(
            "removed",
            exceptions=[period(PVV, "2025-02-01", "2025-02-03"), period(MOV, "2025-02-01")],
        ),
        "payload.exceptions: exception 1 is still open (no end), but the entry is removed",
    ),
    "completed and removed both": (
        entry("removed", completed_on="2025-03-14"),
        "payload.removed_on: an entry is completed or removed, not both: give completed_on or "
        "removed_on",
    ),
    "removed without a reason": (
        entry("removed", removed_reason=None),
        "payload.removed_reason: required when removed_on is given",
    ),
    "a reason without a removal": (
        entry("waiting", removed_reason="declined"),
        "payload.removed_reason: allowed only when removed_on is given",
    ),
}


@pytest.mark.parametrize("case", list(IMPOSSIBLE))
def test_an_impossible_order_is_refused_with_its_reason(case: str) -> None:
    event, reason = IMPOSSIBLE[case]
    assert reasons(event) == [reason]


def test_every_broken_order_is_named_at_once() -> None:
    event = entry("completed", decided_on="2024-01-01", booked_for="2025-01-01")
    assert reasons(event) == [
        "payload.decided_on: decided_on must not be before referral_received",
        "payload.booked_for: booked_for must not be before booked_on",
    ]


# --- the unit, codes and bounds -------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [{"unit_hsa_id": "SE2321000016-14L1"}, {"kombika": None}],
    ids=["both", "neither"],
)
def test_the_unit_is_given_exactly_once(changes: dict[str, Any]) -> None:
    assert reasons(entry("waiting", **changes)) == [
        "payload: give the unit as `kombika` or as `unit_hsa_id` (exactly one of the two)"
    ]


def test_the_unit_by_hsa_id_alone_is_accepted_and_both_forms_are_checked() -> None:
    assert parsed(entry("patient_chosen")).unit_hsa_id == "SE2321000016-14L1"
    assert parsed(entry("waiting", kombika="11010 046 M30")).kombika == "11010046M30"
    assert reasons(entry("waiting", kombika="1101004")) != []
    assert reasons(entry("patient_chosen", unit_hsa_id="SE232100001614L1")) != []


def test_the_patient_is_checked_against_its_id_type_and_never_shown() -> None:
    found = reasons(entry("waiting", patient={"id_type": "PNR", "id": "191212121213"}))
    assert found == ["payload.patient.id: personnummer: check digit (Luhn) does not match"]


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"cvr_code": "ABCDEFGHIJK"}, "payload.cvr_code"),
        ({"cvr_code": "B-220"}, "payload.cvr_code"),
        ({"cvr_code": ""}, "payload.cvr_code"),
        ({"priority": "12345678901"}, "payload.priority"),
        ({"priority": ""}, "payload.priority"),
        ({"wait_kind": "surgery"}, "payload.wait_kind"),
        ({"guarantee_applies": "yes"}, "payload.guarantee_applies"),
        ({"referral_received": None}, "payload.referral_received"),
        ({"exceptions": [{"kind": "pvv", "start": "2025-03-01"}]}, "payload.exceptions.0.kind"),
        ({"removed_on": "2025-03-14", "removed_reason": "moved"}, "payload.removed_reason"),
        ({"booked_on": "2025-03-12T10:00:00+01:00"}, "payload.booked_on"),
        ({"unexpected": True}, "payload.unexpected"),
    ],
)
def test_a_field_out_of_its_shape_is_named(changes: dict[str, Any], path: str) -> None:
    assert [reason.split(": ", 1)[0] for reason in reasons(entry("waiting", **changes))] == [path]


def test_codes_of_up_to_ten_letters_or_digits_are_not_looked_up() -> None:
    # the register's code list is not public: any well-shaped code passes
    assert parsed(entry("waiting", cvr_code="ZZ99999999")).cvr_code == "ZZ99999999"


def test_the_exceptions_are_bounded() -> None:
    days = [f"2025-03-{day:02d}" for day in range(1, 32)] + [
        f"2025-04-{day:02d}" for day in range(1, 31)
    ]
    periods = [period(PVV, day, day) for day in days[:MAX_EXCEPTIONS]]
    assert len(parsed(entry("waiting", exceptions=periods)).exceptions) == MAX_EXCEPTIONS
    one_more = [*periods, period(PVV, days[MAX_EXCEPTIONS], days[MAX_EXCEPTIONS])]
    assert reasons(entry("waiting", exceptions=one_more)) == [
        f"payload.exceptions: Tuple should have at most {MAX_EXCEPTIONS} items after "
        f"validation, not {MAX_EXCEPTIONS + 1}"
    ]


# --- JSON Schema and AsyncAPI ---------------------------------------------------------------------


def test_the_json_schema_carries_every_example_and_refuses_a_broken_one() -> None:
    schema = event_schema("care.wait")
    assert schema["examples"] == list(CARE_WAIT_EXAMPLES.values())
    validator = jsonschema.Draft202012Validator(schema)
    for example in schema["examples"]:
        assert list(validator.iter_errors(example)) == []
    assert not validator.is_valid(entry("waiting", cvr_code="B-220"))
    assert not validator.is_valid(entry("waiting", exceptions=[{"kind": PVV}]))
    assert schema["properties"]["payload"]["$ref"].endswith("CareWait")
    assert schema["$defs"]["CareWait"]["properties"]["exceptions"]["maxItems"] == MAX_EXCEPTIONS


def channel_of(document: dict[str, Any], topic: str) -> list[dict[str, Any]]:
    """The messages of the channel at `topic` (refs followed), [] when there is none."""
    components = document["components"]["messages"]
    return [
        components[ref["$ref"].rsplit("/", 1)[-1]]
        for channel in document["channels"].values()
        if channel["address"] == topic
        for ref in channel["messages"].values()
    ]


def test_the_waits_topic_is_a_channel_with_every_example() -> None:
    document = asyncapi_document(worker_channels(REGISTRY))
    (message,) = channel_of(document, CARE_WAITS_TOPIC)
    assert CARE_WAITS_TOPIC == "care.waits.v1"
    assert [e["name"] for e in message["examples"]] == [
        f"care.wait.{name}" for name in CARE_WAIT_EXAMPLES
    ]
    assert "record_id" in message["bindings"]["kafka"]["key"]["description"]
    validator = jsonschema.Draft202012Validator({**document, "$ref": message["payload"]["$ref"]})
    for example in message["examples"]:
        assert list(validator.iter_errors(example["payload"])) == [], example["name"]
