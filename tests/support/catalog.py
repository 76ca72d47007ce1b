"""A catalog for end-to-end tests: a full import from an HSA sandbox (and NVR's vaccine list) into
topics of the test's own, read back by a CatalogView, as a worker reads it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from services.catalog.app import catalog_jobs
from services.catalog.settings import CatalogSettings
from shared.catalog.view import CatalogView
from shared.settings import KafkaSettings, TopicSettings
from shared.topics import TopicSpec, ensure_topics

UNITS, SEED = 300, 1  # the generated directory the end-to-end tests' sandboxes share


@asynccontextmanager
async def imported_catalog(
    kafka_bootstrap: str,
    hsa_url: str,
    database: Path,
    topics: TopicSettings | None = None,
    **vaccine_list: Any,
) -> AsyncIterator[CatalogView]:
    """`topics`: the catalog topics (default: new ones); `vaccine_list`: the CatalogSettings
    that read NVR's list (vaccines_url, nvr_client_id …), without them only units are imported."""
    name = uuid.uuid4().hex[:12]
    topics = topics or TopicSettings(
        care_units=f"test.units.{name}",
        vaccines=f"test.vaccines.{name}",
        kombikas=f"test.kombikas.{name}",
    )
    settings = CatalogSettings(
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap),
        topics=topics,
        hsa_url=hsa_url,
        database_url=f"sqlite+aiosqlite:///{database}",
        **vaccine_list,
    )
    compacted = [
        TopicSpec(t, "test", compacted=True)
        for t in (topics.care_units, topics.vaccines, topics.kombikas)
    ]
    await ensure_topics(settings.kafka, compacted, partitions=3, replication_factor=1)
    async with catalog_jobs(settings) as jobs:
        await jobs.import_units()
        if vaccine_list:
            await jobs.import_vaccines()
    async with CatalogView.following(settings.kafka, topics) as view:
        await view.wait_ready(60)
        yield view
