"""`make run`: Kafka, the sandboxes and the workers on one machine, until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import date, timedelta

from services.catalog.app import import_now, import_vaccines_now
from services.cli_support import wait_for_interrupt
from services.devstack import provide_kafka
from services.sandboxes.gvr import GvrSandbox
from services.sandboxes.hsa import HsaSandbox
from services.sandboxes.nvr import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, NvrSandbox
from shared.logging import configure_logging
from shared.settings import CatalogSettings, LogFormat, RegbridgeSettings
from shared.topics import ensure_architecture_topics

HSA_PORT, NVR_PORT, GVR_PORT = 8090, 8092, 8443
GVR_CERTS = ".regbridge/gvr-certs"  # the sandbox's test CA and the worker's client certificate
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
        nvr = NvrSandbox(DEMO_UNITS, seed=1, port=preferred_port(NVR_PORT))
        gvr = GvrSandbox(DEMO_UNITS, seed=1, certs_dir=GVR_CERTS, port=preferred_port(GVR_PORT))
        with hsa, nvr, gvr:
            os.environ.update(
                REGBRIDGE_CATALOG_HSA_URL=hsa.base_url,
                REGBRIDGE_CATALOG_VACCINES_URL=nvr.base_url,
                REGBRIDGE_CATALOG_NVR_CLIENT_ID=DEFAULT_CLIENT_ID,
                REGBRIDGE_CATALOG_NVR_CLIENT_SECRET=DEFAULT_CLIENT_SECRET,
                REGBRIDGE_NVR_BASE_URL=nvr.base_url,
                REGBRIDGE_NVR_CLIENT_ID=DEFAULT_CLIENT_ID,
                REGBRIDGE_NVR_CLIENT_SECRET=DEFAULT_CLIENT_SECRET,
                REGBRIDGE_NVR_CLIENT_SECRET_EXPIRES_ON=str(date.today() + timedelta(days=365)),
            )
            echo(
                f"HSA sandbox ({DEMO_UNITS} units) at {hsa.base_url}; NVR sandbox (OAuth2 client "
                f"{DEFAULT_CLIENT_ID}; the vaccine list too) at {nvr.base_url}"
            )
            first = asyncio.run(import_now(CatalogSettings(), lambda _line: None))
            listed = asyncio.run(import_vaccines_now(CatalogSettings()))
            echo(f"first catalog import: {first.summary()}; {listed.summary()}")
            os.environ.update(
                REGBRIDGE_GVR_BASE_URL=gvr.base_url,
                REGBRIDGE_GVR_CLIENT_CERT=str(gvr.certs.client_cert),
                REGBRIDGE_GVR_CLIENT_KEY=str(gvr.certs.client_key),
                REGBRIDGE_GVR_CA_BUNDLE=str(gvr.certs.ca_cert),
            )
            echo(f"GVR sandbox at {gvr.base_url} (mutual TLS; certificates in {GVR_CERTS})")
            cli = [sys.executable, "-m", "services.cli"]
            demo = [*cli, "dev", "demo", "--count", "900", "--rate", "20"]
            with (
                worker_process([*cli, "run", "catalog"], "regbridge-catalog.log"),
                worker_process([*cli, "run", "gvr"], "regbridge-gvr.log"),
                worker_process([*cli, "run", "nvr"], "regbridge-nvr.log"),
                worker_process(demo, "regbridge-demo.log"),
            ):
                unit = hsa.directory.hsa_id_of(0)
                echo(
                    NEXT_STEPS.format(
                        bootstrap=kafka.address, hsa=hsa.base_url, nvr=nvr.base_url, unit=unit
                    )
                )
                wait_for_interrupt()
                echo("regbridge: stopping what was started …")


NEXT_STEPS = """
Running: Kafka, the HSA, GVR and NVR sandboxes, the catalog sync, the GVR and NVR workers (logs
in regbridge-*.log; health and /status at :8083 catalog, :8081 GVR, :8082 NVR), and a demo
publishing 900 events at 20/s: care contacts and vaccinations, with corrections, cancellations
and some invalid ones.

What to do next (in another terminal):
  export KAFKA_BOOTSTRAP_SERVERS={bootstrap}
  .venv/bin/regbridge topics list                  # the topics and what they are for
  .venv/bin/regbridge status --worker gvr --health-url http://127.0.0.1:8081
                                                   # lag, retries, dead letters, circuit
  .venv/bin/regbridge dlq list --worker gvr        # the invalid ones, and why
  .venv/bin/regbridge dlq list --worker nvr        # vaccinations NVR's rules refuse
  .venv/bin/regbridge dlq show --worker gvr 0:0    # one in full
  curl {nvr}/admin/records
                                                   # what NVR holds now
  curl -X POST {hsa}/admin/units -H 'content-type: application/json' \\
       -d '{{"hsaIdentity": "{unit}", "name": "Vårdcentral Demo"}}'
                                                   # HSA notifies; the catalog updates the unit
  .venv/bin/regbridge catalog import-now           # a full import now (changes only)
  .venv/bin/regbridge dev publish-examples         # one example of each event on its topic
  .venv/bin/regbridge schema export --out schemas  # the contract as JSON Schema

Press Ctrl-C to stop everything this command started.
"""
