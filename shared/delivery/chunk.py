"""One chunk of records: parse → open the books → each record's path → decide → publish → settle."""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from shared.delivery.batcher import Batcher, Permits, SubmitFn
from shared.delivery.bookkeeping import Bookkeeper, RecordBook
from shared.delivery.clock import Clock
from shared.delivery.errors import ConfigurationError, InvalidEventError
from shared.delivery.fates import (
    TAIL,
    DeadLettered,
    Done,
    Failed,
    Fate,
    HandedBack,
    Verdict,
    decide,
)
from shared.delivery.guards import Flow, Guards
from shared.delivery.metrics import Metrics
from shared.delivery.options import RuntimeOptions
from shared.delivery.outgoing import Inbound, Outgoing, Writer, key_text
from shared.delivery.record import Call, Item, RecordPath, Sender
from shared.delivery.retry import RetryPolicy
from shared.delivery.tracing import EventTracing, pass_on_trace
from shared.delivery.worker import RegisterWorker, Submission
from shared.logging import get_logger

log = get_logger(__name__)
Publish = Callable[[Sequence[Outgoing]], Awaitable[None]]

SLICE = 32
"""Events a chunk's step parses, maps or writes between two turns of the event loop while calls
are out: a chunk of 500 care contacts takes ~12 ms to parse and as long to map, during which no
answer to another chunk's calls would be read (and each of the 64 calls out would wait that much
longer)."""

_RETRIES_FIRST = 1 << 62  # subtracted from a retry chunk's rank: below every input chunk's


async def _turn(calls: Permits) -> None:
    """Give the event loop a turn (after a slice) if calls are out: a turn costs some 60,000
    instructions, and with nothing out there is no answer to read."""
    if calls.out:
        await asyncio.sleep(0)


@dataclass(frozen=True)
class ChunkResult:
    """Every record's fate, settled in the ledger, its messages durable; and what the worker
    does next (pause, resume, carry on). The caller commits the offsets."""

    fates: tuple[tuple[Item, Fate], ...]
    flow: Flow


@dataclass
class ChunkRunner:
    """Decides and makes durable the fate of every record of a chunk, concurrently by record."""

    worker: RegisterWorker[Any]
    books: Bookkeeper
    guards: Guards
    writer: Writer
    retry: RetryPolicy
    options: RuntimeOptions
    clock: Clock
    metrics: Metrics
    publish: Publish  # every message durable (acks=all) before it returns
    tracing: EventTracing | None = None  # None: tracing off, no spans at all
    halted: Callable[[], str | None] = lambda: None  # why nothing more is sent (handed back)

    limit: Permits = field(init=False)  # events at the register, across chunks
    _fetched: Iterator[int] = field(init=False)  # each chunk's place in fetch order

    def __post_init__(self) -> None:
        self.limit = Permits(self.options.max_in_flight)
        self._fetched = itertools.count()

    async def run(self, chunk: Sequence[Inbound]) -> ChunkResult:
        """One chunk through every step, alone (the runtime overlaps them with `ChunkJob`)."""
        job = self.job(chunk)
        await job.parse()
        await job.deliver()
        job.decide()
        return await job.finish()

    def job(self, chunk: Sequence[Inbound]) -> ChunkJob:
        """A chunk, its steps ready to run one by one (`parse` first)."""
        return ChunkJob(self, chunk)

    def _log_dead_letters(self, chunk: Sequence[tuple[Item, Fate]]) -> None:
        """Each dead letter once, at warning, when it is durable (identity numbers masked)."""
        for item, fate in chunk:
            if isinstance(fate, DeadLettered):
                log.warning(
                    "dead_lettered", worker=self.worker.name, **_dead_letter_fields(item, fate)
                )

    async def _messages(self, chunk: Sequence[tuple[Item, Fate]], now: datetime) -> list[Outgoing]:
        """Retry records, dead letters and results, in chunk order, carrying the trace."""
        messages: list[Outgoing] = []
        for item, fate in chunk:
            if item.index % SLICE == SLICE - 1:
                await _turn(self.limit)
            mine = self.writer.messages(item.inbound, item.identity, fate, now)
            if self.tracing is not None:
                self.tracing.trace_messages(item, mine)
            elif item.inbound.headers:  # retries and dead letters carry them anyway
                for message in mine:
                    pass_on_trace(item.inbound.headers, message)
            messages.extend(mine)
        return messages


