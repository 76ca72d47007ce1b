"""The catalog's jobs: a full HSA import and NVR's vaccine list, on demand or on a schedule."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from services.catalog.codeserver import import_kombikas
from services.catalog.directory_client import DirectoryClient
from services.catalog.imports import import_units, import_vaccines
from services.catalog.medications import VaccineSystems
from services.catalog.metrics import CatalogMetrics
from services.catalog.settings import CatalogSettings
from services.catalog.snapshot import SnapshotReport
from services.catalog.writer import CatalogWriter
from shared.delivery.clock import Clock, SystemClock
from shared.logging import get_logger
from shared.oauth2 import ClientCredentialsAuth

log = get_logger(__name__)


@dataclass
class CatalogJobs:
    """The two snapshot jobs, with the clients they share; each finished import is counted in
    `metrics` (when the worker runs them)."""

    settings: CatalogSettings
    hsa: DirectoryClient
    writer: CatalogWriter
    kiv: DirectoryClient | None = None  # Västra Götaland's directory, merged with HSA's units
    metrics: CatalogMetrics | None = None
    clock: Clock = field(default_factory=SystemClock)

    async def import_units(self, progress: Callable[[str], None] | None = None) -> SnapshotReport:
        s = self.settings
        report = await import_units(
            s.kafka,
            self.writer,
            self.hsa,
            s.topics.care_units,
            max_removal_share=s.max_removal_share,
            kiv=self.kiv,
            progress=progress,
        )
        return self._counted("hsa", report)

    def _counted(self, source: str, report: SnapshotReport) -> SnapshotReport:
        if self.metrics is not None:
            self.metrics.imported(source, report, self.clock.now())
        return report

    async def import_kombikas(self) -> SnapshotReport:
        """The code server's kombika file into the catalog (settings.codeserver_url is set)."""
        s = self.settings
        if not s.codeserver_url:
            raise ValueError("no code server configured (REGBRIDGE_CATALOG_CODESERVER_URL)")
        report = await import_kombikas(
            s.kafka,
            self.writer,
            s.codeserver_url,
            s.topics.kombikas,
            path=s.codeserver_path,
            max_removal_share=s.max_removal_share,
        )
        return self._counted("kombikas", report)

    async def import_vaccines(self) -> SnapshotReport:
        s = self.settings
        auth = None
        if s.nvr_client_id:  # NVR's list needs a token; the sandbox's too
            token_url = s.vaccines_url.rstrip("/") + s.nvr_token_path
            auth = ClientCredentialsAuth(token_url, s.nvr_client_id, s.nvr_secret())
        systems = VaccineSystems(npl_id=s.vaccines_npl_id_system, atc=s.vaccines_atc_system)
        report = await import_vaccines(
            s.kafka,
            self.writer,
            s.vaccines_url,
            s.topics.vaccines,
            path=s.vaccines_path,
            auth=auth,
            systems=systems,
        )
        return self._counted("vaccines", report)


@asynccontextmanager
async def catalog_jobs(
    settings: CatalogSettings, metrics: CatalogMetrics | None = None, clock: Clock | None = None
) -> AsyncIterator[CatalogJobs]:
    hsa, writer = DirectoryClient(settings.hsa_url), CatalogWriter(settings.kafka)
    kiv = DirectoryClient(settings.kiv_url, name="KIV") if settings.kiv_url else None
    await writer.start()
    try:
        yield CatalogJobs(settings, hsa, writer, kiv, metrics, clock or SystemClock())
    finally:
        await writer.stop()
        await hsa.aclose()
        if kiv is not None:
            await kiv.aclose()


async def import_now(settings: CatalogSettings, progress: Callable[[str], None]) -> SnapshotReport:
    """`regbridge catalog import-now`: one full import from this process, at once."""
    async with catalog_jobs(settings) as jobs:
        return await jobs.import_units(progress)


async def import_kombikas_now(settings: CatalogSettings) -> SnapshotReport:
    """`regbridge catalog kombikas-now`: the code server's file into the catalog, at once."""
    async with catalog_jobs(settings) as jobs:
        return await jobs.import_kombikas()


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
