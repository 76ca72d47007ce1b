"""Operator tools for dead letters: read and filter, replay with an audit, worker status."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from sqlalchemy import inspect

from shared.delivery import headers as h
from shared.delivery.clock import Clock, SystemClock
from shared.delivery.ledger import Ledger, ReplayAuditEntry
from shared.delivery.ledger_schema import replay_audit
from shared.kafka import kafka_client_options
from shared.settings import KafkaSettings
from shared.topics import dlq_topic, retry_topic

Progress = Callable[[int, int], None]
WINDOW = 100  # replays in flight before their acks are awaited and their audit rows written
NO_CLASS = "(none)"


class TopicNotFoundError(LookupError):
    """The topic does not exist on the cluster."""


class StalledReadError(RuntimeError):
    """Reading a topic up to its end offsets made no progress for a whole request timeout."""


class ReplayFailedError(RuntimeError):
    """Kafka failed mid-replay; `report` holds what was replayed (and audited) before that."""

    def __init__(self, report: ReplayReport, cause: Exception) -> None:
        super().__init__(f"replay stopped after {len(report.replayed)}: {cause}")
        self.report = report


@dataclass(frozen=True)
class DeadLetter:
    """One record of a dead-letter topic: the original bytes and the story headers around them."""

    topic: str
    partition: int
    offset: int
    timestamp: int  # ms since the epoch, as Kafka gives it
    key: bytes | None
    value: bytes | None
    raw_headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def headers(self) -> dict[str, str]:
        return h.to_dict(self.raw_headers)

    @property
    def position(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp / 1000, UTC)

    @property
    def key_text(self) -> str | None:
        return None if self.key is None else self.key.decode("utf-8", "replace")

    @property
    def error_class(self) -> str | None:
        return self.headers.get(h.ERROR_CLASS)

    @property
    def error_message(self) -> str | None:
        return self.headers.get(h.ERROR_MESSAGE)

    @property
    def record_id(self) -> str | None:
        return self.headers.get(h.RECORD_ID)

    @property
    def event_id(self) -> str | None:
        return self.headers.get(h.EVENT_ID)

    @property
    def origin_topic(self) -> str | None:
        return self.headers.get(h.ORIGIN_TOPIC)

    @property
    def register_status(self) -> str | None:
        return self.headers.get(h.REGISTER_STATUS)

    @property
    def register_response(self) -> str | None:
        return self.headers.get(h.REGISTER_RESPONSE)

    def foreign_headers(self) -> list[tuple[str, bytes]]:
        """The journal system's own headers (traceparent …), byte for byte, without the story."""
        return [
            (name, value)
            for name, value in self.raw_headers
            if not name.startswith("regbridge-") and name != h.DUE_AT
        ]


@dataclass(frozen=True, kw_only=True)
class DlqFilter:
    """Which dead letters to select; every criterion given must hold (an empty filter takes all)."""

    since: datetime | None = None  # Kafka timestamp ≥ since
    until: datetime | None = None  # Kafka timestamp < until
    error_class: tuple[str, ...] = ()  # any of these
    record_id: str | None = None
    key: str | None = None
    header: tuple[str, ...] = ()  # NAME=VALUE, all must hold
    event_id: str | None = None

    def __post_init__(self) -> None:
        for name, moment in (("since", self.since), ("until", self.until)):
            if moment is not None and moment.utcoffset() is None:
                raise ValueError(f"{name} needs a time zone: {moment.isoformat()}")
        for pair in self.header:
            if "=" not in pair or pair.startswith("="):
                raise ValueError(f"header filter {pair!r}: expected NAME=VALUE")

    def matches(self, dl: DeadLetter) -> bool:
        headers = dl.headers
        wanted = (pair.split("=", 1) for pair in self.header)
        return (
            (self.since is None or dl.at >= self.since)
            and (self.until is None or dl.at < self.until)
            and (not self.error_class or dl.error_class in self.error_class)
            and (self.record_id is None or dl.record_id == self.record_id)
            and (self.key is None or dl.key_text == self.key)
            and (self.event_id is None or dl.event_id == self.event_id)
            and all(headers.get(name) == value for name, value in wanted)
        )


