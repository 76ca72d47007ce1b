"""FastStream's own log lines (errors with the message body) pass through the mask too."""

from __future__ import annotations

import asyncio
import logging

import pytest
import structlog
from faststream import AckPolicy

from shared.logging import configure_logging
from shared.settings import KafkaSettings, LogFormat
from tests.support.faststream_broker import make_broker

pytestmark = pytest.mark.integration
PNR = "191212121212"


async def test_a_project_broker_logs_through_the_mask(
    kafka_bootstrap: str, unique_name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", LogFormat.JSON)
    broker = make_broker(KafkaSettings(bootstrap_servers=kafka_bootstrap), worker="test")
    topic = f"test.logging.{unique_name}"
    handled = asyncio.Event()

    @broker.subscriber(
        topic, group_id=unique_name, auto_offset_reset="earliest", ack_policy=AckPolicy.ACK
    )
    async def handle(body: str) -> None:
        handled.set()
        raise ValueError(f"cannot handle patient {body}")

    try:
        async with broker:
            await broker.start()
            await broker.publish(PNR, topic)
            await asyncio.wait_for(handled.wait(), 30)
            await asyncio.sleep(0.5)
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()

    err = capsys.readouterr().err
    assert "cannot handle patient 19121212" in err
    assert PNR not in err
