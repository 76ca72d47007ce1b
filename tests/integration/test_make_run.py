"""`make run` twice in a row: each run's broker, sandboxes and ledgers are new, so the demo is
delivered both times (a ledger outliving its broker once made the second run skip everything)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from services.registry import REGISTRY

pytestmark = pytest.mark.integration
DEMO = ["--demo-events", "60", "--demo-rate", "30"]


def _dev_up(cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """`regbridge dev up` as `make run` runs it: no broker given, so it starts its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGBRIDGE_", "KAFKA_"))}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli", "dev", "up", *DEMO],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=out,
        )


def _error_lines(folder: Path) -> list[str]:
    """Every line logged at error by the workers and the demo (both runs append to one file)."""
    logs = sorted(folder.glob("regbridge-*.log"))
    return [
        line for log in logs for line in log.read_text().splitlines() if '"level": "error"' in line
    ]


def _tail(log: Path) -> str:
    return log.read_text()[-3000:]


async def _outcomes(worker: str) -> dict[str, float]:
    """The worker's events by outcome, from its /metrics (empty while it is not up)."""
    port = REGISTRY.get(worker).health_port
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    except httpx.HTTPError:
        return {}
    pattern = rf'regbridge_events_total{{outcome="(\w+)",worker="{worker}"}} ([\d.]+)'
    found = {m[0]: float(m[1]) for m in re.findall(pattern, text)}
    pattern = rf'regbridge_events_total{{worker="{worker}",outcome="(\w+)"}} ([\d.]+)'
    found |= {m[0]: float(m[1]) for m in re.findall(pattern, text)}
    return found


async def _one_run(cwd: Path, log: Path) -> dict[str, dict[str, float]]:
    process = _dev_up(cwd, log)
    seen: dict[str, dict[str, float]] = {}
    try:
        for _ in range(600):  # up to 5 minutes: a broker, three sandboxes, three workers, a demo
            seen = {name: await _outcomes(name) for name in ("gvr", "nvr")}
            if seen["gvr"].get("accepted", 0) >= 20 and seen["nvr"].get("accepted", 0) >= 10:
                break
            assert process.poll() is None, _tail(log)
            await asyncio.sleep(0.5)
    finally:
        process.send_signal(signal.SIGINT)
        await asyncio.to_thread(process.wait, 120)
    return seen


async def test_make_run_twice_in_a_row_delivers_the_demo_both_times(tmp_path: Path) -> None:
    first = await _one_run(tmp_path, tmp_path / "first.log")
    second = await _one_run(tmp_path, tmp_path / "second.log")

    for run in (first, second):
        assert run["gvr"].get("accepted", 0) >= 20, run
        assert run["nvr"].get("accepted", 0) >= 10, run
        assert run["gvr"].get("skipped_stale", 0) == run["nvr"].get("skipped_stale", 0) == 0
    assert "stopping what was started" in (tmp_path / "second.log").read_text()
    assert _error_lines(tmp_path) == [], "a healthy make run logs no error"
