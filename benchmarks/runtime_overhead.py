"""Runtime overhead: events/s through the delivery runtime vs a bare FastStream subscriber.

    .venv/bin/python -m benchmarks.runtime_overhead [--events 5000] [--partitions 6] [--postgres]

All three consume the same topic on the same broker in the same run, against the register
double answering at once over real HTTP:
  raw consume    aiokafka getmany, nothing else (the ceiling)
  bare faststream  a FastStream subscriber: parse JSON, POST to the register, ack (one at a time
                 per partition, as FastStream runs with an ack policy)
  runtime        regbridge's delivery runtime: parse, ledger, order, submit, results, commit
Figures are ratios to the bare FastStream subscriber; the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory

import httpx
from aiokafka import AIOKafkaConsumer
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from services.devstack import provide_kafka, provide_postgres
from shared.delivery.ledger import Ledger
from tests.support.double_worker import DoubleWorker
from tests.support.register_double import RegisterDouble
from tests.support.runtime_harness import create_topics, event, publish, running_runtime, wait_for


async def raw_consume(bootstrap: str, topic: str, n: int) -> float:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"raw-{uuid.uuid4()}",
        auto_offset_reset="earliest", enable_auto_commit=False,
    )
    await consumer.start()
    started, seen = time.perf_counter(), 0
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            seen += sum(len(records) for records in batch.values())
    finally:
        await consumer.stop()
    return n / (time.perf_counter() - started)


async def bare_faststream(bootstrap: str, topic: str, n: int, double: RegisterDouble) -> float:
    broker = KafkaBroker(bootstrap, logger=None)
    done = asyncio.Event()
    count = 0
    client = httpx.AsyncClient(base_url=double.base_url)

    @broker.subscriber(topic, group_id=f"bare-{uuid.uuid4()}", auto_offset_reset="earliest",
                       ack_policy=AckPolicy.ACK)
    async def handle(message: KafkaMessage) -> None:
        nonlocal count
        data = json.loads(message.body)  # the same parse the runtime does
        data["record_id"] = f"bare-{data['record_id']}"  # a register namespace of its own
        response = await client.post("/records", json=data)
        response.raise_for_status()
        count += 1
        if count >= n:
            done.set()

    async with broker:
        await broker.start()
        await asyncio.wait_for(done.wait(), 600)
    await client.aclose()
    return drain_rate(double, lambda record_id: record_id.startswith("bare-"))


async def runtime_rate(
    bootstrap: str, topic: str, n: int, double: RegisterDouble, ledger_url: str
) -> float:
    ledger = Ledger.from_url(ledger_url)
    await ledger.create_schema()
    worker = DoubleWorker(double.base_url)
    worker.name = f"bench{uuid.uuid4().hex[:8]}"
    await create_topics(bootstrap, worker.name, topic, ["30s"], partitions=1)
    before = len(double.accepted())
    async with running_runtime(bootstrap, worker, ledger, topic, tiers=("30s",)):
        await wait_for(lambda: len(double.accepted()) - before >= n, 600, "runtime drained")
    await worker.aclose()
    await ledger.close()
    return drain_rate(double, lambda record_id: not record_id.startswith("bare-"))


def drain_rate(double: RegisterDouble, mine: Callable[[str], bool]) -> float:
    """Events/s between the first and the last request the register accepted (its own clock):
    start-up and consumer-group joins are left out, for every consumer alike."""
    times = sorted(a.received_at for a in double.accepted() if mine(a.record_id))
    return (len(times) - 1) / (times[-1] - times[0]).total_seconds()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--postgres", action="store_true", help="ledger on PostgreSQL, not SQLite")
    args = parser.parse_args()
    n = args.events
    with provide_kafka() as kafka, RegisterDouble() as double, TemporaryDirectory() as tmp:
        topic = f"bench.input.{uuid.uuid4().hex[:8]}"
        await create_topics(kafka.address, "bench", topic, ["30s"], partitions=args.partitions)
        await publish(kafka.address, topic, [event(f"r{i}") for i in range(n)])
        raw = await raw_consume(kafka.address, topic, n)
        bare = await bare_faststream(kafka.address, topic, n, double)
        if args.postgres:
            with provide_postgres() as pg:
                assert pg is not None, "no PostgreSQL here"
                rate = await runtime_rate(kafka.address, topic, n, double, pg.address)
            store = "PostgreSQL"
        else:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'ledger.db'}"
            rate = await runtime_rate(kafka.address, topic, n, double, url)
            store = "SQLite"
    print(f"{n} events, {args.partitions} partitions, register double answering at once")
    print(f"{'consumer':<34}{'events/s':>10}{'× bare':>9}")
    for name, value in (
        ("raw consume (aiokafka)", raw),
        ("bare FastStream subscriber", bare),
        (f"regbridge runtime (ledger: {store})", rate),
    ):
        print(f"{name:<34}{value:>10.0f}{value / bare:>9.2f}")


if __name__ == "__main__":
    asyncio.run(main())
