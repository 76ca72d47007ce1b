"""The same app as the real-broker test, on FastStream's in-memory TestKafkaBroker."""

from __future__ import annotations

import json

from faststream.kafka import KafkaBroker, TestKafkaBroker

from shared.contracts.schema import EXAMPLES
from tests.support.echo_app import build_echo_app


async def test_valid_events_are_parsed_and_bad_ones_named() -> None:
    broker = KafkaBroker()
    accepted, rejected = build_echo_app(broker, "care.contacts.v1", group="unit")

    async with TestKafkaBroker(broker):
        example = EXAMPLES["care.contact"]
        await broker.publish(json.dumps(example).encode(), "care.contacts.v1")
        await broker.publish(b'{"event_id": 1}', "care.contacts.v1")

    event = accepted.get_nowait()
    assert str(event.event_id) == example["event_id"]  # type: ignore[attr-defined]
    assert rejected.get_nowait() == "event_type: required field is missing"
