"""Publish the contract's example events, so a newcomer sees traffic on the input topics."""

from __future__ import annotations

import json

from aiokafka import AIOKafkaProducer

from shared.contracts.schema import EXAMPLES
from shared.kafka import kafka_client_options
from shared.settings import RegbridgeSettings


def input_topic(event_type: str, settings: RegbridgeSettings) -> str:
    """The input topic each event type is published to (architecture, names from settings)."""
    topics = settings.topics
    return {
        "care.contact": topics.care_contacts,
        "vaccination": topics.vaccinations,
        "hsa.unit-notification": topics.hsa_notifications,
    }[event_type]


def example_key(event: dict[str, object]) -> bytes:
    """Events are keyed by record id; HSA notifications by the unit's HSA-id."""
    payload = event.get("payload")
    if event.get("event_type") == "hsa.unit-notification" and isinstance(payload, dict):
        return str(payload["hsa_id"]).encode()
    return str(event["record_id"]).encode()


async def publish_examples(settings: RegbridgeSettings) -> list[str]:
    producer = AIOKafkaProducer(**kafka_client_options(settings.kafka), acks="all")
    await producer.start()
    lines = []
    try:
        for event_type, event in EXAMPLES.items():
            topic = input_topic(event_type, settings)
            meta = await producer.send_and_wait(
                topic, json.dumps(event).encode(), key=example_key(event)
            )
            lines.append(f"published {event_type} to {topic}[{meta.partition}]@{meta.offset}")
    finally:
        await producer.stop()
    return lines
