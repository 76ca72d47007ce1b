"""The consumer loops: input and retry tiers in, outcomes out, offsets committed when durable."""

from __future__ import annotations

import asyncio
import contextlib
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
from shared.delivery.chunk import ChunkRunner, Partition
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
from shared.delivery.lanes import Batch, InHand, Lane, RecordGate
from shared.delivery.ledger import Ledger, LedgerUnavailableError
from shared.delivery.metrics import Metrics
from shared.delivery.options import RuntimeOptions
from shared.delivery.outgoing import Inbound, Outgoing, Writer
from shared.delivery.produce import BATCH_BYTES, publish_batched
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

    Revoked: the chunks in hand of that consumer are finished — published, settled and their
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
        lane = self._runtime.lanes.get(self._name)
        if lane is not None:
            await lane.settled()  # the chunks in hand finish first

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
        self._stopping = asyncio.Event()
        self._ledger_lost = False  # a chunk found the ledger unreachable; until it answers again
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
            halted=self._halted,
        )
        self.metrics.watch_in_flight(worker.name, lambda: self.chunks.limit.out)
        self.status = Status()
        self.consumers: dict[str, AIOKafkaConsumer] = {}
        self._producer: AIOKafkaProducer | None = None
        self.gate = RecordGate()  # a record's chunks one after the other: the ledger sees order
        self.lanes: dict[str, Lane] = {}  # each consumer's chunks in hand
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
            **options, acks="all", enable_idempotence=True, linger_ms=5, max_batch_size=BATCH_BYTES
        )
        retry_topics = list(self.topics.retry.values())
        self.consumers = {
            "input": self._consumer(options, self.topics.consumer_group),
            "retry": self._consumer(options, self.topics.retry_group, fetch_max_wait_ms=100),
        }
        depth = self.options.chunks_in_hand
        self.lanes = {name: Lane(name, c, depth) for name, c in self.consumers.items()}
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
            for lane in self.lanes.values():
                lane.cancel()  # only when run() itself is cancelled or failed: a stop drains
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

    def _halted(self) -> str | None:
        """Why the chunks in hand send nothing more (their unsent events are handed back)."""
        if self._stopping.is_set():
            return "the worker is stopping"
        if self._ledger_lost:
            return "the ledger is unreachable"
        return None

    def _consumer(
        self, options: dict[str, Any], group: str, fetch_max_wait_ms: int = 500
    ) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            **options,
            group_id=group,
            fetch_max_wait_ms=fetch_max_wait_ms,  # the retry tiers': short, for due times
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.options.chunk_size,
            isolation_level="read_committed",
        )

    # -- loops -----------------------------------------------------------------------------
    async def _input_loop(self) -> None:
        lane = self.lanes["input"]
        consumer = lane.consumer
        while not self._stopping.is_set():
            await lane.room()
            if self.circuit.state is CircuitState.HALF_OPEN:
                await lane.settled()  # the probe goes alone: no earlier chunk can hand it back
            half_open = self.circuit.state is CircuitState.HALF_OPEN
            batch = await consumer.getmany(
                timeout_ms=self.options.poll_timeout_ms,
                max_records=1 if half_open else self.options.chunk_size,
            )
            records = [r for rs in batch.values() for r in rs]
            if records:
                inbound = [_inbound(r, from_retry=False) for r in records]
                self._take(lane, inbound, batch)
        await lane.settled()
        lane.raise_failure()

    async def _retry_loop(self) -> None:
        lane = self.lanes["retry"]
        consumer = lane.consumer
        while not self._stopping.is_set():
            await lane.room()
            batch = await consumer.getmany(
                timeout_ms=self.options.poll_timeout_ms, max_records=self.options.chunk_size
            )
            if not batch:
                continue
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
                self._take(lane, inbound, due)
        await lane.settled()
        lane.raise_failure()

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
    def _take(self, lane: Lane, inbound: list[Inbound], batch: Batch) -> None:
        """A fetched chunk in hand, lined up to claim its records, its steps started (no await
        between the fetch and here, so hand-backs and claims follow the fetch order)."""
        chunk = lane.chunk(self.chunks.job(inbound), batch, self.epochs[lane.name])
        self.gate.line_up(chunk)
        lane.start(chunk, self._handle(lane, chunk))

    async def _handle(self, lane: Lane, chunk: InHand) -> None:
        """A chunk's steps, overlapping others' (see `shared.delivery.lanes`)."""
        job = chunk.job
        try:
            await job.parse()  # in slices: the register's answers to other chunks are read
            waits = await self.gate.claim(chunk)
            if waits:
                await asyncio.wait(waits)  # earlier chunks of its records have settled
            if self.epochs[lane.name] != chunk.epoch:  # fetched before a rebalance: not ours
                log.info(
                    "chunk_dropped_after_rebalance", worker=self.worker.name, events=len(job.items)
                )
                return
            try:
                await job.deliver()
                await chunk.after_previous_decided()
                job.decide()
                self._hand_back(lane, chunk, job.handed_back())
                chunk.decided.set()
                result = await job.finish()  # its messages durable, its ledger settled
            except LedgerUnavailableError as exc:
                self._ledger_lost = True  # the other chunks in hand send nothing more
                await chunk.after_previous_decided()
                self._hand_back(lane, chunk, job.partitions(), whole=True)
                await chunk.after_previous_done()
                self._ledger_down(exc)
                return
            self.gate.release(chunk)
            await chunk.after_previous_done()
            if lane.failure is None:  # an earlier chunk failed: its offsets must not be passed
                await self._commit(lane, chunk)
                self._apply(result.flow)
                self._record_lag(lane.consumer, chunk.batch)
        except BaseException as exc:  # a bug or a cancellation: no later chunk commits past it
            lane.fail(exc)
            raise
        finally:
            self.gate.passed(chunk)
            self.gate.release(chunk)
            lane.finished(chunk)

    def _hand_back(
        self, lane: Lane, chunk: InHand, partitions: dict[Partition, int], *, whole: bool = False
    ) -> None:
        """Seek each partition back to where the chunk hands it back (unless an earlier chunk
        already sought it further back), and tell the later chunks in hand."""
        mine = {key: offset for key, offset in partitions.items() if key not in chunk.job.floor}
        for tp in lane.assigned(mine):
            lane.consumer.seek(tp, mine[(tp.topic, tp.partition)])
        lane.floor_later(chunk, mine)
        if whole:
            self.metrics.handed_back.labels(self.worker.name).inc(len(chunk.job.items))

    def _ledger_down(self, error: LedgerUnavailableError) -> None:
        """Stop taking input until the ledger answers again (`_ledger_loop` asks)."""
        if not self.ledger_outage.down:
            self.ledger_outage.failed(error)
        self._pause_all("ledger", f"ledger unreachable, input paused until it answers: {error}")

    async def _publish(self, outgoing: Sequence[Outgoing]) -> None:
        assert self._producer is not None  # every retry, dead letter and result is durable
        await publish_batched(self._producer, outgoing)

    async def _commit(self, lane: Lane, chunk: InHand) -> None:
        """Commit what the chunk finished: up to its first handed-back event of a partition,
        nothing where an earlier chunk handed the partition back."""
        back = chunk.job.handed_back()
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for tp, records in chunk.batch.items():
            key = (tp.topic, tp.partition)
            if key in chunk.job.floor:
                continue
            offsets[tp] = OffsetAndMetadata(back.get(key, records[-1].offset + 1), "")
        if not offsets:
            return
        try:
            await lane.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # Not ours any more (the session expired mid-chunk): the new owner reprocesses the
            # chunk; the ledger skips what was settled and looks up what was in flight.
            log.warning("commit_failed", worker=self.worker.name, error=str(exc))

    def _apply(self, flow: Flow) -> None:
        """Pause, resume or carry on, as the guards decided for the chunk just committed."""
        name = self.worker.name
        self.metrics.circuit_open.labels(name).set(self.circuit.state is not CircuitState.CLOSED)
        stale = (
            isinstance(flow, Pause)
            and flow.reason == "circuit_open"
            and self.circuit.state is not CircuitState.OPEN
        )  # decided before the circuit moved on (a probe under way, or closed): not to undo it
        if isinstance(flow, Pause) and not stale:
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
        if reason == "ledger":
            self._ledger_lost = False
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