def _consumer(kafka: KafkaSettings) -> AIOKafkaConsumer:
    """A standalone consumer: no group, never commits, reads only what is committed."""
    return AIOKafkaConsumer(
        **kafka_client_options(kafka),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )


def _admin(kafka: KafkaSettings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**kafka_client_options(kafka))


async def _partitions(
    admin: AIOKafkaAdminClient, topics: Sequence[str]
) -> dict[str, list[TopicPartition]]:
    """The partitions of each topic that exists (asking never creates a topic)."""
    described = await admin.describe_topics(list(topics)) if topics else []
    return {
        d["topic"]: sorted(TopicPartition(d["topic"], p["partition"]) for p in d["partitions"])
        for d in described
        if d["error_code"] == 0
    }


async def _partitions_of(kafka: KafkaSettings, topic: str) -> list[TopicPartition]:
    admin = _admin(kafka)
    await admin.start()
    try:
        found = await _partitions(admin, [topic])
    finally:
        await admin.close()
    if topic not in found:
        raise TopicNotFoundError(f"topic {topic} does not exist")
    return found[topic]


def _dead_letter(record: Any) -> DeadLetter:
    return DeadLetter(
        record.topic,
        record.partition,
        record.offset,
        record.timestamp,
        record.key,
        record.value,
        tuple(record.headers or ()),
    )


async def read_dead_letters(
    kafka: KafkaSettings,
    topic: str,
    *,
    filters: DlqFilter | None = None,
    progress: Progress | None = None,
) -> list[DeadLetter]:
    """Every matching record from the beginning up to the end offsets seen at the start."""
    wanted = filters or DlqFilter()
    tps = await _partitions_of(kafka, topic)
    consumer = _consumer(kafka)
    await consumer.start()
    try:
        begin, end = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
        todo = {tp: end[tp] for tp in tps if end[tp] > begin[tp]}
        if not todo:
            return []
        consumer.assign(list(todo))
        await consumer.seek_to_beginning(*todo)
        total, read, found = sum(end[tp] - begin[tp] for tp in todo), 0, []
        stalled_since = time.monotonic()
        while todo:
            batches = await consumer.getmany(*todo, timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    if record.offset < end[tp]:
                        read += 1
                        dead_letter = _dead_letter(record)
                        if wanted.matches(dead_letter):
                            found.append(dead_letter)
            for tp in list(todo):
                if await consumer.position(tp) >= todo[tp]:
                    consumer.pause(tp)
                    del todo[tp]
            if batches:
                stalled_since = time.monotonic()
                if progress is not None:
                    progress(read, total)
            elif time.monotonic() - stalled_since > kafka.request_timeout_ms / 1000:
                raise StalledReadError(f"{topic}: no progress towards the end offsets {end}")
        return sorted(found, key=lambda dl: (dl.partition, dl.offset))
    finally:
        await consumer.stop()


async def read_dead_letter(
    kafka: KafkaSettings, topic: str, partition: int, offset: int
) -> DeadLetter | None:
    """The dead letter at one position, or None when there is none (yet, or any more)."""
    tp = TopicPartition(topic, partition)
    if tp not in await _partitions_of(kafka, topic):
        return None
    consumer = _consumer(kafka)
    await consumer.start()
    try:
        begin = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]
        if not begin <= offset < end:
            return None
        consumer.assign([tp])
        consumer.seek(tp, offset)
        deadline = time.monotonic() + kafka.request_timeout_ms / 1000
        while await consumer.position(tp) <= offset and time.monotonic() < deadline:
            for record in (await consumer.getmany(tp, timeout_ms=500)).get(tp, []):
                if record.offset == offset:
                    return _dead_letter(record)
        return None  # compacted away, or a transaction marker
    finally:
        await consumer.stop()


@dataclass(frozen=True)
class Refusal:
    dead_letter: DeadLetter
    reason: str


@dataclass
class ReplayReport:
    """What a replay did (or, in a dry run, would do)."""

    batch_id: str
    dry_run: bool
    replayed: list[tuple[DeadLetter, str]] = field(default_factory=list)  # (dead letter, target)
    refused: list[Refusal] = field(default_factory=list)


