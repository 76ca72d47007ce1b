"""What becomes of a consumed record, as a type, and `decide`: the one place that decides it.

A record's path through a chunk (record.py) ends each event in a `Verdict`: done (its fate is
clear on the spot), failed (the first failure of its record in this chunk), or behind (a later
event of that record, held back by the failure). `decide` turns verdicts into fates once, given
what only the whole chunk knows: whether the register is down, and the retry schedule.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from shared.delivery.errors import (
    ConfigurationError,
    DeliveryError,
    HaltedError,
    InvalidEventError,
    NotOursError,
    NotYetAppliedError,
    NotYetKnownError,
    PermanentError,
    ThrottledError,
    TransientError,
)
from shared.delivery.retry import RetryPolicy

if TYPE_CHECKING:
    from shared.delivery.outgoing import Inbound

BLOCKED = "blocked_by_earlier"
NOT_OURS = NotOursError.reason  # a skip: the worker said the event is another register's


# --- fates --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Applied:
    """The register holds the event (sent now, or found there after a crash)."""

    name: ClassVar[str] = "accepted"
    reference: str  # the register's id of the record


@dataclass(frozen=True, slots=True)
class Skipped:
    """Nothing to do: the same event again, a version older than the one applied, another
    register's event, or one the worker finds nothing to send for (NothingToSendError)."""

    name: ClassVar[str] = "skipped"
    reason: str  # duplicate | stale | not_ours | the worker's own reason


@dataclass(frozen=True, slots=True)
class Retrying:
    """Waits in a retry tier (its own transient failure, or behind an earlier event)."""

    name: ClassVar[str] = "retry"
    tier: str
    error_class: str
    reason: str
    error: DeliveryError | None = None
    follows: bool = False  # sent along behind an earlier event of the same record


@dataclass(frozen=True, slots=True)
class DeadLettered:
    """Goes to the dead-letter topic with its story."""

    name: ClassVar[str] = "dead_letter"
    error_class: str
    reason: str
    error: DeliveryError | None = None
    follows: bool = False


@dataclass(frozen=True, slots=True)
class HandedBack:
    """Left in Kafka: its offset is not committed and the partition is sought back to it
    (register down, a configuration error, the dead-letter limit), and with it every later event
    of its partition in the chunk, so that each is settled, and has its result, once."""

    name: ClassVar[str] = "handed_back"
    reason: str
    error: DeliveryError | None = None
    follows: bool = False
    reference: str | None = None  # the register took it in this chunk: looked up when read again


@dataclass(frozen=True, slots=True)
class Redelivered:
    """Kafka gave it again after a crash or a hand-back, but its fate is already written: its
    copy waits in a retry tier or the dead-letter topic."""

    name: ClassVar[str] = "redelivered"


Fate = Applied | Skipped | Retrying | DeadLettered | HandedBack | Redelivered


def maybe_applied(fate: Fate) -> bool:
    """Sent, and either taken by the register but handed back with its partition, or failed in a
    way that leaves open whether the register applied it (a timeout, a connection lost after the
    request went out, a 5xx): send it again only after a look-up."""
    if isinstance(fate, HandedBack) and fate.reference is not None:
        return True
    return (
        isinstance(fate, Retrying | HandedBack)
        and not fate.follows
        and isinstance(fate.error, TransientError)
        and not isinstance(fate.error, ThrottledError | NotYetAppliedError | HaltedError)
    )


def parks(fate: Fate) -> str | None:
    """Where a fate parks its event so that later events of the record follow it, if anywhere.

    An event dead-lettered for its own content (InvalidEventError) holds nobody back."""
    if isinstance(fate, Retrying):
        return f"retry:{fate.tier}"
    if isinstance(fate, DeadLettered) and (
        fate.follows or not isinstance(fate.error, InvalidEventError)
    ):
        return "dlq"
    return None


# --- verdicts -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Done:
    fate: Fate


@dataclass(frozen=True, slots=True)
class Failed:
    error: DeliveryError


@dataclass(frozen=True, slots=True)
class Behind:
    head: int  # index (in the chunk) of the failed event it waits behind
    head_event_id: str


Verdict = Done | Failed | Behind


