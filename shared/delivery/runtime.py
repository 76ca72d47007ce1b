"""The consumer loops: input and retry tiers in, outcomes out, offsets committed when durable."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata
from opentelemetry.trace import TracerProvider

from shared.delivery import headers as h
from shared.delivery.bookkeeping import Bookkeeper
from shared.delivery.chunk import ChunkResult, ChunkRunner
from shared.delivery.clock import Clock, SystemClock
from shared.delivery.guards import (
    CircuitBreaker,
    CircuitState,
    DlqLimit,
    Flow,
    Guards,
    Pause,
    Resume,
)
from shared.delivery.lag import REFRESH_SECONDS, LagGauges
from shared.delivery.ledger import Ledger, LedgerUnavailableError
from shared.delivery.metrics import Metrics
from shared.delivery.options import RuntimeOptions
from shared.delivery.outgoing import Inbound, Outgoing, Writer
from shared.delivery.retry import RetryPolicy
from shared.delivery.tracing import EventTracing
from shared.delivery.worker import RegisterWorker
from shared.kafka import kafka_client_options
from shared.logging import get_logger
from shared.outage import Outage
from shared.settings import KafkaSettings
from shared.topics import WorkerTopics

log = get_logger(__name__)


@dataclass
class Status:
    """What the health endpoint and `regbridge status` report of a running worker."""

    started: bool = False
    assigned: bool = False
    paused_reason: str | None = None
    alarms: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return self.started and self.paused_reason not in ("dlq_limit", "ledger")


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hands partitions over cleanly, and pauses fresh ones again while the worker must wait.

    Revoked: the chunk in hand (of either consumer) is finished — published, settled and its
    offsets committed, which the group still accepts while it prepares to rebalance — before the
    partitions go, so their next owner starts exactly where this one stopped. A chunk fetched
    before the rebalance and not yet started is dropped (the assignment epoch moved on): its
    records are fetched again from the committed offsets by whoever owns them now.
    """

    def __init__(self, runtime: DeliveryRuntime, consumer_name: str) -> None:
        self._runtime = runtime
        self._name = consumer_name

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        self._runtime.epochs[self._name] += 1
        async with self._runtime.chunk_lock:  # wait for the chunk in hand, if any
            pass

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self._runtime.epochs[self._name] += 1
        self._runtime.status.assigned = True
        consumer = self._runtime.consumers.get(self._name)
        if consumer is not None and self._runtime.status.paused_reason is not None:
            consumer.pause(*assigned)


