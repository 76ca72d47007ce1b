"""Dead-letter pages: the list, one in full, an audited reveal, and replay in two steps."""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from datetime import UTC, datetime

import structlog
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from services.console.audit import AuditEntry
from services.console.context import Console, console_of, render
from services.console.masking import Masker
from services.console.overview import figures_of
from services.console.security import User, operator_form, require_user
from services.console.sources import WorkerSource
from shared.delivery.dlq_read import DeadLetter, DlqFilter, pretty
from shared.delivery.dlq_replay import ReplayReport

log = structlog.get_logger("regbridge.console")
_POSITION = re.compile(r"(?P<worker>[A-Za-z0-9_-]+):(?P<partition>\d+):(?P<offset>\d+)")
MAX_REPLAY = 1000  # dead letters one replay form may select


def _source(console: Console, worker: str) -> WorkerSource:
    source = console.source(worker)
    if source is None:
        raise HTTPException(404, f"no worker {worker!r}")
    return source


async def list_page(request: Request) -> Response:
    require_user(request)
    console = console_of(request)
    query = request.query_params
    worker = query.get("worker", "all")
    error_class = query.get("error_class", "").strip()
    record_id = query.get("record_id", "").strip()
    wanted = DlqFilter(
        error_class=(error_class,) if error_class else (), record_id=record_id or None
    )
    sources = list(console.sources.values()) if worker == "all" else [_source(console, worker)]
    limit = console.settings.dead_letters_shown
    # no filter: the newest from the partitions' tails, counted by offsets; a filter reads all
    if wanted == DlqFilter():
        newest = await asyncio.gather(*(figures_of(request).newest(s.name, limit) for s in sources))
        total, found = sum(n for n, _ in newest), [letters for _, letters in newest]
    else:
        found = await asyncio.gather(*(s.dead_letters(wanted) for s in sources))
        total = sum(len(letters) for letters in found)
    replayed = await asyncio.gather(*(s.replayed() for s in sources))
    rows = [
        (source.name, dl, (dl.partition, dl.offset) in done)
        for source, letters, done in zip(sources, found, replayed, strict=True)
        for dl in letters
    ]
    rows.sort(key=lambda row: row[1].timestamp, reverse=True)
    shown = rows[:limit]
    masker = Masker()
    return render(
        request,
        "dead_letters.html",
        rows=[(w, dl, done, masker(_first_line(dl.error_message))) for w, dl, done in shown],
        total=total,
        worker=worker,
        error_class=error_class,
        record_id=record_id,
    )


def _first_line(text: str | None, width: int = 100) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


async def _letter(source: WorkerSource, partition: int, offset: int) -> DeadLetter:
    dl = await source.dead_letter(partition, offset)
    if dl is None:
        raise HTTPException(404, f"no dead letter at {source.topics.dlq}/{partition}/{offset}")
    return dl


async def _detail(request: Request, reveal: int | None = None, reason: str = "") -> Response:
    console = console_of(request)
    params = request.path_params
    source = _source(console, params["worker"])
    dl = await _letter(source, params["partition"], params["offset"])
    masker = Masker(reveal)
    # the order of masking numbers the identity numbers: the same on every view of the page
    message = masker(dl.error_message)
    response = masker(pretty(dl.register_response)) if dl.register_response else None
    value = masker(pretty(dl.value))
    headers = [(name, masker(value)) for name, value in dl.headers.items()]
    key = masker(dl.key_text)
    if reveal is not None and masker.revealed_value is None:
        raise HTTPException(400, f"no identity number #{reveal} on this dead letter")
    return render(
        request,
        "dead_letter.html",
        worker=source.name,
        dl=dl,
        headers=headers,
        key=key,
        message=message,
        response=response,
        value=value,
        numbers=masker.count,
        revealed=reveal if masker.revealed_value is not None else None,
        reason=reason,
        replays=await source.replays_of(dl),
    )


async def detail_page(request: Request) -> Response:
    require_user(request)
    return await _detail(request)


