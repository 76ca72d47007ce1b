"""File deliveries: each file register's periods, windows, files, receipts and refused rows."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import distinct, func, inspect, select
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from services.console.context import Console, console_of, render
from services.console.masking import Masker, Segment
from services.console.security import require_user
from services.console.sources import NoLedgerError, WorkerSource
from shared.files.settings import FileWorkerSettings
from shared.files.state import FileInfo, FileState, file_rows, files
from shared.schedule import InvalidPeriodError, Period
from shared.schedule.window import Window

PERIODS_SHOWN = 12  # the latest periods with files, per register


class NoFileStateError(LookupError):
    """The register's file state does not exist (yet) in its ledger."""


@dataclass
class PeriodSummary:
    """One period of a file register: its window and how its files stand."""

    period: Period
    window: Window
    state: str  # not open yet, open, closed
    files: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    receipts: Counter[str] = field(default_factory=Counter)  # accepted, partly_accepted, refused
    refused_rows: int = 0
    not_accepted: list[str] = field(default_factory=list)  # owners the register does not hold


@dataclass
class RegisterFiles:
    """A file register as the overview shows it, or why it cannot."""

    worker: str
    cadence: str
    current: Period
    periods: list[PeriodSummary] = field(default_factory=list)
    note: str | None = None


def file_sources(console: Console) -> list[WorkerSource]:
    """The workers that deliver files (their settings are a file register's)."""
    return [s for s in console.sources.values() if isinstance(s.settings, FileWorkerSettings)]


def _file_source(console: Console, worker: str) -> tuple[WorkerSource, FileWorkerSettings]:
    source = console.source(worker)
    if source is None or not isinstance(source.settings, FileWorkerSettings):
        raise HTTPException(404, f"no file register {worker!r}")
    return source, source.settings


@asynccontextmanager
async def file_state(source: WorkerSource) -> AsyncIterator[FileState]:
    """The register's file state in its ledger, as `regbridge <worker> files` reads it (read
    only: the tables are not created here)."""
    async with source.ledger() as ledger:
        async with ledger.engine.connect() as conn:
            exists = await conn.run_sync(lambda c: inspect(c).has_table(files.name))
        if not exists:
            raise NoFileStateError(f"{source.name}: no files yet")
        yield FileState(ledger.engine, source.name)


def _state_of(window: Window, now: datetime) -> str:
    if window.is_open(now):
        return "open"
    return "closed" if now >= window.closes_at else "not open yet"


def summary(settings: FileWorkerSettings, period: Period, now: datetime) -> PeriodSummary:
    window = settings.window().window(period)
    return PeriodSummary(period, window, _state_of(window, now))


async def _periods(state: FileState) -> list[Period]:
    f = files.c
    query = (
        select(distinct(f.period))
        .where(f.register == state.register)
        .order_by(f.period.desc())
        .limit(PERIODS_SHOWN)
    )
    async with state.engine.connect() as conn:
        return [Period.parse(row[0]) for row in await conn.execute(query)]


async def refused_counts(state: FileState, period: Period) -> dict[str, int]:
    """Rows the register refused, per file of `period`."""
    f, fr = files.c, file_rows.c
    query = (
        select(fr.file, func.count())
        .join(files, (f.register == fr.register) & (f.name == fr.file))
        .where(fr.register == state.register, f.period == str(period), fr.verdict == "refused")
        .group_by(fr.file)
    )
    async with state.engine.connect() as conn:
        return {row[0]: int(row[1]) for row in await conn.execute(query)}


async def _fill(state: FileState, summary: PeriodSummary) -> list[tuple[FileInfo, int]]:
    found = await state.files_of(summary.period)
    refused = await refused_counts(state, summary.period)
    summary.files = len(found)
    summary.statuses = Counter(info.status for info in found)
    summary.receipts = Counter(info.receipt_status for info in found if info.receipt_status)
    summary.refused_rows = sum(refused.values())
    summary.not_accepted = await state.owners_not_accepted(summary.period)
    return [(info, refused.get(info.name, 0)) for info in found]


async def register_files(source: WorkerSource, now: datetime) -> RegisterFiles:
    settings = source.settings
    assert isinstance(settings, FileWorkerSettings)
    current = settings.window().period_of(now)
    found = RegisterFiles(source.name, settings.periods, current)
    try:
        async with file_state(source) as state:
            periods = sorted({current, *await _periods(state)}, reverse=True)
            for period in periods[:PERIODS_SHOWN]:
                item = summary(settings, period, now)
                await _fill(state, item)
                found.periods.append(item)
    except (NoLedgerError, NoFileStateError) as exc:
        found.note = str(exc)
    except (SQLAlchemyError, OSError) as exc:
        found.note = f"ledger unavailable ({type(exc).__name__})"
    if not found.periods:
        found.periods.append(summary(settings, current, now))
    return found


async def files_page(request: Request) -> Response:
    require_user(request)
    now = datetime.now(UTC)
    registers = await asyncio.gather(
        *(register_files(s, now) for s in file_sources(console_of(request)))
    )
    return render(request, "files.html", registers=registers, now=now)


async def period_page(request: Request) -> Response:
    require_user(request)
    source, settings = _file_source(console_of(request), request.path_params["worker"])
    try:
        period = Period.parse(request.path_params["period"])
    except InvalidPeriodError as exc:
        raise HTTPException(404, str(exc)) from None
    item = summary(settings, period, datetime.now(UTC))
    try:
        async with file_state(source) as state:
            rows = await _fill(state, item)
    except (NoLedgerError, NoFileStateError) as exc:
        raise HTTPException(404, str(exc)) from None
    masker = Masker()
    listed = [
        (info, refused, masker(info.last_error), masker(info.receipt_reason))
        for info, refused in rows
    ]
    return render(request, "files_period.html", worker=source.name, item=item, rows=listed)


@dataclass(frozen=True)
class RefusedRow:
    number: int
    record_id: str
    record_version: int
    kind: str
    code: str | None
    reason: list[Segment]


async def file_page(request: Request) -> Response:
    require_user(request)
    source, _settings = _file_source(console_of(request), request.path_params["worker"])
    name = request.path_params["name"]
    try:
        async with file_state(source) as state:
            info = await state.file(name)
            if info is None:
                raise HTTPException(404, f"no {source.name} file named {name}")
            refused = await state.refused_rows(name)
    except (NoLedgerError, NoFileStateError) as exc:
        raise HTTPException(404, str(exc)) from None
    masker = Masker()
    rows = [
        RefusedRow(r.number, r.record_id, r.record_version, r.kind, r.code, masker(r.reason))
        for r in refused
    ]
    return render(
        request,
        "file.html",
        worker=source.name,
        info=info,
        last_error=masker(info.last_error),
        receipt_reason=masker(info.receipt_reason),
        receipt_raw=masker(info.receipt_raw),
        refused=rows,
    )


routes: list[BaseRoute] = [
    Route("/files", files_page),
    Route("/files/{worker}/period/{period}", period_page),
    Route("/files/{worker}/file/{name}", file_page),
]
