"""The console's overview over real Kafka and PostgreSQL: dead letters on several partitions,
counted from offsets, their classes tallied, then new letters, removed ones and a replay."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import RecordsToDelete

from services.console.accounts import hash_password, parse_accounts
from services.console.app import create_app
from services.console.settings import ConsoleSettings
from services.console.sources import WorkerSource
from shared.delivery.dlq_read import read_dead_letter
from shared.delivery.dlq_replay import replay
from shared.delivery.errors import InvalidEventError, RegisterRejectedError, TransientError
from shared.delivery.fates import DeadLettered
from shared.delivery.ledger import Ledger
from shared.delivery.outgoing import Inbound, Writer
from shared.delivery.retry import RetryPolicy
from shared.delivery.worker import EventIdentity
from shared.kafka import admin_client
from shared.settings import KafkaSettings, TopicSettings
from shared.topics import WorkerTopics
from tests.support.console import serving
from tests.support.double_register.settings import DoubleSettings
from tests.support.runtime_harness import create_topics

pytestmark = pytest.mark.integration
PASSWORD = "overview-password"
FATES = {
    "register_rejected": DeadLettered(
        "register_rejected", "refused", RegisterRejectedError("refused", register_status=422)
    ),
    "invalid_event": DeadLettered("invalid_event", "bad", InvalidEventError("bad")),
    "retries_exhausted": DeadLettered(
        "retries_exhausted", "503", TransientError("503", error_class="retries_exhausted")
    ),
}


async def _write(bootstrap: str, topics: WorkerTopics, letters: list[tuple[int, str]]) -> None:
    """Dead letters as the runtime's Writer makes them: (partition, error class) each."""
    writer = Writer(topics, RetryPolicy.from_names(["30s"]), "test-1")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for n, (partition, error_class) in enumerate(letters):
            record_id = f"besok-{uuid.uuid4().hex[:8]}"
            body = {"event_id": str(uuid.uuid4()), "record_id": record_id, "n": n}
            now = datetime.now(UTC)
            inbound = Inbound(
                topics.input,
                partition,
                n,
                record_id.encode(),
                json.dumps(body).encode(),
                (),
                int(now.timestamp() * 1000),
            )
            identity = EventIdentity(str(body["event_id"]), record_id, 1, "create")
            out = writer.messages(inbound, identity, FATES[error_class], now)[0]
            await producer.send_and_wait(
                out.topic, out.value, key=out.key, headers=out.headers, partition=partition
            )
    finally:
        await producer.stop()


@dataclass(frozen=True)
class Shown:
    total: int
    per_partition: dict[int, int]
    classes: dict[str, int]
    replayed: str
    newest: list[str]  # partition:offset, newest first
    counting: bool


def _shown(page: str, worker: str) -> Shown:
    section = page.split(f'id="worker-{worker}"', 1)[1].split("</section>", 1)[0]
    total = re.search(r'class="dead-letters"><strong>([\d,]+)</strong></a>\s*\(([^)]*)\)', section)
    assert total is not None, section
    parts = section.split('class="dead-letter-partitions"', 1)
    per_partition = (
        {
            int(p): int(n.replace(",", ""))
            for p, n in re.findall(r"<span>(\d+): ([\d,]+)</span>", parts[1].split("</table>")[0])
        }
        if len(parts) == 2
        else {}
    )
    classes_table = section.split('class="dead-letter-classes"', 1)[1].split("</table>")[0]
    classes = {
        cls: int(n.replace(",", ""))
        for cls, n in re.findall(r">([a-z_()]+)</a></td><td>([\d,]+)</td>", classes_table)
    }
    newest = re.findall(r'class="letter" href="/dead-letters/[^/]+/(\d+)/(\d+)"', section)
    return Shown(
        int(total.group(1).replace(",", "")),
        per_partition,
        classes,
        total.group(2),
        [f"{p}:{o}" for p, o in newest],
        "counting:" in section,
    )


