"""A chunk's cost per event, step by step, without Kafka: CPU µs, and instructions (noise-free).

    .venv/bin/python -m benchmarks.chunk_cost [--chunks 40] [--postgres] [--bundles]
        [--instructions] [--tree DIR …]

Runs `ChunkRunner`'s steps in this process on chunks of 500 new one-event records: building the
inbound records, parse (`ChunkJob`), deliver (the ledger's open, then each record's path and the
calls to a register that accepts at once), decide, the messages, partitioning them as the
producer would (no broker), settle, and the metrics. Ledger on a SQLite file, or `--postgres` on
the local PostgreSQL the tests start (no Docker). The runtime's options are the defaults (one
event a call, 64 in flight, as GVR), or with `--bundles` NVR's (calls of 100, 500 in flight).

CPU µs per event per step is process time (SQLite's thread included) after 5 chunks of warm-up;
these machines are shared, and it moves ±20 % from run to run. `--instructions` runs the same
twice under valgrind's cachegrind (`--cache-sim=no`, about 30 times slower) with 6 and 16 chunks and
prints the difference per event: instructions executed by this process, the same in every run of
the same code (the database server's are not counted). `--tree` measures other source trees in
the same run, each in a process of its own (an exported commit, say:
`git archive REV | tar -x -C /tmp/before`), for a before/after on one machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from tempfile import TemporaryDirectory

CHUNK = 500
WARM_UP = 5
STEPS = ("inbound", "parse", "deliver", "decide", "messages", "partition", "settle", "metrics")


async def measure(ledger_url: str, chunks: int, bundles: bool) -> dict[str, float]:
    """CPU µs per event of each step, over the chunks after the warm-up."""
    from benchmarks.runtime_overhead import Clocked, InProcessWorker
    from shared.delivery.app import freeze_heap
    from shared.delivery.bookkeeping import Bookkeeper
    from shared.delivery.chunk import ChunkRunner
    from shared.delivery.clock import SystemClock
    from shared.delivery.guards import Guards
    from shared.delivery.ledger import Ledger
    from shared.delivery.metrics import Metrics
    from shared.delivery.options import RuntimeOptions
    from shared.delivery.outgoing import Inbound, Outgoing, Writer
    from shared.delivery.retry import RetryPolicy
    from shared.topics import WorkerTopics
    from tests.support.runtime_harness import event

    try:
        from shared.delivery.produce import partition_of
    except ImportError:  # a tree from before it (aiokafka's partitioner then)
        from aiokafka.partitioner import DefaultPartitioner

        def partition_of(key: bytes | None, partitions: Sequence[int]) -> int:
            return int(DefaultPartitioner()(key, partitions, partitions))

    ledger = Ledger.from_url(ledger_url)
    await ledger.create_schema()
    worker = InProcessWorker(Clocked())
    worker.name = f"cost{uuid.uuid4().hex[:8]}"
    retry = RetryPolicy.from_names(["30s"])
    partitions = list(range(6))

    async def publish(messages: Sequence[Outgoing]) -> None:
        for message in messages:
            partition_of(message.key, partitions)

    options = RuntimeOptions(batch_size=100, max_in_flight=500) if bundles else RuntimeOptions()
    runner = ChunkRunner(
        worker=worker,
        books=Bookkeeper(ledger, worker.name),
        guards=Guards(),
        writer=Writer(WorkerTopics(worker.name, "in", ("30s",)), retry, "bench"),
        retry=retry,
        options=options,
        clock=SystemClock(),
        metrics=Metrics(),
        publish=publish,
    )
    freeze_heap()
    spent: dict[str, float] = dict.fromkeys(STEPS, 0.0)
    clock = time.process_time
    for number in range(chunks):
        values = [json.dumps(event(f"r{number}-{n}")).encode() for n in range(CHUNK)]
        marks = [clock()]
        chunk = [
            Inbound("in", n % 6, number * CHUNK + n, f"r{number}-{n}".encode(), value, (), 0)
            for n, value in enumerate(values)
        ]
        marks.append(clock())
        job = runner.job(chunk)
        if hasattr(job, "parse"):  # a tree from before parsing moved out of `job`
            await job.parse()
        marks.append(clock())
        await job.deliver()
        marks.append(clock())
        job.decide()
        marks.append(clock())
        now = runner.clock.now()
        messages = runner._messages(job.fates, now)
        if asyncio.iscoroutine(messages):  # async since it gives the event loop turns
            messages = await messages
        marks.append(clock())
        await publish(messages)
        marks.append(clock())
        await runner.books.settle(job.fates, job._books, now)
        marks.append(clock())
        runner.metrics.count(worker.name, [fate for _, fate in job.fates])
        marks.append(clock())
        if number >= WARM_UP:
            for step, start, end in zip(STEPS, marks[:-1], marks[1:], strict=True):
                spent[step] += end - start
    await worker.aclose()
    await ledger.close()
    events = (chunks - WARM_UP) * CHUNK
    return {step: spent[step] / events * 1e6 for step in STEPS}


def child(args: argparse.Namespace, tree: Path, url: str, chunks: int, *, valgrind: bool) -> str:
    """This script in a process of its own, importing `tree`'s code."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--chunks", str(chunks)]
    command += ["--bundles"] if args.bundles else []
    if valgrind:
        command = [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
            *command,
        ]
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONHASHSEED="0", CHUNK_COST_LEDGER=url)
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tree, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: {done.stderr[-3000:]}")
    return done.stdout + done.stderr


