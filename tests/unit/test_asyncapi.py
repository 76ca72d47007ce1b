"""The AsyncAPI 3.0 document: valid against the official schema, every worker's topics in it."""

import copy
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from services.cli.app import build_app
from services.cli.schema import worker_channels
from services.registry import REGISTRY
from shared.contracts.asyncapi import (
    ASYNCAPI_FILE_NAME,
    FastStreamMissingError,
    asyncapi_document,
)
from shared.contracts.result import EventResult
from shared.delivery import headers as h
from shared.delivery.outgoing import result_message

SCHEMA_FILE = Path(__file__).parents[1] / "fixtures" / "asyncapi" / "asyncapi-3.0.0.schema.json"
COMPONENT_KEY = re.compile(r"^[a-zA-Z0-9.\-_]+$")  # AsyncAPI 3.0, Components Object


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi_document(worker_channels(REGISTRY))


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow local $refs ('#/components/messages/x') until a node without one."""
    while "$ref" in node:
        found: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            found = found[part]
        node = found
    return node


def messages_of(document: dict[str, Any], topic: str) -> list[dict[str, Any]]:
    channel = next(c for c in document["channels"].values() if c["address"] == topic)
    return [resolve(document, ref) for ref in channel["messages"].values()]


def test_the_document_is_valid_asyncapi_3(
    document: dict[str, Any], validator: jsonschema.Draft7Validator
) -> None:
    assert document["asyncapi"] == "3.0.0"
    errors = [f"{e.json_path}: {e.message[:200]}" for e in validator.iter_errors(document)]
    assert errors == []


def test_the_official_schema_does_catch_a_broken_document(
    document: dict[str, Any], validator: jsonschema.Draft7Validator
) -> None:
    # Given the document with a message field AsyncAPI 3.0 does not have (2.x's messageId)
    broken = copy.deepcopy(document)
    next(iter(broken["components"]["messages"].values()))["messageId"] = "x"
    # Then the vendored schema refuses it: the validation above is not vacuous
    assert not validator.is_valid(broken)


def test_component_keys_follow_the_spec(document: dict[str, Any]) -> None:
    keys = [k for section in document["components"].values() for k in section]
    assert [k for k in keys if not COMPONENT_KEY.match(k)] == []


INPUTS = [(spec, given) for spec in REGISTRY for given in spec.inputs(spec.load_settings())]


def _input_id(case: Any) -> str:
    return f"{case[0].name}:{case[1].topic}" if isinstance(case, tuple) else str(case)


@pytest.mark.parametrize("case", INPUTS, ids=_input_id)
def test_each_input_topic_is_a_channel_with_its_event_key_and_traceparent(
    document: dict[str, Any], case: tuple[Any, Any]
) -> None:
    _spec, given = case
    (message,) = messages_of(document, given.topic)
    # the payload is the worker's event model
    payload = resolve(document, message["payload"])
    event_types = {m.EVENT_TYPE for m in given.event_types}
    assert payload["properties"]["event_type"]["const"] in event_types
    (model,) = given.event_types
    assert set(payload["properties"]) == set(model.model_json_schema()["properties"])
    assert payload["additionalProperties"] is False
    # keyed by record_id, with the W3C trace context header
    assert "record_id" in message["bindings"]["kafka"]["key"]["description"]
    assert h.TRACEPARENT in message["headers"]["properties"]
    assert "correlationId" not in message
    # the examples are the contract's own, with a traceparent
    assert message["examples"]
    assert all(e["payload"]["event_type"] in event_types for e in message["examples"])
    # regbridge receives on it
    (operation,) = [
        o
        for o in document["operations"].values()
        if resolve(document, o["channel"])["address"] == given.topic
    ]
    assert operation["action"] == "receive"


@pytest.mark.parametrize("case", INPUTS, ids=_input_id)
def test_the_examples_satisfy_the_payload_schema_and_a_bad_event_does_not(
    document: dict[str, Any], case: tuple[Any, Any]
) -> None:
    (message,) = messages_of(document, case[1].topic)
    # the payload schema, its refs resolved within the document (other keys are ignored)
    validator = jsonschema.Draft202012Validator({**document, "$ref": message["payload"]["$ref"]})
    for example in message["examples"]:
        assert list(validator.iter_errors(example["payload"])) == [], example["name"]
    bad = copy.deepcopy(message["examples"][0]["payload"]) | {"unexpected": True}
    assert not validator.is_valid(bad)


@pytest.mark.parametrize("spec", list(REGISTRY), ids=lambda spec: spec.name)
def test_results_and_dead_letters_are_channels_regbridge_sends_to(
    document: dict[str, Any], spec: Any
) -> None:
    topics = spec.topics(spec.load_settings())
    if topics.results_topic is not None:
        (result,) = messages_of(document, topics.results_topic)
        assert resolve(document, result["payload"])["title"] == "EventResult"
        assert h.TRACEPARENT in result["headers"]["properties"]
        assert "record_id" in result["bindings"]["kafka"]["key"]["description"]
    (letter,) = messages_of(document, topics.dlq)
    assert resolve(document, letter["payload"]) | {"title": ""} == {
        "type": "string",
        "format": "binary",
        "title": "",
    }
    assert {h.ERROR_CLASS, h.ERROR_MESSAGE, h.ORIGIN_TOPIC} <= set(letter["headers"]["required"])
    addresses = {c["address"] for c in document["channels"].values()}
    assert not any(".retry." in address for address in addresses)  # internal topics stay out


@pytest.mark.parametrize(
    ("status", "extra"),
    [
        ("accepted", {"reference": "GVR-1"}),
        ("skipped", {"reason": "stale"}),
        ("dead_lettered", {"reason": "payload.x: unknown field", "error_class": "invalid_event"}),
    ],
)
def test_every_result_the_runtime_writes_is_an_event_result(
    status: str, extra: dict[str, str]
) -> None:
    message = result_message(
        "r.results.v1",
        record_id="besok-1",
        event_id="0b6f4f0e-6a57-4c39-9a4e-3d8f5b7c2e11",
        record_version=2,
        status=status,
        now=datetime(2025, 3, 14, 9, 30, tzinfo=UTC),
        **extra,
    )
    result = EventResult.model_validate_json(message.value)
    assert (result.status, message.key) == (status, b"besok-1")


def test_schema_export_writes_the_json_schemas_and_the_asyncapi_document(tmp_path: Path) -> None:
    result = CliRunner().invoke(build_app(REGISTRY), ["schema", "export", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / ASYNCAPI_FILE_NAME).name in result.output
    written = json.loads((tmp_path / ASYNCAPI_FILE_NAME).read_text(encoding="utf-8"))
    assert written == asyncapi_document(worker_channels(REGISTRY))
    assert len(list(tmp_path.glob("*.schema.json"))) == 4


def test_without_faststream_the_export_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an installation without FastStream (the production image)
    monkeypatch.setitem(sys.modules, "faststream.kafka", None)
    with pytest.raises(FastStreamMissingError, match="development dependency"):
        asyncapi_document(worker_channels(REGISTRY))
    # Then the command writes the JSON Schemas and fails clearly on the AsyncAPI document
    result = CliRunner().invoke(build_app(REGISTRY), ["schema", "export", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "FastStream" in result.output
    assert not (tmp_path / ASYNCAPI_FILE_NAME).exists()
