"""The catalog's jobs: a full HSA import and NVR's vaccine list, on demand or on a schedule."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from services.catalog.hsa_client import HsaClient
from services.catalog.imports import import_units, import_vaccines
from services.catalog.settings import CatalogSettings
from services.catalog.snapshot import CatalogWriter, SnapshotReport
from shared.delivery.clock import Clock
from shared.logging import get_logger
from shared.oauth2 import ClientCredentialsAuth

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
