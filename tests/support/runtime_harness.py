"""Run the delivery runtime against the real broker and the register double, for tests."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from shared.delivery.clock import Clock
from shared.delivery.guards import CircuitBreaker
from shared.delivery.ledger import Ledger
from shared.delivery.options import RuntimeOptions
from shared.delivery.runtime import DeliveryRuntime
from shared.settings import KafkaSettings
from shared.topics import (
    TopicSpec,
    WorkerTopics,
    dlq_topic,
    ensure_topics,
    results_topic,
    retry_topic,
)
from tests.support.double_register.worker import DoubleWorker


def event(
    record_id: str, version: int = 1, operation: str = "create", event_id: str | None = None
) -> dict[str, Any]:
    return {
        "event_id": event_id or str(uuid.uuid4()),
        "record_id": record_id,
        "record_version": version,
        "operation": operation,
        "payload": {"note": f"{record_id} v{version}"},
    }


async def create_topics(
    bootstrap: str, worker: str, input_topic: str, tiers: Sequence[str], partitions: int = 3
) -> None:
    names = [input_topic, dlq_topic(worker), results_topic(worker)]
    names += [retry_topic(worker, t) for t in tiers]
    await ensure_topics(
        KafkaSettings(bootstrap_servers=bootstrap),
        [TopicSpec(n, "test") for n in names],
        partitions=partitions,
        replication_factor=1,
    )


async def publish(
    bootstrap: str,
    topic: str,
    events: Sequence[dict[str, Any] | bytes],
    *,
    key: Callable[[Any], bytes] | None = None,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = []
        for e in events:
            value = e if isinstance(e, bytes) else json.dumps(e).encode()
            k = key(e) if key else (b"raw" if isinstance(e, bytes) else e["record_id"].encode())
            futures.append(await producer.send(topic, value, key=k, headers=headers or []))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    at_least: int = 0,
    timeout: float = 30.0,  # noqa: ASYNC109
) -> list[ConsumerRecord[bytes, bytes]]:
    """Everything in `topic` now, waiting up to `timeout` for at least `at_least` records."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + timeout
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            for rs in batch.values():
                records.extend(rs)
            ends = await consumer.end_offsets(tps)
            caught_up = all([await consumer.position(tp) >= ends[tp] for tp in tps])
            if (caught_up and len(records) >= at_least) or time.monotonic() > deadline:
                return records
    finally:
        await consumer.stop()


async def wait_for(
    predicate: Callable[[], bool],
    timeout: float = 30.0,  # noqa: ASYNC109 (a test helper that polls a predicate)
    what: str = "",
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def running_runtime(
    bootstrap: str,
    worker: DoubleWorker,
    ledger: Ledger,
    input_topic: str,
    *,
    tiers: Sequence[str] = ("30s", "5m"),
    clock: Clock | None = None,
    circuit: CircuitBreaker | None = None,
    more_inputs: Sequence[str] = (),
    **options: Any,
) -> AsyncIterator[DeliveryRuntime]:
    publish_results = options.pop("publish_results", True)
    topics = WorkerTopics(
        worker.name, input_topic, tuple(tiers), results=publish_results, more_inputs=(*more_inputs,)
    )
    runtime = DeliveryRuntime(
        worker,
        ledger,
        KafkaSettings(bootstrap_servers=bootstrap),
        topics,
        RuntimeOptions(**options),
        clock=clock,
        circuit=circuit,
    )
    task = asyncio.create_task(runtime.run())
    try:
        await wait_for(lambda: runtime.status.assigned or task.done(), 30, "partition assignment")
        if task.done():
            task.result()
        yield runtime
    finally:
        runtime.stop()
        await asyncio.wait_for(task, 30)
