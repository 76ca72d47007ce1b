"""Benchmark children in processes of their own, each under a small launcher that reports its
peak RSS and CPU from `os.wait4` (a child forked from a large parent inherits its high-water mark).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

CLI = [sys.executable, "-m", "services.cli"]
LAUNCHER = """
import json, os, signal, subprocess, sys
child = subprocess.Popen(sys.argv[2:], stdout=sys.stderr if sys.argv[1] == "err" else None)
signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
_, status, usage = os.wait4(child.pid, 0)
print(json.dumps({"exit": os.waitstatus_to_exitcode(status), "rss_mb": usage.ru_maxrss / 1024,
                  "cpu_s": usage.ru_utime + usage.ru_stime}))
"""


def launch(command: list[str], out: str = "out", env: Any = None) -> subprocess.Popen[str]:
    """`command` under LAUNCHER (its stdout to ours, or to stderr with `out` "err"); SIGTERM to the
    launcher reaches the command; the launcher's last line is {"exit", "rss_mb", "cpu_s"}."""
    launcher = [sys.executable, "-c", LAUNCHER, out, *command]
    return subprocess.Popen(launcher, env=env, stdout=subprocess.PIPE, text=True)


def report(
    process: subprocess.Popen[str], timeout: float | None = None
) -> tuple[list[str], dict[str, Any]]:
    """The command's output lines and its {"rss_mb", "cpu_s"}; raises if it failed."""
    lines = process.communicate(timeout=timeout)[0].strip().splitlines()
    ended = json.loads(lines[-1])
    if ended["exit"] not in (0, -signal.SIGTERM):
        raise RuntimeError(f"a child failed ({ended['exit']}): {lines[:-1]}")
    return lines[:-1], ended


def run_child(module: str, spec: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """`python -m module --child spec` to completion: (its JSON answer, peak RSS in MB)."""
    lines, ended = report(launch([sys.executable, "-m", module, "--child", json.dumps(spec)]))
    return json.loads(lines[-1]), ended["rss_mb"]


def cpu_seconds(pid: int) -> float | None:
    """The CPU time (user + system) process `pid` has used so far, from /proc (None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def child_of(pid: int) -> int | None:
    """The first child of process `pid` (the command under its launcher), from /proc."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


class SteadyCpu:
    """A launched worker's CPU per event while it drains, start-up left out: its CPU (/proc)
    from the first poll that sees a commit to the poll that sees the last, over the events
    committed in between."""

    def __init__(self, launcher: subprocess.Popen[str]) -> None:
        self._launcher = launcher
        self._samples: list[tuple[int, float]] = []  # (committed, CPU seconds) once committing

    def sample(self, committed: int) -> None:
        pid = child_of(self._launcher.pid)
        cpu = cpu_seconds(pid) if pid is not None else None
        seen = self._samples[-1][0] if self._samples else 0
        if committed > seen and cpu is not None:
            self._samples.append((committed, cpu))

    def us_per_event(self) -> float | None:
        if len(self._samples) < 2:
            return None
        (first, cpu0), (end, cpu1) = self._samples[0], self._samples[-1]
        return (cpu1 - cpu0) / (end - first) * 1e6


class InFlight:
    """A launched worker's events at the register while it drains: its
    `regbridge_register_in_flight` (its /metrics on `port`) every 0.25 s while `draining()`."""

    GAUGE = re.compile(r"^regbridge_register_in_flight\{[^}]*\} ([0-9.e+]+)$", re.MULTILINE)

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.samples: list[float] = []

    async def watch(self, draining: Callable[[], bool]) -> None:
        """Until cancelled; a scrape that fails (the worker starting or gone) is left out."""
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                if draining():
                    with contextlib.suppress(httpx.HTTPError):
                        found = self.GAUGE.search((await client.get(self.url)).text)
                        if found:
                            self.samples.append(float(found.group(1)))
                await asyncio.sleep(0.25)

    def mean(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
