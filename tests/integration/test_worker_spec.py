"""A register is a folder: a throwaway `WorkerSpec` (tests/support/double_register/), added by one
registry line, is picked up by `topics`, `run`, `status` and `dlq` with no other edit."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from services.cli.app import build_app
from services.registry import REGISTRY
from tests.support.double_register.spec import double_spec
from tests.support.register_double import RegisterDouble
from tests.support.runtime_harness import event, publish, read_topic, wait_for

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`regbridge run <name>` with the throwaway registered, in a process of its own."""
    command = [sys.executable, "-m", "tests.support.double_register", "run", name]
    return subprocess.Popen(command, env=os.environ | env, stderr=subprocess.PIPE)


async def test_a_throwaway_register_is_run_listed_and_operated_like_the_others(
    kafka_bootstrap: str, unique_name: str, double: RegisterDouble, tmp_path: Path
) -> None:
    # Given a new register in a folder of its own, and the one registry line that adds it
    name, topic, port = f"t{unique_name}", f"test.throwaway.{unique_name}", _free_port()
    registry = REGISTRY.with_spec(double_spec(name))
    app, runner = build_app(registry), CliRunner()
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "REGBRIDGE_DOUBLE_NAME": name,
        "REGBRIDGE_DOUBLE_INPUT_TOPIC": topic,
        "REGBRIDGE_DOUBLE_URL": double.base_url,
        "REGBRIDGE_DOUBLE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
        "REGBRIDGE_DOUBLE_HEALTH_PORT": str(port),
        "REGBRIDGE_TOPICS_RETRY_DELAYS": '["30s"]',
        "REGBRIDGE_TOPICS_PARTITIONS": "2",
    }

    def cli(*args: str) -> Awaitable[Result]:  # in a thread: the commands run their own loop
        return asyncio.to_thread(runner.invoke, app, list(args), env=env)

    spec = registry.get(name)
    parts = {spec.settings.__module__, spec.event_types[0].__module__, spec.build.__module__}
    assert all(p.startswith("tests.support.double_register.") for p in parts), parts

    # When the operator lists and ensures the topics
    listed = await cli("topics", "list")
    ensured = await cli("topics", "ensure")

    # Then its input, results, retry tier and dead-letter topics are there with the others'
    mine = [topic, f"{name}.results.v1", f"{name}.retry.30s", f"{name}.dlq.v1"]
    assert listed.exit_code == 0, listed.output
    assert all(f"{t} " in listed.stdout for t in [*mine, "care.contacts.v1"]), listed.stdout
    assert ensured.exit_code == 0, ensured.output
    assert all(f"created {t}" in ensured.stdout for t in mine), ensured.stdout

    # When `regbridge run <name>` runs it and journal events arrive, one of them broken
    events = [event(f"r{i}") for i in range(3)]
    await publish(kafka_bootstrap, topic, [*events, b"{not json"])
    process = _run(name, env)
    try:
        await wait_for(lambda: len(double.accepted()) == 3, 60, "three accepted")
        results = await read_topic(kafka_bootstrap, f"{name}.results.v1", at_least=4)
        assert len(results) == 4

        # Then `status` and `dlq list` report it like any worker
        status = await cli("status", "-w", name)
        deadline = time.monotonic() + 30
        while "total lag 0" not in status.stdout and time.monotonic() < deadline:
            await asyncio.sleep(0.5)  # the last commit follows the results
            status = await cli("status", "-w", name)
        health = await cli("status", "-w", name, "--health-url", f"http://127.0.0.1:{port}")
        letters = await cli("dlq", "list", "-w", name)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.to_thread(process.communicate, timeout=60)

    assert process.returncode == 0, stderr.decode()
    assert status.exit_code == 0, status.output
    assert f"{name}  (consumer group regbridge-{name})" in status.stdout
    assert "    total lag 0" in status.stdout
    assert f"  dead letters  {name}.dlq.v1: 1" in status.stdout
    assert "  circuit  closed; paused: no; alarms: 0" in health.stdout, health.output
    assert letters.exit_code == 0, letters.output
    assert "invalid_event" in letters.stdout
    assert letters.stdout.splitlines()[-1] == f"1 dead letters in {name}.dlq.v1 match"


def test_a_worker_the_registry_does_not_hold_is_a_usage_error() -> None:
    result = CliRunner().invoke(build_app(REGISTRY), ["dlq", "list", "-w", "nosuch"])

    assert result.exit_code == 2
    said = " ".join(result.output.replace("│", " ").split())  # the error box, unwrapped
    assert f"no worker 'nosuch' (known: {', '.join(REGISTRY.names)})" in said
