"""The `regbridge` command: every group reads its workers from the registry it is built with."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer
from aiokafka.errors import KafkaConnectionError

from services.cli.dlq import dlq_app
from services.cli.ledger import ledger_app
from services.cli.schema import schema_app
from services.cli.status import status_app
from services.cli.support import registry_of
from services.cli.topics import topics_app
from services.console.cli import console_app
from services.sandboxes.cli import sandbox_app
from shared.settings import KafkaSettings
from shared.spec import Registry, WorkerSpec

dev_app = typer.Typer(help="The local stack behind `make run`.", no_args_is_help=True)


def build_app(registry: Registry) -> typer.Typer:
    """The whole command line for these workers: `run <worker>` and `<worker> …` for each."""
    app = typer.Typer(
        help="regbridge: Swedish care events from Kafka to the registers.",
        no_args_is_help=True,
        add_completion=False,
        context_settings={"obj": registry},
    )
    app.add_typer(schema_app, name="schema")
    app.add_typer(topics_app, name="topics")
    app.add_typer(dev_app, name="dev")
    app.add_typer(dlq_app, name="dlq")
    app.add_typer(status_app, name="status")
    app.add_typer(ledger_app, name="ledger")
    app.add_typer(console_app, name="console")
    run_app = typer.Typer(help="Run a worker until SIGTERM.", no_args_is_help=True)
    app.add_typer(run_app, name="run")
    for spec in registry:
        run_app.command(spec.name, help=f"The {spec.name} worker: {spec.summary}.")(_runner(spec))
        if spec.commands is not None:
            app.add_typer(spec.commands(), name=spec.name)
    app.add_typer(sandbox_app, name="sandbox")
    return app


def _runner(spec: WorkerSpec[Any]) -> Any:
    def run() -> None:
        from shared.delivery.app import main as run_worker

        run_worker(spec)

    return run


@dev_app.command("up")
def dev_up(
    ctx: typer.Context,
    demo_events: Annotated[int, typer.Option(help="Events the demo publishes.")] = 900,
    demo_rate: Annotated[float, typer.Option(help="Demo events per second.")] = 20,
) -> None:
    """Start the local stack (Kafka, sandboxes, workers, a demo) until Ctrl-C: `make run`."""
    from services.devstack.up import run_stack

    run_stack(registry_of(ctx), typer.echo, demo_events=demo_events, demo_rate=demo_rate)


@dev_app.command("demo")
def dev_demo(
    ctx: typer.Context,
    count: Annotated[int, typer.Option(help="How many events to publish.")] = 300,
    rate: Annotated[float, typer.Option(help="Events per second (0: as fast as possible).")] = 20,
    seed: Annotated[int, typer.Option(help="Same seed, same stream.")] = 1,
    units: Annotated[
        int, typer.Option(help="Units of the HSA sandbox (seed 1) it draws from.")
    ] = 2000,
) -> None:
    """Publish realistic events for every worker with a demo (care contacts, vaccinations …),
    with corrections, cancellations and some invalid ones."""
    from services.devstack.demo import publish_demo

    counts = asyncio.run(
        publish_demo(
            registry_of(ctx), KafkaSettings(), count=count, rate=rate, seed=seed, units=units
        )
    )
    for label, n in sorted(counts.items()):
        typer.echo(f"{n:6d}  {label}")


@dev_app.command("publish-examples")
def dev_publish_examples(ctx: typer.Context) -> None:
    """Publish the contract's example events (one per type) to their input topics."""
    from services.devstack.examples import publish_examples

    for line in asyncio.run(publish_examples(registry_of(ctx), KafkaSettings())):
        typer.echo(line)


def main(registry: Registry | None = None) -> None:
    """`regbridge …` (the registry: the installation's workers unless another is given)."""
    if registry is None:
        from services.registry import REGISTRY

        registry = REGISTRY
    try:
        build_app(registry)()
    except KafkaConnectionError as exc:
        bootstrap = KafkaSettings().bootstrap_servers
        typer.secho(
            f"regbridge: cannot reach Kafka at {bootstrap} ({exc}). Set "
            "KAFKA_BOOTSTRAP_SERVERS (make run prints it).",
            fg=typer.colors.RED,
            err=True,
        )
        raise SystemExit(2) from None
