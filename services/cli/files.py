"""`regbridge <file register> files|show|deliver-now`: a file register's files, one file in full,
and a delivery run now (as the schedule would run it, for one period)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated

import typer
from prometheus_client import CollectorRegistry

from shared.delivery.clock import SystemClock
from shared.delivery.errors import DeliveryError
from shared.delivery.ledger import Ledger
from shared.files.delivery import FileMetrics, LeaseTakenError, rendered
from shared.files.register import FileRegister
from shared.files.settings import FileWorkerSettings
from shared.files.state import FileInfo, FileState
from shared.files.wiring import FileParts, file_parts
from shared.schedule import InvalidPeriodError, Period

PeriodOption = Annotated[
    str | None,
    typer.Option("--period", "--month", "-p", "-m", help="The period: YYYY-MM, or YYYY-MM-DD "
                 "for a register of daily periods (default: the one whose window is open now, "
                 "or opens next).", show_default=False),
]  # fmt: skip


def file_commands(
    name: str,
    load_settings: Callable[[], FileWorkerSettings],
    register_of: Callable[[FileWorkerSettings], AbstractAsyncContextManager[FileRegister]],
) -> typer.Typer:
    """The verbs every file register has, for `register_of`'s register (its client only: the
    commands never place events)."""
    app = typer.Typer(help=f"The {name} worker's files.", no_args_is_help=True)

    def period_of(settings: FileWorkerSettings, text: str | None) -> Period:
        if text is None:
            return settings.window().period_of(SystemClock().now())
        try:
            period = Period.parse(text)
        except InvalidPeriodError as exc:
            raise typer.BadParameter(str(exc), param_hint="--period") from None
        if period.cadence != settings.periods:
            shape = "YYYY-MM-DD" if settings.periods == "daily" else "YYYY-MM"
            raise typer.BadParameter(
                f"{name}'s periods are {settings.periods} ({shape}), not {text!r}",
                param_hint="--period",
            )
        return period

    @contextlib.asynccontextmanager
    async def state_of(settings: FileWorkerSettings) -> AsyncIterator[FileState]:
        ledger = Ledger.from_url(settings.ledger_url())
        try:
            state = FileState(ledger.engine, name)
            await state.create_schema()
            yield state
        finally:
            await ledger.close()

    @app.command("files")
    def files_command(month: PeriodOption = None) -> None:
        """The period's files: name, rows, status, the register's answer, rows refused."""
        settings = load_settings()
        period = period_of(settings, month)

        async def show() -> None:
            async with state_of(settings) as state:
                found = await state.files_of(period)
                window = settings.window().window(period)
                typer.echo(
                    f"{name} {period}: window {window.opens_at:%Y-%m-%d %H:%M} to "
                    f"{window.closes_at:%Y-%m-%d %H:%M %Z}, {len(found)} files"
                )
                for info in found:
                    refused = len(await state.refused_rows(info.name))
                    typer.echo(_line(info, refused))
                missing = await state.owners_not_accepted(period)
                if missing:
                    typer.echo(
                        f"not accepted yet: {len(missing)} owners ({', '.join(missing[:5])})"
                    )

        asyncio.run(show())

    @app.command("show")
    def show_command(
        file: Annotated[str, typer.Argument(help="The file's name, as `files` lists it.")],
        content: Annotated[
            bool, typer.Option("--content", help="Print the file itself, as delivered.")
        ] = False,
    ) -> None:
        """One file: its header, the register's receipt and its refused rows (or its bytes)."""
        settings = load_settings()

        async def show() -> None:
            async with state_of(settings) as state:
                info = await state.file(file)
                if info is None:
                    typer.echo(f"no {name} file named {file}", err=True)
                    raise typer.Exit(1)
                if content:
                    async with register_of(settings) as register:
                        pieces = rendered(register.render, info.header, state.rows(info.name))
                        async for piece in pieces:
                            typer.echo(piece.decode("utf-8", "replace"), nl=False)
                    return
                typer.echo(_line(info, None))
                typer.echo(f"  built at   {info.built_at.isoformat()} (the cut-off)")
                typer.echo(f"  replaces   {info.replaces or '-'}")
                typer.echo(f"  attempts   {info.attempts}   last error: {info.last_error or '-'}")
                if info.receipt_id:
                    typer.echo(f"  receipt    {info.receipt_id} at {info.received_at}")
                    typer.echo(f"  answer     {info.receipt_status} {info.receipt_reason or ''}")
                for row in await state.refused_rows(info.name):
                    typer.echo(
                        f"  refused row {row.number}: {row.record_id} v{row.record_version} "
                        f"({row.kind}) {row.code}: {row.reason}"
                    )

        asyncio.run(show())

    @app.command("deliver-now")
    def deliver_now(month: PeriodOption = None) -> None:
        """Build and deliver the period's changed files now (the register judges whether its
        window is open); results and refused rows go to Kafka as in a scheduled run."""
        settings = load_settings()
        period = period_of(settings, month)

        async def run() -> str:
            async with state_of(settings) as state, register_of(settings) as register:
                metrics = FileMetrics(CollectorRegistry())
                parts: FileParts
                async with file_parts(register, settings, state, SystemClock(), metrics) as parts:
                    summary = await parts.delivery.run(period)
                    for info in await state.files_of(period):
                        refused = len(await state.refused_rows(info.name))
                        typer.echo(_line(info, refused))
                    return summary

        try:
            typer.echo(asyncio.run(run()))
        except LeaseTakenError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
        except DeliveryError as exc:  # a refused certificate, say: the run stopped
            typer.echo(f"delivery stopped: {exc.error_class}: {exc.message}", err=True)
            raise typer.Exit(1) from None

    return app


def _line(info: FileInfo, refused: int | None) -> str:
    answer = info.receipt_status or "-"
    extra = "" if refused is None else f"  {refused} rows refused"
    reason = f"  ({info.receipt_reason})" if info.receipt_reason else ""
    return f"{info.name}  {info.row_count} rows  {info.status}  {answer}{reason}{extra}"
