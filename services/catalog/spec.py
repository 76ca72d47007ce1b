"""The catalog sync as regbridge runs it: HSA notifications through the delivery runtime, full
imports on the clock (HSA with KIV, the code server's kombikas) and NVR's vaccine list beside it,
into three compacted topics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from services.catalog import dev
from services.catalog.settings import CatalogSettings
from shared.contracts import HsaUnitNotificationEvent
from shared.durations import parse_delay
from shared.spec import DevContext, DevHooks, Wiring, WorkerContext, WorkerSpec
from shared.topics import TopicSpec

if TYPE_CHECKING:
    import typer

HSA_IMPORT = "hsa-full-import"  # the scheduled full import's slots, claimed in the ledger database
KOMBIKA_IMPORT = "kombika-import"  # the code server's file, read on its own slots


@asynccontextmanager
async def build(settings: CatalogSettings, context: WorkerContext) -> AsyncIterator[Wiring]:
    """Notifications are the runtime's events; the scheduled imports (HSA's, merged with KIV's
    where configured, and the code server's kombikas: one replica per slot, claimed in the
    ledger's database) and the vaccine list run beside it."""
    from services.catalog.app import catalog_jobs, vaccines_loop
    from services.catalog.metrics import CatalogMetrics
    from services.catalog.notifications import CatalogNotificationWorker
    from shared.schedule import DailySlots, ScheduleMetrics, SlotClaims, parse_times, run_schedule

    zone = ZoneInfo(settings.timezone)  # an unknown zone fails at start, not at the slot
    metrics = CatalogMetrics(context.metrics.registry)
    slot_metrics = ScheduleMetrics(context.metrics.registry)
    async with catalog_jobs(settings, metrics, context.clock) as jobs:
        claims = SlotClaims(context.ledger.engine)  # in the ledger's database

        async def units_job() -> str:
            return (await jobs.import_units()).summary()

        async def kombikas_job() -> str:
            return (await jobs.import_kombikas()).summary()

        def scheduled(
            kind: str, times: list[str], job: Callable[[], Awaitable[str]]
        ) -> Callable[[], Coroutine[Any, Any, None]]:
            async def schedule() -> None:
                await run_schedule(
                    DailySlots(parse_times(times), zone),
                    kind=kind,
                    clock=context.clock,
                    claims=claims,
                    owner=settings.instance_id,
                    job=job,
                    metrics=slot_metrics,
                )

            return schedule

        async def vaccines() -> None:
            await vaccines_loop(jobs, parse_delay(settings.vaccines_every), context.clock)

        worker = CatalogNotificationWorker(
            jobs.hsa, jobs.writer, settings.topics.care_units, metrics, context.clock, jobs.kiv
        )
        background = [scheduled(HSA_IMPORT, settings.import_times, units_job), vaccines]
        if settings.codeserver_url:
            background.append(
                scheduled(KOMBIKA_IMPORT, settings.kombika_import_times, kombikas_job)
            )
        yield Wiring(worker, background=tuple(background))


def own_topics(settings: CatalogSettings) -> Sequence[TopicSpec]:
    """The compacted topics the catalog writes and every other worker reads (the kombika topic
    too when no code server is configured: the workers' views read it, empty)."""
    topics = settings.topics
    return [
        TopicSpec(topics.care_units, "care units by HSA-id (catalog)", compacted=True),
        TopicSpec(topics.vaccines, "vaccines and batches by NPL-id (catalog)", compacted=True),
        TopicSpec(topics.kombikas, "code server's kombikas → HSA-ids (catalog)", compacted=True),
    ]


def commands() -> typer.Typer:
    from services.catalog.cli import catalog_app

    return catalog_app


def try_next(stack: DevContext, env: Mapping[str, str]) -> Sequence[str]:
    hsa, unit = env.get("REGBRIDGE_CATALOG_HSA_URL", ""), dev.example_unit(stack)
    return (
        f"curl -X POST {hsa}/admin/units -H 'content-type: application/json' \\",
        f'     -d \'{{"hsaIdentity": "{unit}", "name": "Vårdcentral Demo"}}\'',
        "                                        # HSA notifies; the catalog updates the unit",
        "regbridge catalog import-now           # a full import now (changes only)",
        f"regbridge catalog show {unit}  # the unit as the workers see it",
    )


SPEC = WorkerSpec(
    name="catalog",
    summary="HSA notifications, scheduled full imports and the vaccine list → catalog topics",
    settings=CatalogSettings,
    event_types=(HsaUnitNotificationEvent,),
    input_purpose="HSA unit notifications",
    build=build,
    results=False,
    own_topics=own_topics,
    commands=commands,
    dev=DevHooks(sandbox=dev.sandbox, prepare=dev.first_import, try_next=try_next),
    schedules=(HSA_IMPORT, KOMBIKA_IMPORT),
)
