"""Files built at the cut-off, delivered, their receipts kept, one result per event.

One run (`FileDelivery.run`), under the register's lease so that replicas and `deliver-now` never
overlap: first every file a crash left unfinished (the register is asked before anything is
uploaded again), then each owner's file of the period whose state changed since its last file —
a first file, or a declared replacement while the window is open. Corrections and cancellations
of rows in an earlier, closed period go into the owner's file of this one as `correction` and
`cancellation` rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from shared.delivery import headers as h
from shared.delivery.clock import Clock
from shared.delivery.errors import ConfigurationError, DeliveryError, TransientError
from shared.delivery.outgoing import Outgoing, result_message
from shared.files.register import FileHeader, FileKey, FileRegister, FileRow
from shared.files.state import FileInfo, FileState, RowResult
from shared.logging import get_logger
from shared.schedule import Period, PeriodWindows
from shared.topics import WorkerTopics

log = get_logger(__name__)
Publish = Callable[[Sequence[Outgoing]], Awaitable[None]]
REFUSED = "register_rejected"


class FileMetrics:
    """Prometheus metrics of a file register's deliveries."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.files = Counter(
            "regbridge_files_total",
            "Files delivered, by the register's answer",
            ["worker", "status"],
            registry=registry,
        )
        self.rows = Counter(
            "regbridge_file_rows_total",
            "Rows of delivered files, by the register's verdict",
            ["worker", "verdict"],
            registry=registry,
        )
        self.not_accepted = Gauge(
            "regbridge_files_not_accepted",
            "Owners with rows in the period whose file the register does not hold yet",
            ["worker", "period"],
            registry=registry,
        )
        self.delivery_failures = Counter(
            "regbridge_file_delivery_failures_total",
            "Uploads that failed (tried again at the next run)",
            ["worker", "error_class"],
            registry=registry,
        )


@dataclass
class RunSummary:
    """What one run did, in a line (the schedule notes it)."""

    period: Period
    built: int = 0
    delivered: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    refused_rows: int = 0

    def text(self) -> str:
        parts = [f"{self.period}: {self.built} built, {len(self.delivered)} delivered"]
        if self.refused_rows:
            parts.append(f"{self.refused_rows} rows refused")
        if self.failed:
            parts.append(f"{len(self.failed)} not delivered ({', '.join(self.failed[:3])} …)")
        return ", ".join(parts)


class LeaseTakenError(RuntimeError):
    """Another replica (or `deliver-now`) is delivering this register's files now."""


