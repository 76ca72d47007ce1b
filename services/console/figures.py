"""The overview's figures per worker, kept cheap: offsets instead of whole topics, Kafka and ledger
connections kept for the console's life, error classes tallied once and then only what is new."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import Connection, func, inspect, select

from services.console.sources import NoLedgerError, WorkerSource
from services.console.tally import ClassTally, Offsets
from shared.delivery.dlq_read import DeadLetter, read_tails
from shared.delivery.ledger import Ledger
from shared.delivery.ledger_schema import replay_audit
from shared.delivery.status import PartitionLag, WorkerStatus
from shared.kafka import admin_client, existing_partitions, standalone_consumer

log = structlog.get_logger("regbridge.console")
NEWEST = 5  # dead letters the overview lists per worker
TALLY_WAIT_S = 0.1  # how long a page waits for the tally to read what is new
PARTITIONS_TTL_S = 30.0  # a topic made or grown shows within this long


@dataclass(frozen=True)
class LetterFigures:
    """A worker's dead letters: counted from offsets, classes from the tally, the newest few."""

    total: int  # end - beginning offset over every partition (exact: see docs/console.md)
    per_partition: dict[int, int]
    classes: dict[str, int]  # error class → letters, over `counted` of them
    counted: int
    caught_up: bool  # the tally has read up to the end offsets `total` was taken at
    replayed: int | None  # distinct letters replayed (the ledger's replay audit); None: no ledger
    newest: list[DeadLetter] = field(default_factory=list)


@dataclass(frozen=True)
class WorkerView:
    name: str
    status: WorkerStatus
    ready: str  # ready, not ready, unreachable
    letters: LetterFigures

    @property
    def health(self) -> dict[str, Any]:
        return self.status.health or {}


def has_table(conn: Connection, name: str) -> bool:
    return bool(inspect(conn).has_table(name))


