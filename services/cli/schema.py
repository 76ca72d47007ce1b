"""`regbridge schema export`: the contract as JSON Schema, and the workers' topics as AsyncAPI."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from services.cli.support import registry_of
from shared.spec import Registry

if TYPE_CHECKING:
    from shared.contracts.asyncapi import WorkerChannels

schema_app = typer.Typer(
    help="The public event contract as JSON Schema and AsyncAPI.", no_args_is_help=True
)


def worker_channels(registry: Registry) -> list[WorkerChannels]:
    """Every worker's public topics (its settings' names), as the AsyncAPI document lists them."""
    from shared.contracts.asyncapi import WorkerChannels

    channels = []
    for spec in registry:
        settings = spec.load_settings()
        topics = spec.topics(settings)
        main, *more = spec.inputs(settings)
        channels.append(
            WorkerChannels(
                worker=spec.name,
                summary=spec.summary,
                input_topic=main.topic,
                event_types=main.event_types,
                results_topic=topics.results_topic,
                dlq_topic=topics.dlq,
                more_inputs=tuple((given.topic, given.event_types) for given in more),
            )
        )
    return channels


@schema_app.command("export")
def schema_export(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Folder to write the schemas into.")] = Path("schemas"),
) -> None:
    """Write one JSON Schema file per event type and one AsyncAPI 3.0 document of every worker's
    topics (the AsyncAPI part needs FastStream, a development dependency)."""
    from shared.contracts.asyncapi import FastStreamMissingError, export_asyncapi
    from shared.contracts.schema import export_schemas

    for path in export_schemas(out):
        typer.echo(f"wrote {path}")
    try:
        path = export_asyncapi(out, worker_channels(registry_of(ctx)))
    except FastStreamMissingError as exc:
        typer.secho(f"regbridge: {exc}", fg=typer.colors.RED, err=True)
        raise SystemExit(2) from None
    typer.echo(f"wrote {path}")
