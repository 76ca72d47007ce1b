"""What a compacted catalog topic holds: per key a digest of its value and when its source last
changed it (or removed it), read from the headers every catalog record carries."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import ConsumerRecord, TopicPartition

from shared.kafka import read_to_end
from shared.settings import KafkaSettings

SOURCE_CHANGED_AT = "regbridge-source-changed-at"  # ISO 8601: when the source changed the value
WRITTEN_BY = "regbridge-written-by"  # "notification", or "import:<id>" for one full import
NOTIFICATION = "notification"

Headers = list[tuple[str, bytes]]


def stamp(written_by: str, changed_at: datetime | None) -> Headers:
    """The headers of a catalog record: who wrote it and, if known, when its source changed it
    (for a tombstone: when the value was found removed)."""
    headers = [(WRITTEN_BY, written_by.encode())]
    if changed_at is not None:
        headers.append((SOURCE_CHANGED_AT, changed_at.astimezone(UTC).isoformat().encode()))
    return headers


def digest(value: bytes) -> bytes:
    return hashlib.blake2b(value, digest_size=16).digest()


@dataclass(frozen=True)
class Written:
    """One record as read back: who wrote it, when its source changed it, value and headers."""

    key: str
    written_by: str | None
    changed_at: float | None  # Unix time
    value: bytes | None
    headers: Headers


def written(record: ConsumerRecord[bytes, bytes]) -> Written | None:
    """The record as the catalog reads it back (None for a record without a key)."""
    if record.key is None:
        return None
    headers = [(name, bytes(value)) for name, value in record.headers or ()]
    named = dict(headers)
    changed_at: float | None = None
    if SOURCE_CHANGED_AT in named:
        changed_at = datetime.fromisoformat(named[SOURCE_CHANGED_AT].decode()).timestamp()
    elif record.value is not None:  # written before the header existed: the value may say
        changed_at = _changed_in_value(record.value)
    by = named.get(WRITTEN_BY)
    return Written(
        record.key.decode(), by.decode() if by else None, changed_at, record.value, headers
    )


def _changed_in_value(value: bytes) -> float | None:
    try:
        text = json.loads(value).get("source_updated_at")
        return datetime.fromisoformat(text).timestamp() if isinstance(text, str) else None
    except (ValueError, AttributeError):
        return None


@dataclass
class TopicState:
    """The topic as of `ends`: digests of the present values; when each key's source last changed
    it or removed it (where known: Unix time, or the header's ISO text, read when asked)."""

    digests: dict[str, bytes] = field(default_factory=dict)
    changed_at: dict[str, float | bytes] = field(default_factory=dict)
    ends: dict[TopicPartition, int] = field(default_factory=dict)

    def apply(self, record: Written) -> None:
        if record.value is None:
            self.digests.pop(record.key, None)
        else:
            self.digests[record.key] = digest(record.value)
        if record.changed_at is not None:
            self.changed_at[record.key] = record.changed_at
        else:
            self.changed_at.pop(record.key, None)

    def read(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """`apply(written(record))` without building a Written: the state of 300,000 records is
        read at every import, so only the digest and the header's text are kept per record."""
        if record.key is None:
            return
        key = record.key.decode()
        value = record.value
        changed: float | bytes | None = None
        for name, text in record.headers or ():
            if name == SOURCE_CHANGED_AT:
                changed = bytes(text)
        if value is None:
            self.digests.pop(key, None)
        else:
            self.digests[key] = digest(value)
            if changed is None:  # written before the header existed: the value may say
                changed = _changed_in_value(value)
        if changed is not None:
            self.changed_at[key] = changed
        else:
            self.changed_at.pop(key, None)

    def changed_at_of(self, key: str) -> float | None:
        """When the source last changed or removed `key` (Unix time), if known."""
        changed = self.changed_at.get(key)
        if isinstance(changed, bytes):
            changed = self.changed_at[key] = datetime.fromisoformat(changed.decode()).timestamp()
        return changed

    def changed_since(self, key: str, as_of: float | None) -> bool:
        """Changed (or removed) by its source at or after `as_of`: newer than a snapshot as of
        then, which must not overwrite it. Same second counts: HSA's times are whole seconds."""
        if as_of is None:
            return False
        changed = self.changed_at_of(key)
        return changed is not None and changed >= as_of


async def read_state(
    kafka: KafkaSettings, topic: str, on_end: Callable[[], None] | None = None
) -> TopicState:
    """The topic's current state (tombstones remove the value, and keep the removal's time).
    `on_end` is called once the end offsets it is read to are fixed, before it is read."""
    state = TopicState()

    def fixed(ends: dict[TopicPartition, int]) -> None:
        state.ends = ends
        if on_end is not None:
            on_end()

    state.ends = await read_to_end(kafka, [topic], state.read, on_end=fixed)
    return state


async def read_since(
    kafka: KafkaSettings, topic: str, start: Mapping[TopicPartition, int]
) -> list[Written]:
    """Every record written to `topic` after `start` (offsets), in order per partition."""
    seen: list[Written] = []

    def keep(record: ConsumerRecord[bytes, bytes]) -> None:
        if (item := written(record)) is not None:
            seen.append(item)

    await read_to_end(kafka, [topic], keep, start=start)
    return seen