class DeliveryRuntime:
    """Runs one worker: its input and retry tiers, with every promise of the runtime."""

    def __init__(
        self,
        worker: RegisterWorker[Any],
        ledger: Ledger,
        kafka: KafkaSettings,
        topics: WorkerTopics,
        options: RuntimeOptions,
        *,
        clock: Clock | None = None,
        metrics: Metrics | None = None,
        circuit: CircuitBreaker | None = None,
        tracer_provider: TracerProvider | None = None,  # default: the global one, if configured
        results_on_accept: bool = True,  # False: an accepted event's result comes from elsewhere
    ) -> None:
        self.worker = worker
        self.kafka = kafka
        self.topics = topics
        self.options = options
        self.clock = clock or SystemClock()
        self.metrics = metrics or Metrics()
        self.guards = Guards(
            circuit, DlqLimit(options.dlq_max_share, options.dlq_window, options.dlq_min_events)
        )
        self.retry = RetryPolicy.from_names(list(topics.retry_tiers), options.retry_horizon)
        self.chunks = ChunkRunner(
            worker=worker,
            books=Bookkeeper(ledger, worker.name),
            guards=self.guards,
            writer=Writer(topics, self.retry, worker.version, results_on_accept),
            retry=self.retry,
            options=options,
            clock=self.clock,
            metrics=self.metrics,
            publish=self._publish,
            tracing=EventTracing.create(tracer_provider, worker.name, topics.consumer_group),
        )
        self.status = Status()
        self.consumers: dict[str, AIOKafkaConsumer] = {}
        self._producer: AIOKafkaProducer | None = None
        self._stopping = asyncio.Event()
        self.chunk_lock = asyncio.Lock()  # one chunk at a time: the ledger sees records in order
        self.epochs = {"input": 0, "retry": 0}  # assignment changes per consumer (rebalances)
        self._resume_tasks: dict[TopicPartition, asyncio.Task[None]] = {}
        tier_topics = {topic: tier for tier, topic in topics.retry.items()}
        self.lag_gauges = LagGauges(self.metrics, worker.name, tier_topics)
        self.ledger_outage = Outage("ledger", {"worker": worker.name})

    @property
    def circuit(self) -> CircuitBreaker:
        return self.guards.circuit

    # -- lifecycle -------------------------------------------------------------------------
    async def run(self) -> None:
        """Consume until `stop()`; commit what is done; hand back the rest."""
        options = kafka_client_options(self.kafka)
        self._producer = AIOKafkaProducer(
            **options, acks="all", enable_idempotence=True, linger_ms=5
        )
        retry_topics = list(self.topics.retry.values())
        self.consumers = {
            "input": self._consumer(options, self.topics.consumer_group),
            "retry": self._consumer(options, self.topics.retry_group),
        }
        await self._producer.start()
        try:
            for consumer in self.consumers.values():
                await consumer.start()
            self.consumers["input"].subscribe(
                list(self.topics.inputs), listener=_Rebalance(self, "input")
            )
            self.consumers["retry"].subscribe(retry_topics, listener=_Rebalance(self, "retry"))
            self.status.started = True
            self.metrics.announce(self.worker.name, [t.name for t in self.retry.tiers])
            log.info(
                "runtime_started",
                worker=self.worker.name,
                input=list(self.topics.inputs),
                retry_topics=retry_topics,
            )
            await asyncio.gather(
                self._input_loop(),
                self._retry_loop(),
                self._probe_loop(),
                self._ledger_loop(),
                self._lag_loop(),
            )
        finally:
            for task in self._resume_tasks.values():
                task.cancel()
            for consumer in self.consumers.values():
                with contextlib.suppress(KafkaError):
                    await consumer.stop()
            await self._producer.stop()
            self.status.started = False
            log.info("runtime_stopped", worker=self.worker.name)

    def stop(self) -> None:
        self._stopping.set()

    def _consumer(self, options: dict[str, Any], group: str) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            **options,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.options.chunk_size,
            isolation_level="read_committed",
        )

    # -- loops -----------------------------------------------------------------------------
    async def _input_loop(self) -> None:
        consumer = self.consumers["input"]
        while not self._stopping.is_set():
            half_open = self.circuit.state is CircuitState.HALF_OPEN
            batch = await consumer.getmany(
                timeout_ms=self.options.poll_timeout_ms,
                max_records=1 if half_open else self.options.chunk_size,
            )
            epoch = self.epochs["input"]
            records = [r for rs in batch.values() for r in rs]
            if not records:
                continue
            inbound = [_inbound(r, from_retry=False) for r in records]
            await self._handle(consumer, inbound, batch, epoch=epoch, name="input")
            self._record_lag(consumer, batch)

    async def _retry_loop(self) -> None:
        consumer = self.consumers["retry"]
        while not self._stopping.is_set():
            batch = await consumer.getmany(
                timeout_ms=self.options.poll_timeout_ms, max_records=self.options.chunk_size
            )
            if not batch:
                continue
            epoch = self.epochs["retry"]
            now = self.clock.now()
            due: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
            for tp, records in batch.items():
                for index, record in enumerate(records):
                    due_at = _due_at(record)
                    if due_at is not None and due_at > now:
                        consumer.seek(tp, record.offset)  # not yet: wait at the head
                        consumer.pause(tp)
                        self._resume_at(consumer, tp, due_at)
                        records = records[:index]
                        break
                if records:
                    due[tp] = records
            if due:
                inbound = [_inbound(r, from_retry=True) for rs in due.values() for r in rs]
                await self._handle(consumer, inbound, due, epoch=epoch, name="retry")

    async def _probe_loop(self) -> None:
        """While the circuit is open: wait for the probe time, then let one event through."""
        while not self._stopping.is_set():
            probe_at = self.circuit.probe_due_at()
            if probe_at is None:
                await self._sleep_or_stop(0.2)
                continue
            await self._sleep_or_stop((probe_at - self.clock.now()).total_seconds())
            if self.circuit.state is CircuitState.OPEN and self.clock.now() >= probe_at:
                self.circuit.half_open()
                log.info("circuit_probe", worker=self.worker.name)
                self._resume("input")

    async def _ledger_loop(self) -> None:
        """While paused for the ledger: ask it again, backing off; resume when it answers."""
        while not self._stopping.is_set():
            if self.status.paused_reason != "ledger":
                await self._sleep_or_stop(0.5)
                continue
            await self._sleep_or_stop(self.ledger_outage.delay)
            try:
                await self.chunks.books.ping()
            except LedgerUnavailableError as exc:
                self.ledger_outage.failed(exc)
                continue
            self.ledger_outage.recovered()
            self._resume_after("ledger")

    async def _lag_loop(self) -> None:
        """Input lag and retry-tier depth from the brokers, paused or not (metrics only)."""
        while not self._stopping.is_set():
            await self.lag_gauges.refresh(self.consumers["input"], self.consumers["retry"])
            await self._sleep_or_stop(REFRESH_SECONDS)

    async def _sleep_or_stop(self, seconds: float) -> None:
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        stopper = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        sleeper.cancel()
        stopper.cancel()

    # -- one chunk -------------------------------------------------------------------------
    async def _handle(
        self,
        consumer: AIOKafkaConsumer,
        inbound: list[Inbound],
        batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
        *,
        epoch: int,
        name: str,
    ) -> None:
        async with self.chunk_lock:
            if self.epochs[name] != epoch:  # fetched before a rebalance: no longer ours to do
                log.info(
                    "chunk_dropped_after_rebalance", worker=self.worker.name, events=len(inbound)
                )
                return
            try:
                result = await self.chunks.run(inbound)  # its messages durable, ledger settled
            except LedgerUnavailableError as exc:
                self._hand_back(consumer, batch)
                self._ledger_down(exc)
                return
            await self._commit(consumer, result, batch)
            self._apply(result.flow)

    def _hand_back(
        self,
        consumer: AIOKafkaConsumer,
        batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    ) -> None:
        """Leave a whole chunk in Kafka, uncommitted: it is read again from its first record."""
        assigned = consumer.assignment()
        for tp, records in batch.items():
            if tp in assigned:
                consumer.seek(tp, records[0].offset)
        count = sum(len(records) for records in batch.values())
        self.metrics.handed_back.labels(self.worker.name).inc(count)

    def _ledger_down(self, error: LedgerUnavailableError) -> None:
        """Stop taking input until the ledger answers again (`_ledger_loop` asks)."""
        if not self.ledger_outage.down:
            self.ledger_outage.failed(error)
        self._pause_all("ledger", f"ledger unreachable, input paused until it answers: {error}")

    async def _publish(self, outgoing: Sequence[Outgoing]) -> None:
        assert self._producer is not None
        sends = [
            await self._producer.send(m.topic, m.value, key=m.key, headers=m.headers)
            for m in outgoing
        ]
        if sends:
            await asyncio.gather(*sends)  # every retry, dead letter and result is durable

    async def _commit(
        self,
        consumer: AIOKafkaConsumer,
        result: ChunkResult,
        batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    ) -> None:
        back: dict[TopicPartition, int] = defaultdict(lambda: 2**63)
        for inbound in result.handed_back():
            tp = TopicPartition(inbound.topic, inbound.partition)
            back[tp] = min(back[tp], inbound.offset)
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for tp, records in batch.items():
            offset = min(back[tp], records[-1].offset + 1) if tp in back else records[-1].offset + 1
            offsets[tp] = OffsetAndMetadata(offset, "")
            if tp in back and tp in consumer.assignment():  # no seek on a partition gone
                consumer.seek(tp, offset)
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # Not ours any more (the session expired mid-chunk): the new owner reprocesses the
            # chunk; the ledger skips what was settled and looks up what was in flight.
            log.warning("commit_failed", worker=self.worker.name, error=str(exc))

    def _apply(self, flow: Flow) -> None:
        """Pause, resume or carry on, as the guards decided for the chunk just committed."""
        name = self.worker.name
        self.metrics.circuit_open.labels(name).set(self.circuit.state is not CircuitState.CLOSED)
        if isinstance(flow, Pause):
            if flow.reason == "dlq_limit":
                self.metrics.dlq_limit_tripped.labels(name).set(1)
            reason = flow.reason
            if reason == "circuit_open" and self.status.paused_reason is not None:
                reason = self.status.paused_reason  # still unanswered: the first reason stays
            self._pause_all(reason, flow.message)
        elif isinstance(flow, Resume) and self.status.paused_reason in (
            "circuit_open",
            "configuration",
        ):
            self._resume_after(self.status.paused_reason)

    def _resume_after(self, reason: str) -> None:
        log.info("worker_resumed", worker=self.worker.name, after=reason)
        self.metrics.paused.labels(self.worker.name, reason).set(0)
        self.status.paused_reason = None
        self._resume("input", "retry")

    def _pause_all(self, reason: str, message: str) -> None:
        """Pause both consumers (idempotent); alarm when the reason is new."""
        if self.status.paused_reason != reason:
            if self.status.paused_reason is not None:  # one reason at a time in the metric too
                self.metrics.paused.labels(self.worker.name, self.status.paused_reason).set(0)
            self.status.paused_reason = reason
            self.status.alarms.append(message)
            self.metrics.paused.labels(self.worker.name, reason).set(1)
            log.error("worker_paused", worker=self.worker.name, reason=reason, alarm=message)
        for consumer in self.consumers.values():
            consumer.pause(*consumer.assignment())

    def _resume(self, *names: str) -> None:
        for name in names:
            consumer = self.consumers[name]
            consumer.resume(*[tp for tp in consumer.assignment() if tp not in self._resume_tasks])

    def _resume_at(self, consumer: AIOKafkaConsumer, tp: TopicPartition, due_at: datetime) -> None:
        if tp in self._resume_tasks:
            self._resume_tasks[tp].cancel()

        async def wake() -> None:
            await self.clock.sleep((due_at - self.clock.now()).total_seconds())
            self._resume_tasks.pop(tp, None)
            if self.status.paused_reason is None and tp in consumer.assignment():
                consumer.resume(tp)

        self._resume_tasks[tp] = asyncio.create_task(wake())

    def _record_lag(
        self,
        consumer: AIOKafkaConsumer,
        batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    ) -> None:
        assigned = consumer.assignment()
        for tp in batch:
            if tp not in assigned:  # revoked while the chunk ran: aiokafka asserts on it
                continue
            highwater = consumer.highwater(tp)
            if highwater is not None:
                lag = max(0, highwater - batch[tp][-1].offset - 1)
                self.metrics.lag.labels(self.worker.name, tp.topic, str(tp.partition)).set(lag)


def _inbound(record: ConsumerRecord[bytes, bytes], *, from_retry: bool) -> Inbound:
    return Inbound(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value or b"",
        headers=tuple(record.headers or ()),
        timestamp=record.timestamp,
        from_retry=from_retry,
    )


def _due_at(record: ConsumerRecord[bytes, bytes]) -> datetime | None:
    for name, value in record.headers or ():
        if name == h.DUE_AT:
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(value.decode())
    return None
