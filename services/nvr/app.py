"""The NVR worker process: a CatalogView, the NVR client, and the delivery runtime."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time

from services.nvr.client import NvrClient
from services.nvr.profile import NvrProfile
from services.nvr.worker import NvrWorker, stockholm_today
from shared.catalog.view import CatalogView
from shared.delivery.app import run_worker
from shared.delivery.metrics import Metrics
from shared.delivery.probe import RegisterProbe
from shared.logging import get_logger
from shared.oauth2 import days_left
from shared.settings import NvrSettings

log = get_logger(__name__)
DAY = 86_400.0


def watch_credential(settings: NvrSettings, metrics: Metrics, worker: str) -> None:
    """Export the client secret's expiry (alert rule: within 30 days) and warn in the log."""
    expires_on = settings.client_secret_expires_on
    if expires_on is None:
        log.warning(
            "credential_expiry_unknown",
            register="NVR",
            hint="set REGBRIDGE_NVR_CLIENT_SECRET_EXPIRES_ON to be warned before it expires",
        )
        return
    moment = datetime.combine(expires_on, time(0), tzinfo=UTC).timestamp()
    metrics.credential_expiry.labels(worker).set(moment)
    left = days_left(expires_on, today=stockholm_today())
    if left <= settings.credential_warn_days:
        log.warning(
            "credential_expiring",
            register="NVR",
            expires_on=expires_on.isoformat(),
            days_left=left,
            alarm=f"NVR client secret expires in {left} days: renew it with Folkhälsomyndigheten",
        )


async def run_nvr(settings: NvrSettings) -> None:
    """Until SIGTERM. Not ready until the catalog has caught up (vaccine, batch and unit checks
    need it), nor while NVR refuses our credentials (the probe asks at start, every 5 min)."""
    view = CatalogView(
        settings.kafka,
        units_topic=settings.topics.care_units,
        vaccines_topic=settings.topics.vaccines,
    )
    await view.start()
    client = NvrClient.from_settings(settings)
    metrics = Metrics()
    try:
        await view.wait_ready(settings.catalog_ready_timeout)
        worker = NvrWorker(client, view, NvrProfile.from_settings(settings))
        watch_credential(settings, metrics, worker.name)

        async def watch_daily() -> None:
            while True:
                await asyncio.sleep(DAY)
                watch_credential(settings, metrics, worker.name)

        probe = RegisterProbe("NVR", client.probe)
        await run_worker(
            worker,
            settings,
            settings.topics.vaccinations,
            background=[probe.run, watch_daily],
            components={"catalog": view, "register": probe},
            metrics=metrics,
        )
    finally:
        await client.aclose()
        await view.stop()


def main(settings: NvrSettings | None = None) -> None:
    asyncio.run(run_nvr(settings or NvrSettings()))
