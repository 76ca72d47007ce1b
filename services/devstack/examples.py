"""Publish the contract's example events, so a newcomer sees traffic on the input topics."""

from __future__ import annotations

import json

from aiokafka import AIOKafkaProducer

from shared.contracts.schema import EXAMPLES
from shared.kafka import kafka_client_options
from shared.settings import KafkaSettings
from shared.spec import Registry


def example_key(event: dict[str, object]) -> bytes:
    """Events are keyed by record id; HSA notifications by the unit's HSA-id."""
    payload = event.get("payload")
    if event.get("event_type") == "hsa.unit-notification" and isinstance(payload, dict):
        return str(payload["hsa_id"]).encode()
    return str(event["record_id"]).encode()


async def publish_examples(registry: Registry, kafka: KafkaSettings) -> list[str]:
    """Each example to the input topic of a worker that consumes its event type."""
    topics = registry.input_topics()
    producer = AIOKafkaProducer(**kafka_client_options(kafka), acks="all")
    await producer.start()
    lines = []
    try:
        for event_type, event in EXAMPLES.items():
            topic = topics.get(event_type)
            if topic is None:
                lines.append(f"skipped {event_type}: no worker consumes it")
                continue
            meta = await producer.send_and_wait(
                topic, json.dumps(event).encode(), key=example_key(event)
            )
            lines.append(f"published {event_type} to {topic}[{meta.partition}]@{meta.offset}")
    finally:
        await producer.stop()
    return lines