def instructions(output: str) -> int:
    found = re.search(r"I\s+refs:\s+([\d,]+)", output)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output: {output[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=40, help="chunks of 500 (5 of warm-up)")
    parser.add_argument("--postgres", action="store_true", help="ledger on PostgreSQL")
    parser.add_argument("--bundles", action="store_true", help="NVR's options: calls of 100")
    parser.add_argument("--instructions", action="store_true", help="count them (valgrind)")
    parser.add_argument("--tree", type=Path, action="append", default=[], help="another tree")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        figures = asyncio.run(measure(os.environ["CHUNK_COST_LEDGER"], args.chunks, args.bundles))
        print(json.dumps(figures))
        return
    from services.devstack.infra import provide_postgres

    trees = [Path.cwd(), *args.tree]
    with provide_postgres() as pg, TemporaryDirectory() as tmp:
        if args.postgres and pg is None:
            raise SystemExit("no PostgreSQL here")
        options = (
            "calls of 100, 500 in flight" if args.bundles else "one event a call, 64 in flight"
        )
        print(f"chunks of {CHUNK} one-event records, {options}; ledger on ", end="")
        print("PostgreSQL" if args.postgres else "SQLite")
        print(f"{'tree':<32}" + "".join(f"{step:>10}" for step in STEPS) + f"{'total':>10}")
        for index, tree in enumerate(trees):
            url = pg.address if args.postgres and pg else f"sqlite+aiosqlite:///{tmp}/{index}.db"
            out = child(args, tree, url, args.chunks, valgrind=False)
            figures = json.loads(out.strip().splitlines()[-1])
            cells = "".join(f"{figures[step]:>10.1f}" for step in STEPS)
            print(f"{str(tree)[-32:]:<32}{cells}{sum(figures.values()):>10.1f}  CPU µs/event")
        if args.instructions:
            for index, tree in enumerate(trees):
                counts = []
                for chunks in (6, 16):
                    url = f"sqlite+aiosqlite:///{tmp}/{index}-{chunks}.db"
                    url = pg.address if args.postgres and pg else url
                    counts.append(instructions(child(args, tree, url, chunks, valgrind=True)))
                few, many = counts
                per_event = (many - few) / (10 * CHUNK)
                print(f"{str(tree)[-32:]:<32}{per_event:>10,.0f} instructions/event")


if __name__ == "__main__":
    main()
