"""`regbridge topics list|ensure`: every topic of every worker in the registry."""

from __future__ import annotations

import asyncio

import typer

from services.cli.support import registry_of
from shared.logging import configure_logging
from shared.settings import CommonSettings

topics_app = typer.Typer(help="Kafka topics of every worker.", no_args_is_help=True)


@topics_app.command("list")
def topics_list(ctx: typer.Context) -> None:
    """Print every topic regbridge uses, with its purpose."""
    for spec in registry_of(ctx).topic_specs():
        compacted = " (compacted)" if spec.compacted else ""
        typer.echo(f"{spec.name:<34} {spec.purpose}{compacted}")


@topics_app.command("ensure")
def topics_ensure(ctx: typer.Context) -> None:
    """Create every topic that is missing; safe to run again. Exit 1 on a shape mismatch."""
    settings = CommonSettings()
    configure_logging(settings.log_level, settings.log_format)
    report = asyncio.run(registry_of(ctx).ensure_topics(on_progress=typer.echo))
    typer.echo(f"{len(report.created)} created, {len(report.existing)} already there")
    for problem in report.problems:
        typer.secho(f"mismatch: {problem}", fg=typer.colors.YELLOW, err=True)
    if report.problems:
        raise typer.Exit(1)
