"""`regbridge catalog …`: full import, kombika file and vaccine list on demand."""

from __future__ import annotations

import asyncio

import typer

from services.catalog.app import import_kombikas_now, import_now, import_vaccines_now
from services.catalog.settings import CatalogSettings
from shared.logging import configure_logging

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

    typer.echo(asyncio.run(import_vaccines_now(settings)).summary())


@catalog_app.command("kombikas-now")
def catalog_kombikas_now() -> None:
    """Read the code server's kombika file now and publish what changed."""
    settings = CatalogSettings()
    configure_logging("WARNING", settings.log_format)
    if not settings.codeserver_url:
        typer.secho("no code server configured: set REGBRIDGE_CATALOG_CODESERVER_URL", err=True)
        raise typer.Exit(2)
    report = asyncio.run(import_kombikas_now(settings))
    typer.echo(report.summary())
    for reason, count in report.skipped.most_common(10):
        typer.echo(f"  skipped {count}: {reason}")
    if report.removals_withheld:
        raise typer.Exit(1)


@catalog_app.command("show")
def catalog_show(hsa_id: str) -> None:
    """Read the catalog topics (as every worker does) and print one unit as the workers see it."""
    from shared.catalog.view import CatalogView

    settings = CatalogSettings()
    configure_logging("WARNING", settings.log_format)

    async def look() -> str:
        async with CatalogView.following(settings.kafka, settings.topics) as view:
            await view.wait_ready(120)
            unit = view.unit(hsa_id)
            stats = view.stats()
            if unit is None:
                return f"{hsa_id}: not in the catalog ({stats.units} units)"
            giver = unit.care_giver
            return "\n".join(
                [
                    f"{unit.hsa_id}  {unit.name}",
                    f"  care giver  {giver.name} ({giver.hsa_id}, {giver.org_number})",
                    f"  active      from {unit.start_date or '…'} until {unit.end_date or '…'}",
                    *(
                        f"  kombika     {code} from {since} until {until or '…'}"
                        for code, since, until in unit.kombika_periods
                    ),
                    f"  catalog     {stats.units} units, {stats.vaccines} vaccines",
                ]
            )

    typer.echo(asyncio.run(look()))
