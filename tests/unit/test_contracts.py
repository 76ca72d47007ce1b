"""The public event contract v1: examples, round trips, every rejection, and the JSON Schemas."""

import copy
import importlib.util
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from shared.contracts import (
    EVENT_TYPES,
    CareContactEvent,
    ContractViolationError,
    OutpatientVisit,
    VaccinationEvent,
    VaccinationProgramme,
    parse_event,
)
from shared.contracts.examples import CARE_CONTACT_EXAMPLES, CARE_WAIT_EXAMPLES
from shared.contracts.schema import EXAMPLES, export_schemas, schema_file_name

HAS_JSONSCHEMA = importlib.util.find_spec("jsonschema") is not None

ALL_EXAMPLES = {
    **{f"event:{k}": v for k, v in EXAMPLES.items()},
    **CARE_CONTACT_EXAMPLES,
    **{f"wait:{k}": v for k, v in CARE_WAIT_EXAMPLES.items()},
}

# Full personal identity numbers used below; none of them may ever appear in an error message.
PERSONAL_NUMBERS = (
    "191212121212",
    "191212121213",
    "19121212-1212",
    "197010632391",
    "197010032391",
    "196508313159",
    "201501610199",
)


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def example(name: str) -> dict[str, Any]:
    """A private deep copy: an event type ('vaccination') or a care-contact kind ('discharge')."""
    return copy.deepcopy(EXAMPLES.get(name) or CARE_CONTACT_EXAMPLES[name])


def rejection(raw: bytes) -> ContractViolationError:
    with pytest.raises(ContractViolationError) as caught:
        parse_event(raw)
    return caught.value


# --- examples and round trips ---------------------------------------------------------------------


def test_registry_and_examples_cover_the_same_event_types() -> None:
    assert (
        set(EVENT_TYPES)
        == set(EXAMPLES)
        == {"care.contact", "care.wait", "vaccination", "hsa.unit-notification"}
    )
    for event_type, model in EVENT_TYPES.items():
        assert event_type == model.EVENT_TYPE


@pytest.mark.parametrize("name", sorted(ALL_EXAMPLES))
def test_every_example_is_a_valid_event(name: str) -> None:
    # Given a documented example, When it is parsed from bytes
    raw_event = ALL_EXAMPLES[name]
    event = parse_event(encode(raw_event))
    # Then it becomes the model registered for its event type
    assert isinstance(event, EVENT_TYPES[raw_event["event_type"]])
    assert str(event.event_id) == raw_event["event_id"]
    assert event.record_version == raw_event["record_version"]


@pytest.mark.parametrize("kind", sorted(CARE_CONTACT_EXAMPLES))
def test_the_care_contact_kind_selects_the_payload_model(kind: str) -> None:
    event = parse_event(encode(example(kind)))
    assert isinstance(event, CareContactEvent)
    assert event.payload.kind == kind


@pytest.mark.parametrize("name", sorted(ALL_EXAMPLES))
def test_round_trip_through_json_gives_an_equal_event(name: str) -> None:
    event = parse_event(encode(ALL_EXAMPLES[name]))
    again = parse_event(event.model_dump_json().encode())
    assert again == event
    assert again.model_dump_json() == event.model_dump_json()


def test_parsed_values_are_normalised_and_typed() -> None:
    raw_event = example("outpatient_visit")
    raw_event["payload"]["kombika"] = "11010 046 M30"
    event = parse_event(encode(raw_event))
    assert isinstance(event.payload, OutpatientVisit)
    assert event.payload.kombika == "11010046M30"
    assert event.occurred_at.utcoffset() is not None
    assert event.payload.diagnoses[0] == "J069"  # first = main diagnosis, order kept


def test_events_are_immutable() -> None:
    event = parse_event(encode(example("vaccination")))
    with pytest.raises(ValidationError):
        event.record_version = 2


def test_a_covid19_vaccination_keeps_its_dose_number() -> None:
    event = parse_event(encode(example("vaccination")))
    assert isinstance(event, VaccinationEvent)
    assert event.payload.programme is VaccinationProgramme.COVID19
    assert event.payload.dose_number == 4


