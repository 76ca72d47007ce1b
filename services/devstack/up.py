"""`make run`: Kafka, every worker's sandbox, the workers and a demo stream, until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from services.cli.support import wait_for_interrupt
from services.console.accounts import hash_password
from services.devstack.infra import provide_kafka
from shared.logging import configure_logging
from shared.settings import LogFormat
from shared.spec import DevContext, Registry

STATE_DIR = Path(".regbridge")  # the sandboxes' files (GVR's test CA and client certificate …)
DEMO_UNITS = 2_000
DEMO_EVENTS, DEMO_RATE = 900, 20
CONSOLE_PORT = 8070


def preferred_port(port: int) -> int:
    """`port` when it is free on loopback, else 0 (any free port)."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


@contextlib.contextmanager
def worker_process(command: list[str], log_path: str) -> Iterator[subprocess.Popen[bytes]]:
    """A worker in a child process (logs to a file); SIGTERM, then SIGKILL, on the way out."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_stack(
    registry: Registry,
    echo: Callable[[str], None],
    *,
    demo_events: int = DEMO_EVENTS,
    demo_rate: float = DEMO_RATE,
) -> None:
    """Broker → topics → each worker's sandbox (registry order) → their preparations → the
    workers and the demo, as child processes, until Ctrl-C. The broker, the sandboxes and the
    workers' ledgers live and die together: every run starts them all anew."""
    configure_logging("WARNING", LogFormat.CONSOLE)
    _fresh_ledgers(registry)
    echo("regbridge: starting Kafka (KAFKA_BOOTSTRAP_SERVERS → Docker → local JVM) …")
    with provide_kafka(preferred_port=9092) as kafka, contextlib.ExitStack() as stack:
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = kafka.address
        report = asyncio.run(registry.ensure_topics(on_progress=lambda _line: None))
        echo(
            f"Kafka is up at {kafka.address} ({kafka.how}); {len(report.created)} topics "
            f"created, {len(report.existing)} already there."
        )
        dev = DevContext(kafka.address, DEMO_UNITS, 1, STATE_DIR, preferred_port)
        hooks = [spec.dev for spec in registry if spec.dev is not None]
        env: dict[str, str] = {}
        for hook in hooks:
            if hook.sandbox is not None:
                sandbox = stack.enter_context(hook.sandbox(dev))
                os.environ.update(sandbox.env)
                env.update(sandbox.env)
                echo(sandbox.description)
        for hook in hooks:
            if hook.prepare is not None:
                echo(asyncio.run(hook.prepare()))
        cli = [sys.executable, "-m", "services.cli"]
        for spec in registry:
            log = f"regbridge-{spec.name}.log"
            stack.enter_context(worker_process([*cli, "run", spec.name], log))
        console, console_env = _console_env()
        os.environ.update(console_env)
        stack.enter_context(worker_process([*cli, "console"], "regbridge-console.log"))
        demo = [*cli, "dev", "demo", "--count", str(demo_events), "--rate", str(demo_rate)]
        stack.enter_context(worker_process(demo, "regbridge-demo.log"))
        echo(_next_steps(registry, dev, env, demo_events, demo_rate, console))
        wait_for_interrupt()
        echo("regbridge: stopping what was started …")


def _console_env() -> tuple[str, dict[str, str]]:
    """The console for this run: two local accounts with new passwords, a new session secret,
    plain-HTTP cookies (localhost), its audit beside the ledgers."""
    port = preferred_port(CONSOLE_PORT) or _free_port()
    passwords = {role: secrets.token_urlsafe(9) for role in ("operator", "viewer")}
    accounts = STATE_DIR / "console-accounts"
    accounts.write_text(
        "".join(f"{role} {role} {hash_password(pw)}\n" for role, pw in passwords.items()),
        encoding="utf-8",
    )
    accounts.chmod(0o600)
    env = {
        "REGBRIDGE_CONSOLE_PORT": str(port),
        "REGBRIDGE_CONSOLE_ACCOUNTS_FILE": str(accounts),
        "REGBRIDGE_CONSOLE_SESSION_SECRET": secrets.token_urlsafe(32),
        "REGBRIDGE_CONSOLE_SECURE_COOKIES": "false",
        "REGBRIDGE_CONSOLE_DATABASE_URL": f"sqlite+aiosqlite:///{STATE_DIR / 'ledgers'}/console.db",
    }
    description = (
        f"Console at http://127.0.0.1:{port}/ (log in as operator / {passwords['operator']}: "
        f"may replay and reveal; or viewer / {passwords['viewer']}: identity numbers masked)"
    )
    return description, env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _fresh_ledgers(registry: Registry) -> None:
    """Each worker's ledger for this run, in the state folder (last run's removed): a ledger
    that outlived its broker would skip every demo event as already done."""
    ledgers = STATE_DIR / "ledgers"
    shutil.rmtree(ledgers, ignore_errors=True)
    ledgers.mkdir(parents=True)
    for spec in registry:
        prefix = spec.settings.model_config.get("env_prefix", "")
        os.environ[f"{prefix}DATABASE_URL"] = f"sqlite+aiosqlite:///{ledgers / spec.name}.db"


def _next_steps(
    registry: Registry,
    dev: DevContext,
    env: dict[str, str],
    events: int,
    rate: float,
    console: str,
) -> str:
    health = ", ".join(f":{spec.health_port} {spec.name}" for spec in registry)
    lines = [
        "",
        f"Running: Kafka, the sandboxes, the workers ({', '.join(registry.names)}; logs in "
        f"regbridge-*.log; health and /status at {health}), and a demo publishing "
        f"{events} events at {rate:g}/s, with corrections, cancellations and some "
        "invalid ones.",
        "",
        console,
        "",
        "What to do next (in another terminal):",
        f"  export KAFKA_BOOTSTRAP_SERVERS={dev.kafka_bootstrap}",
        "  regbridge topics list                  # the topics and what they are for",
        "  regbridge status "
        + " ".join(f"--health-url {s.name}=http://127.0.0.1:{s.health_port}" for s in registry),
        "                                         # lag, retries, dead letters, circuit",
    ]
    for spec in registry:
        if spec.dev is not None:
            lines += [f"  {line}" for line in spec.dev.try_next(dev, env)]
    lines += [
        "  regbridge dev publish-examples         # one example of each event on its topic",
        "  regbridge schema export --out schemas  # the contract as JSON Schema",
        "",
        "(regbridge is .venv/bin/regbridge.) Press Ctrl-C to stop everything this command started.",
    ]
    return "\n".join(lines)
