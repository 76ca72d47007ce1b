"""`regbridge dlq …`: list, show and replay dead letters, for operators."""

from __future__ import annotations

import asyncio
import getpass
import re
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

import typer
from sqlalchemy.exc import SQLAlchemyError

from services.cli.support import worker_settings, worker_spec
from shared.delivery.dlq_read import (
    DeadLetter,
    DlqFilter,
    TopicNotFoundError,
    pretty,
    read_dead_letter,
    read_dead_letters,
)
from shared.delivery.dlq_replay import (
    Refusal,
    ReplayFailedError,
    ReplayReport,
    earlier_replays,
    replay,
)
from shared.delivery.ledger import Ledger
from shared.settings import RegbridgeSettings

dlq_app = typer.Typer(
    help="Dead letters: list, show and replay them (every replay is audited).",
    no_args_is_help=True,
)
_PERSONAL_DATA = (
    "NOTICE: this output contains personal data (identity numbers, health data): "
    "use it to fix the event, do not paste it into tickets or chat."
)


# --- options shared by list and replay ----------------------------------------------------------

Worker = Annotated[str, typer.Option("--worker", "-w", help="The worker's name (gvr, nvr …).")]
Since = Annotated[
    str | None, typer.Option(help="Dead-lettered at or after (ISO 8601 with zone, e.g. …Z).")
]
Until = Annotated[str | None, typer.Option(help="Dead-lettered before (ISO 8601 with zone).")]
ErrorClass = Annotated[
    list[str] | None,
    typer.Option("--error-class", help="invalid_event, register_rejected, … (repeatable)."),
]
RecordId = Annotated[str | None, typer.Option("--record-id", help="The journal's record id.")]
EventId = Annotated[str | None, typer.Option("--event-id", help="The event's event_id.")]
Key = Annotated[str | None, typer.Option(help="The Kafka key, as text.")]
Header = Annotated[
    list[str] | None, typer.Option(help="NAME=VALUE a header must have (repeatable).")
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="Ledger holding the replay audit (default: REGBRIDGE_<WORKER>_DATABASE_URL).",
        show_default=False,
    ),
]


def _moment(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"not an ISO 8601 time: {text}", param_hint=option) from exc
    if moment.utcoffset() is None:
        raise typer.BadParameter(f"give a zone, e.g. {text}Z or {text}+01:00", param_hint=option)
    return moment


def _filters(
    since: str | None,
    until: str | None,
    error_class: list[str] | None,
    record_id: str | None,
    key: str | None,
    header: list[str] | None,
    event_id: str | None,
) -> DlqFilter:
    try:
        return DlqFilter(
            since=_moment(since, "--since"),
            until=_moment(until, "--until"),
            error_class=tuple(error_class or ()),
            record_id=record_id,
            key=key,
            header=tuple(header or ()),
            event_id=event_id,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


class _Progress:
    """Prints `<verb> N/M` on stderr now and then, only for runs long enough to wait for."""

    def __init__(self, verb: str, step: int) -> None:
        self.verb, self.step, self.last = verb, step, 0

    def __call__(self, done: int, total: int) -> None:
        if total >= self.step and (done - self.last >= self.step or done == total > self.last):
            self.last = done
            typer.echo(f"{self.verb} {done}/{total}", err=True)


def _read(settings: RegbridgeSettings, topic: str, filters: DlqFilter) -> list[DeadLetter]:
    try:
        return asyncio.run(
            read_dead_letters(
                settings.kafka, topic, filters=filters, progress=_Progress("read", 1000)
            )
        )
    except TopicNotFoundError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc


def _first_line(text: str | None, width: int = 60) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def format_table(letters: Sequence[DeadLetter]) -> list[str]:
    """Partition:offset, time, error class, record id, event id, first line of the message."""
    rows = [("P:OFFSET", "TIME (UTC)", "ERROR CLASS", "RECORD ID", "EVENT ID", "MESSAGE")]
    rows += [
        (
            f"{dl.partition}:{dl.offset}",
            f"{dl.at:%Y-%m-%d %H:%M:%S}",
            dl.error_class or "-",
            dl.record_id or "-",
            dl.event_id or "-",
            _first_line(dl.error_message),
        )
        for dl in letters
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths, strict=True)) + "  " + row[5]
        for row in rows
    ]


@dlq_app.command("list")
def dlq_list(
    ctx: typer.Context,
    worker: Worker,
    since: Since = None,
    until: Until = None,
    error_class: ErrorClass = None,
    record_id: RecordId = None,
    key: Key = None,
    header: Header = None,
    event_id: EventId = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Show at most N.")] = None,
) -> None:
    """A table of the worker's dead letters, oldest position first."""
    filters = _filters(since, until, error_class, record_id, key, header, event_id)
    spec = worker_spec(ctx, worker)
    settings = worker_settings(spec)
    topic = spec.topics(settings).dlq
    letters = _read(settings, topic, filters)
    shown = letters[:limit] if limit else letters
    if letters:
        for line in format_table(shown):
            typer.echo(line)
    more = f", showing {len(shown)}" if len(shown) < len(letters) else ""
    typer.echo(f"{len(letters)} dead letters in {topic} match{more}")


def _position(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+):(\d+)", text.strip())
    if match is None:
        raise typer.BadParameter(f"expected PARTITION:OFFSET, e.g. 0:42, not {text!r}")
    return int(match.group(1)), int(match.group(2))


