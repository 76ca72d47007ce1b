"""Publish a full snapshot to a compacted topic: only what changed, tombstones for what is gone."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer, ConsumerRecord

from shared.kafka import kafka_client_options, read_to_end
from shared.logging import get_logger
from shared.settings import KafkaSettings

log = get_logger(__name__)
PROGRESS_EVERY = 25_000
SEND_WINDOW = 5_000  # sends awaited together


@dataclass(frozen=True)
class Entry:
    """One item of a snapshot: its key and value, or why it could not be used.

    An entry with a key but no value is *seen* (never tombstoned) but skipped; an entry without a
    key could be any unit, so no removal is trusted in that snapshot."""

    key: str | None
    value: bytes | None
    problem: str | None = None


@dataclass
class SnapshotReport:
    topic: str
    seen: int = 0
    published: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    removals_withheld: str | None = None
    seconds: float = 0.0

    def summary(self) -> str:
        skipped = sum(self.skipped.values())
        text = (
            f"{self.topic}: {self.seen} seen, {self.published} published, "
            f"{self.unchanged} unchanged, {self.removed} removed, {skipped} skipped "
            f"in {self.seconds:.1f}s"
        )
        return text + (
            f"; removals withheld: {self.removals_withheld}" if self.removals_withheld else ""
        )


def digest(value: bytes) -> bytes:
    return hashlib.blake2b(value, digest_size=16).digest()


async def current_digests(kafka: KafkaSettings, topic: str) -> dict[str, bytes]:
    """The topic's current state as key → digest of the value (tombstones remove the key)."""
    state: dict[str, bytes] = {}

    def keep(record: ConsumerRecord[bytes, bytes]) -> None:
        if record.key is None:
            return
        key = record.key.decode()
        if record.value is None:
            state.pop(key, None)
        else:
            state[key] = digest(record.value)

    await read_to_end(kafka, [topic], keep)
    return state


class CatalogWriter:
    """The one producer the catalog sync writes its compacted topics with (acks=all)."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._producer = AIOKafkaProducer(
            **kafka_client_options(kafka),
            acks="all",
            enable_idempotence=True,
            linger_ms=20,
            compression_type="gzip",
        )
        self._pending: list[asyncio.Future[object]] = []

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self.flush()
        await self._producer.stop()

    async def send(self, topic: str, key: str, value: bytes | None) -> None:
        self._pending.append(await self._producer.send(topic, value, key=key.encode()))
        if len(self._pending) >= SEND_WINDOW:
            await self.flush()

    async def publish(self, topic: str, key: str, value: bytes | None) -> None:
        """Send one record and wait until Kafka has it (for the notification path)."""
        await (await self._producer.send(topic, value, key=key.encode()))

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)


async def publish_snapshot(
    kafka: KafkaSettings,
    writer: CatalogWriter,
    topic: str,
    entries: AsyncIterator[Entry],
    *,
    max_removal_share: float = 0.05,
    progress: Callable[[str], None] | None = None,
) -> SnapshotReport:
    """Compare `entries` (a complete snapshot) with the topic and publish the difference.

    If `entries` raises (a truncated or failed export), what changed so far is published and the
    error propagates: nothing is tombstoned on the strength of an incomplete snapshot."""
    started = time.perf_counter()
    report = SnapshotReport(topic)
    current = await current_digests(kafka, topic)
    seen: set[str] = set()
    unidentified = 0
    try:
        async for entry in entries:
            report.seen += 1
            if entry.key is not None:
                seen.add(entry.key)
            if entry.value is None:
                report.skipped[entry.problem or "unusable"] += 1
                unidentified += entry.key is None
                log.warning(
                    "snapshot_entry_skipped", topic=topic, key=entry.key, reason=entry.problem
                )
                continue
            assert entry.key is not None  # a value always comes with its key
            if current.get(entry.key) == digest(entry.value):
                report.unchanged += 1
            else:
                await writer.send(topic, entry.key, entry.value)
                report.published += 1
            if progress and report.seen % PROGRESS_EVERY == 0:
                progress(f"{topic}: {report.seen} read, {report.published} published")
    finally:
        await writer.flush()
        report.seconds = time.perf_counter() - started
    gone = [key for key in current if key not in seen]
    if unidentified:
        report.removals_withheld = f"{unidentified} entries could not be identified"
    elif current and len(gone) > max_removal_share * len(current):
        report.removals_withheld = (
            f"{len(gone)} of {len(current)} would be removed (more than {max_removal_share:.0%})"
        )
    if report.removals_withheld:
        log.error(
            "snapshot_removals_withheld",
            topic=topic,
            reason=report.removals_withheld,
            would_remove=len(gone),
        )
    else:
        for key in gone:
            await writer.send(topic, key, None)
        await writer.flush()
        report.removed = len(gone)
    report.seconds = time.perf_counter() - started
    log.info(
        "snapshot_published",
        topic=topic,
        seen=report.seen,
        published=report.published,
        unchanged=report.unchanged,
        removed=report.removed,
        skipped=sum(report.skipped.values()),
        seconds=round(report.seconds, 2),
    )
    return report
