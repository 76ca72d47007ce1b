"""The one producer the catalog sync writes its compacted topics with (acks=all, idempotent)."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

from services.catalog.topic_state import Headers
from shared.kafka import kafka_client_options
from shared.settings import KafkaSettings

SEND_WINDOW = 5_000  # sends awaited together
MAX_BATCH_BYTES = 256 * 1024  # per partition: few, well compressed batches for the next read


class CatalogWriter:
    """Sends many records and awaits them in windows (imports), or one at a time (notifications)."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._producer = AIOKafkaProducer(
            **kafka_client_options(kafka),
            acks="all",
            enable_idempotence=True,
            linger_ms=20,
            compression_type="gzip",
            max_batch_size=MAX_BATCH_BYTES,
        )
        self._pending: list[asyncio.Future[object]] = []

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self.flush()
        await self._producer.stop()

    async def send(self, topic: str, key: str, value: bytes | None, headers: Headers) -> None:
        future = await self._producer.send(topic, value, key=key.encode(), headers=headers)
        self._pending.append(future)
        if len(self._pending) >= SEND_WINDOW:
            await self.flush()

    async def publish(self, topic: str, key: str, value: bytes | None, headers: Headers) -> None:
        """Send one record and wait until Kafka has it (for the notification path)."""
        await (await self._producer.send(topic, value, key=key.encode(), headers=headers))

    async def flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)
