"""What the runtime writes back to Kafka: retry records, dead letters with their story, results."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.delivery import headers as h
from shared.delivery.errors import DeliveryError


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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
        "at": now.isoformat(),
    }
    body.update({name: value for name, value in extra.items() if value is not None})
    return Outgoing(topic, record_id.encode(), json.dumps(body).encode(), [])