async def reveal(request: Request) -> Response:
    """One identity number shown in full to an operator, with a reason, audited before it shows."""
    user, form = await operator_form(request)
    reason = str(form.get("reason", "")).strip()
    try:
        number = int(str(form.get("number", "")))
    except ValueError:
        raise HTTPException(400, "which identity number? (#1, #2 …)") from None
    if not reason:
        raise HTTPException(400, "give a reason: it is kept in the audit")
    params = request.path_params
    source = _source(console_of(request), params["worker"])
    target = f"{source.topics.dlq}/{params['partition']}/{params['offset']}"
    await _letter(source, params["partition"], params["offset"])
    entry = _entry(user, "reveal", target, reason, f"identity number #{number}")
    await console_of(request).audit.write([entry])
    log.info("console_reveal", actor=user.name, target=target, number=number)
    return await _detail(request, reveal=number, reason=reason)


def _entry(user: User, action: str, target: str, reason: str, detail: str) -> AuditEntry:
    return AuditEntry(datetime.now(UTC), user.name, user.role.value, action, target, reason, detail)


async def _selected(console: Console, form: FormData) -> dict[str, list[DeadLetter]]:
    """The dead letters a form selected (`position` = worker:partition:offset), per worker."""
    wanted: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for raw in form.getlist("position")[:MAX_REPLAY]:
        match = _POSITION.fullmatch(str(raw))
        if match is None:
            raise HTTPException(400, "a selected dead letter is not worker:partition:offset")
        wanted[match["worker"]].append((int(match["partition"]), int(match["offset"])))
    if not wanted:
        raise HTTPException(400, "select at least one dead letter")
    selected: dict[str, list[DeadLetter]] = {}
    for worker, positions in wanted.items():
        source = _source(console, worker)
        letters = await asyncio.gather(*(_letter(source, p, o) for p, o in positions))
        selected[worker] = list({dl.position: dl for dl in letters}.values())
    return selected


async def _replay_all(
    console: Console, selected: dict[str, list[DeadLetter]], *, dry_run: bool, user: User
) -> list[tuple[str, ReplayReport]]:
    reports = []
    for worker, letters in selected.items():
        source = _source(console, worker)
        report = await source.replay(letters, dry_run=dry_run, operator=f"console:{user.name}")
        reports.append((worker, report))
    return reports


async def replay_plan(request: Request) -> Response:
    """The dry run: what would be replayed where, and what is refused (replayed before …)."""
    user, form = await operator_form(request)
    console = console_of(request)
    selected = await _selected(console, form)
    reports = await _replay_all(console, selected, dry_run=True, user=user)
    positions = [f"{w}:{dl.partition}:{dl.offset}" for w, ls in selected.items() for dl in ls]
    return render(request, "replay_plan.html", reports=reports, positions=positions)


async def replay_run(request: Request) -> Response:
    """The replay itself, after the plan was confirmed with a reason; every one audited."""
    user, form = await operator_form(request)
    reason = str(form.get("reason", "")).strip()
    if not reason:
        raise HTTPException(400, "give a reason: it is kept in the audit")
    console = console_of(request)
    selected = await _selected(console, form)
    reports = await _replay_all(console, selected, dry_run=False, user=user)
    entries = []
    for _worker, report in reports:
        entries += [
            _entry(user, "replay", dl.position, reason, f"→ {target}, batch {report.batch_id}")
            for dl, target in report.replayed
        ]
        entries += [
            _entry(user, "replay_refused", r.dead_letter.position, reason, r.reason)
            for r in report.refused
        ]
    await console.audit.write(entries)
    replayed = sum(len(report.replayed) for _w, report in reports)
    log.info("console_replay", actor=user.name, replayed=replayed, refused=len(entries) - replayed)
    return render(request, "replay_result.html", reports=reports)


_LETTER = "/dead-letters/{worker}/{partition:int}/{offset:int}"
routes: list[BaseRoute] = [
    Route("/dead-letters", list_page),
    Route(_LETTER, detail_page),
    Route(_LETTER + "/reveal", reveal, methods=["POST"]),
    Route("/replay/plan", replay_plan, methods=["POST"]),
    Route("/replay/run", replay_run, methods=["POST"]),
]
