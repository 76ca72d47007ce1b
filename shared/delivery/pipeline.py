"""A chunk of records: parse → ledger → order → map → submit → fate, concurrently by record."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from opentelemetry.trace import Span

from shared.delivery import headers as h
from shared.delivery.batcher import Batcher, SubmitFn
from shared.delivery.clock import Clock
from shared.delivery.errors import (
    ConfigurationError,
    DeliveryError,
    InvalidEventError,
    NotYetAppliedError,
    PermanentError,
    ThrottledError,
    TransientError,
)
from shared.delivery.ledger import Decision, InFlight, Ledger, Parked, Settlement
from shared.delivery.limits import CircuitBreaker, CircuitState, DlqLimit
from shared.delivery.metrics import Metrics
from shared.delivery.outgoing import Inbound, Outgoing, result_message, story_headers
from shared.delivery.retry import RetryPolicy
from shared.delivery.tracing import EventTracing, activate, pass_on_trace
from shared.delivery.worker import Accepted, EventIdentity, RegisterWorker, Submission
from shared.topics import dlq_topic, results_topic, retry_topic

Fate = Literal[
    "accepted", "skipped", "retry", "dead_letter", "handed_back", "deferred", "redelivered"
]
BLOCKED = "blocked_by_earlier"


@dataclass
class Disposition:
    """What became of one inbound record."""

    inbound: Inbound
    fate: Fate = "handed_back"
    identity: EventIdentity | None = None
    error: DeliveryError | None = None
    reason: str = ""
    error_class: str = ""
    reference: str | None = None
    tier: str | None = None  # for retry
    follows: bool = False  # sent along behind an earlier event of the same record
    span: Span | None = None  # the event's consumer span, when tracing is on


@dataclass
class ChunkResult:
    dispositions: list[Disposition]
    outgoing: list[Outgoing] = field(default_factory=list)
    settlement: Settlement = field(default_factory=Settlement)
    configuration_error: ConfigurationError | None = None

    def handed_back(self) -> list[Inbound]:
        return [d.inbound for d in self.dispositions if d.fate == "handed_back"]


@dataclass
class Pipeline:
    worker: RegisterWorker[Any]
    ledger: Ledger
    retry: RetryPolicy
    circuit: CircuitBreaker
    dlq_limit: DlqLimit
    clock: Clock
    metrics: Metrics
    consumer_group: str
    batch_size: int = 1
    max_in_flight: int = 64
    batch_linger: float = 0.02
    publish_results: bool = True
    tracing: EventTracing | None = None  # None: tracing off, no spans at all

    async def process(self, chunk: Sequence[Inbound]) -> ChunkResult:
        """Decide every record's fate; the caller publishes, then `settle`s, then commits."""
        dispositions = [Disposition(inbound) for inbound in chunk]
        if self.tracing is None:
            return await self._process(dispositions)
        self.tracing.start(dispositions)
        try:
            result = await self._process(dispositions)
        except BaseException as exc:  # spans end even when the chunk fails
            self.tracing.abort(dispositions, exc)
            raise
        self.tracing.finish(dispositions)
        return result

    async def _process(self, dispositions: list[Disposition]) -> ChunkResult:
        now = self.clock.now()
        register = self.worker.name
        parsed: dict[str, list[tuple[Disposition, object]]] = defaultdict(list)
        for d in dispositions:
            try:
                identity, event = self.worker.parse(d.inbound.value)
            except InvalidEventError as exc:
                self._dead_letter(d, exc, exc.error_class, str(exc))
                continue
            d.identity = identity
            parsed[identity.record_id].append((d, event))
        result = ChunkResult(dispositions)
        if parsed:
            identities = [d.identity for group in parsed.values() for d, _ in group if d.identity]
            decisions = await self.ledger.decide_many(register, identities)
            decided = dict(zip((i.event_id for i in identities), decisions, strict=True))
            parked = await self.ledger.parked_records(register, list(parsed))
            # Note every record's submission before anything leaves: after a crash the ledger
            # then knows to look the record up at the register before sending again.
            last_of_record = {i.record_id: i for i in identities}
            await self.ledger.begin_many(register, list(last_of_record.values()), now)
            result.settlement.settled_records.extend(last_of_record)
            submit: SubmitFn = self.worker.submit
            if self.tracing is not None:
                submit = self.tracing.traced_submit(submit, dispositions)
            batcher = Batcher(submit, self.batch_size, self.batch_linger)
            limit = asyncio.Semaphore(self.max_in_flight)
            await asyncio.gather(
                *(
                    self._record(group, decided, parked[record_id], batcher, limit, result)
                    for record_id, group in parsed.items()
                )
            )
            await batcher.close()
        self._settle_deferred(result, now)
        self._apply_dlq_limit(result)
        self._settlement(result)
        result.outgoing = self._outgoing(result, now)
        return result

    async def _record(
        self,
        group: list[tuple[Disposition, object]],
        decided: dict[str, Decision],
        parked: list[Parked],
        batcher: Batcher,
        limit: asyncio.Semaphore,
        result: ChunkResult,
    ) -> None:
        """Events of one record, strictly in order; a failure sends the rest along behind it."""
        queue = [p.event_id for p in parked]  # parked events of this record, oldest first
        location = {p.event_id: p.location for p in parked}
        first = decided[group[0][0].identity.event_id]  # type: ignore[union-attr]
        applied, reference = first.applied_version, first.reference
        seen: set[str] = set()
        blocked_by: Disposition | None = None
        # A crash left the record's submissions up to version N in flight: the highest of them
        # found at the register tells that every version up to it is applied (a record's events
        # go one by one), so none of those is sent again.
        flight = first.inflight
        searched = False
        reconciled_through: int | None = None
        for d, event in group:
            identity = d.identity
            assert identity is not None  # set for every parsed record
            decision = decided[identity.event_id]
            if blocked_by is not None:
                d.fate, d.follows = "deferred", True
                continue
            if identity.event_id in seen or decision.kind == "duplicate":
                d.fate, d.reason = "skipped", "duplicate"
            elif applied is not None and identity.record_version <= applied:
                d.fate, d.reason = "skipped", "stale"
            if d.fate == "skipped":
                if identity.event_id in queue:  # a parked copy that is done: release the line
                    queue.remove(identity.event_id)
                    result.settlement.unpark.append(identity)
                continue
            seen.add(identity.event_id)
            if identity.event_id in queue and not (d.inbound.from_retry or d.inbound.replayed):
                # Kafka gave it again after a crash or a hand-back, but its fate is already
                # written: its copy waits in a retry tier or the dead-letter topic.
                d.fate = "redelivered"
                continue
            if queue and queue[0] != identity.event_id:
                self._follow(d, location[queue[0]])
                if identity.event_id not in queue:
                    queue.append(identity.event_id)
                    location[identity.event_id] = location[queue[0]]
                continue
            with activate(d.span):  # the register call's spans are children of the event's
                if (
                    flight is not None
                    and not searched
                    and reference is not None  # the later versions can be mapped
                    and decision.kind == "in_flight"
                    and identity.record_version < flight.record_version
                ):
                    searched = True
                    found = await self._highest_applied(group, identity, flight, reference)
                    if found is not None:
                        reconciled_through, reference = found[0], found[1].reference
                if reconciled_through is not None and identity.record_version <= reconciled_through:
                    self.metrics.reconciled.labels(self.worker.name).inc()
                    outcome: Accepted | DeliveryError = Accepted(reference or "")
                else:
                    outcome = await self._submit(
                        decision, event, identity, reference, batcher, limit
                    )
            if isinstance(outcome, Accepted):
                if queue and queue[0] == identity.event_id:
                    queue.pop(0)
                    result.settlement.unpark.append(identity)
                d.fate, d.reference = "accepted", outcome.reference
                applied, reference = identity.record_version, outcome.reference
                continue
            d.error = outcome
            if isinstance(outcome, TransientError):
                d.fate, blocked_by = "deferred", d
            elif isinstance(outcome, ConfigurationError):
                d.fate, blocked_by = "handed_back", d
            else:
                self._dead_letter(d, outcome, outcome.error_class, outcome.message)
                blocked_by = d
        if blocked_by is not None:
            head = blocked_by.identity.event_id if blocked_by.identity else "?"
            for d, _ in group:
                if d.follows:
                    d.error = d.error or blocked_by.error
                    d.reason = f"follows event {head}"

    async def _submit(
        self,
        decision: Decision,
        event: object,
        identity: EventIdentity,
        reference: str | None,
        batcher: Batcher,
        limit: asyncio.Semaphore,
    ) -> Accepted | DeliveryError:
        """Map and send one event (after looking it up, if a crash left it in flight)."""
        try:
            submission = Submission(identity, self.worker.map(event, reference), reference)
            if decision.kind == "in_flight":
                found = await self.worker.lookup(submission)
                if found is not None:
                    self.metrics.reconciled.labels(self.worker.name).inc()
                    return found
            async with limit:
                started = self.clock.now()
                outcome = await batcher.submit(submission)
                self.metrics.observe_latency(self.worker.name, self.clock.now() - started)
        except DeliveryError as exc:  # mapping refused it, or the lookup could not answer
            return exc
        if not isinstance(outcome, PermanentError | ConfigurationError):
            self.circuit.record(failed=isinstance(outcome, TransientError), now=self.clock.now())
        return outcome

    async def _highest_applied(
        self,
        group: list[tuple[Disposition, object]],
        current: EventIdentity,
        flight: InFlight,
        reference: str,
    ) -> tuple[int, Accepted] | None:
        """The highest version after `current`, up to the one in flight, that the register
        already holds (looked up newest first), or None (not found, or it cannot tell now)."""
        later = [
            (fd.identity, event)
            for fd, event in group
            if fd.identity
            and current.record_version < fd.identity.record_version <= flight.record_version
        ]
        for identity, event in sorted(later, key=lambda item: -item[0].record_version):
            try:
                submission = Submission(identity, self.worker.map(event, reference), reference)
                found = await self.worker.lookup(submission)
            except DeliveryError:
                return None
            if found is not None:
                return identity.record_version, found
        return None

    def _follow(self, d: Disposition, head_location: str) -> None:
        d.follows = True
        if head_location == "dlq":
            d.fate, d.error_class = "dead_letter", BLOCKED
            d.reason = "an earlier event of this record is in the dead-letter topic"
        else:
            d.fate, d.tier, d.error_class = "retry", head_location.removeprefix("retry:"), BLOCKED
            d.reason = "an earlier event of this record is waiting in retry"

    def _dead_letter(self, d: Disposition, err: DeliveryError, error_class: str, msg: str) -> None:
        d.fate, d.error, d.error_class, d.reason = "dead_letter", err, error_class, msg

    def _settle_deferred(self, result: ChunkResult, now: datetime) -> None:
        """Transient failures: retry tier, or back to Kafka when the register is down."""
        handed_back_records: set[str] = set()
        for d in result.dispositions:
            if d.fate == "handed_back" and isinstance(d.error, ConfigurationError):
                result.configuration_error = d.error
            if d.fate == "handed_back" and d.identity is not None:
                handed_back_records.add(d.identity.record_id)
        register_down = self.circuit.state is not CircuitState.CLOSED
        heads: dict[str, Disposition] = {}
        for d in result.dispositions:
            if d.fate != "deferred" or d.identity is None:
                continue
            record_id = d.identity.record_id
            if register_down or record_id in handed_back_records:
                d.fate = "handed_back"
                handed_back_records.add(record_id)
                continue
            if d.follows and record_id in heads:
                head = heads[record_id]
                d.fate, d.tier, d.error_class = head.fate, head.tier, BLOCKED
                continue
            if d.follows:  # the head of this record was dead-lettered in this chunk
                d.fate, d.error_class = "dead_letter", BLOCKED
                continue
            failures = d.inbound.failures + 1
            first = d.inbound.first_failure_at() or now
            retry_after = d.error.retry_after if isinstance(d.error, ThrottledError) else None
            tier = self.retry.next_tier(failures, first, now, at_least=retry_after)
            heads[record_id] = d
            if tier is None:
                message = d.error.message if d.error else "transient failure"
                d.fate, d.error_class = "dead_letter", "retries_exhausted"
                d.reason = f"retries exhausted after {failures} attempts: {message}"
            else:
                d.fate, d.tier = "retry", tier.name
                d.error_class = d.error.error_class if d.error else "transient"
                d.reason = d.error.message if d.error else ""

    def _apply_dlq_limit(self, result: ChunkResult) -> None:
        """A bad deploy must not dead-letter a day of traffic: stop before it does."""
        outcomes = [d.fate == "dead_letter" for d in result.dispositions if d.fate != "handed_back"]
        if self.dlq_limit.tripped or self.dlq_limit.would_trip(outcomes):
            self.dlq_limit.trip()
            for d in result.dispositions:
                if d.fate == "dead_letter":
                    d.fate = "handed_back"
            return
        self.dlq_limit.record(outcomes)

    def _settlement(self, result: ChunkResult) -> None:
        """What the ledger must remember of this chunk (written after the messages are out)."""
        settlement = result.settlement
        maybe_applied = {
            d.identity.record_id for d in result.dispositions if d.identity and _maybe_applied(d)
        }
        if maybe_applied:  # keep their in-flight rows: the next attempt looks them up first
            kept = [r for r in settlement.settled_records if r not in maybe_applied]
            settlement.settled_records[:] = kept
        for d in result.dispositions:
            identity = d.identity
            if identity is None:
                continue
            if d.fate == "accepted" and d.reference is not None:
                settlement.accepted.append((identity, d.reference))
            elif d.fate == "skipped":
                settlement.skipped.append(identity)
            elif d.fate == "retry" and d.tier is not None:
                settlement.park.append((identity, f"retry:{d.tier}"))
            elif d.fate == "dead_letter":
                settlement.dead_lettered.append(identity)
                if not isinstance(d.error, InvalidEventError) or d.follows:
                    settlement.park.append((identity, "dlq"))

    def _outgoing(self, result: ChunkResult, now: datetime) -> list[Outgoing]:
        """Retry records, dead letters and results, in chunk order."""
        worker = self.worker.name
        messages: list[Outgoing] = []
        for d in result.dispositions:
            first = len(messages)
            if d.fate == "accepted":
                self.metrics.events.labels(worker, "accepted").inc()
                messages.extend(self._result(d, "accepted", now, reference=d.reference))
            elif d.fate == "skipped":
                self.metrics.events.labels(worker, f"skipped_{d.reason}").inc()
                messages.extend(self._result(d, "skipped", now, reason=d.reason))
            elif d.fate == "retry" and d.tier is not None:
                due = now + self.retry.tier(d.tier).delay
                headers = [
                    *self._story(d, now),
                    (h.DUE_AT, due.isoformat().encode()),
                    (h.RETRY_TIER, d.tier.encode()),
                ]
                topic = retry_topic(worker, d.tier)
                messages.append(Outgoing(topic, d.inbound.key, d.inbound.value, headers))
                self.metrics.retries.labels(worker, d.tier).inc()
            elif d.fate == "dead_letter":
                headers = self._story(d, now)
                topic = dlq_topic(worker)
                messages.append(Outgoing(topic, d.inbound.key, d.inbound.value, headers))
                self.metrics.dead_letters.labels(worker, d.error_class).inc()
                self.metrics.events.labels(worker, "dead_lettered").inc()
                messages.extend(
                    self._result(
                        d, "dead_lettered", now, reason=d.reason, error_class=d.error_class
                    )
                )
            self._trace(d, messages[first:])
        return messages

    def _trace(self, d: Disposition, messages: list[Outgoing]) -> None:
        """The event span's traceparent on what it sent; without tracing, the journal's own."""
        if self.tracing is not None:
            self.tracing.trace_messages(d, messages)
            return
        for message in messages:  # retries and dead letters carry the journal's headers anyway
            pass_on_trace(d.inbound.headers, message)

    def _story(self, d: Disposition, now: datetime) -> list[tuple[str, bytes]]:
        return story_headers(
            d.inbound,
            error=d.error,
            error_class=d.error_class,
            message=d.reason,
            failures=d.inbound.failures + (0 if d.follows else 1),
            first_failure_at=d.inbound.first_failure_at() or now,
            now=now,
            consumer_group=self.consumer_group,
            worker_version=self.worker.version,
            event_id=d.identity.event_id if d.identity else None,
            record_id=d.identity.record_id if d.identity else _key_text(d.inbound.key),
        )

    def _result(
        self, d: Disposition, status: str, now: datetime, **extra: str | None
    ) -> list[Outgoing]:
        """The event's result for the journal system (none when the worker has no results topic)."""
        if not self.publish_results:
            return []
        identity = d.identity
        return [
            result_message(
                results_topic(self.worker.name),
                record_id=identity.record_id if identity else _key_text(d.inbound.key),
                event_id=identity.event_id if identity else None,
                record_version=identity.record_version if identity else None,
                status=status,
                now=now,
                **extra,
            )
        ]


def _key_text(key: bytes | None) -> str:
    return key.decode("utf-8", "replace") if key else ""


def _maybe_applied(d: Disposition) -> bool:
    """Sent, and failed in a way that leaves open whether the register applied it (a timeout, a
    connection lost after the request went out, a 5xx): retry it only after a look-up."""
    return (
        not d.follows
        and d.fate in ("retry", "handed_back")
        and isinstance(d.error, TransientError)
        and not isinstance(d.error, ThrottledError | NotYetAppliedError)
    )