def decide(
    chunk: Sequence[tuple[Inbound, Verdict]],
    *,
    register_down: bool,
    retry: RetryPolicy,
    now: datetime,
    admit: Callable[[Sequence[Fate]], list[Fate]] = list,
    floor: Mapping[tuple[str, int], int] | None = None,
) -> list[Fate]:
    """Every event's fate, in chunk order. A failure is retried (or dead-lettered when its
    retries are spent), handed back while the register is down or misconfigured, or
    dead-lettered at once when permanent; the events behind it share its fate. `admit` (the
    dead-letter limit) may hand dead letters back; whatever is handed back takes the rest of its
    partition with it, as does an earlier chunk's hand-back (`floor`: partition → offset)."""
    fates = admit(_fates(chunk, register_down, retry, now))
    return _hand_back_tails([inbound for inbound, _ in chunk], fates, floor or {})


def _fates(
    chunk: Sequence[tuple[Inbound, Verdict]], register_down: bool, retry: RetryPolicy, now: datetime
) -> list[Fate]:
    fates: list[Fate | None] = [None] * len(chunk)
    for index, (inbound, verdict) in enumerate(chunk):
        if isinstance(verdict, Done):
            fates[index] = verdict.fate
        elif isinstance(verdict, Failed):
            fates[index] = _failed(inbound, verdict.error, register_down, retry, now)
    for index, (_inbound, verdict) in enumerate(chunk):
        if isinstance(verdict, Behind):
            head = fates[verdict.head]
            assert head is not None  # a head fails before the events behind it
            fates[index] = _behind(head, verdict.head_event_id)
    return [fate for fate in fates if fate is not None]


def _hand_back_tails(
    inbound: Sequence[Inbound], fates: Sequence[Fate], floor: Mapping[tuple[str, int], int]
) -> list[Fate]:
    """The partition is sought back to its first handed-back event and read again from there:
    every later event of that partition in the chunk is handed back too, unsettled and without a
    result, so that reading it again gives it its one fate (an event the register took in this
    chunk keeps its in-flight row and is looked up, not sent, when read again)."""
    first = dict(floor)
    for record, fate in zip(inbound, fates, strict=True):
        if isinstance(fate, HandedBack):
            key = (record.topic, record.partition)
            first[key] = min(first.get(key, record.offset), record.offset)
    if not first:
        return list(fates)
    result: list[Fate] = []
    for record, fate in zip(inbound, fates, strict=True):
        start = first.get((record.topic, record.partition))
        if start is None or record.offset < start or isinstance(fate, HandedBack):
            result.append(fate)
            continue
        reference = fate.reference if isinstance(fate, Applied) else None
        error = getattr(fate, "error", None)
        follows = getattr(fate, "follows", False)
        result.append(HandedBack(TAIL, error, follows, reference))
    return result


TAIL = "after an event handed back in its partition: read again with it"


def _failed(
    inbound: Inbound,
    error: DeliveryError,
    register_down: bool,
    retry: RetryPolicy,
    now: datetime,
) -> Fate:
    if isinstance(error, PermanentError):
        return DeadLettered(error.error_class, error.message, error)
    if isinstance(error, ConfigurationError):
        return HandedBack(f"configuration error: {error.message}", error)
    if isinstance(error, HaltedError):
        return HandedBack(error.message, error)
    if register_down:
        return HandedBack("register unavailable: circuit open", error)
    failures = inbound.failures + 1
    first = inbound.first_failure_at() or now
    retry_after = error.retry_after if isinstance(error, ThrottledError) else None
    tier = retry.next_tier(failures, first, now, at_least=retry_after)
    if isinstance(error, NotYetKnownError) and (tier is None or now - first >= error.grace):
        waited = f"; still so {now - first} after the first attempt" if now > first else ""
        return DeadLettered(error.final_class, error.message + waited, error)
    if tier is None:
        reason = f"retries exhausted after {failures} attempts: {error.message}"
        return DeadLettered("retries_exhausted", reason, error)
    return Retrying(tier.name, error.error_class, error.message, error)


def _behind(head: Fate, head_event_id: str) -> Fate:
    reason = f"follows event {head_event_id}"
    if isinstance(head, Retrying):
        return Retrying(head.tier, BLOCKED, reason, head.error, follows=True)
    if isinstance(head, DeadLettered):
        return DeadLettered(BLOCKED, reason, head.error, follows=True)
    if isinstance(head, HandedBack):
        return HandedBack(reason, head.error, follows=True)
    raise AssertionError(f"an event cannot wait behind one that is {head.name}")


def hand_back_dead_letters(fates: Sequence[Fate], reason: str) -> list[Fate]:
    """The dead-letter limit tripped: no dead letter leaves; they stay in Kafka instead."""
    return [
        HandedBack(reason, fate.error, fate.follows) if isinstance(fate, DeadLettered) else fate
        for fate in fates
    ]
