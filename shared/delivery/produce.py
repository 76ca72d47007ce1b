"""A chunk's messages to Kafka as one record batch per partition, not a `send` per message.

aiokafka's `send` costs a coroutine, a future and a partitioner call in Python per message —
more than the rest of a result's journey. `publish_batched` partitions the messages itself, as
the producer would (Kafka's default partitioner: murmur2 of the key, as the Java clients —
here a word at a time, aiokafka's own reads it a byte at a time —; a random partition for a
message without a key), fills one `BatchBuilder` per partition in order,
and waits once for all of them: every message is durable (the producer's acks) when it returns,
in order within its partition. The producer's idempotence numbers these batches like any other.
"""

from __future__ import annotations

import asyncio
import random
import struct
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

from shared.delivery.outgoing import Outgoing

BATCH_BYTES = 256 * 1024
"""The producer's `max_batch_size`: a chunk's results fit in a batch or two per partition (a
broker takes batches up to `message.max.bytes`, 1 MB by default)."""

_MASK = 0xFFFFFFFF
_M = 0x5BD1E995
_WORD = struct.Struct("<I")


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), as aiokafka's
    `partitioner.murmur2` computes it."""
    length = len(data)
    end = length & ~3
    h = (0x9747B28C ^ length) & _MASK
    for (k,) in _WORD.iter_unpack(memoryview(data)[:end]):
        k = (k * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    extra = length & 3
    if extra == 3:
        h ^= data[end + 2] << 16
    if extra >= 2:
        h ^= data[end + 1] << 8
    if extra:
        h = ((h ^ data[end]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def partition_of(key: bytes | None, partitions: Sequence[int]) -> int:
    """Where Kafka's default partitioner puts a key (partitions sorted); no key: any."""
    if key is None:
        return random.choice(partitions)  # noqa: S311 (spreading load, not a secret)
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]


async def publish_batched(producer: AIOKafkaProducer, messages: Sequence[Outgoing]) -> None:
    """Every message durable when this returns, in order within its partition."""
    partitions: dict[str, list[int]] = {}
    by_partition: dict[tuple[str, int], list[Outgoing]] = {}
    for message in messages:
        known = partitions.get(message.topic)
        if known is None:
            known = partitions[message.topic] = sorted(await producer.partitions_for(message.topic))
        where = (message.topic, partition_of(message.key, known))
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