Partition = tuple[str, int]  # (topic, partition)


class ChunkJob:
    """One chunk's steps, for a runtime that overlaps chunks: `parse`, `deliver` (open the books,
    each record's path, the register's answers), `decide` (every fate), `finish` (publish,
    settle).

    `floor` holds the partitions an earlier chunk handed back, from the offset it handed back:
    every event of this chunk there is handed back too (the partition is read again from the
    earlier offset), and none of them is sent once the floor is known."""

    def __init__(self, runner: ChunkRunner, chunk: Sequence[Inbound]) -> None:
        self.runner = runner
        # Its calls go before a later chunk's (`Permits`), a retry chunk's before any input
        # chunk's: its events were read from the input before any of those
        retries = bool(chunk) and chunk[0].from_retry
        self.rank = next(runner._fetched) - (_RETRIES_FIRST if retries else 0)
        self.items = [Item(index, inbound) for index, inbound in enumerate(chunk)]
        self.floor: dict[Partition, int] = {}
        self.fates: tuple[tuple[Item, Fate], ...] = ()
        self._verdicts: dict[int, Verdict] = {}
        self._parsed = False
        self._books: dict[str, RecordBook] = {}
        self._calls: list[Call] = []
        self._now = runner.clock.now()
        self._traced = False

    @cached_property
    def records(self) -> set[str]:
        """The records this chunk's parsed events belong to."""
        return {item.identity.record_id for item in self.items if item.identity is not None}

    def partitions(self) -> dict[Partition, int]:
        """Each partition of the chunk and its first offset in it."""
        first: dict[Partition, int] = {}
        for item in self.items:
            key = (item.inbound.topic, item.inbound.partition)
            first[key] = min(first.get(key, item.inbound.offset), item.inbound.offset)
        return first

    def floored(self, item: Item) -> bool:
        at = self.floor.get((item.inbound.topic, item.inbound.partition))
        return at is not None and item.inbound.offset >= at

    async def parse(self) -> None:
        """Every event parsed (once, in slices); the verdicts of those that cannot be."""
        if self._parsed:
            return
        self._parsed = True
        parse, verdicts = self.runner.worker.parse, self._verdicts
        for item in self.items:
            try:
                item.identity, item.event = parse(item.inbound.value)
            except InvalidEventError as exc:
                verdicts[item.index] = Failed(exc)
            if item.index % SLICE == SLICE - 1:
                await _turn(self.runner.limit)

    async def deliver(self) -> None:
        await self.parse()
        runner = self.runner
        if runner.tracing is not None:
            runner.tracing.start(self.items)
            self._traced = True
        try:
            self._now = runner.clock.now()
            self._books = await runner.books.open(self.items, self._now)
            for item in self.items:
                if self.floored(item):
                    self._verdicts[item.index] = Done(HandedBack(TAIL))
            self._calls = await self._walk()
        except BaseException as exc:
            self.abort(exc)
            raise

    def decide(self) -> Sequence[tuple[Item, Fate]]:
        runner = self.runner
        fates = decide(
            [(item.inbound, self._verdicts[item.index]) for item in self.items],
            register_down=runner.guards.register_down(self._calls),
            retry=runner.retry,
            now=self._now,
            admit=runner.guards.admit,
            floor=self.floor,
        )
        self.fates = tuple(zip(self.items, fates, strict=True))
        return self.fates

    def handed_back(self) -> dict[Partition, int]:
        """The partitions this chunk hands back, each from its first handed-back offset."""
        first: dict[Partition, int] = {}
        for item, fate in self.fates:
            if isinstance(fate, HandedBack):
                key = (item.inbound.topic, item.inbound.partition)
                first[key] = min(first.get(key, item.inbound.offset), item.inbound.offset)
        return first

    async def finish(self) -> ChunkResult:
        runner, chunk = self.runner, self.fates
        try:
            await runner.publish(await runner._messages(chunk, self._now))
            await runner.books.settle(chunk, self._books, self._now)
        except BaseException as exc:
            self.abort(exc)
            raise
        runner.metrics.count(runner.worker.name, [fate for _, fate in chunk])
        runner._log_dead_letters(chunk)
        if self._traced and runner.tracing is not None:
            runner.tracing.finish(chunk)
        return ChunkResult(chunk, runner.guards.flow(_configuration(chunk), runner.clock.now()))

    def abort(self, exc: BaseException) -> None:
        """The chunk failed as a whole: its spans end as errors (once)."""
        if self._traced and self.runner.tracing is not None:
            self._traced = False
            self.runner.tracing.abort(self.items, exc)

    async def _walk(self) -> list[Call]:
        """Each record's events along its path (records concurrently); the register's answers."""
        runner, verdicts = self.runner, self._verdicts
        by_record: dict[str, list[Item]] = {}
        for item in self.items:
            if item.identity is not None and item.index not in verdicts:
                by_record.setdefault(item.identity.record_id, []).append(item)
        if not by_record:
            return []
        submit: SubmitFn = runner.worker.submit
        if runner.tracing is not None:
            submit = runner.tracing.traced_submit(submit, self.items)
        sender = Sender(
            runner.worker,
            Batcher(submit, runner.options.batch_size, runner.options.batch_linger),
            runner.limit,
            runner.clock,
            runner.metrics,
            runner.halted,
            self.rank,
        )
        paths = [
            RecordPath(group, self._books[record], sender) for record, group in by_record.items()
        ]
        direct, walking = await self._direct(paths, verdicts, runner.limit)
        # As many callers as events may be out at once (`max_in_flight`), each taking the
        # next call (direct events) or the next record to walk when done: not a task each.
        size = min(runner.options.batch_size, runner.options.max_in_flight)
        calls = iter([direct[at : at + size] for at in range(0, len(direct), size)])
        todo = iter(walking)

        async def caller() -> None:
            for call in calls:
                outcomes = await sender.send_batch([submission for _, _, submission in call])
                for (path, item, _), outcome in zip(call, outcomes, strict=True):
                    verdicts[item.index] = path.answered(item, outcome)

        async def walker() -> None:
            for path in todo:
                verdicts.update((item.index, verdict) for item, verdict in await path.walk())

        width = runner.options.max_in_flight
        callers = min(math.ceil(len(direct) / size), math.ceil(width / size))  # calls out at once
        steps = [caller() for _ in range(callers)]
        steps += [walker() for _ in range(min(len(walking), width))]
        if len(steps) == 1:
            await steps[0]
        else:
            await asyncio.gather(*steps)
        await sender.batcher.close()
        return sender.calls

    @staticmethod
    async def _direct(
        paths: Sequence[RecordPath], verdicts: dict[int, Verdict], calls: Permits
    ) -> tuple[list[tuple[RecordPath, Item, Submission[Any]]], list[RecordPath]]:
        """Records with one event and nothing in flight go straight to calls of several
        (mapped here, no walk); the others walk their events one by one. The verdicts of
        direct events that need no call are known at once."""
        direct: list[tuple[RecordPath, Item, Submission[Any]]] = []
        walking: list[RecordPath] = []
        for index, path in enumerate(paths):
            item = path.direct()
            if item is None:
                walking.append(path)
                continue
            ready = path.prepare(item)
            if isinstance(ready, Submission):
                direct.append((path, item, ready))
            else:
                verdicts[item.index] = ready
            if index % SLICE == SLICE - 1:
                await _turn(calls)
        return direct, walking


def _dead_letter_fields(item: Item, fate: DeadLettered) -> dict[str, object]:
    inbound, identity = item.inbound, item.identity
    return {
        "error_class": fate.error_class,
        "reason": fate.reason,
        "event_id": identity.event_id if identity else None,
        "record_id": identity.record_id if identity else key_text(inbound.key),
        "topic": inbound.topic,
        "partition": inbound.partition,
        "offset": inbound.offset,
    }


def _configuration(chunk: Sequence[tuple[Item, Fate]]) -> ConfigurationError | None:
    """The configuration error a chunk met, if any: the worker pauses for it."""
    for _, fate in chunk:
        if isinstance(fate, HandedBack) and isinstance(fate.error, ConfigurationError):
            return fate.error
    return None
