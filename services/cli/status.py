"""`regbridge status`: lag, retry tiers, dead letters, circuit state and schedules per worker."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated

import typer

from services.cli.support import registry_of, worker_settings, worker_spec
from shared.delivery.status import WorkerStatus, worker_status
from shared.schedule.report import schedule_lines

status_app = typer.Typer(help="Lag, retry tiers, dead letters and circuit state per worker.")
_NAMED_URL = re.compile(r"^(?P<worker>[A-Za-z0-9_-]+)=(?P<url>.+)$")


def _health_urls(values: list[str], workers: Sequence[str]) -> dict[str, str]:
    urls: dict[str, str] = {}
    for value in values:
        if match := _NAMED_URL.match(value):
            urls[match.group("worker")] = match.group("url")
        elif len(workers) == 1:
            urls[workers[0]] = value
        else:
            raise typer.BadParameter(
                "with several workers, give WORKER=URL", param_hint="--health-url"
            )
    return urls


def format_status(status: WorkerStatus, input_topics: str) -> list[str]:
    lines = [f"{status.worker}  (consumer group {status.consumer_group})"]
    lines.append(f"  input lag  {input_topics}")
    lines += [
        f"    {p.topic}/{p.partition}  committed {'-' if p.committed is None else p.committed}"
        f"  end {p.end}  lag {p.lag}"
        for p in status.lag
    ]
    lines.append(f"    total lag {status.total_lag}")
    lines.append(f"  retry tiers  (group {status.consumer_group}-retry)")
    width = max((len(t) for t in status.retry_depth), default=0)
    lines += [f"    {t.ljust(width)}  {n}" for t, n in status.retry_depth.items()]
    total = sum(status.dead_letters.values())
    lines.append(f"  dead letters  {status.dlq_topic}: {total}")
    width = max((len(c) for c in status.dead_letters), default=0)
    lines += [f"    {c.ljust(width)}  {n}" for c, n in status.dead_letters.items()]
    if status.missing_topics:
        lines.append(f"  missing topics: {', '.join(status.missing_topics)}")
    lines.append(f"  circuit  {_circuit(status)}")
    return lines


def _circuit(status: WorkerStatus) -> str:
    if status.health is None:
        return f"unknown: {status.health_error or 'no health URL'}"
    health = status.health
    alarms = health.get("alarms") or []
    paused = health.get("paused_reason") or "no"
    text = f"{health.get('circuit', 'unknown')}; paused: {paused}; alarms: {len(alarms)}"
    return text + "".join(f"\n    alarm: {alarm}" for alarm in alarms[-5:])


@status_app.callback(invoke_without_command=True)
def status(
    ctx: typer.Context,
    worker: Annotated[str, typer.Option("--worker", "-w", help="A worker's name, or all.")] = (
        "all"
    ),
    health_url: Annotated[
        list[str] | None,
        typer.Option(help="Worker's health endpoint base URL, or WORKER=URL (repeatable)."),
    ] = None,
) -> None:
    """Per worker: consumer lag, retry-tier depth, dead letters by error class, circuit state."""
    specs = list(registry_of(ctx)) if worker == "all" else [worker_spec(ctx, worker)]
    urls = _health_urls(health_url or [], [spec.name for spec in specs])
    for index, spec in enumerate(specs):
        settings = worker_settings(spec)
        topics = spec.topics(settings)
        result = asyncio.run(worker_status(settings.kafka, topics, health_url=urls.get(spec.name)))
        schedules = asyncio.run(
            schedule_lines(settings.ledger_url(), spec.schedules, datetime.now(UTC))
        )
        if index:
            typer.echo("")
        for line in [*format_status(result, ", ".join(topics.inputs)), *schedules]:
            typer.echo(line)
