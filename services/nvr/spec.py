"""The NVR worker as regbridge runs it: vaccinations → NVR as FHIR bundles over OAuth2, checked
against the catalog first, the credential watched before it expires."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from services.nvr import dev
from services.nvr.settings import NvrSettings
from shared.contracts import VaccinationEvent
from shared.delivery.metrics import Metrics
from shared.logging import get_logger
from shared.oauth2 import days_left
from shared.spec import DevHooks, Wiring, WorkerContext, WorkerSpec

log = get_logger(__name__)
DAY = 86_400.0
STOCKHOLM = ZoneInfo("Europe/Stockholm")


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
    left = days_left(expires_on, today=datetime.now(STOCKHOLM).date())
    if left <= settings.credential_warn_days:
        log.warning(
            "credential_expiring",
            register="NVR",
            expires_on=expires_on.isoformat(),
            days_left=left,
            alarm=f"NVR client secret expires in {left} days: renew it with Folkhälsomyndigheten",
        )


@asynccontextmanager
async def build(settings: NvrSettings, context: WorkerContext) -> AsyncIterator[Wiring]:
    """Not ready until the catalog has caught up (vaccine, batch and unit checks need it), nor
    while NVR refuses our credentials (the probe asks at start, every 5 min)."""
    from services.nvr.client import NvrClient
    from services.nvr.worker import NvrWorker
    from shared.catalog.view import CatalogView
    from shared.delivery.probe import RegisterProbe

    async with CatalogView.following(settings.kafka, settings.topics) as view:
        client = NvrClient.from_settings(settings)
        try:
            await view.wait_ready(settings.catalog_ready_timeout)
            worker = NvrWorker(client, view, settings.profile)
            watch_credential(settings, context.metrics, worker.name)

            async def watch_daily() -> None:
                while True:
                    await context.clock.sleep(DAY)
                    watch_credential(settings, context.metrics, worker.name)

            probe = RegisterProbe("NVR", client.probe)
            yield Wiring(
                worker,
                background=[probe.run, watch_daily],
                components={"catalog": view, "register": probe},
            )
        finally:
            await client.aclose()


SPEC = WorkerSpec(
    name="nvr",
    summary="vaccinations to NVR as FHIR bundles over OAuth2; needs the catalog",
    settings=NvrSettings,
    event_types=(VaccinationEvent,),
    input_purpose="vaccinations from journal systems",
    build=build,
    dev=DevHooks(
        sandbox=dev.sandbox,
        demo=dev.demo,
        try_next=lambda _dev, _env: (
            "regbridge dlq list --worker nvr        # vaccinations NVR's rules refuse",
        ),
    ),
)
