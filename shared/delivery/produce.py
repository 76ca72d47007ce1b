"""A chunk's messages to Kafka as one record batch per partition, not a `send` per message.

aiokafka's `send` costs a coroutine, a future and a partitioner call in Python per message —
more than the rest of a result's journey. `publish_batched` partitions the messages itself, as
the producer would (Kafka's default partitioner: murmur2 of the key, as the Java clients; a
random partition for a message without a key), fills one `BatchBuilder` per partition in order,
and waits once for all of them: every message is durable (the producer's acks) when it returns,
in order within its partition. The producer's idempotence numbers these batches like any other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from shared.delivery.outgoing import Outgoing

BATCH_BYTES = 256 * 1024
"""The producer's `max_batch_size`: a chunk's results fit in a batch or two per partition (a
broker takes batches up to `message.max.bytes`, 1 MB by default)."""

_partition = DefaultPartitioner()


async def publish_batched(producer: AIOKafkaProducer, messages: Sequence[Outgoing]) -> None:
    """Every message durable when this returns, in order within its partition."""
    partitions: dict[str, list[int]] = {}
    by_partition: dict[tuple[str, int], list[Outgoing]] = {}
    for message in messages:
        known = partitions.get(message.topic)
        if known is None:
            known = partitions[message.topic] = sorted(await producer.partitions_for(message.topic))
        where = (message.topic, _partition(message.key, known, known))
        by_partition.setdefault(where, []).append(message)
    sent: list[asyncio.Future[Any]] = []
    for (topic, partition), mine in by_partition.items():
        batch = producer.create_batch()
        for message in mine:
            if not _append(batch, message):  # full: it goes, the message starts the next one
                sent.append(await _send(producer, batch, topic, partition))
                batch = producer.create_batch()
                _append(batch, message)  # the first record of a batch always fits
        sent.append(await _send(producer, batch, topic, partition))
    if sent:
        await asyncio.gather(*sent)


async def _send(
    producer: AIOKafkaProducer, batch: Any, topic: str, partition: int
) -> asyncio.Future[Any]:
    """The batch queued, closed (nothing is added to it, so it does not linger): its future."""
    batch.close()
    future: asyncio.Future[Any] = await producer.send_batch(batch, topic, partition=partition)
    return future


def _append(batch: Any, message: Outgoing) -> bool:
    added = batch.append(
        key=message.key, value=message.value, timestamp=None, headers=message.headers
    )
    return added is not None
