"""The demo stream: every worker's demo events, interleaved, keyed by record id, at a rate."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Iterator

from aiokafka import AIOKafkaProducer

from shared.kafka import kafka_client_options
from shared.settings import KafkaSettings
from shared.spec import DemoContext, DemoEvent, Registry


def rounds(registry: Registry, context: DemoContext) -> Iterator[tuple[str, DemoEvent]]:
    """(topic, event) forever: each round takes `demo_share` events of every worker that has a
    demo, on that worker's input topic."""
    streams = [
        (spec.load_settings().input_topic, spec.dev.demo_share, spec.dev.demo(context))
        for spec in registry
        if spec.dev is not None and spec.dev.demo is not None
    ]
    if not streams:
        return
    while True:
        for topic, share, events in streams:
            for event in itertools.islice(events, share):
                yield topic, event


async def publish_demo(
    registry: Registry, kafka: KafkaSettings, *, count: int, rate: float, seed: int, units: int
) -> dict[str, int]:
    """Publish `count` events at `rate` per second; how many of each label."""
    from services.sandboxes.hsa.directory import HsaDirectory

    directory = HsaDirectory(units, seed=1)
    events = rounds(registry, DemoContext(seed, directory.iter_units))
    producer = AIOKafkaProducer(**kafka_client_options(kafka), acks="all")
    await producer.start()
    counts: dict[str, int] = {}
    try:
        for topic, (label, event) in itertools.islice(events, count):
            value = event if isinstance(event, bytes) else json.dumps(event).encode()
            key = b"garbage" if isinstance(event, bytes) else event["record_id"].encode()
            await producer.send_and_wait(topic, value, key=key)
            counts[label] = counts.get(label, 0) + 1
            if rate > 0:
                await asyncio.sleep(1 / rate)
    finally:
        await producer.stop()
    return counts
