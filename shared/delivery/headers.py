"""Kafka header names the runtime writes on retry, dead-letter and result messages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

DUE_AT = "due-at"  # ISO 8601 UTC instant before which a retry record must not be processed
TRACEPARENT = "traceparent"  # W3C trace context, carried over from the journal system's message

ORIGIN_TOPIC = "regbridge-origin-topic"
ORIGIN_PARTITION = "regbridge-origin-partition"
ORIGIN_OFFSET = "regbridge-origin-offset"
ORIGIN_TIMESTAMP = "regbridge-origin-timestamp"  # milliseconds since the epoch, as Kafka gives it
CONSUMER_GROUP = "regbridge-consumer-group"
EVENT_ID = "regbridge-event-id"
RECORD_ID = "regbridge-record-id"
ERROR_CLASS = "regbridge-error-class"  # invalid_event, register_rejected, retries_exhausted, …
ERROR_MESSAGE = "regbridge-error-message"
REGISTER_STATUS = "regbridge-register-status"  # the register's HTTP status code, if it answered
REGISTER_RESPONSE = "regbridge-register-response"  # the register's own error text (truncated)
ATTEMPTS = "regbridge-attempts"  # submissions tried so far
RETRY_TIER = "regbridge-retry-tier"  # e.g. "5m"
FIRST_FAILURE_AT = "regbridge-first-failure-at"
LAST_FAILURE_AT = "regbridge-last-failure-at"
WORKER_VERSION = "regbridge-worker-version"
TRACE_ID = "regbridge-trace-id"
REPLAYED_FROM = (
    "regbridge-replayed-from"  # "<dlq topic>/<partition>/<offset>" on a replayed message
)

RESPONSE_LIMIT = 4000  # characters of a register's response kept in a header

Headers = list[tuple[str, bytes]]


def to_dict(headers: Iterable[tuple[str, bytes]] | None) -> dict[str, str]:
    """Kafka headers as text (the last value wins when a name repeats)."""
    return {name: value.decode("utf-8", "replace") for name, value in headers or ()}


def from_dict(values: Mapping[str, str | int | None]) -> Headers:
    """Text values as Kafka headers, skipping the empty ones."""
    return [(name, str(value).encode()) for name, value in values.items() if value is not None]
