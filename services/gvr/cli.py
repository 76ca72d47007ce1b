"""`regbridge gvr import ersmo FILE`: an ERSMOIndata file as care.contact events, one per line."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from services.gvr.ersmo import convert

gvr_app = typer.Typer(
    help="GVR: care contacts to Region Stockholm's register.", no_args_is_help=True
)
import_app = typer.Typer(help="Convert other formats to care.contact events.", no_args_is_help=True)
gvr_app.add_typer(import_app, name="import")


@import_app.command("ersmo")
def import_ersmo(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="ERSMOIndata XML")],
    source_system: Annotated[
        str, typer.Option(help="source_system of the events (the reporting system's id)")
    ] = "ersmo",
    record_prefix: Annotated[
        str, typer.Option(help="put before every ERSMO id to make the record_id")
    ] = "",
    publish: Annotated[
        str | None, typer.Option(help="publish to this Kafka topic instead of printing")
    ] = None,
) -> None:
    """One care.contact event (JSON) per line on stdout, or onto `--publish TOPIC` keyed by
    record_id; a record that cannot be converted is named on stderr with the reason. Exits 1
    only when nothing converted."""
    result = convert(
        file.read_bytes(),
        source_system=source_system,
        now=datetime.now(UTC),
        record_prefix=record_prefix,
    )
    for note in result.warnings:
        typer.echo(f"warning {note}", err=True)
    for note in result.refusals:
        typer.echo(f"refused {note}", err=True)
    if publish is not None:
        asyncio.run(_publish(publish, result.events))
        typer.echo(f"published {len(result.events)} events to {publish}", err=True)
    else:
        for event in result.events:
            typer.echo(json.dumps(event, ensure_ascii=False))
    typer.echo(
        f"{len(result.events)} converted, {len(result.refusals)} refused, "
        f"{len(result.warnings)} warnings",
        err=True,
    )
    if not result.events:
        raise typer.Exit(1)


async def _publish(topic: str, events: list[dict[str, Any]]) -> None:
    from aiokafka import AIOKafkaProducer

    from services.gvr.settings import GvrSettings
    from shared.kafka import kafka_client_options

    producer = AIOKafkaProducer(**kafka_client_options(GvrSettings().kafka), acks="all")
    await producer.start()
    try:
        for event in events:
            value = json.dumps(event, ensure_ascii=False).encode()
            await producer.send_and_wait(topic, value, key=event["record_id"].encode())
    finally:
        await producer.stop()
