"""The GVR worker as regbridge runs it: care contacts and waiting-list entries' bookings → GVR over
mutual TLS, units checked in the catalog, the register probed for our certificate, its expiry
watched."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from services.gvr import dev
from services.gvr.certificate import watch_certificate
from services.gvr.settings import GvrSettings
from shared.contracts import CareContactEvent, CareWaitEvent
from shared.spec import DevHooks, Input, Wiring, WorkerContext, WorkerSpec

if TYPE_CHECKING:
    import typer

DAY = 86_400.0


@asynccontextmanager
async def build(settings: GvrSettings, context: WorkerContext) -> AsyncIterator[Wiring]:
    """Not ready until the catalog has caught up (unit checks need it), nor while GVR refuses our
    client certificate (the probe asks at start and every 5 minutes)."""
    from services.gvr.client import GvrClient
    from services.gvr.worker import GvrWorker
    from shared.catalog.view import CatalogView
    from shared.delivery.probe import RegisterProbe

    async with CatalogView.following(settings.kafka, settings.topics) as view:
        client = GvrClient.from_settings(settings)
        try:
            await view.wait_ready(settings.catalog_ready_timeout)
            probe = RegisterProbe("GVR", lambda: client.probe(settings.paths.outpatient_visit))
            worker = GvrWorker(
                client,
                view,
                settings.paths,
                settings.unknown_unit_grace_delta(),
                frozenset(settings.counties),
                settings.wait_codes,
            )
            watch_certificate(settings, context.metrics, worker.name)

            async def watch_daily() -> None:
                while True:
                    await context.clock.sleep(DAY)
                    watch_certificate(settings, context.metrics, worker.name)

            yield Wiring(
                worker,
                background=[probe.run, watch_daily],
                components={"catalog": view, "register": probe},
            )
        finally:
            await client.aclose()


def commands() -> typer.Typer:
    """`regbridge gvr import ersmo FILE`: ERSMOIndata files as care.contact events."""
    from services.gvr.cli import gvr_app

    return gvr_app


SPEC = WorkerSpec(
    name="gvr",
    summary="care contacts and waiting-list bookings to GVR (Region Stockholm) over mutual TLS; "
    "needs the catalog",
    settings=GvrSettings,
    event_types=(CareContactEvent,),
    input_purpose="care contacts from journal systems",
    build=build,
    more_inputs=lambda settings: [
        Input(settings.waits_topic, (CareWaitEvent,), "waiting-list entries from journal systems")
    ],
    commands=commands,
    dev=DevHooks(
        sandbox=dev.sandbox,
        demo=dev.demo,
        demo_share=2,
        try_next=lambda _dev, _env: (
            "regbridge dlq list --worker gvr        # the invalid care contacts, and why",
            "regbridge dlq show --worker gvr 0:0    # one in full",
        ),
    ),
)