class WorkerLink:
    """One worker's connections, opened on first use and kept: an admin client, a consumer for
    offsets and partition tails, another for the tally, and its ledger."""

    def __init__(self, source: WorkerSource) -> None:
        self.source = source
        self.lock = asyncio.Lock()  # one computation of the figures at a time
        self.cached: tuple[float, WorkerView] | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._tally_consumer: AIOKafkaConsumer | None = None
        self._tally: ClassTally | None = None
        self._tally_task: asyncio.Task[None] | None = None
        self._ledger: Ledger | None = None
        self._audited = False
        self._partitions: tuple[float, dict[str, list[TopicPartition]]] | None = None

    def topic_names(self) -> list[str]:
        """Its inputs, retry tiers and dead-letter topic: what the figures read."""
        topics = self.source.topics
        return [*(t for t in topics.inputs if t), *topics.retry.values(), topics.dlq]

    async def clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._consumer is None:
            kafka = self.source.settings.kafka
            admin, consumer = admin_client(kafka), standalone_consumer(kafka)
            await admin.start()
            try:
                await consumer.start()
            except BaseException:
                await admin.close()
                raise
            self._admin, self._consumer = admin, consumer
        return self._admin, self._consumer

    async def offsets(self, tps: list[TopicPartition]) -> tuple[Offsets, Offsets]:
        _admin, consumer = await self.clients()
        if not tps:
            return {}, {}
        begin, end = await asyncio.gather(
            consumer.beginning_offsets(tps), consumer.end_offsets(tps)
        )
        return dict(begin), dict(end)

    async def tails(self, begin: Offsets, end: Offsets, count: int | Offsets) -> list[DeadLetter]:
        """The last `count` letters of each partition, newest first (by Kafka timestamp)."""
        _admin, consumer = await self.clients()
        timeout = self.source.settings.kafka.request_timeout_ms / 1000
        letters = await read_tails(consumer, begin, end, count, timeout_s=timeout)
        return sorted(letters, key=lambda dl: (dl.timestamp, dl.partition, dl.offset), reverse=True)

    async def newest(self, begin: Offsets, end: Offsets, count: int) -> list[DeadLetter]:
        """The `count` newest letters of the topic (by Kafka timestamp): a share of `count` read
        from each partition's tail; then, from the `count`-th newest of those, Kafka's index of
        times says where in each partition the letters at least as new begin, and only what is
        missing of those is read."""
        held = {tp: end[tp] - begin[tp] for tp in end if end[tp] > begin[tp]}
        share = {tp: min(n, -(-count // max(1, len(held)))) for tp, n in held.items()}
        found = await self.tails(begin, end, share)
        while len(found) < count and share != held:  # some partitions hold less than a share
            share = {tp: min(n, share[tp] * 2) for tp, n in held.items()}
            found = await self.tails(begin, end, share)
        if len(found) < count:
            return found
        _admin, consumer = await self.clients()
        cutoff = found[count - 1].timestamp
        since = await consumer.offsets_for_times(dict.fromkeys(held, cutoff))
        wanted = {
            tp: end[tp] - max(begin[tp], at.offset)
            for tp, at in since.items()
            if at is not None and end[tp] - max(begin[tp], at.offset) > share[tp]
        }
        if wanted:
            found = await self.tails(begin, end, share | wanted)
        return found[:count]

    async def tally(
        self, begin: Offsets, end: Offsets, wait_s: float
    ) -> tuple[dict[str, int], int, bool]:
        """Error classes so far; the tally reads what is new in the background, awaited briefly."""
        if self._tally is None:
            kafka = self.source.settings.kafka
            self._tally_consumer = standalone_consumer(kafka)
            await self._tally_consumer.start()
            self._tally = ClassTally(self._tally_consumer, kafka.request_timeout_ms / 1000)
        tally = self._tally
        if self._tally_task is not None and self._tally_task.done():
            if not self._tally_task.cancelled() and self._tally_task.exception() is not None:
                log.warning(
                    "console_tally_failed",
                    worker=self.source.name,
                    error=repr(self._tally_task.exception()),
                )
            self._tally_task = None
        if self._tally_task is None and tally.behind(begin, end):
            self._tally_task = asyncio.create_task(tally.catch_up(begin, end))
        if self._tally_task is not None:
            await asyncio.wait({self._tally_task}, timeout=wait_s)
        classes, counted = tally.counted(end)
        return classes, counted, not tally.behind(begin, end)

    async def replayed(self) -> int | None:
        """Distinct dead letters of the worker replayed so far, from the ledger's replay audit."""
        if self._ledger is None:
            try:
                self._ledger = await self.source.open_ledger()
            except NoLedgerError:
                return None
        a = replay_audit.c
        letters = select(a.dlq_partition, a.dlq_offset).where(a.dlq_topic == self.source.topics.dlq)
        query = select(func.count()).select_from(letters.distinct().subquery())
        async with self._ledger.engine.connect() as conn:
            if not self._audited:  # a ledger the worker has not yet made
                self._audited = await conn.run_sync(has_table, replay_audit.name)
                if not self._audited:
                    return 0
            return int((await conn.execute(query)).scalar_one())

    async def partitions(self, topics: list[str]) -> dict[str, list[TopicPartition]]:
        """The partitions of those of `topics` that exist, asked again after PARTITIONS_TTL_S."""
        now = time.monotonic()
        if self._partitions is None or now - self._partitions[0] > PARTITIONS_TTL_S:
            admin, _consumer = await self.clients()
            self._partitions = (now, await existing_partitions(admin, topics))
        return self._partitions[1]

    async def close(self) -> None:
        """Stop every client (after a failure too: the next page connects afresh)."""
        if self._tally_task is not None:
            self._tally_task.cancel()
            await asyncio.gather(self._tally_task, return_exceptions=True)
        clients = [c for c in (self._consumer, self._tally_consumer) if c is not None]
        await asyncio.gather(*(c.stop() for c in clients), return_exceptions=True)
        if self._admin is not None:
            await asyncio.gather(self._admin.close(), return_exceptions=True)
        if self._ledger is not None:
            await self._ledger.close()
        self._admin = self._consumer = self._tally_consumer = None
        self._tally, self._tally_task, self._ledger, self._audited = None, None, None, False
        self._partitions = None


class Figures:
    """Every worker's figures for the overview, each kept `ttl_s` seconds (pages polled every few
    seconds by several people cost Kafka one computation per worker per TTL)."""

    def __init__(
        self,
        sources: dict[str, WorkerSource],
        *,
        ttl_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.links = {name: WorkerLink(source) for name, source in sources.items()}
        self.ttl_s = ttl_s
        self._clock = clock
        self._http: httpx.AsyncClient | None = None

    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=2.0)
        return self._http

    async def views(self) -> list[tuple[str, WorkerView | None, str | None]]:
        """(worker, its figures or None, why not) for every worker, in the registry's order."""
        links = list(self.links.values())
        found = await asyncio.gather(*(self.view(link) for link in links), return_exceptions=True)
        return [
            (link.source.name, None, f"{type(v).__name__}: {v}")
            if isinstance(v, BaseException)
            else (link.source.name, v, None)
            for link, v in zip(links, found, strict=True)
        ]

    async def view(self, link: WorkerLink) -> WorkerView:
        async with link.lock:
            now = self._clock()
            if link.cached is not None and now - link.cached[0] < self.ttl_s:
                return link.cached[1]
            try:
                view = await self._compute(link)
            except Exception:
                await link.close()
                raise
            link.cached = (self._clock(), view)
            return view

    async def newest(self, worker: str, count: int) -> tuple[int, list[DeadLetter]]:
        """How many dead letters the worker holds and its `count` newest, read from the tails of
        its partitions (at most `count` a partition, however long the topic)."""
        link, dlq = self.links[worker], self.links[worker].source.topics.dlq
        async with link.lock:
            try:
                tps = (await link.partitions(link.topic_names())).get(dlq, [])
                begin, end = await link.offsets(tps)
                letters = await link.newest(begin, end, count)
            except Exception:
                await link.close()
                raise
        return sum(end[tp] - begin[tp] for tp in tps), letters[:count]

    async def _compute(self, link: WorkerLink) -> WorkerView:
        source, topics = link.source, link.source.topics
        admin, _consumer = await link.clients()
        inputs, tiers = [t for t in topics.inputs if t], list(topics.retry.values())
        found = await link.partitions(link.topic_names())
        tps = [tp for tps in found.values() for tp in tps]
        (begin, end), committed, (body, error), ready = await asyncio.gather(
            link.offsets(tps),
            _committed(admin, topics.consumer_group, topics.retry_group, found, inputs, tiers),
            health(self.http(), source.health_url),
            readiness(self.http(), source.health_url),
        )
        status = WorkerStatus(source.name, topics.consumer_group, topics.dlq)
        status.health, status.health_error = body, error
        status.missing_topics = [t for t in [*inputs, *tiers, topics.dlq] if t not in found]
        status.lag = [
            _lag(tp, committed.get(tp), begin, end) for t in inputs for tp in found.get(t, [])
        ]
        retry_lag = [
            _lag(tp, committed.get(tp), begin, end) for t in tiers for tp in found.get(t, [])
        ]
        status.retry_depth = {t: sum(p.lag for p in retry_lag if p.topic == t) for t in tiers}
        dlq = found.get(topics.dlq, [])
        dlq_begin, dlq_end = {tp: begin[tp] for tp in dlq}, {tp: end[tp] for tp in dlq}
        (classes, counted, caught_up), replayed, newest = await asyncio.gather(
            link.tally(dlq_begin, dlq_end, TALLY_WAIT_S),
            link.replayed(),
            link.tails(dlq_begin, dlq_end, NEWEST),
        )
        status.dead_letters = classes
        letters = LetterFigures(
            total=sum(dlq_end[tp] - dlq_begin[tp] for tp in dlq),
            per_partition={tp.partition: dlq_end[tp] - dlq_begin[tp] for tp in dlq},
            classes=classes,
            counted=counted,
            caught_up=caught_up,
            replayed=replayed,
            newest=newest[:NEWEST],
        )
        return WorkerView(source.name, status, ready, letters)

    async def close(self) -> None:
        await asyncio.gather(*(link.close() for link in self.links.values()))
        if self._http is not None:
            await self._http.aclose()
            self._http = None


async def _committed(
    admin: AIOKafkaAdminClient,
    group: str,
    retry_group: str,
    found: dict[str, list[TopicPartition]],
    inputs: list[str],
    tiers: list[str],
) -> dict[TopicPartition, int | None]:
    """Each group's committed offset on its partitions (None: it has committed nothing there)."""
    asked = [
        (group, [tp for t in inputs for tp in found.get(t, [])]),
        (retry_group, [tp for t in tiers for tp in found.get(t, [])]),
    ]
    answers = await asyncio.gather(
        *(admin.list_consumer_group_offsets(g, partitions=tps) for g, tps in asked if tps)
    )
    committed: dict[TopicPartition, int | None] = {}
    for answer in answers:
        for tp, meta in answer.items():
            committed[tp] = meta.offset if meta is not None and meta.offset >= 0 else None
    return committed


async def health(client: httpx.AsyncClient, base: str) -> tuple[dict[str, Any] | None, str | None]:
    """The worker's /status (circuit, pause, alarms), or why it could not be had."""
    url = f"{base.rstrip('/')}/status"
    try:
        response = await client.get(url)
        response.raise_for_status()
        body = response.json()
    except httpx.HTTPError as exc:
        return None, f"unreachable: {url}: {type(exc).__name__}: {exc}"
    except ValueError:
        return None, f"not JSON: {url}"
    return (body, None) if isinstance(body, dict) else (None, f"unexpected answer from {url}")


async def readiness(client: httpx.AsyncClient, base: str) -> str:
    try:
        response = await client.get(f"{base.rstrip('/')}/health/ready")
    except httpx.HTTPError:
        return "unreachable"
    return "ready" if response.status_code == 200 else "not ready"


def _lag(tp: TopicPartition, offset: int | None, begin: Offsets, end: Offsets) -> PartitionLag:
    """end - committed, as `regbridge status` counts it (nothing committed: from the beginning)."""
    lag = end[tp] - (begin[tp] if offset is None else max(offset, begin[tp]))
    return PartitionLag(tp.topic, tp.partition, offset, end[tp], lag)