def replay_headers(dl: DeadLetter) -> list[tuple[str, bytes]]:
    """The journal system's headers as they came, plus where this replay comes from."""
    return [*dl.foreign_headers(), (h.REPLAYED_FROM, dl.position.encode())]


async def _has_audit(ledger: Ledger) -> bool:
    async with ledger.engine.connect() as conn:
        return await conn.run_sync(lambda c: inspect(c).has_table(replay_audit.name))


async def earlier_replays(ledger: Ledger, dl: DeadLetter) -> list[ReplayAuditEntry]:
    """Every replay of `dl` so far, oldest first ([] on a ledger that never replayed anything)."""
    if not await _has_audit(ledger):
        return []
    return await ledger.replays_of(dl.topic, dl.partition, dl.offset)


async def _replayed_before(ledger: Ledger, topic: str, *, dry_run: bool) -> set[tuple[int, int]]:
    if dry_run:  # a dry run does not even create the audit table
        if not await _has_audit(ledger):
            return set()
    else:
        await ledger.create_schema()
    return await ledger.replayed_set(topic)


async def _refusal(ledger: Ledger, dl: DeadLetter) -> Refusal:
    earlier = await ledger.replays_of(dl.topic, dl.partition, dl.offset)
    when = ", ".join(f"{e.replayed_at:%Y-%m-%d %H:%M} UTC by {e.replayed_by}" for e in earlier)
    return Refusal(dl, f"already replayed ({when}); use --force to replay again")


async def replay(
    kafka: KafkaSettings,
    ledger: Ledger,
    dead_letters: Sequence[DeadLetter],
    *,
    to: str | None = None,
    dry_run: bool = False,
    rate: float | None = None,
    force: bool = False,
    operator: str,
    clock: Clock | None = None,
    progress: Progress | None = None,
) -> ReplayReport:
    """Re-publish each dead letter's original key and value, in (partition, offset) order."""
    if rate is not None and rate <= 0:
        raise ValueError("rate must be positive (messages per second)")
    clock = clock or SystemClock()
    report = ReplayReport(batch_id=str(uuid.uuid4()), dry_run=dry_run)
    done: set[tuple[str, int, int]] = set()
    for topic in sorted({dl.topic for dl in dead_letters}):
        before = await _replayed_before(ledger, topic, dry_run=dry_run)
        done |= {(topic, partition, offset) for partition, offset in before}
    plan: list[tuple[DeadLetter, str]] = []
    for dl in sorted(dead_letters, key=lambda d: (d.topic, d.partition, d.offset)):
        target = to or dl.origin_topic
        if target is None:
            report.refused.append(Refusal(dl, f"no {h.ORIGIN_TOPIC} header; give a target topic"))
        elif (dl.topic, dl.partition, dl.offset) in done and not force:
            report.refused.append(await _refusal(ledger, dl))
        else:
            plan.append((dl, target))
    if dry_run:
        report.replayed = plan
        return report
    producer = AIOKafkaProducer(**kafka_client_options(kafka), acks="all", enable_idempotence=True)
    await producer.start()
    pending: list[tuple[DeadLetter, str, Any]] = []
    audit = partial(_settle, ledger, report, operator=operator, force=force, clock=clock)
    try:
        started = clock.now()
        for index, (dl, target) in enumerate(plan):
            if rate is not None and index:
                elapsed = (clock.now() - started).total_seconds()
                await clock.sleep(index / rate - elapsed)
            sent = await producer.send(target, dl.value, dl.key, headers=replay_headers(dl))
            pending.append((dl, target, sent))
            if len(pending) >= (1 if rate is not None else WINDOW):
                await audit(pending)
                if progress is not None:
                    progress(len(report.replayed), len(plan))
        await audit(pending)
    except KafkaError as exc:
        raise ReplayFailedError(report, exc) from exc
    finally:
        await producer.stop()
    if progress is not None:
        progress(len(report.replayed), len(plan))
    return report


