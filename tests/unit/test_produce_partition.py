"""Results are partitioned as Kafka's default partitioner would: regbridge's word-at-a-time
murmur2 gives aiokafka's (the Java client's) hash for every length and byte value."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from shared.delivery.produce import murmur2, partition_of


def test_murmur2_is_kafkas_for_every_length_and_byte() -> None:
    rng = random.Random(17)
    keys = [b"", b"\x00", b"\xff" * 7, "åäö-0123".encode()]
    keys += [rng.randbytes(length) for length in range(0, 70) for _ in range(20)]
    assert [murmur2(key) for key in keys] == [aiokafka_murmur2(key) for key in keys]


def test_a_key_goes_where_the_producer_would_send_it() -> None:
    partitioner = DefaultPartitioner()
    for count in (1, 3, 6, 12):
        partitions = list(range(count))
        for n in range(500):
            key = f"record-{n}".encode()
            assert partition_of(key, partitions) == partitioner(key, partitions, partitions)


def test_a_message_without_a_key_goes_to_one_of_the_partitions() -> None:
    assert {partition_of(None, [0, 1, 2]) for _ in range(200)} == {0, 1, 2}
