"""The small interface a worker implements; everything else is the runtime's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from shared.delivery.errors import DeliveryError

RequestT = TypeVar("RequestT")


@dataclass(frozen=True, slots=True)
class EventIdentity:
    """What the runtime needs to know of any event (read from the contract's envelope)."""

    event_id: str
    record_id: str
    record_version: int
    operation: str  # create | correct | cancel


@dataclass(frozen=True, slots=True)
class Submission(Generic[RequestT]):
    """One mapped event on its way to the register."""

    identity: EventIdentity
    request: RequestT
    reference: str | None  # the register's id of the record, from the ledger (None before create)


@dataclass(frozen=True, slots=True)
class Accepted:
    """The register took the event; `reference` is its id of the record."""

    reference: str


@dataclass(frozen=True, slots=True)
class NotSent:
    """The worker's `map` found nothing to send (NothingToSendError, NotOursError): skipped."""

    reason: str  # not_ours, or the worker's own reason


Outcome = Accepted | DeliveryError
"""One per submitted event: accepted, or the error that decides its fate."""


class RegisterWorker(Protocol[RequestT]):
    """Parse → map → submit → (after a crash) look up. Pure where it can be; no retry loops."""

    name: str  # the worker's name: topic prefix and ledger namespace
    version: str  # written on dead letters

    def parse(self, raw: bytes) -> tuple[EventIdentity, object]:
        """Bytes → (identity, event). Raises InvalidEventError with a precise reason."""
        ...

    def map(self, event: object, reference: str | None) -> RequestT:
        """Event → register request. Pure; raises PermanentError when it cannot be mapped."""
        ...

    async def submit(self, batch: Sequence[Submission[RequestT]]) -> Sequence[Outcome]:
        """Send a group of requests; return exactly one outcome per submission, same order."""
        ...

    async def lookup(self, submission: Submission[RequestT]) -> Accepted | None:
        """After a crash: is this submission already at the register? Its reference if so."""
        ...


class Component(Protocol):
    """Something else a worker needs before it is ready (its CatalogView, a register probe)."""

    @property
    def ready(self) -> bool: ...

    def describe(self) -> dict[str, Any]: ...