async def _settle(
    ledger: Ledger,
    report: ReplayReport,
    pending: list[tuple[DeadLetter, str, Any]],
    *,
    operator: str,
    force: bool,
    clock: Clock,
) -> None:
    """Await the broker's acks (acks=all); audit each acknowledged replay, even if one failed."""
    acked: list[tuple[DeadLetter, str]] = []
    try:
        for dl, target, sent in pending:
            await sent
            acked.append((dl, target))
    finally:
        pending.clear()
        await ledger.audit_replay(
            [
                ReplayAuditEntry(
                    dlq_topic=dl.topic,
                    dlq_partition=dl.partition,
                    dlq_offset=dl.offset,
                    event_id=dl.event_id,
                    record_id=dl.record_id,
                    target_topic=target,
                    replayed_by=operator,
                    replayed_at=clock.now(),
                    batch_id=report.batch_id,
                    forced=force,
                )
                for dl, target in acked
            ]
        )
        report.replayed.extend(acked)


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None  # None: the group has committed nothing here (it starts at the beginning)
    end: int
    lag: int


@dataclass
class WorkerStatus:
    """What `regbridge status` prints for one worker."""

    worker: str
    consumer_group: str
    dlq_topic: str
    lag: list[PartitionLag] = field(default_factory=list)
    retry_depth: dict[str, int] = field(default_factory=dict)  # tier topic → waiting records
    dead_letters: dict[str, int] = field(default_factory=dict)  # error class → count
    missing_topics: list[str] = field(default_factory=list)
    health: dict[str, Any] | None = None
    health_error: str | None = None

    @property
    def total_lag(self) -> int:
        return sum(p.lag for p in self.lag)


async def group_lag(
    kafka: KafkaSettings, group: str, topics: Sequence[str]
) -> tuple[list[PartitionLag], list[str]]:
    """Lag of `group` on every partition of `topics` (end - committed), and the missing topics."""
    if not topics:
        return [], []
    consumer, admin = _consumer(kafka), _admin(kafka)
    await consumer.start()
    await admin.start()
    try:
        found = await _partitions(admin, topics)
        missing = [t for t in topics if t not in found]
        tps = [tp for t in topics for tp in found.get(t, [])]
        if not tps:
            return [], missing
        begin, end = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
        committed = await admin.list_consumer_group_offsets(group, partitions=tps)
        lags = []
        for tp in tps:
            meta = committed.get(tp)
            offset = meta.offset if meta is not None and meta.offset >= 0 else None
            lag = end[tp] - (begin[tp] if offset is None else max(offset, begin[tp]))
            lags.append(PartitionLag(tp.topic, tp.partition, offset, end[tp], lag))
        return lags, missing
    finally:
        await admin.close()
        await consumer.stop()


async def _health(health_url: str) -> tuple[dict[str, Any] | None, str | None]:
    url = f"{health_url.rstrip('/')}/status"
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            response = await client.get(url)
        response.raise_for_status()
        body = response.json()
    except httpx.HTTPError as exc:
        return None, f"unreachable: {url}: {type(exc).__name__}: {exc}"
    except json.JSONDecodeError:
        return None, f"not JSON: {url}"
    return (body, None) if isinstance(body, dict) else (None, f"unexpected answer from {url}")


async def worker_status(
    kafka: KafkaSettings,
    worker: str,
    *,
    input_topic: str | None,
    consumer_group: str,
    retry_tiers: Sequence[str],
    health_url: str | None = None,
) -> WorkerStatus:
    """Input lag, retry-tier depth, dead letters by class and, given a URL, the circuit state."""
    status = WorkerStatus(worker, consumer_group, dlq_topic(worker))
    inputs = [input_topic] if input_topic else []  # None: a worker whose input is not known
    status.lag, missing = await group_lag(kafka, consumer_group, inputs)
    tiers = [retry_topic(worker, tier) for tier in retry_tiers]
    retry_lag, missing_tiers = await group_lag(kafka, f"{consumer_group}-retry", tiers)
    status.retry_depth = {t: sum(p.lag for p in retry_lag if p.topic == t) for t in tiers}
    status.missing_topics = missing + missing_tiers
    try:
        letters = await read_dead_letters(kafka, status.dlq_topic)
    except TopicNotFoundError:
        status.missing_topics.append(status.dlq_topic)
        letters = []
    status.dead_letters = dict(Counter(dl.error_class or NO_CLASS for dl in letters).most_common())
    if health_url is not None:
        status.health, status.health_error = await _health(health_url)
    return status
