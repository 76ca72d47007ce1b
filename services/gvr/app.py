"""The GVR worker process: a CatalogView, the GVR client, and the delivery runtime."""

from __future__ import annotations

import asyncio

from services.gvr.client import GvrClient
from services.gvr.mapping import GvrPaths
from services.gvr.worker import GvrWorker
from shared.catalog.view import CatalogView
from shared.delivery.app import run_worker
from shared.settings import GvrSettings


async def run_gvr(settings: GvrSettings) -> None:
    """Until SIGTERM. Not ready until the catalog has caught up; unit checks need it."""
    view = CatalogView(
        settings.kafka,
        units_topic=settings.topics.care_units,
        vaccines_topic=settings.topics.vaccines,
    )
    await view.start()
    client = GvrClient.from_settings(settings)
    try:
        await view.wait_ready(settings.catalog_ready_timeout)
        worker = GvrWorker(client, view, GvrPaths.from_settings(settings))
        await run_worker(
            worker, settings, settings.topics.care_contacts, components={"catalog": view}
        )
    finally:
        await client.aclose()
        await view.stop()


def main(settings: GvrSettings | None = None) -> None:
    asyncio.run(run_gvr(settings or GvrSettings()))
