"""HSA unit notifications as the public contract has them, published to Kafka by the sandbox."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from aiokafka import AIOKafkaProducer

from shared.contracts import Operation, parse_event
from shared.kafka import kafka_client_options
from shared.settings import KafkaSettings

DEFAULT_TOPIC = "catalog.hsa-notifications.v1"
SOURCE_SYSTEM = "hsa-sandbox"
ChangeKind = Literal["created", "updated", "removed"]
_OPERATIONS: dict[str, Operation] = {
    "created": Operation.CREATE,
    "updated": Operation.CORRECT,
    "removed": Operation.CANCEL,
}


def build_notification(
    hsa_id: str,
    change_kind: ChangeKind,
    record_version: int,
    at: datetime,
    changed_attributes: Sequence[str] | None = None,
) -> bytes:
    """One ``hsa.unit-notification`` event, checked by `parse_event` before it leaves.

    `at` must carry a zone; it is both when the change happened and when it was notified.
    """
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "event_type": "hsa.unit-notification",
        "schema_version": 1,
        "occurred_at": at.isoformat(),
        "source_system": SOURCE_SYSTEM,
        "record_id": hsa_id,
        "record_version": record_version,
        "operation": _OPERATIONS[change_kind].value,
        "payload": {
            "hsa_id": hsa_id,
            "change_kind": change_kind,
            "changed_attributes": None if changed_attributes is None else list(changed_attributes),
            "notified_at": at.isoformat(),
        },
    }
    raw = json.dumps(event, ensure_ascii=False).encode()
    parse_event(raw)  # raises ContractViolationError: the sandbox never sends a bad event
    return raw


class Notifier:
    """One aiokafka producer for the sandbox's lifetime; `publish` waits for the broker's ack."""

    def __init__(self, kafka: KafkaSettings, topic: str = DEFAULT_TOPIC) -> None:
        self.topic = topic
        self._kafka = kafka
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Connect; the producer belongs to the loop that calls this (the server's)."""
        producer = AIOKafkaProducer(
            **kafka_client_options(self._kafka), acks="all", linger_ms=5, enable_idempotence=True
        )
        await producer.start()
        self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def publish(self, events: Sequence[tuple[str, bytes]]) -> None:
        """Send (key, value) pairs; returns once the broker has them all."""
        if self._producer is None:
            raise RuntimeError("notifier not started")
        sent = [await self._producer.send(self.topic, value, key.encode()) for key, value in events]
        await asyncio.gather(*sent)
