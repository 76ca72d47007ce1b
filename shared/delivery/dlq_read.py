"""Reading dead letters: the record, its filter, a whole topic or one position."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.delivery import headers as h
from shared.kafka import admin_client, existing_partitions, standalone_consumer
from shared.settings import KafkaSettings

Progress = Callable[[int, int], None]


class TopicNotFoundError(LookupError):
    """The topic does not exist on the cluster."""


class StalledReadError(RuntimeError):
    """Reading a topic up to its end offsets made no progress for a whole request timeout."""


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


async def _partitions_of(kafka: KafkaSettings, topic: str) -> list[TopicPartition]:
    admin = admin_client(kafka)
    await admin.start()
    try:
        found = await existing_partitions(admin, [topic])
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
    consumer = standalone_consumer(kafka)
    await consumer.start()
    try:
        begin, end = await consumer.beginning_offsets(tps), await consumer.end_offsets(tps)
        todo = {tp: end[tp] for tp in tps if end[tp] > begin[tp]}
        if not todo:
            return []
        consumer.assign(list(todo))
        await consumer.seek_to_beginning(*todo)
        total, found = sum(end[tp] - begin[tp] for tp in todo), []
        async for read, letters in _read_to(consumer, todo, kafka.request_timeout_ms / 1000, topic):
            found += [dl for dl in letters if wanted.matches(dl)]
            if progress is not None:
                progress(read, total)
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
    consumer = standalone_consumer(kafka)
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


async def read_tails(
    consumer: AIOKafkaConsumer,
    begin: dict[TopicPartition, int],
    end: dict[TopicPartition, int],
    count: int | dict[TopicPartition, int],
    *,
    timeout_s: float,
) -> list[DeadLetter]:
    """The last `count` records before `end` of each partition (fewer where it holds fewer; a
    count per partition when a dict), read with a started standalone consumer: `count` records
    a partition, however long the topic. The consumer is left assigned to every partition of
    `end`, all paused, so that the next read needs no new metadata."""
    counts = count if isinstance(count, dict) else dict.fromkeys(end, count)
    todo = {tp: end[tp] for tp in counts if end[tp] > begin[tp] and counts[tp] > 0}
    if consumer.assignment() != set(end):
        consumer.assign(list(end))
    consumer.pause(*end)
    if not todo:
        return []
    for tp in todo:
        consumer.seek(tp, max(begin[tp], end[tp] - counts[tp]))
    consumer.resume(*todo)
    found: list[DeadLetter] = []
    try:
        async for _, letters in _read_to(consumer, todo, timeout_s, "dead-letter tails"):
            found += letters
    finally:
        consumer.pause(*end)
    return found


async def _read_to(
    consumer: AIOKafkaConsumer, todo: dict[TopicPartition, int], timeout_s: float, what: str
) -> AsyncIterator[tuple[int, list[DeadLetter]]]:
    """Read the assigned, sought partitions of `todo` up to their offsets (pausing each when
    there): after each fetch that brought records, how many were read so far and the new ones.
    `StalledReadError` when nothing comes for `timeout_s`."""
    todo, read = dict(todo), 0
    end = dict(todo)
    stalled_since = time.monotonic()
    while todo:
        batches = await consumer.getmany(*todo, timeout_ms=500)
        letters = [_dead_letter(r) for tp, rs in batches.items() for r in rs if r.offset < end[tp]]
        for tp in list(todo):
            if await consumer.position(tp) >= todo[tp]:
                consumer.pause(tp)
                del todo[tp]
        if batches:
            stalled_since, read = time.monotonic(), read + len(letters)
            yield read, letters
        elif time.monotonic() - stalled_since > timeout_s:
            raise StalledReadError(f"{what}: no progress towards the end offsets {end}")


def pretty(data: bytes | str | None) -> str:
    """A dead letter's value or register answer for a person to read: JSON indented, anything
    else as text (undecodable bytes replaced); "(none)" for nothing."""
    if data is None:
        return "(none)"
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text
