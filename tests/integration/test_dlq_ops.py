"""Operators list, show and replay dead letters, and read worker status, against a real broker."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import inspect
from typer.testing import CliRunner

from services.cli.app import build_app
from services.registry import REGISTRY
from shared.delivery import headers as h
from shared.delivery.dlq_read import (
    DeadLetter,
    DlqFilter,
    TopicNotFoundError,
    read_dead_letter,
    read_dead_letters,
)
from shared.delivery.dlq_replay import replay
from shared.delivery.ledger import Ledger
from shared.delivery.status import worker_status
from shared.settings import KafkaSettings
from shared.topics import TopicSpec, WorkerTopics, dlq_topic, ensure_topics, retry_topic
from tests.support.double_register.spec import double_spec

pytestmark = pytest.mark.integration

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
GVR_REJECTION = '{"felkod": "GVR-1043", "meddelande": "Kombika 11010046M30 saknas för datumet"}'


def _event(record_id: str, event_id: str, version: int, operation: str) -> bytes:
    return json.dumps(
        {
            "event_id": event_id,
            "event_type": "care.contact",
            "schema_version": 1,
            "occurred_at": "2026-01-05T09:30:00+01:00",
            "source_system": "takecare-sll",
            "record_id": record_id,
            "record_version": version,
            "operation": operation,
            "payload": {
                "kind": "outpatient_visit",
                "patient": {"id_type": "PNR", "id": "191212121212"},
            },
        }
    ).encode()


@dataclass(frozen=True)
class Letter:
    """A dead letter as a worker would have written it."""

    name: str
    partition: int
    key: str
    value: bytes
    minutes_ago: int
    story: dict[str, str | int | None]


LETTERS = [
    Letter(
        "A", 0, "besok-1", _event("besok-1", "e-a", 1, "create"), 180,
        {h.EVENT_ID: "e-a", h.RECORD_ID: "besok-1", h.ERROR_CLASS: "invalid_event",
         h.ERROR_MESSAGE: "payload.patient.id: wrong check digit\nat payload.patient.id"},
    ),
    Letter(
        "B", 0, "besok-2", _event("besok-2", "e-b", 1, "create"), 120,
        {h.EVENT_ID: "e-b", h.RECORD_ID: "besok-2", h.ERROR_CLASS: "register_rejected",
         h.ERROR_MESSAGE: "GVR rejected the contact", h.REGISTER_STATUS: 422,
         h.REGISTER_RESPONSE: GVR_REJECTION},
    ),
    Letter(
        "C", 1, "besok-3", b'{"event_id": "broken", \xff', 60,
        {h.ERROR_CLASS: "invalid_event", h.ERROR_MESSAGE: "not JSON: invalid start byte"},
    ),
    Letter(
        "D", 1, "besok-2", _event("besok-2", "e-d", 2, "correct"), 30,
        {h.EVENT_ID: "e-d", h.RECORD_ID: "besok-2", h.ERROR_CLASS: "blocked_by_earlier",
         h.ERROR_MESSAGE: "an earlier event of this record is dead-lettered"},
    ),
    Letter(
        "E", 0, "besok-4", _event("besok-4", "e-e", 1, "create"), 10,
        {h.EVENT_ID: "e-e", h.RECORD_ID: "besok-4", h.ERROR_CLASS: "retries_exhausted",
         h.ERROR_MESSAGE: "GVR answered 503 five times", h.REGISTER_STATUS: 503, h.ATTEMPTS: 5},
    ),
]  # fmt: skip


@dataclass(frozen=True)
class Seeded:
    worker: str
    dlq: str
    origin: str
    kafka: KafkaSettings
    now: datetime
    positions: dict[str, tuple[int, int]]  # letter name → (partition, offset)

    def env(self) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap_servers,
            "REGBRIDGE_DOUBLE_NAME": self.worker,
        }

    @property
    def app(self) -> typer.Typer:
        """The command line with this test's worker registered (a throwaway WorkerSpec)."""
        return build_app(REGISTRY.with_spec(double_spec(self.worker)))


