"""Given a worker process killed with SIGKILL at random points while 10,000 events flow,
when it is restarted each time, then the register has every event exactly once, in order."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections import defaultdict

import pytest

from shared.topics import dlq_topic
from tests.support.register_double import RegisterDouble
from tests.support.runtime_harness import create_topics, event, publish, read_topic, wait_for

pytestmark = pytest.mark.integration
RECORDS = 2_500
OPERATIONS = ((1, "create"), (2, "correct"), (3, "correct"), (4, "cancel"))
KILLS = 4


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


async def test_sigkill_at_random_points_loses_nothing_and_doubles_nothing(
    kafka_bootstrap: str, postgres_url: str, unique_name: str, double: RegisterDouble
) -> None:
    rng = random.Random(unique_name)
    worker, topic = f"crash{unique_name}", f"test.crash.{unique_name}"
    await create_topics(kafka_bootstrap, worker, topic, ["30s"], partitions=6)
    events = [event(f"r{i}", v, op) for v, op in OPERATIONS for i in range(RECORDS)]
    env = os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "REGBRIDGE_DOUBLE_DATABASE_URL": postgres_url,
        "REGBRIDGE_DOUBLE_URL": double.base_url,
        "REGBRIDGE_DOUBLE_NAME": worker,
        "REGBRIDGE_DOUBLE_INPUT_TOPIC": topic,
        "REGBRIDGE_TOPICS_RETRY_DELAYS": '["30s"]',
        "REGBRIDGE_DOUBLE_RUNTIME__CHUNK_SIZE": "200",
    }
    publisher = asyncio.create_task(publish(kafka_bootstrap, topic, events))
    kills = 0
    process = _start_worker(env)
    try:
        while kills < KILLS:
            await asyncio.sleep(rng.uniform(1.5, 4.0))
            if len(double.accepted()) >= len(events):
                break
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
            process = _start_worker(env)
        await publisher
        await wait_for(lambda: len(double.accepted()) >= len(events), 240, "all accepted")
        await asyncio.sleep(2)  # anything doubled would arrive now
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)

    accepted = double.accepted()
    ids = [a.event_id for a in accepted]
    assert kills >= 2, "the worker finished before it could be killed: raise RECORDS"
    assert len(ids) == len(set(ids)), "an event reached the register twice"
    assert set(ids) == {e["event_id"] for e in events}, "an event was lost"
    by_record: dict[str, list[int]] = defaultdict(list)
    for a in accepted:
        by_record[a.record_id].append(a.record_version)
    assert all(versions == [1, 2, 3, 4] for versions in by_record.values())
    assert await read_topic(kafka_bootstrap, dlq_topic(worker), timeout=2) == []
    assert process.returncode == 0, "graceful shutdown after SIGTERM"
