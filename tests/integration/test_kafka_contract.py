"""Given a real broker, when journal-style events are published, then a FastStream subscriber
receives them parsed by the public contract (and names what is wrong with a bad one)."""

from __future__ import annotations

import asyncio
import json

import pytest
from faststream.kafka import KafkaBroker

from shared.contracts.schema import EXAMPLES
from tests.support.echo_app import build_echo_app

pytestmark = pytest.mark.integration


async def test_faststream_subscriber_receives_published_events(
    kafka_bootstrap: str, unique_name: str
) -> None:
    topic = f"test.contract.{unique_name}"
    broker = KafkaBroker(kafka_bootstrap)
    accepted, rejected = build_echo_app(broker, topic, group=f"test-{unique_name}")

    async with broker:
        await broker.start()
        for example in EXAMPLES.values():
            await broker.publish(
                json.dumps(example).encode(), topic, key=str(example["record_id"]).encode()
            )
        await broker.publish(b"{not json", topic, key=b"broken-1")

        received = [await asyncio.wait_for(accepted.get(), 30) for _ in EXAMPLES]
        reason = await asyncio.wait_for(rejected.get(), 30)

    assert sorted(str(e.event_id) for e in received) == sorted(  # type: ignore[attr-defined]
        str(e["event_id"]) for e in EXAMPLES.values()
    )
    assert "JSON" in reason
