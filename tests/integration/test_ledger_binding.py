"""A ledger follows one Kafka cluster: on another it refuses to start instead of skipping events."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from services.devstack.infra import LocalKafka
from tests.integration.test_ledger_outage import free_port, start_worker, wait_healthy
from tests.support.register_double import RegisterDouble
from tests.support.runtime_harness import create_topics, event, publish, wait_for

pytestmark = pytest.mark.integration


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tests.support.double_register", *args]
    return subprocess.run(
        command, env=os.environ | env, capture_output=True, text=True, timeout=120, check=False
    )


async def test_a_ledger_of_another_cluster_is_refused_until_an_operator_rebinds_it(
    kafka_bootstrap: str,
    stoppable_kafka: LocalKafka,
    unique_name: str,
    double: RegisterDouble,
    tmp_path: Path,
) -> None:
    # Given a worker that ran on one cluster (its ledger bound to it)
    name, topic = f"bind{unique_name}", f"test.bind.{unique_name}"
    env = {
        "REGBRIDGE_DOUBLE_NAME": name,
        "REGBRIDGE_DOUBLE_INPUT_TOPIC": topic,
        "REGBRIDGE_DOUBLE_URL": double.base_url,
        "REGBRIDGE_DOUBLE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
        "REGBRIDGE_DOUBLE_HEALTH_PORT": str(free_port()),
        "REGBRIDGE_DOUBLE_LOG_FORMAT": "json",
        "REGBRIDGE_TOPICS_RETRY_DELAYS": '["30s"]',
    }
    first_cluster = env | {"KAFKA_BOOTSTRAP_SERVERS": stoppable_kafka.address}
    await create_topics(stoppable_kafka.address, name, topic, ["30s"])
    first = start_worker(first_cluster, tmp_path / "first.log")
    try:
        await wait_healthy(int(env["REGBRIDGE_DOUBLE_HEALTH_PORT"]), 200)
    finally:
        first.send_signal(signal.SIGTERM)
        await asyncio.to_thread(first.wait, 60)

    # When it is started against another cluster, with events waiting there
    other = env | {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    await create_topics(kafka_bootstrap, name, topic, ["30s"])
    await publish(kafka_bootstrap, topic, [event("b1"), event("b2")])
    refused = start_worker(other, tmp_path / "refused.log")
    code = await asyncio.to_thread(refused.wait, 120)
    shown = await asyncio.to_thread(_cli, other, "ledger", "show", "-w", name)

    # Then it refuses, saying why and what to do, and delivers nothing
    lines = [json.loads(line) for line in (tmp_path / "refused.log").read_text().splitlines()]
    (refusal,) = [line for line in lines if line["event"] == "ledger_of_another_cluster"]
    assert code == 2
    assert refusal["level"] == "error"
    assert f"regbridge ledger rebind --worker {name}" in refusal["error"]
    assert double.accepted() == []
    assert shown.returncode == 1
    assert "DIFFERS" in shown.stdout

    # When an operator rebinds it, then it starts and delivers
    rebound = await asyncio.to_thread(_cli, other, "ledger", "rebind", "-w", name, "--yes")
    again = start_worker(other, tmp_path / "again.log")
    try:
        await wait_for(lambda: len(double.accepted()) == 2, 90, "both delivered")
    finally:
        again.send_signal(signal.SIGTERM)
        await asyncio.to_thread(again.wait, 60)
    assert rebound.returncode == 0, rebound.stderr
    assert f"the {name} ledger now follows" in rebound.stdout
    assert again.returncode == 0