def _story(letter: Letter, origin: str, now: datetime) -> list[tuple[str, bytes]]:
    at = now - timedelta(minutes=letter.minutes_ago)
    values: dict[str, str | int | None] = {
        h.ORIGIN_TOPIC: origin,
        h.ORIGIN_PARTITION: letter.partition,
        h.ORIGIN_OFFSET: 7,
        h.ORIGIN_TIMESTAMP: int(at.timestamp() * 1000) - 5000,
        h.CONSUMER_GROUP: "regbridge-gvr",
        h.ATTEMPTS: 1,
        h.FIRST_FAILURE_AT: at.isoformat(),
        h.LAST_FAILURE_AT: at.isoformat(),
        h.WORKER_VERSION: "0.1.0",
        h.TRACE_ID: TRACEPARENT.split("-")[1],
        **letter.story,
    }
    foreign = [(h.TRACEPARENT, TRACEPARENT.encode()), ("x-journal-batch", letter.name.encode())]
    return foreign + h.from_dict(values)


async def _produce(bootstrap: str, topic: str, items: list[tuple[Any, ...]]) -> list[Any]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        return [
            await producer.send_and_wait(topic, value, key, partition, ts, headers)
            for partition, key, value, ts, headers in items
        ]
    finally:
        await producer.stop()


async def _topics(bootstrap: str, *names: str, partitions: int = 2) -> None:
    kafka = KafkaSettings(bootstrap_servers=bootstrap)
    specs = [TopicSpec(name, "test") for name in names]
    await ensure_topics(kafka, specs, partitions=partitions, replication_factor=1)


@pytest.fixture
async def seeded(kafka_bootstrap: str, unique_name: str) -> Seeded:
    worker = f"w{unique_name}"
    dlq, origin = dlq_topic(worker), f"care.contacts.{unique_name}"
    await _topics(kafka_bootstrap, dlq, origin)
    now = datetime.now(UTC)
    items = [
        (
            letter.partition,
            letter.key.encode(),
            letter.value,
            int((now - timedelta(minutes=letter.minutes_ago)).timestamp() * 1000),
            _story(letter, origin, now),
        )
        for letter in LETTERS
    ]
    sent = await _produce(kafka_bootstrap, dlq, items)
    positions = {
        letter.name: (meta.partition, meta.offset)
        for letter, meta in zip(LETTERS, sent, strict=True)
    }
    return Seeded(
        worker, dlq, origin, KafkaSettings(bootstrap_servers=kafka_bootstrap), now, positions
    )


@pytest.fixture
def ledger(any_ledger: Ledger) -> Ledger:
    """Replays audited on SQLite and on PostgreSQL."""
    return any_ledger


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI configures logging for its own process; give the next test the root it had."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _names(seeded: Seeded, letters: list[DeadLetter]) -> list[str]:
    by_position = {position: name for name, position in seeded.positions.items()}
    return [by_position[(dl.partition, dl.offset)] for dl in letters]


# --- reading and filtering ------------------------------------------------------------------------


async def test_read_takes_every_dead_letter_with_its_bytes_and_story(seeded: Seeded) -> None:
    letters = await read_dead_letters(seeded.kafka, seeded.dlq)

    assert _names(seeded, letters) == ["A", "B", "E", "C", "D"]  # by (partition, offset)
    by_name = dict(zip(_names(seeded, letters), letters, strict=True))
    assert by_name["C"].value == LETTERS[2].value  # not even valid UTF-8: untouched
    assert by_name["B"].error_class == "register_rejected"
    assert by_name["B"].register_status == "422"
    assert by_name["B"].register_response == GVR_REJECTION
    assert by_name["B"].origin_topic == seeded.origin
    assert by_name["B"].headers[h.TRACEPARENT] == TRACEPARENT
    assert by_name["C"].record_id is None
    assert abs(by_name["A"].at - (seeded.now - timedelta(minutes=180))) < timedelta(seconds=1)


