"""A worker process on the register double, for crash tests: python -m tests.support.worker_process

Environment: KAFKA_BOOTSTRAP_SERVERS, REGBRIDGE_DOUBLE_DATABASE_URL, DOUBLE_URL, WORKER_NAME,
INPUT_TOPIC, RETRY_DELAYS (comma-separated).
"""

from __future__ import annotations

import asyncio
import os

from pydantic_settings import SettingsConfigDict

from shared.delivery.app import run_worker
from shared.settings import RegbridgeSettings, TopicSettings
from tests.support.double_worker import DoubleWorker


class DoubleSettings(RegbridgeSettings):
    model_config = SettingsConfigDict(env_prefix="REGBRIDGE_DOUBLE_")


async def main() -> None:
    worker = DoubleWorker(os.environ["DOUBLE_URL"])
    worker.name = os.environ["WORKER_NAME"]
    topics = TopicSettings(retry_delays=os.environ.get("RETRY_DELAYS", "30s,5m").split(","))
    settings = DoubleSettings(health_port=0, topics=topics)
    try:
        await run_worker(worker, settings, os.environ["INPUT_TOPIC"])
    finally:
        await worker.aclose()


if __name__ == "__main__":
    asyncio.run(main())
