"""`make run`: Kafka, the sandboxes and the workers on one machine, until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator

from services.catalog.app import import_now
from services.cli_support import wait_for_interrupt
from services.devstack import provide_kafka
from services.sandboxes.hsa import HsaSandbox
from services.sandboxes.server import ServerThread
from services.sandboxes.vaccines import vaccines_app
from shared.logging import configure_logging
from shared.settings import CatalogSettings, LogFormat, RegbridgeSettings
from shared.topics import ensure_architecture_topics

HSA_PORT, VACCINES_PORT = 8090, 8092
DEMO_UNITS = 2_000


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


def run_stack(echo: Callable[[str], None]) -> None:
    configure_logging("WARNING", LogFormat.CONSOLE)
    echo("regbridge: starting Kafka (KAFKA_BOOTSTRAP_SERVERS → Docker → local JVM) …")
    with provide_kafka(preferred_port=9092) as kafka:
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = kafka.address
        settings = RegbridgeSettings()
        report = asyncio.run(ensure_architecture_topics(settings.kafka, settings.topics))
        echo(
            f"Kafka is up at {kafka.address} ({kafka.how}); {len(report.created)} topics "
            f"created, {len(report.existing)} already there."
        )
        hsa = HsaSandbox(
            DEMO_UNITS,
            seed=1,
            kafka_bootstrap=kafka.address,
            topic=RegbridgeSettings().topics.hsa_notifications,
            port=preferred_port(HSA_PORT),
        )
        vaccines = ServerThread(
            vaccines_app(), port=preferred_port(VACCINES_PORT), name="nvr-vaccines"
        )
        with hsa, vaccines:
            os.environ["REGBRIDGE_CATALOG_HSA_URL"] = hsa.base_url
            os.environ["REGBRIDGE_CATALOG_VACCINES_URL"] = vaccines.base_url
            echo(
                f"HSA sandbox ({DEMO_UNITS} units) at {hsa.base_url}; vaccine list at "
                f"{vaccines.base_url}"
            )
            first = asyncio.run(import_now(CatalogSettings(), lambda _line: None))
            echo(f"first catalog import: {first.summary()}")
            catalog = [sys.executable, "-m", "services.cli", "run", "catalog"]
            with worker_process(catalog, "regbridge-catalog.log"):
                echo(
                    NEXT_STEPS.format(
                        bootstrap=kafka.address, hsa=hsa.base_url, unit=hsa.directory.hsa_id_of(0)
                    )
                )
                wait_for_interrupt()
                echo("regbridge: stopping what was started …")


NEXT_STEPS = """
Running: Kafka, the HSA sandbox, the vaccine-list stand-in, and the catalog sync
(logs in regbridge-catalog.log; health at http://127.0.0.1:8083/status).

What to do next (in another terminal):
  export KAFKA_BOOTSTRAP_SERVERS={bootstrap}
  .venv/bin/regbridge topics list                  # the topics and what they are for
  .venv/bin/regbridge status --worker catalog      # lag, retries, dead letters
  curl -X POST {hsa}/admin/units -H 'content-type: application/json' \\
       -d '{{"hsaIdentity": "{unit}", "name": "Vårdcentral Demo"}}'
                                                   # HSA notifies; the catalog updates the unit
  .venv/bin/regbridge catalog import-now           # a full import now (changes only)
  .venv/bin/regbridge dev publish-examples         # one example of each event on its topic
  .venv/bin/regbridge schema export --out schemas  # the contract as JSON Schema

Not yet here: the GVR and NVR workers and their sandboxes (see README, "Status").
Press Ctrl-C to stop everything this command started.
"""
