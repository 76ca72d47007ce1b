"""Publish a full snapshot to a compacted topic: only what changed, tombstones for what is gone,
and never anything older than what the topic holds.

A snapshot holds its source as of some moment (HSA's export: 1.5 hours before the import). A key
whose value the source changed or removed at or after that moment — a notification came in
between — is newer than the snapshot: it is neither overwritten nor tombstoned. Notifications that
arrive while the import runs are read back at its end: where the import overwrote one, the
notification's record is written again."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from services.catalog.topic_state import (
    TopicState,
    Written,
    digest,
    read_since,
    read_state,
    stamp,
)
from services.catalog.writer import CatalogWriter
from shared.logging import get_logger
from shared.settings import KafkaSettings

log = get_logger(__name__)
PROGRESS_EVERY = 25_000
EARLY_ENTRIES = 50_000  # entries held while the topic's state is still being read


@dataclass(frozen=True)
class Entry:
    """One item of a snapshot: its key and value (and when the source last changed it), or why
    it could not be used.

    An entry with a key but no value is *seen* (never tombstoned) but skipped; an entry without a
    key could be any unit, so no removal is trusted in that snapshot."""

    key: str | None
    value: bytes | None
    problem: str | None = None
    changed_at: datetime | None = None


class Snapshot(Protocol):
    """A complete snapshot: its entries, and as of when it holds its source (None: now). `as_of`
    is known once iteration has begun (an export's header says it)."""

    as_of: datetime | None

    def __aiter__(self) -> AsyncIterator[Entry]: ...


class Listed:
    """A snapshot that holds its source as of now (NVR's vaccine list, a code file)."""

    as_of: datetime | None = None

    def __init__(self, entries: AsyncIterator[Entry]) -> None:
        self._entries = entries

    def __aiter__(self) -> AsyncIterator[Entry]:
        return self._entries


@dataclass
class SnapshotReport:
    topic: str
    as_of: datetime | None = None
    seen: int = 0
    published: int = 0
    unchanged: int = 0
    removed: int = 0
    newer_kept: int = 0  # changed by a notification after the snapshot's as-of time: left alone
    restored: int = 0  # notifications overwritten while the import ran, written again
    skipped: Counter[str] = field(default_factory=Counter)
    removals_withheld: str | None = None
    seconds: float = 0.0

    def summary(self) -> str:
        skipped = sum(self.skipped.values())
        text = (
            f"{self.topic}: {self.seen} seen, {self.published} published, "
            f"{self.unchanged} unchanged, {self.removed} removed, {skipped} skipped, "
            f"{self.newer_kept} newer kept in {self.seconds:.1f}s"
        )
        if self.as_of is not None:
            text += f" (as of {self.as_of.isoformat(timespec='seconds')})"
        return text + (
            f"; removals withheld: {self.removals_withheld}" if self.removals_withheld else ""
        )


async def publish_snapshot(
    kafka: KafkaSettings,
    writer: CatalogWriter,
    topic: str,
    snapshot: Snapshot,
    *,
    max_removal_share: float = 0.05,
    progress: Callable[[str], None] | None = None,
) -> SnapshotReport:
    """Compare `snapshot` (complete) with the topic and publish the difference.

    If the snapshot raises (a truncated or failed export), what changed so far is published and
    the error propagates: nothing is tombstoned on the strength of an incomplete snapshot."""
    started = time.perf_counter()
    report = SnapshotReport(topic)
    writer_id = f"import:{uuid.uuid4().hex[:12]}"
    # The topic is read (to the end offsets it has before the snapshot is opened) while the
    # snapshot streams in; entries wait (up to EARLY_ENTRIES) until it is read. Nothing is
    # written before then, so the import's records all follow those ends.
    ends_fixed = asyncio.Event()
    reading = asyncio.create_task(read_state(kafka, topic, on_end=ends_fixed.set))
    fixing = asyncio.create_task(ends_fixed.wait())
    try:
        await asyncio.wait({reading, fixing}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        reading.cancel()
        raise
    finally:
        fixing.cancel()
    if reading.done():
        reading.result()  # raises what reading the topic raised
    compare = _Comparison(report, writer, topic, writer_id)
    early: list[Entry] = []
    try:
        async for entry in snapshot:
            if report.seen == 0 and snapshot.as_of is not None:
                report.as_of, compare.as_of = snapshot.as_of, snapshot.as_of.timestamp()
            report.seen += 1
            if compare.state is not None:
                await compare.entry(entry)
            else:
                early.append(entry)
                if len(early) >= EARLY_ENTRIES or reading.done():
                    await compare.start(await reading, early)
            if progress and report.seen % PROGRESS_EVERY == 0:
                progress(f"{topic}: {report.seen} read, {report.published} published")
    except asyncio.CancelledError:
        reading.cancel()
        raise
    finally:
        try:
            if compare.state is None and not reading.cancelling() and not reading.cancelled():
                # also when the snapshot broke off: what changed so far is published
                await compare.start(await reading, early)
        finally:
            await writer.flush()
            report.seconds = time.perf_counter() - started
    assert compare.state is not None
    state, seen, as_of = compare.state, compare.seen, compare.as_of
    present_at_start = set(state.digests)
    report.restored = await _restore_newer(kafka, writer, topic, state, writer_id, as_of)
    gone = [
        key
        for key in present_at_start
        if key not in seen and key in state.digests and not state.changed_since(key, as_of)
    ]
    report.newer_kept += sum(
        1 for key in present_at_start if key not in seen and state.changed_since(key, as_of)
    )
    await _remove(writer, report, state, gone, writer_id, compare.unidentified, max_removal_share)
    report.seconds = time.perf_counter() - started
    log.info(
        "snapshot_published",
        topic=topic,
        as_of=report.as_of.isoformat() if report.as_of else None,
        seen=report.seen,
        published=report.published,
        unchanged=report.unchanged,
        removed=report.removed,
        newer_kept=report.newer_kept,
        restored=report.restored,
        skipped=sum(report.skipped.values()),
        seconds=round(report.seconds, 2),
    )
    return report


class _Comparison:
    """Each entry against the topic's state: unchanged, newer on the topic (kept), or sent."""

    def __init__(
        self, report: SnapshotReport, writer: CatalogWriter, topic: str, writer_id: str
    ) -> None:
        self.report = report
        self.state: TopicState | None = None
        self.as_of: float | None = None
        self.seen: set[str] = set()
        self.unidentified = 0
        self._writer = writer
        self._topic = topic
        self._writer_id = writer_id

    async def start(self, state: TopicState, early: list[Entry]) -> None:
        """The topic is read: compare the entries that came before it was."""
        self.state = state
        for entry in early:
            await self.entry(entry)
        early.clear()

    async def entry(self, entry: Entry) -> None:
        report, state = self.report, self.state
        assert state is not None  # compared only once the topic is read
        if entry.key is not None:
            self.seen.add(entry.key)
        if entry.value is None:
            report.skipped[entry.problem or "unusable"] += 1
            self.unidentified += entry.key is None
            log.warning(
                "snapshot_entry_skipped", topic=self._topic, key=entry.key, reason=entry.problem
            )
            return
        assert entry.key is not None  # a value always comes with its key
        if state.digests.get(entry.key) == digest(entry.value):
            report.unchanged += 1
        elif state.changed_since(entry.key, self.as_of):
            report.newer_kept += 1
        else:
            headers = stamp(self._writer_id, entry.changed_at)
            await self._writer.send(self._topic, entry.key, entry.value, headers)
            report.published += 1


async def _restore_newer(
    kafka: KafkaSettings,
    writer: CatalogWriter,
    topic: str,
    state: TopicState,
    writer_id: str,
    as_of: float | None,
) -> int:
    """Read what was written while the import ran. Where the import's record came after a newer
    one from someone else (a notification), write that one again; `state` follows the topic."""
    latest_other: dict[str, Written] = {}
    overwritten: dict[str, Written] = {}
    for record in await read_since(kafka, topic, state.ends):
        if record.written_by == writer_id:
            newer = latest_other.get(record.key)
            if newer is not None and (as_of is None or (newer.changed_at or 0) >= as_of):
                overwritten[record.key] = newer
            continue
        latest_other[record.key] = record
        overwritten.pop(record.key, None)
        state.apply(record)
    for key, record in overwritten.items():
        await writer.send(topic, key, record.value, record.headers)
        state.apply(record)
        log.warning("snapshot_restored_newer", topic=topic, key=key, written_by=record.written_by)
    await writer.flush()
    return len(overwritten)


async def _remove(
    writer: CatalogWriter,
    report: SnapshotReport,
    state: TopicState,
    gone: list[str],
    writer_id: str,
    unidentified: int,
    max_removal_share: float,
) -> None:
    """Tombstone `gone`, unless the snapshot could not identify every entry or would remove
    more than `max_removal_share` of the topic (withheld, logged as an error)."""
    present = len(state.digests)  # `gone` is among them
    if unidentified:
        report.removals_withheld = f"{unidentified} entries could not be identified"
    elif present and len(gone) > max_removal_share * present:
        report.removals_withheld = (
            f"{len(gone)} of {present} would be removed (more than {max_removal_share:.0%})"
        )
    if report.removals_withheld:
        log.error(
            "snapshot_removals_withheld",
            topic=report.topic,
            reason=report.removals_withheld,
            would_remove=len(gone),
        )
        return
    removed_at = report.as_of or datetime.now(UTC)
    for key in gone:
        await writer.send(report.topic, key, None, stamp(writer_id, removed_at))
    await writer.flush()
    report.removed = len(gone)