def test_a_childhood_vaccination_needs_no_dose_number() -> None:
    raw_event = example("vaccination")
    raw_event["payload"]["programme"] = "childhood"
    del raw_event["payload"]["dose_number"]
    event = parse_event(encode(raw_event))
    assert isinstance(event, VaccinationEvent)
    assert event.payload.dose_number is None


# --- rejections -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    """A broken event: where it starts, how it is broken, and what the error must say."""

    start: str
    breaks: Callable[[dict[str, Any]], object]
    path: str
    rule: str


def _set(path: str, value: object) -> Callable[[dict[str, Any]], object]:
    *parents, leaf = path.split(".")

    def apply(event: dict[str, Any]) -> None:
        node: Any = event
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[leaf] = value

    return apply


def _delete(path: str) -> Callable[[dict[str, Any]], object]:
    *parents, leaf = path.split(".")
    return lambda event: _resolve(event, parents).pop(leaf)


def _resolve(event: dict[str, Any], parts: list[str]) -> Any:
    node: Any = event
    for part in parts:
        node = node[part]
    return node


BAD_EVENTS = {
    "missing top-level field": Bad(
        "vaccination", _delete("record_id"), "record_id", "required field is missing"
    ),
    "missing nested field": Bad(
        "admission", _delete("payload.patient"), "payload.patient", "required field is missing"
    ),
    "unknown top-level field": Bad(
        "vaccination", _set("priority", "high"), "priority", "unknown field"
    ),
    "unknown nested field": Bad(
        "outpatient_visit",
        _set("payload.patient.name", "Tolvan"),
        "payload.patient.name",
        "unknown field",
    ),
    "unknown deeply nested field": Bad(
        "vaccination",
        _set("payload.care_provider.name", "Region Stockholm"),
        "payload.care_provider.name",
        "unknown field",
    ),
    "invalid personnummer": Bad(
        "outpatient_visit",
        _set("payload.patient.id", "191212121213"),
        "payload.patient.id",
        "personnummer: check digit (Luhn) does not match",
    ),
    "personnummer with separator": Bad(
        "vaccination",
        _set("payload.patient.id", "19121212-1212"),
        "payload.patient.id",
        "personnummer: must be 12 digits",
    ),
    "samordningsnummer under PNR type": Bad(
        "discharge",
        _set("payload.patient.id", "197010632391"),
        "payload.patient.id",
        "personnummer: day must be 01",
    ),
    "personnummer under SNR type": Bad(
        "availability",
        _set("payload.patient.id", "197010032391"),
        "payload.patient.id",
        "samordningsnummer: day must be 61",
    ),
    "reserve number for NVR": Bad(
        "vaccination",
        _set("payload.patient.id_type", "RESERVE_SLL"),
        "payload.patient.id_type",
        "'PNR' or 'SNR'",
    ),
    "timestamp without zone": Bad(
        "vaccination",
        _set("occurred_at", "2025-03-14T10:02:17"),
        "occurred_at",
        "timestamp must include a time zone offset",
    ),
    "nested timestamp without zone": Bad(
        "outpatient_visit",
        _set("payload.visited_at", "2025-03-14T09:30:00"),
        "payload.visited_at",
        "time zone",
    ),
    "unknown event_type": Bad(
        "vaccination", _set("event_type", "care.visit"), "event_type", "unknown event type"
    ),
    "missing event_type": Bad(
        "vaccination", _delete("event_type"), "event_type", "required field is missing"
    ),
    "wrong schema_version": Bad(
        "vaccination", _set("schema_version", 2), "schema_version", "unsupported schema version"
    ),
    "boolean schema_version": Bad(
        "care.contact", _set("schema_version", True), "schema_version", "unsupported schema version"
    ),
    "dose number on non-covid": Bad(
        "vaccination",
        _set("payload.programme", "childhood"),
        "payload.dose_number",
        "allowed only when programme is covid19",
    ),
    "personal number as an unknown field name": Bad(
        "vaccination", _set("payload.191212121212", True), "payload.19121212****", "unknown field"
    ),
    "unknown field named like a care-contact kind": Bad(
        "admission", _set("payload.admission", 1), "payload.admission", "unknown field"
    ),
    "top-level unknown field named like a kind": Bad(
        "vaccination", _set("discharge", 1), "discharge", "unknown field"
    ),
    "missing dose on covid": Bad(
        "vaccination",
        _delete("payload.dose_number"),
        "payload.dose_number",
        "required when programme is covid19",
    ),
    "dose number out of range": Bad(
        "vaccination", _set("payload.dose_number", 100), "payload.dose_number", "99"
    ),
    "bad kombika": Bad(
        "outpatient_visit",
        _set("payload.kombika", "302163110022A"),
        "payload.kombika",
        "kombika: avdelning must be 1",
    ),
    "lower-case dotted diagnosis": Bad(
        "outpatient_visit",
        _set("payload.diagnoses", ["j06.9"]),
        "payload.diagnoses.0",
        "ICD-10-SE: must be written without the dot",
    ),
    "bad KVÅ code": Bad(
        "discharge",
        _set("payload.procedures.0.code", "AQ14"),
        "payload.procedures.0.code",
        "KVÅ: must be 3 letters + 2 digits",
    ),
    "procedure linked to a missing diagnosis": Bad(
        "outpatient_visit",
        _set("payload.procedures.0.diagnosis_index", 2),
        "payload.procedures",
        "links diagnosis_index 2, but only 2 diagnoses are given",
    ),
    "akut not J/N": Bad("admission", _set("payload.akut", "Y"), "payload.akut", "'J' or 'N'"),
    "too many professions": Bad(
        "outpatient_visit",
        _set("payload.professions", ["01"] * 21),
        "payload.professions",
        "at most 20",
    ),
    "unknown care-contact kind": Bad(
        "admission", _set("payload.kind", "transfer"), "payload.kind", "unknown value"
    ),
    "missing care-contact kind": Bad(
        "admission", _delete("payload.kind"), "payload.kind", "required field is missing"
    ),
    "discharge from another clinic": Bad(
        "discharge",
        _set("payload.discharging_kombika", "11010047M30"),
        "payload.discharging_kombika",
        "admitting unit's clinic",
    ),
    "vaccinated before birth": Bad(
        "vaccination",
        _set("payload.vaccinated_on", "1960-01-01"),
        "payload.vaccinated_on",
        "before the person's birth date",
    ),
    "bad HSA-id": Bad(
        "hsa.unit-notification", _set("payload.hsa_id", "SE2321000016"), "payload.hsa_id", "HSA-id"
    ),
    "bad organisation number": Bad(
        "vaccination",
        _set("payload.care_provider.organisation_number", "2321000017"),
        "payload.care_provider.organisation_number",
        "organisationsnummer: check digit",
    ),
    "record_version zero": Bad(
        "vaccination", _set("record_version", 0), "record_version", "greater than or equal to 1"
    ),
    "record_version as a string": Bad(
        "vaccination", _set("record_version", "1"), "record_version", "valid integer"
    ),
    "event_id not a UUID": Bad("vaccination", _set("event_id", "42"), "event_id", "UUID"),
    "blank source_system": Bad(
        "vaccination", _set("source_system", " "), "source_system", "pattern"
    ),
    "unknown operation": Bad(
        "vaccination", _set("operation", "delete"), "operation", "'create', 'correct' or 'cancel'"
    ),
}


