"""Runtime overhead: events/s through the delivery runtime vs a bare FastStream subscriber.

    .venv/bin/python -m benchmarks.runtime_overhead [--events 3000] [--partitions 6] [--postgres]

Every consumer reads the same topic on the same broker in the same run, against two registers:
  in-process  a register that accepts at once without any I/O: what is left is each consumer's
              own cost (for the runtime: parsing, the ledger, ordering, results, commits)
  HTTP        the register double in a process of its own, answering at once over real HTTP
The bare FastStream subscriber parses the JSON and calls the register, one event at a time per
partition, as FastStream runs with an ack policy. Rates are taken between the first and the last
acceptance (start-up and consumer-group joins left out for all alike) and reported as ratios to
the bare subscriber on the same register; the machine is shared and noisy. The runtime runs twice
per register: one chunk at a time (RUNTIME__CHUNKS_IN_HAND=1, as before chunks overlapped) and
with two chunks in hand (the default). µs/event is wall time
per event; CPU µs/event is this process's CPU per event over the same span (the consumer, its
ledger client and, in-process, the register; the HTTP double and the broker run elsewhere).
What the set-up built is frozen out of the garbage collector's generations before the first
consumer starts, as `regbridge run` does after start-up (`shared.heap.freeze_heap`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from services.devstack.infra import provide_kafka, provide_postgres
from shared.delivery.ledger import Ledger
from shared.delivery.worker import Accepted, Submission
from shared.heap import freeze_heap
from tests.support.double_register.worker import DoubleWorker
from tests.support.runtime_harness import create_topics, event, publish, running_runtime


class Clocked:
    """Times of acceptance, for a rate between the first and the last; this process's CPU at the
    first acceptance and every `CPU_EVERY`th (a clock read per event would cost more than some
    consumers' own work per event)."""

    CPU_EVERY = 500

    def __init__(self) -> None:
        self.times: list[float] = []
        self.cpu: list[tuple[int, float]] = []  # (acceptances, CPU seconds): the first, the latest

    def tick(self) -> None:
        times = self.times
        times.append(time.perf_counter())
        count = len(times)
        if count == 1:
            self.cpu = [(1, time.process_time())]
        elif count % self.CPU_EVERY == 0:
            self.cpu[1:] = [(count, time.process_time())]

    def rate(self) -> float:
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])

    def cpu_us(self) -> float:
        """CPU µs of this process per event between the first acceptance and the latest one
        whose CPU was read."""
        if len(self.cpu) < 2:
            return float("nan")
        (first, first_cpu), (last, last_cpu) = self.cpu
        return (last_cpu - first_cpu) / (last - first) * 1e6


class InProcessWorker(DoubleWorker):
    """The runtime's worker on a register that accepts at once, with no I/O at all."""

    def __init__(self, clocked: Clocked) -> None:
        super().__init__("http://unused.invalid")
        self.clocked = clocked

    async def submit(self, batch: Sequence[Submission[Any]]) -> list[Any]:
        for _ in batch:
            self.clocked.tick()
        return [Accepted(f"REF-{s.identity.record_id}") for s in batch]


class ClockedHttpWorker(DoubleWorker):
    def map(self, event: object, reference: str | None) -> dict[str, Any]:
        request = super().map(event, reference)
        request["record_id"] = f"{self.name}-{request['record_id']}"  # each run its own records
        return request

    async def submit(self, batch: Sequence[Submission[Any]]) -> list[Any]:
        outcomes = await super().submit(batch)
        for outcome in outcomes:
            if isinstance(outcome, Accepted):
                self.clocked.tick()
        return outcomes


