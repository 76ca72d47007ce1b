"""`regbridge ledger show|rebind`: which Kafka cluster a worker's ledger follows, and moving it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from services.cli.support import worker_settings, worker_spec
from shared.delivery.ledger import Ledger
from shared.kafka import cluster_id
from shared.settings import RegbridgeSettings
from shared.spec import WorkerSpec

ledger_app = typer.Typer(
    help="A worker's submission ledger: the Kafka cluster it follows.", no_args_is_help=True
)
Worker = Annotated[str, typer.Option("--worker", "-w", help="The worker's name (gvr, nvr …).")]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="The ledger (default: REGBRIDGE_<WORKER>_DATABASE_URL).",
        show_default=False,
    ),
]


async def _clusters(spec: WorkerSpec[Any], settings: RegbridgeSettings) -> tuple[str | None, str]:
    ledger = Ledger.from_url(settings.ledger_url())
    try:
        await ledger.create_schema()
        bound = await ledger.cluster_of(spec.name)
    finally:
        await ledger.close()
    return bound, await cluster_id(settings.kafka)


def _describe(bound: str | None, current: str) -> list[str]:
    verdict = "matches" if bound == current else "never bound" if bound is None else "DIFFERS"
    return [f"ledger follows  {bound or '-'}", f"Kafka cluster   {current}  ({verdict})"]


@ledger_app.command("show")
def ledger_show(ctx: typer.Context, worker: Worker, database_url: DatabaseUrl = None) -> None:
    """The cluster the worker's ledger is bound to, and the one its settings reach."""
    spec = worker_spec(ctx, worker)
    bound, current = asyncio.run(_clusters(spec, worker_settings(spec, database_url)))
    for line in _describe(bound, current):
        typer.echo(line)
    if bound is not None and bound != current:
        raise typer.Exit(1)


@ledger_app.command("rebind")
def ledger_rebind(
    ctx: typer.Context,
    worker: Worker,
    database_url: DatabaseUrl = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Bind the worker's ledger to the cluster it reaches now (a cluster replaced on purpose).

    What the ledger holds then counts for the new cluster's topics: events it knows are skipped
    as duplicate or stale. Do it only when the new cluster carries on the old one's topics."""
    spec = worker_spec(ctx, worker)
    settings = worker_settings(spec, database_url)
    bound, current = asyncio.run(_clusters(spec, settings))
    for line in _describe(bound, current):
        typer.echo(line)
    if bound == current:
        typer.echo("nothing to do")
        return
    if not yes:
        typer.confirm(f"Bind the {spec.name} ledger to {current}?", abort=True)

    async def rebind() -> None:
        ledger = Ledger.from_url(settings.ledger_url())
        try:
            await ledger.rebind_cluster(spec.name, current, datetime.now(UTC))
        finally:
            await ledger.close()

    asyncio.run(rebind())
    typer.echo(f"the {spec.name} ledger now follows {current}")
