"""`regbridge catalog …`: full import and vaccine list on demand."""

from __future__ import annotations

import asyncio

import typer

from services.catalog.app import catalog_jobs, import_now
from shared.logging import configure_logging
from shared.settings import CatalogSettings

catalog_app = typer.Typer(help="The HSA care-unit and vaccine catalog.", no_args_is_help=True)


@catalog_app.command("import-now")
def catalog_import_now() -> None:
    """Run one full HSA import from this process now (changes only; removals only when complete)."""
    settings = CatalogSettings()
    configure_logging("WARNING", settings.log_format)
    report = asyncio.run(import_now(settings, lambda line: typer.echo(line, err=True)))
    typer.echo(report.summary())
    for reason, count in report.skipped.most_common(10):
        typer.echo(f"  skipped {count}: {reason}")
    if report.removals_withheld:
        raise typer.Exit(1)


@catalog_app.command("vaccines-now")
def catalog_vaccines_now() -> None:
    """Read NVR's vaccine and batch list now and publish what changed."""
    settings = CatalogSettings()
    configure_logging("WARNING", settings.log_format)

    async def run() -> str:
        async with catalog_jobs(settings) as jobs:
            return (await jobs.import_vaccines()).summary()

    typer.echo(asyncio.run(run()))