@pytest.mark.parametrize("case", BAD_EVENTS.values(), ids=BAD_EVENTS.keys())
def test_a_broken_event_names_the_field_path_and_the_rule(case: Bad) -> None:
    # Given a valid example, When one thing in it is broken
    raw_event = example(case.start)
    case.breaks(raw_event)
    error = rejection(encode(raw_event))
    # Then the error names where and which rule, and nothing personal
    message = str(error)
    assert f"{case.path}: " in message
    assert any(v.path == case.path and case.rule in v.rule for v in error.violations), message
    assert not any(number in message for number in PERSONAL_NUMBERS), message


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b'{"a": NaN}', "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8 text"),
        ('{"event_type": "vaccination"}'.encode("utf-16"), "not UTF-8 text"),
        (b"[1, 2]", "an event must be a JSON object"),
        (b'"191212121212"', "an event must be a JSON object"),
    ],
)
def test_bytes_that_are_not_a_json_object_are_rejected_as_a_whole(raw: bytes, rule: str) -> None:
    error = rejection(raw)
    assert [v.path for v in error.violations] == ["(event)"]
    assert rule in str(error)
    assert "191212121212" not in str(error)


def test_every_violation_is_reported_at_once() -> None:
    raw_event = example("outpatient_visit")
    raw_event["occurred_at"] = "2025-03-14T10:02:17"
    raw_event["payload"]["patient"]["id"] = "191212121213"
    raw_event["payload"]["diagnoses"] = ["j06.9"]
    raw_event["payload"]["extra"] = True
    error = rejection(encode(raw_event))
    assert {v.path for v in error.violations} == {
        "occurred_at",
        "payload.patient.id",
        "payload.diagnoses.0",
        "payload.extra",
    }
    assert str(error).count("; ") == 3


