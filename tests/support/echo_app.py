"""A minimal FastStream app over the public contract, run in memory (unit) and on a real broker."""

from __future__ import annotations

import asyncio

from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from shared.contracts import ContractViolationError, parse_event


def build_echo_app(
    broker: KafkaBroker, topic: str, group: str
) -> tuple[asyncio.Queue[object], asyncio.Queue[str]]:
    """Subscribe to `topic`; valid events land in the first queue, contract errors in the second."""
    accepted: asyncio.Queue[object] = asyncio.Queue()
    rejected: asyncio.Queue[str] = asyncio.Queue()

    @broker.subscriber(
        topic, group_id=group, auto_offset_reset="earliest", ack_policy=AckPolicy.ACK
    )
    async def handle_event(message: KafkaMessage) -> None:
        try:
            await accepted.put(parse_event(message.body))
        except ContractViolationError as exc:
            await rejected.put(str(exc))

    return accepted, rejected
