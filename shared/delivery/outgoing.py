"""What the runtime writes back to Kafka: retry records, dead letters with their story, results."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import orjson

from shared.delivery import headers as h
from shared.delivery.errors import DeliveryError
from shared.delivery.fates import Applied, DeadLettered, Fate, Retrying, Skipped

if TYPE_CHECKING:
    from shared.delivery.retry import RetryPolicy
    from shared.delivery.worker import EventIdentity
    from shared.topics import WorkerTopics


@dataclass(frozen=True, slots=True)
class Inbound:
    """One consumed record and what the runtime knows of its history."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int  # ms since the epoch
    from_retry: bool = False

    @property
    def story(self) -> dict[str, str]:
        return h.to_dict(self.headers)

    @property
    def replayed(self) -> bool:
        """Re-published from a dead-letter topic by an operator."""
        return h.REPLAYED_FROM in self.story

    @property
    def failures(self) -> int:
        """Failed submissions so far (only retry records carry a count)."""
        return int(self.story.get(h.ATTEMPTS, "0")) if self.from_retry else 0

    def first_failure_at(self) -> datetime | None:
        text = self.story.get(h.FIRST_FAILURE_AT) if self.from_retry else None
        return datetime.fromisoformat(text) if text else None

    def origin(self) -> dict[str, str]:
        """Where the event first entered regbridge (kept across retry tiers)."""
        story = self.story
        if self.from_retry and h.ORIGIN_TOPIC in story:
            keys = (h.ORIGIN_TOPIC, h.ORIGIN_PARTITION, h.ORIGIN_OFFSET, h.ORIGIN_TIMESTAMP)
            return {k: story[k] for k in keys if k in story}
        return {
            h.ORIGIN_TOPIC: self.topic,
            h.ORIGIN_PARTITION: str(self.partition),
            h.ORIGIN_OFFSET: str(self.offset),
            h.ORIGIN_TIMESTAMP: str(self.timestamp),
        }

    def foreign_headers(self) -> list[tuple[str, bytes]]:
        """The producer's own headers (traceparent …), without regbridge's bookkeeping."""
        return [
            (name, value)
            for name, value in self.headers
            if not name.startswith("regbridge-") and name != h.DUE_AT
        ]


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


def trace_id(inbound: Inbound) -> str | None:
    """The trace id from a W3C traceparent header (version-traceid-spanid-flags)."""
    parts = inbound.story.get(h.TRACEPARENT, "").split("-")
    return parts[1] if len(parts) == 4 else None


def story_headers(
    inbound: Inbound,
    *,
    error: DeliveryError | None,
    error_class: str,
    message: str,
    failures: int,
    first_failure_at: datetime,
    now: datetime,
    consumer_group: str,
    worker_version: str,
    event_id: str | None,
    record_id: str | None,
) -> list[tuple[str, bytes]]:
    response = error.register_response if error else None
    values: dict[str, str | int | None] = {
        **inbound.origin(),
        h.CONSUMER_GROUP: consumer_group,
        h.EVENT_ID: event_id,
        h.RECORD_ID: record_id,
        h.ERROR_CLASS: error_class,
        h.ERROR_MESSAGE: message,
        h.REGISTER_STATUS: error.register_status if error else None,
        h.REGISTER_RESPONSE: response[: h.RESPONSE_LIMIT] if response else None,
        h.ATTEMPTS: failures,
        h.FIRST_FAILURE_AT: first_failure_at.isoformat(),
        h.LAST_FAILURE_AT: now.isoformat(),
        h.WORKER_VERSION: worker_version,
        h.TRACE_ID: trace_id(inbound),
    }
    return inbound.foreign_headers() + h.from_dict(values)


def result_message(
    topic: str,
    *,
    record_id: str,
    event_id: str | None,
    record_version: int | None,
    status: str,
    now: datetime,
    **extra: str | None,
) -> Outgoing:
    """One result per event for the journal system: accepted, skipped or dead_lettered."""
    body: dict[str, Any] = {
        "event_id": event_id,
        "record_id": record_id,
        "record_version": record_version,
        "status": status,
        "at": _iso(now),
    }
    body.update({name: value for name, value in extra.items() if value is not None})
    return Outgoing(topic, record_id.encode(), orjson.dumps(body), [])


@dataclass(frozen=True)
class Writer:
    """Turns one event's fate into its messages: a retry record, or a dead letter with its
    story, and the result for the journal system (when the worker publishes results)."""

    topics: WorkerTopics
    retry: RetryPolicy
    worker_version: str
    results_on_accept: bool = True  # False: an accepted event's result is published elsewhere

    def messages(
        self, inbound: Inbound, identity: EventIdentity | None, fate: Fate, now: datetime
    ) -> list[Outgoing]:
        if isinstance(fate, Applied):
            if not self.results_on_accept:
                return []
            return self._result(inbound, identity, "accepted", now, reference=fate.reference)
        if isinstance(fate, Skipped):
            return self._result(inbound, identity, "skipped", now, reason=fate.reason)
        if isinstance(fate, Retrying):
            due = now + self.retry.tier(fate.tier).delay
            headers = [
                *self._story(inbound, identity, fate, now),
                (h.DUE_AT, due.isoformat().encode()),
                (h.RETRY_TIER, fate.tier.encode()),
            ]
            topic = self.topics.retry[fate.tier]
            return [Outgoing(topic, inbound.key, inbound.value, headers)]
        if isinstance(fate, DeadLettered):
            headers = self._story(inbound, identity, fate, now)
            letter = Outgoing(self.topics.dlq, inbound.key, inbound.value, headers)
            extra = {"reason": fate.reason, "error_class": fate.error_class}
            return [letter, *self._result(inbound, identity, "dead_lettered", now, **extra)]
        return []  # handed back or redelivered: nothing leaves

    def _story(
        self,
        inbound: Inbound,
        identity: EventIdentity | None,
        fate: Retrying | DeadLettered,
        now: datetime,
    ) -> list[tuple[str, bytes]]:
        return story_headers(
            inbound,
            error=fate.error,
            error_class=fate.error_class,
            message=fate.reason,
            failures=inbound.failures + (0 if fate.follows else 1),
            first_failure_at=inbound.first_failure_at() or now,
            now=now,
            consumer_group=self.topics.consumer_group,
            worker_version=self.worker_version,
            event_id=identity.event_id if identity else None,
            record_id=identity.record_id if identity else key_text(inbound.key),
        )

    def _result(
        self,
        inbound: Inbound,
        identity: EventIdentity | None,
        status: str,
        now: datetime,
        **extra: str | None,
    ) -> list[Outgoing]:
        """The event's result for the journal system (none when the worker has no results topic)."""
        if self.topics.results_topic is None:
            return []
        return [
            result_message(
                self.topics.results_topic,
                record_id=identity.record_id if identity else key_text(inbound.key),
                event_id=identity.event_id if identity else None,
                record_version=identity.record_version if identity else None,
                status=status,
                now=now,
                **extra,
            )
        ]


@lru_cache(maxsize=8)
def _iso(at: datetime) -> str:
    """A chunk's time, written once for all its results."""
    return at.isoformat()


def key_text(key: bytes | None) -> str:
    return key.decode("utf-8", "replace") if key else ""