def format_dead_letter(dl: DeadLetter) -> list[str]:
    """One dead letter in full: position, every header, the register's response, the value."""
    lines = [
        f"{dl.topic} partition {dl.partition} offset {dl.offset}",
        f"time      {dl.at.isoformat()}",
        f"key       {dl.key_text if dl.key is not None else '(none)'}",
        "headers",
    ]
    width = max((len(name) for name, _ in dl.raw_headers), default=0)
    lines += [f"  {name.ljust(width)}  {value}" for name, value in dl.headers.items()]
    if dl.register_response is not None:
        status = f" (HTTP {dl.register_status})" if dl.register_status else ""
        lines += [f"register response{status}", _indent(pretty(dl.register_response))]
    size = 0 if dl.value is None else len(dl.value)
    lines += [f"value ({size} bytes)", _indent(pretty(dl.value))]
    return lines


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


async def _replays_text(settings: RegbridgeSettings, dl: DeadLetter) -> list[str]:
    ledger = Ledger.from_url(settings.ledger_url())
    try:
        entries = await earlier_replays(ledger, dl)
    except (SQLAlchemyError, OSError) as exc:  # the dead letter still shows without its replays
        return [f"replays   unknown (ledger: {type(exc).__name__})"]
    finally:
        await ledger.close()
    return [
        f"replayed  {e.replayed_at:%Y-%m-%d %H:%M:%S} UTC by {e.replayed_by} → "
        f"{e.target_topic} (batch {e.batch_id}{', forced' if e.forced else ''})"
        for e in entries
    ] or ["replayed  never"]


@dlq_app.command("show")
def dlq_show(
    ctx: typer.Context,
    worker: Worker,
    position: Annotated[str, typer.Argument(metavar="PARTITION:OFFSET")],
    database_url: DatabaseUrl = None,
) -> None:
    """One dead letter in full: headers, the register's response, the value as JSON."""
    partition, offset = _position(position)
    spec = worker_spec(ctx, worker)
    settings = worker_settings(spec, database_url)
    topic = spec.topics(settings).dlq
    dl = asyncio.run(read_dead_letter(settings.kafka, topic, partition, offset))
    if dl is None:
        typer.secho(
            f"no dead letter at {topic}/{partition}/{offset}", fg=typer.colors.RED, err=True
        )
        raise typer.Exit(1)
    typer.secho(_PERSONAL_DATA, fg=typer.colors.YELLOW, err=True)
    for line in format_dead_letter(dl) + asyncio.run(_replays_text(settings, dl)):
        typer.echo(line)


async def _replay(
    settings: RegbridgeSettings, letters: list[DeadLetter], **kw: Any
) -> ReplayReport:
    ledger = Ledger.from_url(settings.ledger_url())
    try:
        return await replay(settings.kafka, ledger, letters, **kw)
    finally:
        await ledger.close()


def _echo_refusals(refusals: Sequence[Refusal]) -> None:
    for refusal in refusals:
        typer.secho(f"refused {refusal.dead_letter.position}: {refusal.reason}", err=True)


@dlq_app.command("replay")
def dlq_replay(
    ctx: typer.Context,
    worker: Worker,
    since: Since = None,
    until: Until = None,
    error_class: ErrorClass = None,
    record_id: RecordId = None,
    key: Key = None,
    header: Header = None,
    event_id: EventId = None,
    to: Annotated[
        str | None, typer.Option(help="Publish here instead of each one's original topic.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would happen.")] = False,
    rate: Annotated[float | None, typer.Option(min=0.001, help="At most N per second.")] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replay again what was replayed before.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    operator: Annotated[
        str | None, typer.Option(help="Who replays, for the audit (default: your user name).")
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Re-publish the selected dead letters' original bytes, audited; exit 1 if any is refused."""
    filters = _filters(since, until, error_class, record_id, key, header, event_id)
    spec = worker_spec(ctx, worker)
    settings = worker_settings(spec, database_url)
    topic = spec.topics(settings).dlq
    letters = _read(settings, topic, filters)
    if not letters:
        typer.echo(f"no dead letters in {topic} match: nothing to replay")
        return
    options: dict[str, Any] = {"to": to, "rate": rate, "force": force}
    options["operator"] = operator or getpass.getuser()
    plan = asyncio.run(_replay(settings, letters, dry_run=True, **options))
    targets = Counter(target for _dl, target in plan.replayed)
    summary = ", ".join(f"{n} → {target}" for target, n in sorted(targets.items()))
    refused = f"; {len(plan.refused)} refused" if plan.refused else ""
    typer.echo(f"{len(letters)} selected in {topic}: {summary or 'none to replay'}{refused}")
    _echo_refusals(plan.refused)
    if dry_run:
        for dl, target in plan.replayed:
            typer.echo(f"would replay {dl.position} → {target}  record {dl.record_id or '-'}")
        typer.echo(
            f"dry run: {len(plan.replayed)} would be replayed, {len(plan.refused)} refused; "
            "nothing was written"
        )
        raise typer.Exit(1 if plan.refused else 0)
    if plan.replayed and not yes:
        typer.confirm(f"Replay {len(plan.replayed)} dead letters?", abort=True)
    try:
        report = asyncio.run(
            _replay(
                settings, letters, dry_run=False, progress=_Progress("replayed", 100), **options
            )
        )
    except ReplayFailedError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        typer.echo(f"replayed {len(exc.report.replayed)} (batch {exc.report.batch_id}) before that")
        raise typer.Exit(2) from exc
    shown = {r.dead_letter.position for r in plan.refused}  # refused since the plan: a race
    _echo_refusals([r for r in report.refused if r.dead_letter.position not in shown])
    typer.echo(
        f"replayed {len(report.replayed)}, refused {len(report.refused)} "
        f"(batch {report.batch_id}, by {options['operator']})"
    )
    if report.refused:
        raise typer.Exit(1)
