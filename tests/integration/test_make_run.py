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
DEMO = ["--demo-events", "90", "--demo-rate", "30"]  # a sixth of them for each of six shares


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


def _vgpv_cli(cwd: Path, log: Path, *args: str) -> str:
    """A `regbridge vgpv …` command as the newcomer runs it: with the settings `make run`
    printed to export."""
    exports = [line for line in log.read_text().splitlines() if "export REGBRIDGE_VGPV_" in line]
    assert exports, _tail(log)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGBRIDGE_", "KAFKA_"))}
    env |= dict(pair.split("=", 1) for pair in exports[-1].split()[1:])
    found = re.search(r"KAFKA_BOOTSTRAP_SERVERS=(\S+)", log.read_text())
    assert found, _tail(log)
    env["KAFKA_BOOTSTRAP_SERVERS"] = found[1]
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "vgpv", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _deliver_now(cwd: Path, log: Path) -> tuple[str, str]:
    """`regbridge vgpv deliver-now` and `files` for the month `make run` suggests."""
    month = re.search(r"vgpv deliver-now --month (\S+)", log.read_text())
    assert month, _tail(log)
    return (
        _vgpv_cli(cwd, log, "deliver-now", "--month", month[1]),
        _vgpv_cli(cwd, log, "files", "--month", month[1]),
    )


async def _one_run(cwd: Path, log: Path) -> dict[str, dict[str, float]]:
    process = _dev_up(cwd, log)
    seen: dict[str, dict[str, float]] = {}
    try:
        for _ in range(600):  # up to 5 minutes: a broker, four sandboxes, the workers, a demo
            seen = {name: await _outcomes(name) for name in ("gvr", "nvr", "vgpv", "cvr")}
            if (
                seen["gvr"].get("accepted", 0) >= 20
                and seen["nvr"].get("accepted", 0) >= 10
                and seen["vgpv"].get("accepted", 0) >= 5
                and seen["cvr"].get("accepted", 0) >= 5
            ):
                break
            assert process.poll() is None, _tail(log)
            await asyncio.sleep(0.5)
        # the newcomer delivers last month's VGR visits now and looks at the files
        delivered, listed = await asyncio.to_thread(_deliver_now, cwd, log)
        seen["vgpv_files"] = {
            "delivered": float(delivered.count(" done ")),
            "listed": float(listed.count(".txt")),
        }
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
        assert run["vgpv"].get("accepted", 0) >= 5, run  # visits stored for last month's files
        assert run["cvr"].get("accepted", 0) >= 5, run  # waiting-list entries stored
        assert run["vgpv_files"]["delivered"] >= 1, run  # deliver-now: files VGPV accepted
        assert run["vgpv_files"]["listed"] == run["vgpv_files"]["delivered"], run
        assert run["gvr"].get("skipped_stale", 0) == run["nvr"].get("skipped_stale", 0) == 0
    assert "stopping what was started" in (tmp_path / "second.log").read_text()
    assert _error_lines(tmp_path) == [], "a healthy make run logs no error"