@dataclass
class FileDelivery:
    register: FileRegister
    state: FileState
    window: PeriodWindows
    topics: WorkerTopics
    publish: Publish
    clock: Clock
    metrics: FileMetrics
    holder: str  # who takes the lease (the instance id)
    lease_for: timedelta = timedelta(minutes=10)
    alarmed: set[Period] = field(default_factory=set)  # periods whose alarm slot has come
    # a configuration error stops delivery (message), a run without one clears it (None)
    on_alarm: Callable[[str | None], None] = lambda _message: None

    # --- the scheduled jobs -------------------------------------------------------------------

    async def scheduled(self) -> str:
        """The delivery slot's job: deliver while the window is open; otherwise only finish
        what a crash left (the register is asked first, nothing is uploaded late)."""
        now = self.clock.now()
        period = self.window.period_of(now)
        if not self.window.window(period).is_open(now):
            return f"{period}: window not open; {await self.run(period, build=False)}"
        return await self.run(period)

    async def alarm(self, period: Period | None = None) -> str:
        """The alarm slot's job (the start of the window's last day, say): every owner whose
        file of the period the register does not hold yet raises the alarm."""
        period = period or self.window.period_of(self.clock.now())
        owners = await self.state.owners_not_accepted(period)
        self.alarmed.add(period)
        self.metrics.not_accepted.labels(self.register.name, str(period)).set(len(owners))
        if not owners:
            return f"{period}: every file accepted"
        closes = self.window.window(period).closes_at.isoformat()
        log.error(
            "files_not_accepted",
            worker=self.register.name,
            period=str(period),
            owners=len(owners),
            first=owners[:10],
            closes_at=closes,
        )
        return f"{period}: {len(owners)} owners' files not accepted, the window closes {closes}"

    # --- one run ------------------------------------------------------------------------------

    async def run(self, period: Period, *, build: bool = True) -> str:
        """Finish what is unfinished, then build and deliver the period's changed files.
        `build=False`: only finish — files the register already has are received and reported,
        nothing is uploaded (outside the window)."""
        if not await self._lease():
            raise LeaseTakenError(
                f"another {self.register.name} delivery run holds the lease; try again shortly"
            )
        summary = RunSummary(period)
        try:
            for info in await self.state.files_of(unfinished=True):
                await self._finish(info, summary, upload=build)
            if build:
                for owner in await self.state.owners_to_build(period):
                    built = await self.state.build(
                        FileKey(period, owner),
                        self.clock.now(),
                        self.register.file_name,
                        corrections=self.register.corrections_after_close,
                    )
                    if built is not None:
                        summary.built += 1
                        log.info("file_built", file=built.name, rows=built.row_count)
                        await self._finish(built, summary)
                    await self._lease()
        except ConfigurationError as exc:  # our credentials or the register's key refused
            self.on_alarm(f"{exc.error_class}: {exc.message}")
            raise
        else:
            self.on_alarm(None)
        finally:
            await self.state.release(self.holder)
            if period in self.alarmed:  # after the alarm, the gauge follows each delivery
                with contextlib.suppress(Exception):  # a failure here is noise, not the run's
                    owners = await self.state.owners_not_accepted(period)
                    gauge = self.metrics.not_accepted.labels(self.register.name, str(period))
                    gauge.set(len(owners))
        text = summary.text()
        log.info("file_run_finished", worker=self.register.name, summary=text)
        return text

    async def _lease(self) -> bool:
        now = self.clock.now()
        return await self.state.lease(self.holder, now, now + self.lease_for)

    async def _finish(self, info: FileInfo, summary: RunSummary, *, upload: bool = True) -> None:
        """Take one file as far as it goes: delivered (or found delivered), received, reported.
        A transient failure leaves it for the next run; a configuration error stops the run."""
        try:
            if info.status in ("built", "delivering"):
                receipt = None
                if info.status == "delivering":  # it may have reached the register: ask first
                    receipt = await self.register.lookup(info.header)
                    if receipt is not None:
                        log.info("file_found_delivered", file=info.name)
                if receipt is None and not upload:
                    summary.failed.append(info.name)  # waits for the next run in a window
                    return
                if receipt is None:
                    await self.state.mark(info.name, "delivering", self.clock.now())
                    receipt = await self.register.deliver(info.header, self._content(info.header))
                await self.state.receive(info, receipt, self.clock.now())
                self.metrics.files.labels(self.register.name, receipt.status).inc()
                log.info(
                    "file_received",
                    file=info.name,
                    status=receipt.status,
                    receipt=receipt.receipt_id,
                    reason=receipt.reason,
                )
            summary.refused_rows += await self._report(info)
            await self.state.mark(info.name, "done", self.clock.now())
            summary.delivered.append(info.name)
        except ConfigurationError:
            await self._note_failure(info, "configuration")
            raise
        except TransientError as exc:
            await self._note_failure(info, exc.error_class, exc.message)
            summary.failed.append(info.name)
        except DeliveryError as exc:  # a permanent answer to the upload: never tried again
            await self.state.mark(info.name, "failed", self.clock.now(), exc.message)
            self.metrics.delivery_failures.labels(self.register.name, exc.error_class).inc()
            log.error("file_failed", file=info.name, error_class=exc.error_class, error=exc.message)
            summary.failed.append(info.name)

    async def _note_failure(self, info: FileInfo, error_class: str, message: str = "") -> None:
        self.metrics.delivery_failures.labels(self.register.name, error_class).inc()
        log.warning("file_not_delivered", file=info.name, error_class=error_class, error=message)
        current = await self.state.file(info.name)
        if current is not None and current.status == "delivering":
            await self.state.mark(info.name, "delivering", self.clock.now(), message)

    # --- the file's bytes -----------------------------------------------------------------------

    def _content(self, header: FileHeader) -> AsyncIterator[bytes]:
        return rendered(self.register.render, header, self.state.rows(header.name))

    # --- results ------------------------------------------------------------------------------

    async def _report(self, info: FileInfo) -> int:
        """Every event of the file whose result is not yet published: accepted, or refused
        (a dead letter with the register's reason, replayable); then the cancellations the
        register does not hold. Durable in Kafka before they are marked published."""
        refused = 0
        now = self.clock.now()
        async for page in self.state.results(info.name):
            messages: list[Outgoing] = []
            for row in page:
                messages += self._row_messages(info, row, now)
                if row.verdict == "refused":
                    refused += 1
            await self.publish(messages)
            await self.state.reported({row.record_id: row.event_id for row in page})
            for row in page:
                self.metrics.rows.labels(self.register.name, row.verdict).inc()
        withdrawn = await self.state.withdrawn(info.key.owner, info.key.period)
        if withdrawn:
            await self.publish(
                [
                    self._result(
                        w.record_id,
                        w.event_id,
                        w.record_version,
                        "accepted",
                        now,
                        file=None if w.held_file is None else info.name,
                        detail="cancelled before delivery"
                        if w.held_file is None
                        else f"withdrawn by {info.name}",
                    )
                    for w in withdrawn
                ]
            )
            await self.state.reported({w.record_id: w.event_id for w in withdrawn})
        return refused

    def _row_messages(self, info: FileInfo, row: RowResult, now: datetime) -> list[Outgoing]:
        where = {"file": info.name, "row": str(row.number), "kind": row.kind}
        if row.verdict == "accepted":
            return [
                self._result(
                    row.record_id,
                    row.event_id,
                    row.record_version,
                    "accepted",
                    now,
                    reference=f"{info.name}#{row.number}",
                    **where,
                )
            ]
        reason = f"{info.name} row {row.number}: {row.code or 'refused'}: {row.reason or ''}"
        if row.raw is None:  # a later version of the record is on its way: no letter
            return [
                self._result(
                    row.record_id,
                    row.event_id,
                    row.record_version,
                    "dead_lettered",
                    now,
                    reason=f"{reason}; superseded by a later version",
                    error_class=REFUSED,
                    **where,
                )
            ]
        letter = Outgoing(
            self.topics.dlq,
            row.record_id.encode(),
            row.raw,
            h.from_dict(
                {
                    h.ORIGIN_TOPIC: self.topics.input,
                    h.CONSUMER_GROUP: self.topics.consumer_group,
                    h.EVENT_ID: row.event_id,
                    h.RECORD_ID: row.record_id,
                    h.ERROR_CLASS: REFUSED,
                    h.ERROR_MESSAGE: reason,
                    h.REGISTER_RESPONSE: json.dumps(
                        {"file": info.name, "row": row.number, "code": row.code}
                    ),
                    h.ATTEMPTS: 1,
                    h.FIRST_FAILURE_AT: now.isoformat(),
                    h.LAST_FAILURE_AT: now.isoformat(),
                    h.WORKER_VERSION: self.register.version,
                }
            ),
        )
        result = self._result(
            row.record_id,
            row.event_id,
            row.record_version,
            "dead_lettered",
            now,
            reason=reason,
            error_class=REFUSED,
            **where,
        )
        return [letter, result]

    def _result(
        self,
        record_id: str,
        event_id: str,
        version: int,
        status: str,
        now: datetime,
        **extra: str | None,
    ) -> Outgoing:
        topic = self.topics.results_topic or f"{self.register.name}.results.v1"
        return result_message(
            topic,
            record_id=record_id,
            event_id=event_id,
            record_version=version,
            status=status,
            now=now,
            **extra,
        )