def start_double() -> tuple[subprocess.Popen[str], str]:
    """The register double in a process of its own, so it does not share this one's GIL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.register_double"], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


async def raw_consume(bootstrap: str, topic: str, n: int) -> Clocked:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"raw-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    clocked, seen = Clocked(), 0
    try:
        while seen < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            for records in batch.values():
                for _ in records:
                    clocked.tick()
                seen += len(records)
    finally:
        await consumer.stop()
    return clocked


async def bare_faststream(bootstrap: str, topic: str, n: int, url: str | None) -> Clocked:
    broker = KafkaBroker(bootstrap, logger=None)
    clocked, done = Clocked(), asyncio.Event()
    client = httpx.AsyncClient(base_url=url) if url else None
    namespace = uuid.uuid4().hex[:6]

    @broker.subscriber(
        topic, group_id=f"bare-{namespace}", auto_offset_reset="earliest", ack_policy=AckPolicy.ACK
    )
    async def handle(message: KafkaMessage) -> None:
        data = json.loads(message.body)  # the same parse the runtime does
        if client is not None:
            data["record_id"] = f"bare{namespace}-{data['record_id']}"  # its own records
            (await client.post("/records", json=data)).raise_for_status()
        clocked.tick()
        if len(clocked.times) >= n:
            done.set()

    async with broker:
        await broker.start()
        await asyncio.wait_for(done.wait(), 900)
    if client is not None:
        await client.aclose()
    return clocked


async def runtime_rate(
    bootstrap: str, topic: str, n: int, url: str | None, ledger_url: str, in_hand: int
) -> Clocked:
    ledger = Ledger.from_url(ledger_url)
    await ledger.create_schema()
    clocked = Clocked()
    worker: DoubleWorker = InProcessWorker(clocked) if url is None else ClockedHttpWorker(url)
    worker.clocked = clocked  # type: ignore[attr-defined]
    worker.name = f"bench{uuid.uuid4().hex[:8]}"
    await create_topics(bootstrap, worker.name, topic, ["30s"], partitions=1)
    async with running_runtime(
        bootstrap, worker, ledger, topic, tiers=("30s",), chunks_in_hand=in_hand
    ):
        while len(clocked.times) < n:  # noqa: ASYNC110 (polling a counter in a benchmark)
            await asyncio.sleep(0.2)
    await worker.aclose()
    await ledger.close()
    return clocked


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--postgres", action="store_true", help="ledger on PostgreSQL, not SQLite")
    args = parser.parse_args()
    n = args.events
    double, url = start_double()
    rows: list[tuple[str, Clocked, float]] = []
    try:
        with provide_kafka() as kafka, provide_postgres() as pg, TemporaryDirectory() as tmp:
            bootstrap = kafka.address
            if args.postgres and pg is None:
                raise SystemExit("no PostgreSQL here")
            ledger_url = (
                pg.address if args.postgres and pg else f"sqlite+aiosqlite:///{Path(tmp) / 'l.db'}"
            )
            store = "PostgreSQL" if args.postgres else "SQLite"
            topic = f"bench.input.{uuid.uuid4().hex[:8]}"
            await create_topics(bootstrap, "bench", topic, ["30s"], partitions=args.partitions)
            await publish(bootstrap, topic, [event(f"r{i}") for i in range(n)])
            freeze_heap()  # as `regbridge run` does after start-up; for every consumer alike
            raw = await raw_consume(bootstrap, topic, n)
            rows.append(("raw consume (aiokafka, no work)", raw, float("nan")))
            for register, register_url in (("in-process register", None), ("HTTP register", url)):
                bare = await bare_faststream(bootstrap, topic, n, register_url)
                rows.append((f"bare FastStream, {register}", bare, 1.0))
                for in_hand in (1, 2):
                    rate = await runtime_rate(
                        bootstrap, topic, n, register_url, ledger_url, in_hand
                    )
                    name = f"regbridge ({store}, {in_hand} in hand), {register}"
                    rows.append((name, rate, rate.rate() / bare.rate()))
    finally:
        double.terminate()
        double.wait(timeout=30)
    print(f"{n} events, {args.partitions} partitions; ledger on {store}")
    print(f"{'consumer':<48}{'events/s':>10}{'vs bare':>9}{'µs/event':>10}{'CPU µs/event':>14}")
    for name, clocked, ratio in rows:
        rate = clocked.rate()
        print(f"{name:<48}{rate:>10.0f}{ratio:>9.2f}{1e6 / rate:>10.1f}{clocked.cpu_us():>14.1f}")


if __name__ == "__main__":
    asyncio.run(main())