def test_the_error_carries_no_pydantic_error_with_input_values() -> None:
    raw_event = example("vaccination")
    raw_event["payload"]["patient"]["id"] = "191212121213"
    error = rejection(encode(raw_event))
    assert error.__cause__ is None
    assert error.__suppress_context__  # the ValidationError (which holds inputs) is not chained
    assert isinstance(error, ValueError)


# --- JSON Schema ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    out_dir = tmp_path_factory.mktemp("schemas") / "v1"
    paths = export_schemas(out_dir)
    assert sorted(p.name for p in paths) == sorted(schema_file_name(t) for t in EVENT_TYPES)
    assert all(p.parent == out_dir for p in paths)
    return {t: json.loads((out_dir / schema_file_name(t)).read_text("utf-8")) for t in EVENT_TYPES}


def test_exported_file_names_follow_the_event_type() -> None:
    assert schema_file_name("care.contact") == "care.contact.v1.schema.json"
    assert schema_file_name("hsa.unit-notification") == "hsa.unit-notification.v1.schema.json"


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_exported_schema_describes_itself(
    schemas: dict[str, dict[str, Any]], event_type: str
) -> None:
    schema = schemas[event_type]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(schema_file_name(event_type))
    assert event_type in schema["title"]
    assert schema["description"]
    assert schema["properties"]["event_type"]["const"] == event_type
    assert schema["properties"]["schema_version"]["const"] == 1
    assert EXAMPLES[event_type] in schema["examples"]
    if HAS_JSONSCHEMA:
        import jsonschema

        jsonschema.Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_field_is_documented_and_every_object_closed(
    schemas: dict[str, dict[str, Any]], event_type: str
) -> None:
    for name, node in _objects(schemas[event_type]):
        assert node.get("additionalProperties") is False, name
        for field, spec in node["properties"].items():
            assert spec.get("description"), f"{name}.{field} has no description"


def _objects(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield "(event)", schema
    for name, definition in schema.get("$defs", {}).items():
        if definition.get("type") == "object":
            yield name, definition


@pytest.mark.parametrize("name", sorted(ALL_EXAMPLES))
def test_examples_validate_against_their_exported_schema(
    schemas: dict[str, dict[str, Any]], name: str
) -> None:
    if not HAS_JSONSCHEMA:
        pytest.skip("jsonschema is not installed; the schema's own structure is checked above")
    import jsonschema

    raw_event = ALL_EXAMPLES[name]
    jsonschema.Draft202012Validator(schemas[raw_event["event_type"]]).validate(raw_event)


def test_the_care_contact_schema_shows_every_kind(schemas: dict[str, dict[str, Any]]) -> None:
    kinds = [e["payload"]["kind"] for e in schemas["care.contact"]["examples"]]
    assert sorted(kinds) == sorted(CARE_CONTACT_EXAMPLES)


def test_the_schema_rejects_what_parse_event_rejects(schemas: dict[str, dict[str, Any]]) -> None:
    if not HAS_JSONSCHEMA:
        pytest.skip("jsonschema is not installed")
    import jsonschema

    validator = jsonschema.Draft202012Validator(schemas["care.contact"])
    for broken in ("unknown nested field", "lower-case dotted diagnosis", "bad kombika"):
        raw_event = example(BAD_EVENTS[broken].start)
        BAD_EVENTS[broken].breaks(raw_event)
        assert not validator.is_valid(raw_event), broken


@pytest.mark.parametrize("model", EVENT_TYPES.values(), ids=EVENT_TYPES.keys())
def test_models_are_strict_frozen_and_closed(model: type[BaseModel]) -> None:
    config = model.model_config
    assert config.get("extra") == "forbid"
    assert config.get("frozen") is True
    assert config.get("strict") is True
    assert not config.get("str_strip_whitespace")
