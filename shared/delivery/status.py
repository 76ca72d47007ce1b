"""Worker status for operators: consumer lag, retry-tier depth, dead letters, circuit state."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.delivery.dlq_read import TopicNotFoundError, read_dead_letters
from shared.kafka import admin_client, existing_partitions, standalone_consumer
from shared.settings import KafkaSettings
from shared.topics import WorkerTopics

NO_CLASS = "(none)"


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
    consumer, admin = standalone_consumer(kafka), admin_client(kafka)
    await consumer.start()
    await admin.start()
    try:
        found = await existing_partitions(admin, topics)
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
    kafka: KafkaSettings, topics: WorkerTopics, *, health_url: str | None = None
) -> WorkerStatus:
    """Input lag, retry-tier depth, dead letters by class and, given a URL, the circuit state."""
    status = WorkerStatus(topics.worker, topics.consumer_group, topics.dlq)
    inputs = [topic for topic in topics.inputs if topic]
    status.lag, missing = await group_lag(kafka, topics.consumer_group, inputs)
    tiers = list(topics.retry.values())
    retry_lag, missing_tiers = await group_lag(kafka, topics.retry_group, tiers)
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
