"""The catalog sync: notifications on the runtime; full imports and vaccines on schedules."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from services.catalog.hsa_client import HsaClient
from services.catalog.imports import import_units, import_vaccines
from services.catalog.notifications import CatalogNotificationWorker
from services.catalog.snapshot import CatalogWriter, SnapshotReport
from shared.delivery.app import run_worker
from shared.delivery.clock import Clock, SystemClock
from shared.delivery.ledger import Ledger
from shared.logging import get_logger
from shared.oauth2 import ClientCredentialsAuth
from shared.schedule import DailySlots, SlotClaims, parse_times, run_schedule
from shared.settings import CatalogSettings
from shared.topics import parse_delay

log = get_logger(__name__)


@dataclass
class CatalogJobs:
    """The two snapshot jobs, with the clients they share."""

    settings: CatalogSettings
    hsa: HsaClient
    writer: CatalogWriter

    async def import_units(self, progress: Callable[[str], None] | None = None) -> SnapshotReport:
        s = self.settings
        return await import_units(
            s.kafka,
            self.writer,
            self.hsa,
            s.topics.care_units,
            max_removal_share=s.max_removal_share,
            progress=progress,
        )

    async def import_vaccines(self) -> SnapshotReport:
        s = self.settings
        auth = None
        if s.nvr_client_id:  # NVR's list needs a token; the sandbox's too
            token_url = s.vaccines_url.rstrip("/") + s.nvr_token_path
            auth = ClientCredentialsAuth(token_url, s.nvr_client_id, s.nvr_secret())
        return await import_vaccines(
            s.kafka, self.writer, s.vaccines_url, s.topics.vaccines, path=s.vaccines_path, auth=auth
        )


@asynccontextmanager
async def catalog_jobs(settings: CatalogSettings) -> AsyncIterator[CatalogJobs]:
    hsa, writer = HsaClient(settings.hsa_url), CatalogWriter(settings.kafka)
    await writer.start()
    try:
        yield CatalogJobs(settings, hsa, writer)
    finally:
        await writer.stop()
        await hsa.aclose()


async def import_now(settings: CatalogSettings, progress: Callable[[str], None]) -> SnapshotReport:
    """`regbridge catalog import-now`: one full import from this process, at once."""
    async with catalog_jobs(settings) as jobs:
        return await jobs.import_units(progress)


async def import_vaccines_now(settings: CatalogSettings) -> SnapshotReport:
    """`regbridge catalog vaccines-now`: NVR's vaccine list into the catalog, at once."""
    async with catalog_jobs(settings) as jobs:
        return await jobs.import_vaccines()


async def vaccines_loop(jobs: CatalogJobs, every: float, clock: Clock) -> None:
    while True:
        try:
            report = await jobs.import_vaccines()
            log.info("vaccines_synced", summary=report.summary())
        except Exception as exc:  # the loop outlives one failed read: logged; next round tries
            log.exception("vaccines_failed", error=f"{type(exc).__name__}: {exc}")
        await clock.sleep(every)


async def run_catalog(settings: CatalogSettings, clock: Clock | None = None) -> None:
    """Until SIGTERM: notifications through the delivery runtime, scheduled imports beside it."""
    clock = clock or SystemClock()
    zone = ZoneInfo(settings.timezone)
    async with catalog_jobs(settings) as jobs:
        ledger = Ledger.from_url(settings.ledger_url())
        claims = SlotClaims(ledger.engine)
        await claims.create_schema()

        async def units_job() -> str:
            return (await jobs.import_units()).summary()

        async def schedule() -> None:
            await run_schedule(
                DailySlots(parse_times(settings.import_times), zone),
                kind="hsa-full-import",
                clock=clock,
                claims=claims,
                owner=settings.instance_id,
                job=units_job,
            )

        async def vaccines() -> None:
            await vaccines_loop(jobs, parse_delay(settings.vaccines_every), clock)

        worker = CatalogNotificationWorker(jobs.hsa, jobs.writer, settings.topics.care_units)
        try:
            await run_worker(
                worker,
                settings,
                settings.topics.hsa_notifications,
                clock=clock,
                publish_results=False,
                background=(schedule, vaccines),
            )
        finally:
            await ledger.close()


def main(settings: CatalogSettings | None = None) -> None:
    asyncio.run(run_catalog(settings or CatalogSettings()))
