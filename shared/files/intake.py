"""The intake: a file register's events into its state, through the delivery runtime.

The runtime's promises hold as for a request register (ledger, order per record, retries, dead
letters for what cannot be placed, `not_ours` skips): the intake is a `RegisterWorker` whose
"register" is the state in the ledger's database. What it stores is reported when its file's
receipt comes (the file runtime publishes that result), so the runtime publishes no result for
an event stored (`Wiring.results_on_accept=False`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from shared.delivery.clock import Clock
from shared.delivery.errors import (
    DeliveryError,
    PermanentError,
    RegisterUnavailableError,
)
from shared.delivery.worker import Accepted, EventIdentity, Outcome, Submission
from shared.files.register import FileRegister
from shared.files.state import FileState, Intake

CANCELLED = "cancelled"  # the reference of a record withdrawn


@dataclass(frozen=True)
class Consumed:
    """An event as parsed, with what the state keeps of it."""

    identity: EventIdentity
    event: object
    raw: bytes


class FileIntake:
    """Parse and place with the register; store in the state (a batch per transaction)."""

    def __init__(self, register: FileRegister, state: FileState, clock: Clock) -> None:
        self.name = register.name
        self.version = register.version
        self._register = register
        self._state = state
        self._clock = clock

    def parse(self, raw: bytes) -> tuple[EventIdentity, object]:
        identity, event = self._register.parse(raw)
        return identity, Consumed(identity, event, raw)

    def map(self, event: object, reference: str | None) -> Intake:
        """The event's placement. A cancellation is taken even when it cannot be placed now
        (its unit closed since, say): it withdraws the record wherever it is."""
        assert isinstance(event, Consumed)  # parse() made it
        cancelled = event.identity.operation == "cancel"
        try:
            placement = self._register.place(event.event)
        except DeliveryError:  # NotOursError is not one: another register's event is skipped
            if not cancelled:
                raise
            placement = None
        return Intake(event.identity, placement, cancelled, event.raw)

    async def submit(self, batch: Sequence[Submission[Intake]]) -> Sequence[Outcome]:
        try:
            refused = await self._state.store([s.request for s in batch], self._clock.now())
        except (SQLAlchemyError, OSError) as exc:
            error = RegisterUnavailableError(
                f"the file state cannot be written now ({type(exc).__name__}: {exc})",
                error_class="state_unavailable",
            )
            return [error] * len(batch)
        return [_outcome(s, refused.get(s.identity.event_id)) for s in batch]

    async def lookup(self, submission: Submission[Intake]) -> Accepted | None:
        identity = submission.identity
        try:
            found = await self._state.holds_event(identity.record_id, identity.event_id)
        except (SQLAlchemyError, OSError) as exc:
            raise RegisterUnavailableError(
                f"the file state cannot be read now ({type(exc).__name__}: {exc})",
                error_class="state_unavailable",
            ) from exc
        return _accepted(submission.request) if found else None


def _outcome(submission: Submission[Intake], refusal: str | None) -> Outcome:
    if refusal is None:
        return _accepted(submission.request)
    return PermanentError(refusal, error_class="moved_after_delivery")


def _accepted(intake: Intake) -> Accepted:
    """The reference: the file the record is in (``2027-01/<owner>``), or `cancelled`."""
    if intake.cancelled or intake.placement is None:
        return Accepted(CANCELLED)
    key = intake.placement.key
    return Accepted(f"{key.period}/{key.owner}")
