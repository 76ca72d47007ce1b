"""The `regbridge` command: schemas, topics and the local stack."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from aiokafka.errors import KafkaConnectionError

from services.catalog.cli import catalog_app
from services.dlq_cli import dlq_app
from services.sandboxes.cli import sandbox_app
from services.status_cli import status_app
from shared.logging import configure_logging
from shared.settings import RegbridgeSettings
from shared.topics import architecture_topics, ensure_architecture_topics

app = typer.Typer(
    help="regbridge: Swedish care events from Kafka to the registers.",
    no_args_is_help=True,
    add_completion=False,
)
schema_app = typer.Typer(help="The public event contract as JSON Schema.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics of the architecture.", no_args_is_help=True)
dev_app = typer.Typer(help="The local stack behind `make run`.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")
app.add_typer(topics_app, name="topics")
app.add_typer(dev_app, name="dev")
app.add_typer(dlq_app, name="dlq")
app.add_typer(status_app, name="status")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(catalog_app, name="catalog")
run_app = typer.Typer(help="Run a worker until SIGTERM.", no_args_is_help=True)
app.add_typer(run_app, name="run")


@run_app.command("gvr")
def run_gvr() -> None:
    """The GVR worker: care contacts to GVR over mutual TLS (needs the catalog to be current)."""
    from services.gvr.app import main as gvr_main

    gvr_main()


@run_app.command("nvr")
def run_nvr() -> None:
    """The NVR worker: vaccinations to NVR as FHIR bundles over OAuth2 (needs the catalog)."""
    from services.nvr.app import main as nvr_main

    nvr_main()


@run_app.command("catalog")
def run_catalog() -> None:
    """The catalog sync: HSA notifications, scheduled full imports, the vaccine list."""
    from services.catalog.app import main as catalog_main

    catalog_main()


@schema_app.command("export")
def schema_export(
    out: Annotated[Path, typer.Option(help="Folder to write the schemas into.")] = Path("schemas"),
) -> None:
    """Write one JSON Schema file per event type."""
    from shared.contracts.schema import export_schemas

    for path in export_schemas(out):
        typer.echo(f"wrote {path}")


@topics_app.command("list")
def topics_list() -> None:
    """Print every topic regbridge uses, with its purpose."""
    settings = RegbridgeSettings()
    for spec in architecture_topics(settings.topics):
        compacted = " (compacted)" if spec.compacted else ""
        typer.echo(f"{spec.name:<34} {spec.purpose}{compacted}")


@topics_app.command("ensure")
def topics_ensure() -> None:
    """Create every topic of the architecture that is missing; safe to run again."""
    settings = RegbridgeSettings()
    configure_logging(settings.log_level, settings.log_format)
    report = asyncio.run(
        ensure_architecture_topics(settings.kafka, settings.topics, on_progress=typer.echo)
    )
    typer.echo(f"{len(report.created)} created, {len(report.existing)} already there")
    for problem in report.problems:
        typer.secho(f"mismatch: {problem}", fg=typer.colors.YELLOW, err=True)
    if report.problems:
        raise typer.Exit(1)


@dev_app.command("up")
def dev_up() -> None:
    """Start the local stack (Kafka, sandboxes, workers) until Ctrl-C: what `make run` runs."""
    from services.devup import run_stack

    run_stack(typer.echo)


@dev_app.command("demo")
def dev_demo(
    count: Annotated[int, typer.Option(help="How many events to publish.")] = 300,
    rate: Annotated[float, typer.Option(help="Events per second (0: as fast as possible).")] = 20,
    seed: Annotated[int, typer.Option(help="Same seed, same stream.")] = 1,
    units: Annotated[
        int, typer.Option(help="Units of the HSA sandbox (seed 1) it draws from.")
    ] = 2000,
) -> None:
    """Publish realistic care contacts and vaccinations (with corrections, cancellations and
    some invalid ones)."""
    from services.demo import publish_demo

    settings = RegbridgeSettings()
    counts = asyncio.run(
        publish_demo(
            settings.kafka,
            settings.topics,
            count=count,
            rate=rate,
            seed=seed,
            units=units,
        )
    )
    for label, n in sorted(counts.items()):
        typer.echo(f"{n:6d}  {label}")


@dev_app.command("publish-examples")
def dev_publish_examples() -> None:
    """Publish the contract's example events (one per type) to their input topics."""
    from services.examples import publish_examples

    settings = RegbridgeSettings()
    for line in asyncio.run(publish_examples(settings)):
        typer.echo(line)


def main() -> None:
    try:
        app()
    except KafkaConnectionError as exc:
        bootstrap = RegbridgeSettings().kafka.bootstrap_servers
        typer.secho(
            f"regbridge: cannot reach Kafka at {bootstrap} ({exc}). Set "
            "KAFKA_BOOTSTRAP_SERVERS (make run prints it).",
            fg=typer.colors.RED,
            err=True,
        )
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
