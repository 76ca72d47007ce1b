"""The error classes of a dead-letter topic, read once and then only what was written since."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.delivery import headers as h
from shared.delivery.status import NO_CLASS

Offsets = dict[TopicPartition, int]


class ClassTally:
    """The error classes of one dead-letter topic: read once from the beginning, then only the
    letters written since; a partition whose beginning moved (retention) is counted again."""

    def __init__(self, consumer: AIOKafkaConsumer, request_timeout_s: float) -> None:
        self._consumer = consumer
        self._timeout = request_timeout_s
        self._counts: dict[TopicPartition, Counter[str]] = {}
        self._start: Offsets = {}
        self._next: Offsets = {}

    def behind(self, begin: Offsets, end: Offsets) -> bool:
        """Whether letters before `end` are not counted, or counted ones are gone."""
        return any(
            self._next.get(tp, -1) < end[tp] or self._start.get(tp) != begin[tp] for tp in end
        )

    def counted(self, end: Offsets) -> tuple[dict[str, int], int]:
        """Letters per error class over the partitions of `end`, most first, and their sum."""
        total: Counter[str] = Counter()
        for tp in end:
            total.update(self._counts.get(tp, {}))
        return dict(total.most_common()), total.total()

    async def catch_up(self, begin: Offsets, end: Offsets) -> None:
        """Count every letter from where it stopped (or `begin`) up to `end`."""
        for tp in end:
            if self._start.get(tp) != begin[tp] or self._next.get(tp, 0) > end[tp]:
                self._start[tp], self._next[tp], self._counts[tp] = begin[tp], begin[tp], Counter()
        todo = {tp: end[tp] for tp in end if self._next[tp] < end[tp]}
        if not todo:
            return
        consumer = self._consumer
        consumer.assign(list(todo))
        for tp in todo:
            consumer.seek(tp, self._next[tp])
        stalled_since = time.monotonic()
        try:
            while todo:
                batches = await consumer.getmany(*todo, timeout_ms=500, max_records=2000)
                for tp, records in batches.items():
                    counts = self._counts[tp]
                    for record in records:
                        if record.offset < todo.get(tp, -1):
                            counts[_error_class(record.headers)] += 1
                            self._next[tp] = record.offset + 1
                for tp in list(todo):
                    position = await consumer.position(tp)
                    if position >= todo[tp]:
                        self._next[tp] = max(self._next[tp], todo[tp])
                        consumer.pause(tp)
                        del todo[tp]
                if batches:
                    stalled_since = time.monotonic()
                elif time.monotonic() - stalled_since > self._timeout:
                    raise TimeoutError(f"no progress towards the end offsets {end}")
                await asyncio.sleep(0)  # let pages be answered between batches
        finally:
            consumer.unsubscribe()  # nothing fetched in the background between two catch-ups


def _error_class(headers: Any) -> str:
    for name, value in headers or ():
        if name == h.ERROR_CLASS:
            return str(value.decode("utf-8", "replace"))
    return NO_CLASS
