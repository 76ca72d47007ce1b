"""The broker stopped and started again on its data: the worker waits, loses and doubles nothing,
and says so in a bounded number of log lines."""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from pathlib import Path

import pytest

from services.devstack.infra import LocalKafka
from tests.integration.test_ledger_outage import (
    OPERATIONS,
    assert_once_in_order,
    free_port,
    start_worker,
)
from tests.support.register_double import RegisterDouble
from tests.support.runtime_harness import create_topics, event, publish, wait_for

pytestmark = pytest.mark.integration
OUTAGE_S = 12


async def test_a_broker_restart_loses_nothing_and_logs_a_bounded_story(
    stoppable_kafka: LocalKafka, unique_name: str, double: RegisterDouble, tmp_path: Path
) -> None:
    # Given a worker on a broker of this test's own, events flowing
    name, topic = f"restart{unique_name}", f"test.restart.{unique_name}"
    await create_topics(stoppable_kafka.address, name, topic, ["30s"], partitions=3)
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": stoppable_kafka.address,
        "REGBRIDGE_DOUBLE_NAME": name,
        "REGBRIDGE_DOUBLE_INPUT_TOPIC": topic,
        "REGBRIDGE_DOUBLE_URL": double.base_url,
        "REGBRIDGE_DOUBLE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
        "REGBRIDGE_DOUBLE_HEALTH_PORT": str(free_port()),
        "REGBRIDGE_DOUBLE_LOG_FORMAT": "json",
        "REGBRIDGE_TOPICS_RETRY_DELAYS": '["30s"]',
    }
    log = tmp_path / "worker.log"
    events = [event(f"r{i}", v, op) for v, op in OPERATIONS for i in range(100)]
    process = start_worker(env, log)
    try:
        await publish(stoppable_kafka.address, topic, events[:150])
        await wait_for(lambda: len(double.accepted()) >= 150, 90, "the first half")
        before = len(log.read_text().splitlines())

        # When the broker stops for a while and starts again on its data
        stoppable_kafka.stop()
        await asyncio.sleep(OUTAGE_S)
        during = len(log.read_text().splitlines()) - before
        stoppable_kafka.start()
        await publish(stoppable_kafka.address, topic, events[150:])

        # Then the worker delivers the rest, once and in order, without having exited
        await wait_for(lambda: len(double.accepted()) >= len(events), 180, "all accepted")
        await asyncio.sleep(2)
        alive = process.poll() is None
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 60)

    assert alive, "the worker exited while the broker was away"
    assert process.returncode == 0
    assert_once_in_order(double, events)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    kinds = Counter((line["level"], line["event"][:60]) for line in lines[before:])
    assert during <= 60, f"{during} lines in a {OUTAGE_S} s outage: {kinds.most_common(8)}"
