"""The ledger's database fails softly: the worker pauses, says why, waits and resumes by itself."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.devstack.infra import LocalPostgres
from tests.support.register_double import RegisterDouble
from tests.support.runtime_harness import create_topics, event, publish, wait_for

pytestmark = pytest.mark.integration
OPERATIONS = ((1, "create"), (2, "correct"), (3, "cancel"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`regbridge run <double>` in a process of its own, its JSON log to a file."""
    command = [
        sys.executable,
        "-m",
        "tests.support.double_register",
        "run",
        env["REGBRIDGE_DOUBLE_NAME"],
    ]
    with log.open("ab") as out:
        return subprocess.Popen(command, env=os.environ | env, stdout=out, stderr=out)


def _lines(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


async def _health(port: int) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        ready = await http.get("/health/ready")
        status = await http.get("/status")
    return ready.status_code, status.json()


async def wait_healthy(port: int, want: int, timeout: float = 60) -> dict[str, Any]:  # noqa: ASYNC109
    seen: list[tuple[int, dict[str, Any]]] = []

    async def answered() -> bool:
        try:
            seen.append(await _health(port))
        except httpx.HTTPError:
            return False
        return seen[-1][0] == want

    deadline = asyncio.get_running_loop().time() + timeout
    while not await answered():
        assert asyncio.get_running_loop().time() < deadline, f"readiness never {want}: {seen[-1:]}"
        await asyncio.sleep(0.3)
    return seen[-1][1]


def _environment(
    kafka_bootstrap: str, name: str, topic: str, postgres: LocalPostgres, double: RegisterDouble
) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "REGBRIDGE_DOUBLE_NAME": name,
        "REGBRIDGE_DOUBLE_INPUT_TOPIC": topic,
        "REGBRIDGE_DOUBLE_URL": double.base_url,
        "REGBRIDGE_DOUBLE_DATABASE_URL": postgres.url,
        "REGBRIDGE_DOUBLE_HEALTH_PORT": str(free_port()),
        "REGBRIDGE_DOUBLE_LOG_FORMAT": "json",
        "REGBRIDGE_DOUBLE_RUNTIME__CHUNK_SIZE": "50",
        "REGBRIDGE_TOPICS_RETRY_DELAYS": '["30s"]',
    }


def assert_once_in_order(double: RegisterDouble, events: list[dict[str, Any]]) -> None:
    accepted = double.accepted()
    ids = [a.event_id for a in accepted]
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} events reached it twice"
    assert set(ids) == {e["event_id"] for e in events}, "an event was lost"
    versions: dict[str, list[int]] = defaultdict(list)
    for a in accepted:
        versions[a.record_id].append(a.record_version)
    assert [r for r, v in versions.items() if v != [1, 2, 3]] == []


async def test_postgres_down_under_flow_pauses_the_worker_and_loses_nothing(
    kafka_bootstrap: str,
    unique_name: str,
    double: RegisterDouble,
    stoppable_postgres: LocalPostgres,
    tmp_path: Path,
) -> None:
    # Given a worker whose ledger is on a PostgreSQL, and events flowing
    name, topic = f"pgdown{unique_name}", f"test.pgdown.{unique_name}"
    await create_topics(kafka_bootstrap, name, topic, ["30s"], partitions=3)
    env = _environment(kafka_bootstrap, name, topic, stoppable_postgres, double)
    port, log = int(env["REGBRIDGE_DOUBLE_HEALTH_PORT"]), tmp_path / "worker.log"
    events = [event(f"r{i}", v, op) for v, op in OPERATIONS for i in range(150)]
    process = start_worker(env, log)
    try:
        await wait_healthy(port, 200)
        await publish(kafka_bootstrap, topic, events[:150])
        await wait_for(lambda: len(double.accepted()) > 0, 60, "the first acceptance")

        # When the database stops for a while, and more events arrive meanwhile
        stoppable_postgres.stop()
        await publish(kafka_bootstrap, topic, events[150:])
        down = await wait_healthy(port, 503)
        # calls already out when a chunk found the ledger unreachable may still land (their
        # submissions were noted in flight); the chunks in hand send nothing more after that
        await asyncio.sleep(1)
        delivered_while_down = len(double.accepted())
        await asyncio.sleep(5)
        assert len(double.accepted()) == delivered_while_down, "it went on without its ledger"
        alive_while_down = process.poll() is None
        stoppable_postgres.start()

        # Then it resumes by itself and delivers everything once, in order
        await wait_for(lambda: len(double.accepted()) >= len(events), 120, "all accepted")
        back = await wait_healthy(port, 200)
        await asyncio.sleep(2)  # anything doubled would arrive now
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 60)

    assert alive_while_down
    assert process.returncode == 0
    assert down["paused_reason"] == "ledger"
    assert any("ledger unreachable" in alarm for alarm in down["alarms"])
    assert back["paused_reason"] is None
    assert_once_in_order(double, events)
    lines = _lines(log)
    events_logged = [line["event"] for line in lines]
    assert events_logged.count("dependency_down") == 1
    assert events_logged.count("dependency_back") == 1
    assert len([line for line in lines if line["level"] == "error"]) <= 10, "a line per retry"


async def test_a_worker_started_while_postgres_is_down_waits_for_it(
    kafka_bootstrap: str,
    unique_name: str,
    double: RegisterDouble,
    stoppable_postgres: LocalPostgres,
    tmp_path: Path,
) -> None:
    # Given the ledger's database down when the worker starts
    name, topic = f"pgstart{unique_name}", f"test.pgstart.{unique_name}"
    await create_topics(kafka_bootstrap, name, topic, ["30s"], partitions=3)
    env = _environment(kafka_bootstrap, name, topic, stoppable_postgres, double)
    log = tmp_path / "worker.log"
    events = [event(f"s{i}", v, op) for v, op in OPERATIONS for i in range(30)]
    stoppable_postgres.stop()
    process = start_worker(env, log)
    try:
        # When it has found the database down and waited a while, and then the database comes up
        await publish(kafka_bootstrap, topic, events)

        def said_down() -> bool:
            return any(line["event"] == "dependency_down" for line in _lines(log))

        await wait_for(lambda: said_down() or process.poll() is not None, 60, "dependency_down")
        await asyncio.sleep(3)
        waited = process.poll() is None
        stoppable_postgres.start()

        # Then it starts by itself and delivers everything
        await wait_for(lambda: len(double.accepted()) >= len(events), 120, "all accepted")
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 60)

    assert waited, "it exited instead of waiting for its database"
    assert process.returncode == 0
    assert_once_in_order(double, events)
    events_logged = [line["event"] for line in _lines(log)]
    assert events_logged.count("dependency_down") == 1
    assert "dependency_back" in events_logged
