"""Given worker processes joining and leaving the group while events flow (scale-out, scale-in),
when partitions move between them, then the register has every event exactly once, in order,
each event has exactly one result, and nothing is dead-lettered: the chunk in hand is finished
before its partitions go."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import defaultdict

import pytest

from shared.topics import dlq_topic, results_topic
from tests.support.register_double import RegisterDouble
from tests.support.runtime_harness import create_topics, event, publish, read_topic, wait_for

pytestmark = pytest.mark.integration
RECORDS = 1_500
OPERATIONS = ((1, "create"), (2, "correct"), (3, "correct"), (4, "cancel"))


@pytest.fixture
def slow_double(double: RegisterDouble) -> RegisterDouble:
    double.set_faults(latency_ms=40)  # chunks take a while: rebalances land mid-chunk
    return double


def _start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.double_register",
            "run",
            env["REGBRIDGE_DOUBLE_NAME"],
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_partitions_moving_between_replicas_lose_and_double_nothing(
    kafka_bootstrap: str, postgres_url: str, unique_name: str, slow_double: RegisterDouble
) -> None:
    double = slow_double
    worker, topic = f"rebal{unique_name}", f"test.rebalance.{unique_name}"
    await create_topics(kafka_bootstrap, worker, topic, ["30s"], partitions=6)
    # a record's four events lie far apart in its partition, so they straddle chunks and moves
    events = [event(f"r{i}", v, op) for v, op in OPERATIONS for i in range(RECORDS)]
    env = os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "REGBRIDGE_DOUBLE_DATABASE_URL": postgres_url,
        "REGBRIDGE_DOUBLE_URL": double.base_url,
        "REGBRIDGE_DOUBLE_NAME": worker,
        "REGBRIDGE_DOUBLE_INPUT_TOPIC": topic,
        "REGBRIDGE_TOPICS_RETRY_DELAYS": '["30s"]',
        "REGBRIDGE_DOUBLE_RUNTIME__CHUNK_SIZE": "100",
    }
    await publish(kafka_bootstrap, topic, events)
    workers = [_start_worker(env)]
    try:
        # When a second and a third replica join, and then the first leaves, while it drains
        for _ in range(2):
            await wait_for(lambda: len(double.accepted()) > 0, 60, "the first acceptance")
            await asyncio.sleep(2.5)
            workers.append(_start_worker(env))
        await asyncio.sleep(4)
        done_when_first_left = len(double.accepted())
        workers[0].send_signal(signal.SIGTERM)
        await wait_for(lambda: len(double.accepted()) >= len(events), 240, "all accepted")
        await asyncio.sleep(2)  # anything doubled would arrive now
    finally:
        for process in workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=60) for process in workers]

    # Then every event reached the register exactly once and in order, and none is a dead letter
    accepted = double.accepted()
    assert done_when_first_left < len(events), "drained before the last move: raise RECORDS"
    ids = [a.event_id for a in accepted]
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} events reached it twice"
    assert set(ids) == {e["event_id"] for e in events}, "an event was lost"
    by_record: dict[str, list[int]] = defaultdict(list)
    for a in accepted:
        by_record[a.record_id].append(a.record_version)
    out_of_order = [r for r, versions in by_record.items() if versions != [1, 2, 3, 4]]
    assert out_of_order == []
    assert await read_topic(kafka_bootstrap, dlq_topic(worker), timeout=2) == []
    results = await read_topic(
        kafka_bootstrap, results_topic(worker), at_least=len(events), timeout=10
    )
    per_event = [json.loads(r.value)["event_id"] for r in results]
    repeated = len(per_event) - len(set(per_event))
    assert repeated == 0, f"{repeated} results repeated across the moves"
    assert set(per_event) == {e["event_id"] for e in events}
    assert codes == [0, 0, 0], "every replica left gracefully"
