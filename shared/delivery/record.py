"""One record's events through a chunk, strictly in order: a step per question, a verdict each."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from opentelemetry.trace import Span

from shared.delivery.batcher import Batcher, Permits
from shared.delivery.bookkeeping import RecordBook
from shared.delivery.clock import Clock
from shared.delivery.errors import (
    ConfigurationError,
    DeliveryError,
    HaltedError,
    NothingToSendError,
    PermanentError,
    TransientError,
)
from shared.delivery.fates import (
    BLOCKED,
    Applied,
    Behind,
    DeadLettered,
    Done,
    Failed,
    Redelivered,
    Retrying,
    Skipped,
    Verdict,
)
from shared.delivery.ledger import InFlight
from shared.delivery.metrics import Metrics
from shared.delivery.outgoing import Inbound
from shared.delivery.tracing import activate
from shared.delivery.worker import (
    Accepted,
    EventIdentity,
    NotSent,
    Outcome,
    RegisterWorker,
    Submission,
)


@dataclass(slots=True)
class Item:
    """One consumed record on its way through a chunk: parsed once, traced when tracing is on."""

    index: int  # its place in the chunk
    inbound: Inbound
    identity: EventIdentity | None = None
    event: object = None
    span: Span | None = None


_NOT_COUNTED = (PermanentError, ConfigurationError)  # the register is up: it answered


@dataclass(frozen=True, slots=True)
class Call:
    """One answer from the register, for the circuit breaker (permanent answers don't count)."""

    failed: bool  # a transient failure
    at: datetime


@dataclass
class Sender:
    """Maps and sends events of a chunk through one batcher, at most `limit` at a time."""

    worker: RegisterWorker[Any]
    batcher: Batcher
    limit: Permits
    clock: Clock
    metrics: Metrics
    halted: Callable[[], str | None] = lambda: None  # why nothing more is sent, if so
    rank: int = 0  # its chunk's place in fetch order: the older chunk's calls go first
    calls: list[Call] = field(default_factory=list)

    def prepare(
        self, item: Item, reference: str | None
    ) -> Submission[Any] | NotSent | DeliveryError:
        """The event mapped for the register; what it is instead when there is nothing to send
        (another register's, say) or the mapping refused it."""
        assert item.identity is not None  # only parsed events are sent
        try:
            return Submission(item.identity, self.worker.map(item.event, reference), reference)
        except NothingToSendError as skip:
            return NotSent(skip.reason)
        except DeliveryError as exc:  # mapping refused it
            return exc

    async def send(
        self, item: Item, reference: str | None, *, in_flight: bool
    ) -> Outcome | NotSent:
        """Map and send one event through the batcher (after looking it up, if a crash left it
        in flight)."""
        submission = self.prepare(item, reference)
        if not isinstance(submission, Submission):
            return submission
        try:
            if in_flight:
                found = await self.worker.lookup(submission)
                if found is not None:
                    self.metrics.reconciled.labels(self.worker.name).inc()
                    return found
            taken = await self.limit.acquire(1, self.rank)
            try:
                if (why := self.halted()) is not None:  # only the calls already out finish
                    return HaltedError(f"not sent: {why}; read again later")
                started = self.clock.now()
                outcome = await self.batcher.submit(submission)
                answered = self.clock.now()
            finally:
                self.limit.release(taken)
            self.metrics.observe_latency(self.worker.name, answered - started)
        except DeliveryError as exc:  # the lookup could not answer
            return exc
        self._note((outcome,), answered)
        return outcome

    async def send_batch(self, batch: Sequence[Submission[Any]]) -> Sequence[Outcome]:
        """Several events in one register call, as they are (no linger, no lookup): the one
        event of each of several records with nothing in flight."""
        taken = await self.limit.acquire(len(batch), self.rank)
        try:
            if (why := self.halted()) is not None:
                return [HaltedError(f"not sent: {why}; read again later")] * len(batch)
            started = self.clock.now()
            outcomes = await self.batcher.call(batch)
            answered = self.clock.now()
        finally:
            self.limit.release(taken)
        self.metrics.observe_latency(self.worker.name, answered - started, len(outcomes))
        self._note(outcomes, answered)
        return outcomes

    def _note(self, outcomes: Sequence[Outcome], answered: datetime) -> None:
        """The register's answers, for the circuit breaker (permanent answers don't count)."""
        calls = self.calls
        for outcome in outcomes:
            if not isinstance(outcome, _NOT_COUNTED):
                calls.append(Call(isinstance(outcome, TransientError), answered))

    async def find(self, item: Item, reference: str) -> Accepted | DeliveryError | None:
        """Is this event's version at the register? None when not; the error when it cannot
        tell now."""
        assert item.identity is not None
        try:
            submission = Submission(
                item.identity, self.worker.map(item.event, reference), reference
            )
            return await self.worker.lookup(submission)
        except NothingToSendError:  # a version with nothing to send: never sent, so not there
            return None
        except DeliveryError as exc:
            return exc


class RecordPath:
    """The events of one record in a chunk, in order. Each event asks, in turn: is it behind a
    failure of this chunk? already done? redelivered? behind a parked event? — and otherwise is
    delivered (reconciled first when a crash left its chain in flight)."""

    def __init__(self, items: Sequence[Item], book: RecordBook, sender: Sender) -> None:
        self._items = items
        self._sender = sender
        self._book = book
        self._applied = book.applied_version
        self._reference = book.reference
        parked = book.parked
        self._queue = [p.event_id for p in parked] if parked else []  # parked, oldest first
        self._location = {p.event_id: p.location for p in parked} if parked else {}
        self._seen: set[str] = set()
        self._failed: Item | None = None
        self._searched = False  # the in-flight chain looked up once
        self._reconciled_through: int | None = None

    async def walk(self) -> list[tuple[Item, Verdict]]:
        return [(item, await self._step(item)) for item in self._items]

    def direct(self) -> Item | None:
        """The record's event when it is its only one in the chunk and needs no look-up first
        (nothing of the record in flight): it may share a call with other records' events."""
        if len(self._items) != 1:
            return None
        item = self._items[0]
        assert item.identity is not None
        if self._book.decisions[item.identity.event_id].kind == "in_flight":
            return None
        return item

    def prepare(self, item: Item) -> Verdict | Submission[Any]:
        """A `direct` event's verdict when it needs no call; else its submission, to be sent
        (`Sender.send_batch`) and `answered`."""
        identity = item.identity
        assert identity is not None
        checked = self._check(item, identity)
        if checked is not None:
            return checked
        ready = self._sender.prepare(item, self._reference)
        return ready if isinstance(ready, Submission) else self.answered(item, ready)

    async def _step(self, item: Item) -> Verdict:
        identity = item.identity
        assert identity is not None  # only parsed events walk a record's path
        return self._check(item, identity) or await self._deliver(item, identity)

    def _check(self, item: Item, identity: EventIdentity) -> Verdict | None:
        return (
            self._behind_failure()
            or self._done_already(identity)
            or self._redelivered(item, identity)
            or self._behind_parked(identity)
        )

    def _behind_failure(self) -> Verdict | None:
        if self._failed is None:
            return None
        head = self._failed
        return Behind(head.index, head.identity.event_id if head.identity else "?")

    def _done_already(self, identity: EventIdentity) -> Verdict | None:
        decision = self._book.decisions[identity.event_id]
        if identity.event_id in self._seen or decision.kind == "duplicate":
            reason = "duplicate"
        elif self._applied is not None and identity.record_version <= self._applied:
            reason = "stale"
        else:
            self._seen.add(identity.event_id)
            return None
        if identity.event_id in self._queue:  # a parked copy that is done: release the line
            self._queue.remove(identity.event_id)
        return Done(Skipped(reason))

    def _redelivered(self, item: Item, identity: EventIdentity) -> Verdict | None:
        inbound = item.inbound
        if identity.event_id in self._queue and not (inbound.from_retry or inbound.replayed):
            return Done(Redelivered())
        return None

    def _behind_parked(self, identity: EventIdentity) -> Verdict | None:
        if not self._queue or self._queue[0] == identity.event_id:
            return None
        location = self._location[self._queue[0]]
        if identity.event_id not in self._queue:
            self._queue.append(identity.event_id)
            self._location[identity.event_id] = location
        if location == "dlq":
            reason = "an earlier event of this record is in the dead-letter topic"
            return Done(DeadLettered(BLOCKED, reason, follows=True))
        reason = "an earlier event of this record is waiting in retry"
        return Done(Retrying(location.removeprefix("retry:"), BLOCKED, reason, follows=True))

    async def _deliver(self, item: Item, identity: EventIdentity) -> Verdict:
        with activate(item.span):  # the register call's spans are children of the event's
            outcome = await self._reconciled(identity) or await self._send(item, identity)
        return self.answered(item, outcome)

    def answered(self, item: Item, outcome: Outcome | NotSent) -> Verdict:
        """The event's verdict from what became of its call."""
        assert item.identity is not None
        if isinstance(outcome, NotSent):
            return Done(Skipped(outcome.reason))
        if isinstance(outcome, Accepted):
            event_id = item.identity.event_id
            if self._queue and self._queue[0] == event_id:
                self._queue.pop(0)
            self._applied, self._reference = item.identity.record_version, outcome.reference
            return Done(Applied(outcome.reference))
        self._failed = item
        return Failed(outcome)

    async def _reconciled(self, identity: EventIdentity) -> Accepted | None:
        """A crash left the record's submissions up to version N in flight: the highest of them
        found at the register tells that every version up to it is applied (a record's events go
        one by one), so none of those is sent again."""
        flight = self._book.inflight
        decision = self._book.decisions[identity.event_id]
        if (
            flight is not None
            and not self._searched
            and self._reference is not None  # the later versions can be mapped
            and decision.kind == "in_flight"
            and identity.record_version < flight.record_version
        ):
            self._searched = True
            found = await self._highest_applied(identity, flight, self._reference)
            if found is not None:
                self._reconciled_through, self._reference = found[0], found[1].reference
        through = self._reconciled_through
        if through is not None and identity.record_version <= through:
            self._sender.metrics.reconciled.labels(self._sender.worker.name).inc()
            return Accepted(self._reference or "")
        return None

    async def _send(self, item: Item, identity: EventIdentity) -> Outcome | NotSent:
        in_flight = self._book.decisions[identity.event_id].kind == "in_flight"
        return await self._sender.send(item, self._reference, in_flight=in_flight)

    async def _highest_applied(
        self, current: EventIdentity, flight: InFlight, reference: str
    ) -> tuple[int, Accepted] | None:
        """The highest version after `current`, up to the one in flight, that the register
        already holds (looked up newest first), or None (not found, or it cannot tell now)."""
        later = [
            item
            for item in self._items
            if item.identity
            and current.record_version < item.identity.record_version <= flight.record_version
        ]
        for item in sorted(later, key=lambda i: -i.identity.record_version):  # type: ignore[union-attr]
            found = await self._sender.find(item, reference)
            if isinstance(found, DeliveryError):
                return None
            if found is not None:
                assert item.identity is not None
                return item.identity.record_version, found
        return None
