"""The CVR worker as regbridge runs it: waiting-list entries → one report per unit and period, sent
to Region Stockholm's CVR over SFTP with a pinned host key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from services.cvr import dev
from services.cvr.mapping import UnitCatalog
from services.cvr.settings import CvrSettings
from services.cvr.worker import CvrRegister, rules_from, transfer_from
from shared.contracts import CareWaitEvent
from shared.files.register import FileRegister
from shared.files.settings import FileWorkerSettings
from shared.files.wiring import run_kinds
from shared.spec import DevHooks, Wiring, WorkerContext, WorkerSpec

if TYPE_CHECKING:
    import typer


def register(settings: CvrSettings, catalog: UnitCatalog) -> CvrRegister:
    return CvrRegister(transfer_from(settings), catalog, rules_from(settings))


@asynccontextmanager
async def build(settings: CvrSettings, context: WorkerContext) -> AsyncIterator[Wiring]:
    """Not ready until the catalog has caught up (a unit given by HSA-id is looked up in it); the
    file runtime does the rest (`shared/files/`)."""
    from shared.catalog.view import CatalogView
    from shared.files.wiring import file_wiring

    async with CatalogView.following(settings.kafka, settings.topics) as view:
        cvr = register(settings, view)
        await view.wait_ready(settings.catalog_ready_timeout)
        async with file_wiring(cvr, settings, context, {"catalog": view}) as wiring:
            yield wiring


class _NoPlacing:
    """The operator's commands only deliver and read reports: they never place an entry."""

    def __getattr__(self, name: str) -> object:
        raise RuntimeError(f"the CVR commands place no entries (catalog.{name} asked)")


@asynccontextmanager
async def _delivering(settings: FileWorkerSettings) -> AsyncIterator[FileRegister]:
    assert isinstance(settings, CvrSettings)
    yield register(settings, _NoPlacing())  # type: ignore[arg-type]


def commands() -> typer.Typer:
    """`regbridge cvr files --period`, `show FILE`, `deliver-now`."""
    from services.cli.files import file_commands

    return file_commands("cvr", CvrSettings, _delivering)


SPEC = WorkerSpec(
    name="cvr",
    summary="waiting-list entries → one report per unit and month to CVR (Region Stockholm) "
    "over SFTP; needs the catalog",
    settings=CvrSettings,
    event_types=(CareWaitEvent,),
    input_purpose="waiting-list entries from journal systems",
    build=build,
    commands=commands,
    schedules=run_kinds("cvr"),
    dev=DevHooks(sandbox=dev.sandbox, demo=dev.demo, demo_share=1, try_next=dev.try_next),
)
