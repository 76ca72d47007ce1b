"""publish_batched on a real broker: each message where `send` would put it, in order, all there."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaProducer

from shared.delivery.outgoing import Outgoing
from shared.delivery.produce import BATCH_BYTES, publish_batched
from shared.settings import KafkaSettings
from shared.topics import TopicSpec, ensure_topics
from tests.support.runtime_harness import read_topic


async def _topics(bootstrap: str, *names: str) -> None:
    specs = [TopicSpec(name, "test") for name in names]
    await ensure_topics(
        KafkaSettings(bootstrap_servers=bootstrap), specs, partitions=5, replication_factor=1
    )


async def test_each_message_lands_where_send_puts_its_key_in_order_and_none_is_lost(
    kafka_bootstrap: str,
) -> None:
    # Given two topics of 5 partitions, and messages for both: many keys, a key with many
    # versions, values big enough to fill several batches of a partition, and keyless ones
    mine, theirs = f"produce.batched.{uuid.uuid4().hex[:8]}", f"produce.send.{uuid.uuid4().hex[:8]}"
    other = f"produce.other.{uuid.uuid4().hex[:8]}"
    await _topics(kafka_bootstrap, mine, theirs, other)
    big = b"x" * (BATCH_BYTES // 8)
    messages = [
        Outgoing(mine, f"r{i % 40}".encode(), b"%d|" % i + (big if i % 25 == 0 else b""), [])
        for i in range(600)
    ]
    messages += [Outgoing(mine, None, b"keyless-%d" % i, [("h", b"v")]) for i in range(5)]
    messages += [Outgoing(other, b"r1", b"other-%d" % i, []) for i in range(30)]
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        # When they are published batched, and the same keys are sent one by one elsewhere
        await publish_batched(producer, messages)
        for i in range(40):
            await producer.send_and_wait(theirs, b"", key=f"r{i}".encode())
    finally:
        await producer.stop()

    # Then every message is there once, with its headers, on the partition `send` picks for
    # its key, and each key's messages are in the order given
    read = await read_topic(kafka_bootstrap, mine, at_least=605)
    assert sorted(r.value.split(b"|")[0] for r in read if r.key) == sorted(
        b"%d" % i for i in range(600)
    )
    assert sorted(r.value for r in read if r.key is None) == [b"keyless-%d" % i for i in range(5)]
    assert all(r.headers == (("h", b"v"),) for r in read if r.key is None)
    by_send = {r.key: r.partition for r in await read_topic(kafka_bootstrap, theirs, at_least=40)}
    assert {r.key: r.partition for r in read if r.key} == by_send
    assert len(set(by_send.values())) > 1  # the keys really spread over partitions
    for key in by_send:
        seen = [int(r.value.split(b"|")[0]) for r in read if r.key == key]
        assert seen == sorted(seen)
    assert [r.value for r in await read_topic(kafka_bootstrap, other, at_least=30)] == [
        b"other-%d" % i for i in range(30)
    ]
