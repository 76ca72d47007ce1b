"""`regbridge sandbox …`: run a sandbox on its own until Ctrl-C."""

from __future__ import annotations

from typing import Annotated

import typer

from services.cli_support import wait_for_interrupt

sandbox_app = typer.Typer(help="Local stand-ins for the registers and HSA.", no_args_is_help=True)


@sandbox_app.command("hsa")
def sandbox_hsa(
    units: Annotated[
        int, typer.Option(help="Units in the generated directory (≤ 1,000,000).")
    ] = 2000,
    seed: Annotated[int, typer.Option(help="Same seed, same directory.")] = 1,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one.")] = 8090,
    kafka_bootstrap: Annotated[
        str | None,
        typer.Option(help="Kafka bootstrap address: admin changes are then notified."),
    ] = None,
    topic: Annotated[
        str | None,
        typer.Option(
            help="Notification topic (default: REGBRIDGE_TOPICS_HSA_NOTIFICATIONS, "
            "else catalog.hsa-notifications.v1)."
        ),
    ] = None,
) -> None:
    """Serve a generated HSA directory: /units/{hsa_id}, /export, /admin/…, /docs."""
    from services.sandboxes.hsa import HsaSandbox
    from shared.settings import TopicSettings

    topic = topic or TopicSettings().hsa_notifications

    sandbox = HsaSandbox(
        units, seed, kafka_bootstrap=kafka_bootstrap, topic=topic, host=host, port=port
    )
    with sandbox:
        notified = f", notifications to {topic} on {kafka_bootstrap}" if kafka_bootstrap else ""
        typer.echo(f"HSA sandbox: {units} units (seed {seed}) at {sandbox.base_url}{notified}")
        if units:
            example = f"{sandbox.base_url}/units/{sandbox.directory.hsa_id_of(0)}"
            typer.echo(f"  API: {sandbox.base_url}/docs  ·  a unit: {example}")
        typer.echo("Press Ctrl-C to stop.")
        wait_for_interrupt()


@sandbox_app.command("vaccines")
def sandbox_vaccines(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on; 0 picks a free one.")] = 8092,
) -> None:
    """Serve the stand-in for NVR's vaccine and batch list (until the NVR sandbox exists)."""
    from services.sandboxes.server import ServerThread
    from services.sandboxes.vaccines import vaccines_app

    with ServerThread(vaccines_app(), host=host, port=port, name="nvr-vaccines") as server:
        typer.echo(f"vaccine list stand-in at {server.base_url}/vaccines. Press Ctrl-C to stop.")
        wait_for_interrupt()
