"""The console over a real worker: the register double, the runtime, Kafka, PostgreSQL, uvicorn."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

from services.console.accounts import hash_password, parse_accounts
from services.console.app import create_app
from services.console.settings import ConsoleSettings
from services.console.sources import WorkerSource
from shared.delivery.health import health_app
from shared.delivery.ledger import Ledger
from shared.settings import KafkaSettings, TopicSettings
from shared.topics import dlq_topic
from tests.support.double_register.settings import DoubleSettings
from tests.support.double_register.worker import DoubleWorker
from tests.support.register_double import RegisterDouble
from tests.support.runtime_harness import create_topics, publish, read_topic, running_runtime

PASSWORDS = {"olle": "olles-password", "vera": "veras-password"}
PATIENT = "191212121212"  # Skatteverket's test personnummer


@dataclass(frozen=True)
class ConsoleStack:
    url: str  # the console, over real HTTP
    worker: str
    record_id: str
    dlq: str
    input_topic: str
    audit_url: str  # the console's database (PostgreSQL)
    ledger: Ledger  # the worker's ledger (the same PostgreSQL)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """`app` under uvicorn on a free loopback port, in a thread of its own (its own loop)."""
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(20)


def event(record_id: str) -> dict[str, object]:
    return {
        "event_id": str(uuid.uuid4()),
        "record_id": record_id,
        "record_version": 1,
        "operation": "create",
        "payload": {"patient": {"id": PATIENT}, "note": "a visit"},
    }


@asynccontextmanager
async def console_stack(
    bootstrap: str, postgres_url: str, double: RegisterDouble, name: str, tmp_path: Path
) -> AsyncIterator[ConsoleStack]:
    """A worker whose register refused one record (a dead letter, then no longer refusing), and
    the console over it; the runtime keeps running, so a replay is delivered and answered."""
    worker, input_topic, record_id = f"c{name}", f"test.console.{name}", f"besok-{name}"
    await create_topics(bootstrap, worker, input_topic, ("30s",), partitions=2)
    double.set_faults(reject_record_ids=[record_id])
    ledger = Ledger.from_url(postgres_url)
    await ledger.create_schema()
    client = DoubleWorker(double.base_url)
    client.name = worker
    try:
        async with running_runtime(
            bootstrap, client, ledger, input_topic, tiers=("30s",)
        ) as runtime:
            await publish(bootstrap, input_topic, [event(record_id)])
            await read_topic(bootstrap, dlq_topic(worker), at_least=1)
            double.clear_faults()
            settings = DoubleSettings(
                database_url=postgres_url,  # type: ignore[arg-type]
                kafka=KafkaSettings(bootstrap_servers=bootstrap),
                topics=TopicSettings(retry_delays=["30s"]),
                input_topic=input_topic,
            )
            with serving(health_app(runtime)) as health:
                topics = runtime.topics
                sources = {worker: WorkerSource(worker, settings, topics, health)}
                accounts = "\n".join(
                    [
                        f"olle operator {hash_password(PASSWORDS['olle'])}",
                        f"vera viewer {hash_password(PASSWORDS['vera'])}",
                    ]
                )
                console = ConsoleSettings(
                    session_secret="x" * 40,  # type: ignore[arg-type]
                    secure_cookies=False,
                    database_url=postgres_url,  # type: ignore[arg-type]
                )
                app = create_app(console, sources, parse_accounts(accounts))
                with serving(app) as url:
                    yield ConsoleStack(
                        url, worker, record_id, dlq_topic(worker), input_topic, postgres_url, ledger
                    )
    finally:
        await client.aclose()
        await ledger.close()


def result_statuses(records: list[object]) -> list[str]:
    """The statuses of result messages read raw from a results topic."""
    return [json.loads(r.value)["status"] for r in records]  # type: ignore[attr-defined]