_DONE = object()


async def rendered(
    render: Callable[[FileHeader, Iterator[FileRow]], Any],
    header: FileHeader,
    pages: AsyncIterator[list[FileRow]],
    *,
    depth: int = 4,
) -> AsyncIterator[bytes]:
    """A register's (synchronous, streaming) `render` driven from rows read a page at a time
    from the database: it runs in a thread, asking the event loop for each next page and handing
    back each piece of the file; at most `depth` pieces wait, so memory stays flat."""
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue[Any] = asyncio.Queue(maxsize=depth)
    stop = threading.Event()

    def rows() -> Iterator[FileRow]:
        while not stop.is_set():
            page = asyncio.run_coroutine_threadsafe(_next(pages), loop).result()
            if page is None:
                return
            yield from page

    def put(item: Any) -> None:
        if not stop.is_set():
            asyncio.run_coroutine_threadsafe(pieces.put(item), loop).result()

    def work() -> None:
        try:
            for piece in render(header, rows()):
                if stop.is_set():
                    return
                put(bytes(piece))
            put(_DONE)
        except BaseException as exc:
            put(exc)

    thread = loop.run_in_executor(None, work)
    try:
        while True:
            item = await pieces.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while not pieces.empty():  # unblock a put waiting for room
            pieces.get_nowait()
        with contextlib.suppress(Exception):
            await thread


async def _next(pages: AsyncIterator[list[FileRow]]) -> list[FileRow] | None:
    try:
        return await anext(pages)
    except StopAsyncIteration:
        return None
