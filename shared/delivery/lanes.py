"""Chunks in hand, overlapped: a lane per consumer, a gate per record.

While one chunk's last register calls, its publishing, settling and commit run, the next chunk
of the same consumer is parsed, mapped and sent, and the retry consumer's chunks run beside the
input's. What keeps that safe:

- **A record's events in order** (`RecordGate`): a chunk opens its books only after every earlier
  chunk (of either consumer) holding one of its records has settled, so it reads what they wrote.
- **Offsets in order** (`Lane`): a consumer's chunks decide, and commit, one after the other in
  the order they were fetched; no commit passes an event that is not finished.
- **Hand-backs reach later chunks** (`Lane.floor_later`): when a chunk hands a partition back
  (seeks it back to an offset), the chunks of that consumer already fetched past it hand their
  events there back too, unsent once they know, and commit nothing there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from shared.delivery.chunk import ChunkJob, Partition

Batch = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


@dataclass(eq=False)
class InHand:
    """A fetched chunk whose steps run in their own task."""

    job: ChunkJob
    batch: Batch
    epoch: int  # the consumer's assignment epoch when it was fetched
    previous: InHand | None  # the chunk of the same consumer fetched just before, if in hand
    decided: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    holds: asyncio.Future[None] | None = None  # its claim on its records (`RecordGate`)
    claimed: asyncio.Future[None] | None = None  # set once it has claimed (or never will)
    claims_after: asyncio.Future[None] | None = None  # the chunk fetched before it: `claimed`

    async def after_previous_decided(self) -> None:
        if self.previous is not None:
            await self.previous.decided.wait()

    async def after_previous_done(self) -> None:
        if self.previous is not None:
            await self.previous.done.wait()


class RecordGate:
    """Which chunk holds each record until it settles; later chunks of the record wait for it.

    Chunks claim their records in the order they were fetched (of either consumer): a chunk is
    lined up when it is fetched, parsed in its own task, and claims once the chunk fetched just
    before it has claimed."""

    def __init__(self) -> None:
        self._holders: dict[str, asyncio.Future[None]] = {}
        self._last: asyncio.Future[None] | None = None  # the claim of the chunk fetched last

    def line_up(self, chunk: InHand) -> None:
        """At fetch (no await since): the chunk claims after the one fetched before it."""
        chunk.claims_after = self._last
        chunk.claimed = self._last = asyncio.get_running_loop().create_future()

    async def claim(self, chunk: InHand) -> set[asyncio.Future[None]]:
        """Hold the chunk's parsed records, in fetch order; what it must wait for first."""
        if chunk.claims_after is not None and not chunk.claims_after.done():
            await asyncio.wait({chunk.claims_after})  # never cancels the earlier chunk's claim
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        chunk.holds = mine
        waits: set[asyncio.Future[None]] = set()
        for record in chunk.job.records:
            earlier = self._holders.get(record)
            if earlier is not None and not earlier.done():
                waits.add(earlier)
            self._holders[record] = mine
        self.passed(chunk)
        return waits

    @staticmethod
    def passed(chunk: InHand) -> None:
        """The chunk has claimed, or never will (it failed or was cancelled first): the chunk
        fetched after it may claim."""
        if chunk.claimed is not None and not chunk.claimed.done():
            chunk.claimed.set_result(None)

    def release(self, chunk: InHand) -> None:
        """The chunk's records are settled (or never will be by it): the next may go."""
        mine = chunk.holds
        if mine is None or mine.done():
            return
        mine.set_result(None)
        for record in chunk.job.records:
            if self._holders.get(record) is mine:
                del self._holders[record]


class Lane:
    """One consumer's chunks in hand, oldest first, at most `depth` of them."""

    def __init__(self, name: str, consumer: AIOKafkaConsumer, depth: int) -> None:
        self.name = name
        self.consumer = consumer
        self.depth = depth
        self.failure: BaseException | None = None  # a chunk's unexpected error: the loop raises
        self._hand: list[InHand] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def chunk(self, job: ChunkJob, batch: Batch, epoch: int) -> InHand:
        return InHand(job, batch, epoch, self._hand[-1] if self._hand else None)

    def start(self, chunk: InHand, steps: Coroutine[Any, Any, None]) -> None:
        self._hand.append(chunk)
        task = asyncio.create_task(steps)
        self._tasks.add(task)
        task.add_done_callback(self._ended)

    def finished(self, chunk: InHand) -> None:
        chunk.decided.set()
        chunk.done.set()
        chunk.previous = None  # done with it: no chain of every chunk ever run stays reachable
        if chunk in self._hand:
            self._hand.remove(chunk)

    async def room(self) -> None:
        """Until fewer than `depth` chunks are in hand (raising a chunk's unexpected error)."""
        while len(self._hand) >= self.depth:
            await self._hand[0].done.wait()
        self.raise_failure()

    async def settled(self) -> None:
        """Until every chunk in hand is finished."""
        while self._hand:
            await self._hand[-1].done.wait()

    def fail(self, error: BaseException) -> None:
        """A chunk failed unexpectedly (set before its `done`, so that no later chunk commits)."""
        if self.failure is None:
            self.failure = error

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()

    def raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure

    def floor_later(self, chunk: InHand, partitions: dict[Partition, int]) -> None:
        """The chunks fetched after `chunk` hand back these partitions from these offsets."""
        later = self._hand[self._hand.index(chunk) + 1 :] if chunk in self._hand else []
        for other in later:
            floor = other.job.floor
            for key, offset in partitions.items():
                floor[key] = min(floor.get(key, offset), offset)

    def assigned(self, keys: Iterable[Partition]) -> list[TopicPartition]:
        assignment = self.consumer.assignment()
        return [tp for tp in (TopicPartition(*key) for key in keys) if tp in assignment]

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self.fail(error)