async def test_read_returns_at_once_on_an_empty_topic_and_names_a_missing_one(
    kafka_bootstrap: str, unique_name: str
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    await _topics(kafka_bootstrap, f"empty.{unique_name}")

    started = time.monotonic()
    assert await read_dead_letters(kafka, f"empty.{unique_name}") == []
    assert time.monotonic() - started < 10
    with pytest.raises(TopicNotFoundError):
        await read_dead_letters(kafka, f"missing.{unique_name}")


async def test_every_filter_selects_its_dead_letters(seeded: Seeded) -> None:
    letters = await read_dead_letters(seeded.kafka, seeded.dlq)
    an_hour_and_a_half_ago = seeded.now - timedelta(minutes=90)
    cases: list[tuple[DlqFilter, list[str]]] = [
        (DlqFilter(), ["A", "B", "E", "C", "D"]),
        (DlqFilter(error_class=("register_rejected",)), ["B"]),
        (DlqFilter(error_class=("register_rejected", "blocked_by_earlier")), ["B", "D"]),
        (DlqFilter(record_id="besok-2"), ["B", "D"]),
        (DlqFilter(key="besok-3"), ["C"]),
        (DlqFilter(event_id="e-a"), ["A"]),
        (DlqFilter(header=(f"{h.REGISTER_STATUS}=503",)), ["E"]),
        (DlqFilter(header=("x-journal-batch=D", f"{h.RECORD_ID}=besok-2")), ["D"]),
        (DlqFilter(since=an_hour_and_a_half_ago), ["E", "C", "D"]),
        (DlqFilter(until=an_hour_and_a_half_ago), ["A", "B"]),
        (DlqFilter(since=an_hour_and_a_half_ago, error_class=("invalid_event",)), ["C"]),
    ]

    for filters, expected in cases:
        assert _names(seeded, [dl for dl in letters if filters.matches(dl)]) == expected, filters
    on_the_broker = await read_dead_letters(
        seeded.kafka, seeded.dlq, filters=DlqFilter(record_id="besok-2")
    )
    assert _names(seeded, on_the_broker) == ["B", "D"]


def test_a_filter_refuses_naive_times_and_malformed_headers() -> None:
    with pytest.raises(ValueError, match="time zone"):
        DlqFilter(since=datetime(2026, 1, 5, 8, 0))
    with pytest.raises(ValueError, match="NAME=VALUE"):
        DlqFilter(header=("regbridge-error-class",))


async def test_read_one_dead_letter_by_position(seeded: Seeded) -> None:
    partition, offset = seeded.positions["D"]

    found = await read_dead_letter(seeded.kafka, seeded.dlq, partition, offset)

    assert found is not None
    assert found.event_id == "e-d"
    assert await read_dead_letter(seeded.kafka, seeded.dlq, partition, offset + 50) is None
    assert await read_dead_letter(seeded.kafka, seeded.dlq, 7, 0) is None


# --- replay ---------------------------------------------------------------------------------------


async def test_replay_publishes_the_original_bytes_key_and_foreign_headers(
    seeded: Seeded, ledger: Ledger
) -> None:
    letters = await read_dead_letters(seeded.kafka, seeded.dlq)

    report = await replay(seeded.kafka, ledger, letters, operator="alice")

    assert [dl.event_id for dl, _ in report.replayed] == ["e-a", "e-b", "e-e", None, "e-d"]
    assert report.refused == []
    assert not report.dry_run
    replayed = await read_dead_letters(seeded.kafka, seeded.origin)
    assert len(replayed) == len(LETTERS)
    source = {dl.position: dl for dl in letters}
    for copy in replayed:
        original = source[copy.headers[h.REPLAYED_FROM]]
        assert copy.value == original.value
        assert copy.key == original.key
        assert copy.raw_headers == (
            (h.TRACEPARENT, TRACEPARENT.encode()),
            ("x-journal-batch", original.headers["x-journal-batch"].encode()),
            (h.REPLAYED_FROM, original.position.encode()),
        )
    besok_2 = [c for c in replayed if c.key == b"besok-2"]
    assert [json.loads(c.value or b"")["event_id"] for c in besok_2] == ["e-b", "e-d"]  # in order
    partition, offset = seeded.positions["B"]
    (entry,) = await ledger.replays_of(seeded.dlq, partition, offset)
    assert (entry.event_id, entry.record_id, entry.target_topic) == (
        "e-b",
        "besok-2",
        seeded.origin,
    )
    assert (entry.replayed_by, entry.batch_id, entry.forced) == ("alice", report.batch_id, False)


async def test_a_second_replay_is_refused_unless_forced(seeded: Seeded, ledger: Ledger) -> None:
    chosen = await read_dead_letters(seeded.kafka, seeded.dlq, filters=DlqFilter(event_id="e-b"))
    target = f"{seeded.origin}.again"
    await replay(seeded.kafka, ledger, chosen, to=target, operator="alice")

    refused = await replay(seeded.kafka, ledger, chosen, to=target, operator="bob")
    forced = await replay(seeded.kafka, ledger, chosen, to=target, operator="bob", force=True)

    assert refused.replayed == []
    (refusal,) = refused.refused
    assert f"already replayed ({datetime.now(UTC):%Y-%m-%d}" in refusal.reason
    assert "by alice" in refusal.reason
    assert len(forced.replayed) == 1
    assert forced.refused == []
    partition, offset = seeded.positions["B"]
    audit = await ledger.replays_of(seeded.dlq, partition, offset)
    assert [(e.replayed_by, e.forced) for e in audit] == [("alice", False), ("bob", True)]
    assert len(await read_dead_letters(seeded.kafka, target)) == 2


async def test_a_dry_run_writes_nothing(seeded: Seeded, tmp_path: Path) -> None:
    letters = await read_dead_letters(seeded.kafka, seeded.dlq)
    ledger = Ledger.from_url(f"sqlite+aiosqlite:///{tmp_path}/fresh.db")
    try:
        report = await replay(seeded.kafka, ledger, letters, dry_run=True, operator="alice")

        async with ledger.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
    finally:
        await ledger.close()

    assert report.dry_run
    assert len(report.replayed) == len(LETTERS)
    assert tables == []  # not even the audit table
    assert await read_dead_letters(seeded.kafka, seeded.origin) == []


async def test_a_dead_letter_without_its_origin_needs_a_target(
    kafka_bootstrap: str, unique_name: str, ledger: Ledger
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    dlq = f"w{unique_name}.dlq.v1"
    await _topics(kafka_bootstrap, dlq, partitions=1)
    await _produce(kafka_bootstrap, dlq, [(0, b"k", b"v", None, [(h.ERROR_CLASS, b"x")])])
    letters = await read_dead_letters(kafka, dlq)

    refused = await replay(kafka, ledger, letters, operator="alice")
    chosen = await replay(kafka, ledger, letters, to=f"elsewhere.{unique_name}", operator="alice")

    assert h.ORIGIN_TOPIC in refused.refused[0].reason
    assert [target for _, target in chosen.replayed] == [f"elsewhere.{unique_name}"]


async def test_a_rate_limit_spaces_the_sends(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    dlq, origin = f"w{unique_name}.dlq.v1", f"origin.{unique_name}"
    await _topics(kafka_bootstrap, dlq, origin, partitions=1)
    story = [(h.ORIGIN_TOPIC, origin.encode())]
    await _produce(kafka_bootstrap, dlq, [(0, b"k", b"%d" % i, None, story) for i in range(10)])
    letters = await read_dead_letters(kafka, dlq)
    ledger = Ledger.from_url(f"sqlite+aiosqlite:///{tmp_path}/ledger.db")
    try:
        started = time.monotonic()
        report = await replay(kafka, ledger, letters, rate=20, operator="alice")
        elapsed = time.monotonic() - started
    finally:
        await ledger.close()

    assert len(report.replayed) == 10
    assert elapsed >= 0.4  # 9 gaps of 1/20 s; a loose lower bound, never an upper one
    assert [dl.value for dl in await read_dead_letters(kafka, origin)] == [
        b"%d" % i for i in range(10)
    ]


# --- status ---------------------------------------------------------------------------------------


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps(
            {"circuit": "open", "paused_reason": "circuit_open", "alarms": ["gvr: 503 x 20"]}
        ).encode()
        self.send_response(200 if self.path == "/status" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        return None


@pytest.fixture
def health_url() -> Iterator[str]:
    """A real local HTTP server answering /status as a worker's health endpoint does."""
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


async def _commit(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


@pytest.fixture
async def busy_worker(seeded: Seeded) -> str:
    """Input: 5 records on partition 0 (2 committed), 3 on partition 1; 2 waiting in tier 30s."""
    bootstrap = seeded.kafka.bootstrap_servers
    inputs = f"input.{seeded.worker}"
    tier = retry_topic(seeded.worker, "30s")
    await _topics(bootstrap, inputs)
    await _topics(bootstrap, tier, partitions=1)
    records = [(0, b"k", b"v", None, [])] * 5 + [(1, b"k", b"v", None, [])] * 3
    await _produce(bootstrap, inputs, records)
    await _produce(bootstrap, tier, [(0, b"k", b"v", None, [])] * 2)
    await _commit(bootstrap, f"regbridge-{seeded.worker}", {TopicPartition(inputs, 0): 2})
    return inputs


async def test_worker_status_counts_lag_retries_dead_letters_and_reads_health(
    seeded: Seeded, busy_worker: str, health_url: str
) -> None:
    topics = WorkerTopics(seeded.worker, busy_worker, ("30s", "5m"))
    status = await worker_status(seeded.kafka, topics, health_url=health_url)

    assert [(p.partition, p.committed, p.end, p.lag) for p in status.lag] == [
        (0, 2, 5, 3),
        (1, None, 3, 3),  # nothing committed: the group would start at the beginning
    ]
    assert status.total_lag == 6
    tiers = [retry_topic(seeded.worker, "30s"), retry_topic(seeded.worker, "5m")]
    assert status.retry_depth == {tiers[0]: 2, tiers[1]: 0}
    assert status.missing_topics == [tiers[1]]
    assert status.dead_letters == {
        "invalid_event": 2,
        "register_rejected": 1,
        "blocked_by_earlier": 1,
        "retries_exhausted": 1,
    }
    assert status.health is not None
    assert status.health["circuit"] == "open"


async def test_an_unreachable_health_endpoint_is_reported_not_raised(seeded: Seeded) -> None:
    topics = WorkerTopics(seeded.worker, "", ())
    status = await worker_status(seeded.kafka, topics, health_url="http://127.0.0.1:9")

    assert status.health is None
    assert status.health_error is not None
    assert status.health_error.startswith("unreachable")


# --- the command line -----------------------------------------------------------------------------


def test_dlq_list_end_to_end_as_a_process(seeded: Seeded) -> None:
    command = [sys.executable, "-m", "tests.support.double_register", "dlq", "list"]
    command += ["--worker", seeded.worker]
    filters = ["--record-id", "besok-2"]

    result = subprocess.run(
        [*command, *filters],
        env=os.environ | seeded.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "P:OFFSET", "TIME", "(UTC)", "ERROR", "CLASS", "RECORD", "ID", "EVENT", "ID", "MESSAGE"
    ]  # fmt: skip
    assert "register_rejected" in lines[1]
    assert "besok-2" in lines[1]
    assert "e-b" in lines[1]
    assert "GVR rejected the contact" in lines[1]
    assert "blocked_by_earlier" in lines[2]
    assert lines[-1] == f"2 dead letters in {seeded.dlq} match"


def test_dlq_list_filters_by_time_class_and_limit(seeded: Seeded) -> None:
    since = (seeded.now - timedelta(minutes=90)).isoformat()
    runner = CliRunner()

    recent = runner.invoke(
        seeded.app, ["dlq", "list", "-w", seeded.worker, "--since", since], env=seeded.env()
    )
    limited = runner.invoke(
        seeded.app,
        ["dlq", "list", "-w", seeded.worker, "--error-class", "invalid_event", "--limit", "1"],
        env=seeded.env(),
    )
    naive = runner.invoke(
        seeded.app,
        ["dlq", "list", "-w", seeded.worker, "--since", "2026-01-05T08:00"],
        env=seeded.env(),
    )

    assert recent.exit_code == 0, recent.output
    assert recent.stdout.splitlines()[-1] == f"3 dead letters in {seeded.dlq} match"
    assert limited.stdout.splitlines()[-1] == f"2 dead letters in {seeded.dlq} match, showing 1"
    assert len(limited.stdout.splitlines()) == 3  # heading, one row, count
    assert naive.exit_code == 2
    assert "give a zone" in naive.output


def test_dlq_show_prints_one_dead_letter_in_full(seeded: Seeded, tmp_path: Path) -> None:
    partition, offset = seeded.positions["B"]
    args = ["dlq", "show", "-w", seeded.worker, f"{partition}:{offset}"]
    database = ["--database-url", f"sqlite+aiosqlite:///{tmp_path}/ledger.db"]

    result = CliRunner().invoke(seeded.app, [*args, *database], env=seeded.env())

    assert result.exit_code == 0, result.output
    assert "personal data" in result.stderr
    out = result.stdout
    assert out.startswith(f"{seeded.dlq} partition {partition} offset {offset}\n")
    assert f"  {h.ERROR_CLASS}" in out
    assert f"  {h.TRACEPARENT}" in out
    assert "register response (HTTP 422)" in out
    assert '    "felkod": "GVR-1043",' in out  # the response, pretty-printed
    assert '    "id": "191212121212"' in out  # the value as JSON, personal data unmasked
    assert "replayed  never" in out or "replays   unknown" in out
    missing = CliRunner().invoke(
        seeded.app, ["dlq", "show", "-w", seeded.worker, "0:999"], env=seeded.env()
    )
    assert missing.exit_code == 1
    assert "no dead letter at" in missing.stderr


def test_dlq_replay_confirms_audits_and_refuses_a_second_time(
    seeded: Seeded, tmp_path: Path
) -> None:
    runner = CliRunner()
    base = ["dlq", "replay", "-w", seeded.worker, "--record-id", "besok-2", "--operator", "carol"]
    base += ["--database-url", f"sqlite+aiosqlite:///{tmp_path}/ledger.db"]

    declined = runner.invoke(seeded.app, base, env=seeded.env(), input="n\n")
    first = runner.invoke(seeded.app, base, env=seeded.env(), input="y\n")
    dry = runner.invoke(seeded.app, [*base, "--dry-run"], env=seeded.env())
    second = runner.invoke(seeded.app, [*base, "--yes"], env=seeded.env())
    forced = runner.invoke(seeded.app, [*base, "--yes", "--force"], env=seeded.env())

    assert declined.exit_code == 1  # aborted at the question
    assert f"2 selected in {seeded.dlq}: 2 → {seeded.origin}" in first.stdout
    assert first.exit_code == 0, first.output
    assert "replayed 2, refused 0" in first.stdout
    assert "by carol" in first.stdout
    assert dry.exit_code == 1
    assert "dry run: 0 would be replayed, 2 refused; nothing was written" in dry.stdout
    assert second.exit_code == 1
    assert "already replayed" in second.stderr
    assert "replayed 0, refused 2" in second.stdout
    assert forced.exit_code == 0, forced.output
    assert "replayed 2, refused 0" in forced.stdout


def test_status_prints_lag_retry_tiers_dead_letters_and_circuit(
    seeded: Seeded, busy_worker: str, health_url: str
) -> None:
    args = ["status", "-w", seeded.worker]
    env = seeded.env() | {"REGBRIDGE_DOUBLE_INPUT_TOPIC": busy_worker}

    known = CliRunner().invoke(seeded.app, [*args, "--health-url", health_url], env=env)
    unknown = CliRunner().invoke(seeded.app, args, env=env)

    assert known.exit_code == 0, known.output
    out = known.stdout
    assert f"{seeded.worker}  (consumer group regbridge-{seeded.worker})" in out
    assert f"    {busy_worker}/0  committed 2  end 5  lag 3" in out
    assert f"    {busy_worker}/1  committed -  end 3  lag 3" in out
    assert "    total lag 6" in out
    assert f"  dead letters  {seeded.dlq}: 5" in out
    assert "invalid_event       2" in out
    assert "  circuit  open; paused: circuit_open; alarms: 1" in out
    assert "  circuit  unknown: no health URL" in unknown.stdout