@asynccontextmanager
async def _console(
    bootstrap: str, postgres_url: str, worker: str, topics: WorkerTopics
) -> AsyncIterator[tuple[httpx.AsyncClient, DoubleSettings]]:
    settings = DoubleSettings(
        database_url=postgres_url,  # type: ignore[arg-type]
        kafka=KafkaSettings(bootstrap_servers=bootstrap),
        topics=TopicSettings(retry_delays=["30s"]),
        input_topic=topics.input,
    )
    source = WorkerSource(worker, settings, topics, "http://127.0.0.1:9")  # no health server
    console = ConsoleSettings(
        session_secret="o" * 40,  # type: ignore[arg-type]
        secure_cookies=False,
        database_url=postgres_url,  # type: ignore[arg-type]
        dead_letters_shown=3,
    )
    app = create_app(
        console, {worker: source}, parse_accounts(f"ove viewer {hash_password(PASSWORD)}")
    )
    with serving(app) as url:
        async with httpx.AsyncClient(base_url=url, follow_redirects=True, timeout=60) as client:
            signed_out = await client.get("/overview/figures")
            assert signed_out.status_code == 401
            assert signed_out.headers["hx-redirect"] == "/login"
            login = await client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
            assert token is not None
            form = {"name": "ove", "password": PASSWORD, "csrf_token": token.group(1)}
            assert "ove (viewer)" in (await client.post("/login", data=form)).text
            yield client, settings


async def _settled(client: httpx.AsyncClient, worker: str, total: int) -> Shown:
    """The figures once they show `total` letters with every class counted (the cache expires
    after 2 s, the tally reads in the background)."""
    deadline = time.monotonic() + 60
    while True:
        shown = _shown((await client.get("/overview/figures")).text, worker)
        if (shown.total == total and not shown.counting) or time.monotonic() > deadline:
            return shown
        await asyncio.sleep(0.3)


async def test_the_overview_counts_dead_letters_per_partition_and_class_as_they_come_and_go(
    kafka_bootstrap: str, postgres_url: str, unique_name: str
) -> None:
    worker, input_topic = f"o{unique_name}", f"test.overview.{unique_name}"
    await create_topics(kafka_bootstrap, worker, input_topic, ("30s",), partitions=4)
    topics = WorkerTopics(worker, input_topic, ("30s",))
    rejected, invalid, exhausted = "register_rejected", "invalid_event", "retries_exhausted"
    first = [(0, rejected), (0, rejected), (0, rejected), (0, invalid), (2, invalid), (2, invalid)]
    await _write(kafka_bootstrap, topics, [*first, (3, rejected)])
    ledger = Ledger.from_url(postgres_url)
    await ledger.create_schema()
    try:
        async with _console(kafka_bootstrap, postgres_url, worker, topics) as (client, settings):
            page = await client.get("/")
            assert 'hx-get="/overview/figures"' in page.text  # live, and without JavaScript:
            assert '<noscript><meta http-equiv="refresh"' in page.text
            shown = await _settled(client, worker, 7)
            assert shown.per_partition == {0: 4, 1: 0, 2: 2, 3: 1}
            assert shown.classes == {rejected: 4, invalid: 3}
            assert shown.replayed == "0 replayed"
            assert shown.newest[0] == "3:0"  # written last
            assert len(shown.newest) == 5

            # Given one replayed, two removed from partition 0 (as retention does), three new
            letter = await read_dead_letter(settings.kafka, topics.dlq, 2, 1)
            assert letter is not None
            await replay(settings.kafka, ledger, [letter], operator="test")
            admin = admin_client(settings.kafka)
            await admin.start()
            try:
                await admin.delete_records({TopicPartition(topics.dlq, 0): RecordsToDelete(2)})
            finally:
                await admin.close()
            await _write(kafka_bootstrap, topics, [(1, exhausted)] * 3)

            # Then the overview counts what is there now, each class once
            shown = await _settled(client, worker, 8)
            assert shown.per_partition == {0: 2, 1: 3, 2: 2, 3: 1}
            assert shown.classes == {invalid: 3, exhausted: 3, rejected: 2}
            assert shown.replayed == "1 replayed"
            assert shown.newest[0] == "1:2"

            # And the list (3 rows a page here) shows the newest, all of them on one partition
            listed = await client.get("/dead-letters", params={"worker": worker})
            assert "8 dead letters match, the newest 3 shown" in listed.text
            rows = re.findall(
                rf'class="letter" href="/dead-letters/{worker}/(\d+)/(\d+)"', listed.text
            )
            assert rows == [("1", "2"), ("1", "1"), ("1", "0")]
            only = await client.get(
                "/dead-letters", params={"worker": worker, "error_class": exhausted}
            )
            assert "3 dead letters match" in only.text
    finally:
        await ledger.close()
