"""The GVR worker process: a CatalogView, the GVR client, and the delivery runtime."""

from __future__ import annotations

import asyncio

from services.gvr.client import GvrClient
from services.gvr.mapping import GvrPaths
from services.gvr.worker import GvrWorker
from shared.catalog.view import CatalogView
from shared.delivery.app import run_worker
from shared.delivery.probe import RegisterProbe
from shared.settings import GvrSettings


async def run_gvr(settings: GvrSettings) -> None:
    """Until SIGTERM. Not ready until the catalog has caught up (unit checks need it), nor while
    GVR refuses our client certificate (the probe asks at start and every 5 minutes)."""
    view = CatalogView(
        settings.kafka,
        units_topic=settings.topics.care_units,
        vaccines_topic=settings.topics.vaccines,
    )
    await view.start()
    client = GvrClient.from_settings(settings)
    try:
        await view.wait_ready(settings.catalog_ready_timeout)
        paths = GvrPaths.from_settings(settings)
        probe = RegisterProbe("GVR", lambda: client.probe(paths.outpatient_visit))
        await run_worker(
            GvrWorker(client, view, paths),
            settings,
            settings.topics.care_contacts,
            background=[probe.run],
            components={"catalog": view, "register": probe},
        )
    finally:
        await client.aclose()
        await view.stop()


def main(settings: GvrSettings | None = None) -> None:
    asyncio.run(run_gvr(settings or GvrSettings()))
