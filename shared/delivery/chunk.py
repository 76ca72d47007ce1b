"""One chunk of records: parse → open the books → each record's path → decide → publish → settle."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.delivery.batcher import Batcher, SubmitFn
from shared.delivery.bookkeeping import Bookkeeper, RecordBook
from shared.delivery.clock import Clock
from shared.delivery.errors import ConfigurationError, InvalidEventError
from shared.delivery.fates import DeadLettered, Failed, Fate, HandedBack, Verdict, decide
from shared.delivery.guards import Flow, Guards
from shared.delivery.metrics import Metrics
from shared.delivery.options import RuntimeOptions
from shared.delivery.outgoing import Inbound, Outgoing, Writer, key_text
from shared.delivery.record import Call, Item, RecordPath, Sender
from shared.delivery.retry import RetryPolicy
from shared.delivery.tracing import EventTracing, pass_on_trace
from shared.delivery.worker import RegisterWorker
from shared.logging import get_logger

log = get_logger(__name__)
Publish = Callable[[Sequence[Outgoing]], Awaitable[None]]


@dataclass(frozen=True)
class ChunkResult:
    """Every record's fate, settled in the ledger, its messages durable; and what the worker
    does next (pause, resume, carry on). The caller commits the offsets."""

    fates: tuple[tuple[Item, Fate], ...]
    flow: Flow

    def handed_back(self) -> list[Inbound]:
        return [item.inbound for item, fate in self.fates if isinstance(fate, HandedBack)]


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

    async def run(self, chunk: Sequence[Inbound]) -> ChunkResult:
        items = [Item(index, inbound) for index, inbound in enumerate(chunk)]
        if self.tracing is None:
            return await self._run(items)
        self.tracing.start(items)
        try:
            result = await self._run(items)
        except BaseException as exc:  # spans end even when the chunk fails
            self.tracing.abort(items, exc)
            raise
        self.tracing.finish(result.fates)
        return result

    async def _run(self, items: list[Item]) -> ChunkResult:
        now = self.clock.now()
        verdicts = self._parse(items)
        books = await self.books.open(items, now)
        calls = await self._walk(items, books, verdicts)
        fates = decide(
            [(item.inbound, verdicts[item.index]) for item in items],
            register_down=self.guards.register_down(calls),
            retry=self.retry,
            now=now,
            admit=self.guards.admit,
        )
        chunk = tuple(zip(items, fates, strict=True))
        await self.publish(self._messages(chunk, now))
        await self.books.settle(chunk, books, now)
        self.metrics.count(self.worker.name, [fate for _, fate in chunk])
        self._log_dead_letters(chunk)
        return ChunkResult(chunk, self.guards.flow(_configuration(chunk), self.clock.now()))

    def _parse(self, items: Sequence[Item]) -> dict[int, Verdict]:
        """Every record parsed; the verdicts of those that cannot be."""
        verdicts: dict[int, Verdict] = {}
        for item in items:
            try:
                item.identity, item.event = self.worker.parse(item.inbound.value)
            except InvalidEventError as exc:
                verdicts[item.index] = Failed(exc)
        return verdicts

    async def _walk(
        self, items: Sequence[Item], books: Mapping[str, RecordBook], verdicts: dict[int, Verdict]
    ) -> list[Call]:
        """Each record's events along its path (records concurrently); the register's answers."""
        by_record: dict[str, list[Item]] = {}
        for item in items:
            if item.identity is not None:
                by_record.setdefault(item.identity.record_id, []).append(item)
        submit: SubmitFn = self.worker.submit
        if self.tracing is not None:
            submit = self.tracing.traced_submit(submit, items)
        sender = Sender(
            self.worker,
            Batcher(submit, self.options.batch_size, self.options.batch_linger),
            asyncio.Semaphore(self.options.max_in_flight),
            self.clock,
            self.metrics,
        )
        paths = [RecordPath(group, books[record], sender) for record, group in by_record.items()]
        for walked in await asyncio.gather(*(path.walk() for path in paths)):
            verdicts.update((item.index, verdict) for item, verdict in walked)
        await sender.batcher.close()
        return sender.calls

    def _log_dead_letters(self, chunk: Sequence[tuple[Item, Fate]]) -> None:
        """Each dead letter once, at warning, when it is durable (identity numbers masked)."""
        for item, fate in chunk:
            if isinstance(fate, DeadLettered):
                log.warning(
                    "dead_lettered", worker=self.worker.name, **_dead_letter_fields(item, fate)
                )

    def _messages(self, chunk: Sequence[tuple[Item, Fate]], now: datetime) -> list[Outgoing]:
        """Retry records, dead letters and results, in chunk order, carrying the trace."""
        messages: list[Outgoing] = []
        for item, fate in chunk:
            mine = self.writer.messages(item.inbound, item.identity, fate, now)
            if self.tracing is not None:
                self.tracing.trace_messages(item, mine)
            else:  # retries and dead letters carry the journal's headers anyway
                for message in mine:
                    pass_on_trace(item.inbound.headers, message)
            messages.extend(mine)
        return messages


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
