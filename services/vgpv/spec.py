"""The VGPV worker as regbridge runs it: care contacts of VGR's Vårdval units → one file per unit
and month, uploaded over mutual TLS in the region's three-working-day window."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from services.vgpv import dev
from services.vgpv.settings import VgpvSettings
from services.vgpv.units import UnitCatalog
from services.vgpv.worker import VgpvRegister, rules_from
from shared.contracts import CareContactEvent
from shared.files.register import FileRegister
from shared.files.settings import FileWorkerSettings
from shared.files.wiring import run_kinds
from shared.spec import DevHooks, Wiring, WorkerContext, WorkerSpec

if TYPE_CHECKING:
    import typer


def register(settings: VgpvSettings, catalog: UnitCatalog) -> VgpvRegister:
    """The register as the file runtime drives it: its client, the catalog, the settings' rules
    and encoding. The caller closes it (`aclose`)."""
    from services.vgpv.client import VgpvClient

    return VgpvRegister(
        VgpvClient.from_settings(settings), catalog, rules_from(settings), settings.encoding
    )


@asynccontextmanager
async def build(settings: VgpvSettings, context: WorkerContext) -> AsyncIterator[Wiring]:
    """Not ready until the catalog (with KIV's units and their Vårdval) has caught up: placing a
    visit needs it. The file runtime does the rest: the intake, the delivery runs in the
    window and the alarm (`shared/files/`)."""
    from shared.catalog.view import CatalogView
    from shared.files.wiring import file_wiring

    async with CatalogView.following(settings.kafka, settings.topics) as view:
        vgpv = register(settings, view)
        try:
            await view.wait_ready(settings.catalog_ready_timeout)
            async with file_wiring(vgpv, settings, context, {"catalog": view}) as wiring:
                yield wiring
        finally:
            await vgpv.aclose()


class _NoPlacing:
    """The operator's commands only deliver and read files: they never place a visit."""

    def __getattr__(self, name: str) -> object:
        raise RuntimeError(f"the VGPV commands place no visits (catalog.{name} asked)")


@asynccontextmanager
async def _delivering(settings: FileWorkerSettings) -> AsyncIterator[FileRegister]:
    assert isinstance(settings, VgpvSettings)
    vgpv = register(settings, _NoPlacing())  # type: ignore[arg-type]
    try:
        yield vgpv
    finally:
        await vgpv.aclose()


def commands() -> typer.Typer:
    """`regbridge vgpv files --month`, `show FILE`, `deliver-now`."""
    from services.cli.files import file_commands

    return file_commands("vgpv", VgpvSettings, _delivering)


SPEC = WorkerSpec(
    name="vgpv",
    summary="VGR primary-care and rehab visits → one file per unit and month to VGPV "
    "(mutual TLS, the three-working-day window); needs the catalog with KIV",
    settings=VgpvSettings,
    event_types=(CareContactEvent,),
    input_purpose="care contacts from journal systems",
    build=build,
    commands=commands,
    schedules=run_kinds("vgpv"),
    dev=DevHooks(
        sandbox=dev.sandbox,
        demo=dev.demo,
        demo_share=2,
        try_next=dev.try_next,
    ),
)
