"""Local infrastructure for tests and `make run`: a Kafka broker and a PostgreSQL, real, no mocks.

Kafka, in order of preference: ``KAFKA_BOOTSTRAP_SERVERS`` if set → testcontainers
``KafkaContainer`` if a Docker engine answers → Apache Kafka's own jars on the local JVM
(``deploy/kafka/localkafka.py``). PostgreSQL: ``REGBRIDGE_TEST_DATABASE_URL`` if set →
testcontainers → a throwaway cluster from the operating system's binaries (``initdb``/``pg_ctl``).
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCALKAFKA = REPO_ROOT / "deploy" / "kafka" / "localkafka.py"


class InfrastructureError(RuntimeError):
    """A broker or database the caller asked for could not be provided."""


@dataclass(frozen=True)
class Provided:
    """What was provided, and how (``env``, ``testcontainers``, ``local``)."""

    address: str
    how: str


def docker_answers() -> bool:
    """True when a Docker engine answers (not merely when the client is installed)."""
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@contextlib.contextmanager
def provide_kafka(preferred_port: int = 0) -> Iterator[Provided]:
    """Yield a reachable Kafka bootstrap address; stop whatever this function started."""
    if bootstrap := os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield Provided(bootstrap, "env")
        return
    if docker_answers():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer("apache/kafka:4.1.1").with_kraft() as container:
            yield Provided(container.get_bootstrap_server(), "testcontainers")
        return
    with local_kafka(preferred_port) as bootstrap:
        yield Provided(bootstrap, "local")


class LocalKafka:
    """The JVM broker from Maven Central jars in a state folder of its own, removed on exit;
    `stop()` and `start()` take it down and up again on the same data and port (what a test of
    a broker restart needs)."""

    def __init__(self, preferred_port: int = 0) -> None:
        if not LOCALKAFKA.exists():
            raise InfrastructureError(f"{LOCALKAFKA} is missing: run from a regbridge checkout")
        self._preferred_port = preferred_port
        self._dir = Path(tempfile.mkdtemp(prefix="regbridge-kafka-"))
        self.address = ""

    def __enter__(self) -> LocalKafka:
        try:
            self.start()
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def start(self) -> None:
        port = ["--port", str(self._preferred_port)]
        result = self._localkafka("start", *port)
        if result.returncode != 0:
            raise InfrastructureError(f"local Kafka broker did not start: {result.stderr.strip()}")
        self.address = str(json.loads(result.stdout.strip().splitlines()[-1])["bootstrap_servers"])

    def stop(self) -> None:
        self._localkafka("stop")

    def _localkafka(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, str(LOCALKAFKA), args[0], "--state-dir", str(self._dir)]
        return subprocess.run([*command, *args[1:]], capture_output=True, text=True, check=False)


@contextlib.contextmanager
def local_kafka(preferred_port: int = 0) -> Iterator[str]:
    """Start the JVM broker from Maven Central jars in a fresh state folder; stop it by pid."""
    with LocalKafka(preferred_port) as kafka:
        yield kafka.address


def postgres_binaries() -> Path | None:
    """The folder holding initdb/pg_ctl from the OS packages (newest version), if installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _version_key(path: str) -> int:
    part = Path(path).parts[-3]
    return int(part) if part.isdigit() else 0


@contextlib.contextmanager
def provide_postgres() -> Iterator[Provided | None]:
    """Yield a PostgreSQL URL (SQLAlchemy asyncpg form), or None when none can be had here."""
    if url := os.environ.get("REGBRIDGE_TEST_DATABASE_URL"):
        yield Provided(url, "env")
        return
    if docker_answers():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver="asyncpg") as container:
            yield Provided(container.get_connection_url(), "testcontainers")
        return
    if postgres_binaries() is None:
        yield None
        return
    with local_postgres() as url:
        yield Provided(url, "local")


class LocalPostgres:
    """A throwaway cluster from the OS binaries on a free loopback port (trust auth), removed on
    exit; `stop()` and `start()` take the server down and up again on the same data (what a test
    of the ledger's outage needs)."""

    def __init__(self) -> None:
        bindir = postgres_binaries()
        if bindir is None:
            raise InfrastructureError(
                "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
            )
        self._bindir = bindir
        self._dir = Path(tempfile.mkdtemp(prefix="regbridge-pg-"))
        self._port = _free_port()
        self._as_user = _postgres_user_prefix(self._dir)
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self._port}/postgres"

    def __enter__(self) -> LocalPostgres:
        try:
            _run(
                self._as_user,
                [
                    str(self._bindir / "initdb"),
                    "-D",
                    str(self._dir / "data"),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-sync",
                ],
            )
            self.start()
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def start(self) -> None:
        options = f"-p {self._port} -k {self._dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = self._dir / "server.log"
        self._ctl(["-l", str(log), "-w", "-t", "60", "-o", options, "start"])
        _wait_for_port(self._port, 30)

    def stop(self) -> None:
        self._ctl(["-m", "fast", "-w", "stop"], check=False)

    def _ctl(self, args: list[str], *, check: bool = True) -> None:
        pg_ctl = [str(self._bindir / "pg_ctl"), "-D", str(self._dir / "data")]
        _run(self._as_user, [*pg_ctl, *args], check=check)


@contextlib.contextmanager
def local_postgres() -> Iterator[str]:
    """A throwaway cluster on a free loopback port, trust auth, removed afterwards."""
    with LocalPostgres() as postgres:
        yield postgres.url


def _postgres_user_prefix(data_dir: Path) -> list[str]:
    """PostgreSQL refuses to run as root: run it as the `postgres` user when we are root."""
    if os.geteuid() != 0:
        return []
    shutil.chown(data_dir, "postgres", "postgres")
    return ["runuser", "-u", "postgres", "--"]


def _run(prefix: list[str], args: list[str], *, check: bool = True) -> None:
    result = subprocess.run([*prefix, *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise InfrastructureError(f"{Path(args[0]).name} failed: {result.stderr.strip()}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.2)
    raise InfrastructureError(f"nothing answers on 127.0.0.1:{port} after {timeout:.0f}s")
