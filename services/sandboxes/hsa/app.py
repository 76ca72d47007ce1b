"""The HSA sandbox's HTTP API: GetHsaUnit-style lookups, a streamed NDJSON export, admin routes."""

# S311: a seeded PRNG picks faulted lookups and changed units, reproducibly; no secret involved.
# ruff: noqa: S311

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiokafka.errors import KafkaError
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from services.sandboxes.hsa.cuts import ExportCuts
from services.sandboxes.hsa.directory import SWEDEN, DirectorySnapshot, HsaDirectory
from services.sandboxes.hsa.faults import (
    RAW_SEND,
    Faults,
    FaultsChange,
    close_connection_abruptly,
)
from services.sandboxes.hsa.generator import hsa_timestamp
from services.sandboxes.hsa.notifications import (
    DEFAULT_TOPIC,
    ChangeKind,
    Notifier,
    build_notification,
)
from services.sandboxes.hsa.schema import (
    ChangesAnswer,
    ChangesRequest,
    ErrorAnswer,
    ExportCut,
    HsaUnit,
    InvalidRowRequest,
    RemoveAnswer,
    UpsertAnswer,
)
from shared.settings import KafkaSettings

EXPORT_CHUNK_LINES = 500
NDJSON = "application/x-ndjson"


@dataclass
class SandboxState:
    """What the routes share; touched from the server's loop (faults also from tests: atomic)."""

    directory: HsaDirectory
    seed: int
    notifier: Notifier | None
    cuts: ExportCuts
    faults: Faults = field(default_factory=Faults)
    versions: dict[str, int] = field(default_factory=dict)  # kept across resets: never goes back
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def reset(self) -> None:
        self.directory.reset()
        self.cuts.reset()
        self.faults = Faults()
        self.rng = random.Random(self.seed)

    def next_version(self, hsa_id: str) -> int:
        self.versions[hsa_id] = self.versions.get(hsa_id, 0) + 1
        return self.versions[hsa_id]

    async def notify(
        self, changes: Sequence[tuple[str, ChangeKind, Sequence[str] | None]]
    ) -> dict[str, int]:
        """Give each change its next record_version, publish if Kafka is configured; versions."""
        versions = {hsa_id: self.next_version(hsa_id) for hsa_id, _, _ in changes}
        if self.notifier is not None and changes:
            at = self.directory.clock().astimezone(SWEDEN)
            events = [
                (hsa_id, build_notification(hsa_id, kind, versions[hsa_id], at, attributes))
                for hsa_id, kind, attributes in changes
            ]
            await self.notifier.publish(events)
        return versions


class HsaSandboxApi(FastAPI):
    """FastAPI that keeps uvicorn's raw `send` at hand, so an export can be cut off abruptly."""

    sandbox: SandboxState

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = RAW_SEND.set(send)
        try:
            await super().__call__(scope, receive, send)
        finally:
            RAW_SEND.reset(token)


def create_app(
    directory: HsaDirectory,
    *,
    kafka: KafkaSettings | None = None,
    topic: str = DEFAULT_TOPIC,
    cuts: ExportCuts | None = None,
) -> HsaSandboxApi:
    """The sandbox over `directory`; with `kafka`, admin changes are notified on `topic`;
    `cuts`: when the export is frozen (default: 1.5 hours before 11:30, 15:30 and 22:30)."""
    notifier = Notifier(kafka, topic) if kafka is not None else None
    cuts = cuts or ExportCuts(directory)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if notifier is not None:
            await notifier.start()
        cutter = asyncio.create_task(cuts.run())
        try:
            yield
        finally:
            cutter.cancel()
            if notifier is not None:
                await notifier.stop()

    app = HsaSandboxApi(
        title="HSA sandbox",
        version="1",
        summary="A generated HSA directory: GetHsaUnit lookups, a full export, notifications.",
        lifespan=lifespan,
    )
    state = app.sandbox = SandboxState(directory, directory.seed, notifier, cuts)

    @app.get(
        "/units/{hsa_id}",
        tags=["directory"],
        response_model=None,
        responses={200: {"model": HsaUnit, "description": "The unit, or {} when unknown."}},
    )
    async def get_unit(hsa_id: str) -> JSONResponse:
        """GetHsaUnit: the unit's attributes; an unknown unit answers ``{}`` (not an error)."""
        faults = state.faults
        await _latency(faults)
        if faults.error_rate and state.rng.random() < faults.error_rate:
            return JSONResponse({"error": "directory unavailable (fault)"}, status_code=500)
        return JSONResponse(state.directory.get(hsa_id) or {})

    @app.get(
        "/export",
        tags=["directory"],
        response_class=StreamingResponse,
        responses={200: {"content": {NDJSON: {}}, "description": "Header, units, trailer."}},
    )
    async def export() -> Response:
        """The whole directory as NDJSON: a header line, one unit per line, a trailer line.

        ``{"export": {"generatedAt": …, "asOf": "YYYYMMDDhhmmss", "count": N}}`` first, then N
        units, then ``{"end": {"count": N}}``: the export is complete only when the trailer has
        arrived. Like HSA's, it holds the directory as of its last cut (`asOf`, Swedish local
        time), not as of now: later changes come by notification.
        """
        faults = state.faults
        await _latency(faults)
        if faults.export_status is not None:
            body = {"error": f"export unavailable (fault {faults.export_status})"}
            return JSONResponse(body, status_code=faults.export_status)
        frozen = state.cuts.export()
        header = {
            "export": {
                "generatedAt": state.directory.now_local(),
                "asOf": hsa_timestamp(frozen.as_of.astimezone(SWEDEN)),
                "count": frozen.snapshot.count,
            }
        }
        return StreamingResponse(_export_body(frozen.snapshot, header, faults), media_type=NDJSON)

    @app.post("/admin/export/cut", tags=["admin"], response_model=ExportCut)
    async def cut_export() -> ExportCut:
        """Freeze the export now, as HSA does 1.5 hours before each import slot."""
        frozen = state.cuts.cut()
        return ExportCut(as_of=frozen.as_of, count=frozen.snapshot.count)

    @app.post("/admin/units", tags=["admin"], response_model=UpsertAnswer)
    async def upsert_unit(unit: HsaUnit) -> JSONResponse:
        """Create a unit or update the attributes given (modifyTimestamp is bumped); notify."""
        done = state.directory.upsert(unit.model_dump(mode="json", exclude_unset=True))
        kind: ChangeKind = "created" if done.created else "updated"
        hsa_id = unit.hsaIdentity
        try:
            versions = await state.notify([(hsa_id, kind, done.changed_attributes)])
        except KafkaError as error:
            return _not_notified(error)
        answer = UpsertAnswer(
            unit=done.unit,
            created=done.created,
            changed_attributes=list(done.changed_attributes),
            record_version=versions[hsa_id],
            notified=state.notifier is not None,
        )
        return JSONResponse(
            answer.model_dump(mode="json"), status_code=201 if done.created else 200
        )

    @app.delete(
        "/admin/units/{hsa_id}",
        tags=["admin"],
        response_model=RemoveAnswer,
        responses={404: {"model": ErrorAnswer}},
    )
    async def remove_unit(hsa_id: str) -> Any:
        """Remove a unit; notify its removal."""
        if not state.directory.remove(hsa_id):
            return JSONResponse({"error": "unit is not in the directory"}, status_code=404)
        try:
            versions = await state.notify([(hsa_id, "removed", None)])
        except KafkaError as error:
            return _not_notified(error)
        return RemoveAnswer(
            removed=hsa_id, record_version=versions[hsa_id], notified=state.notifier is not None
        )

    @app.post("/admin/changes", tags=["admin"], response_model=ChangesAnswer)
    async def change_units(request: ChangesRequest) -> Any:
        """Rename or move a share of the generated units (benchmarks); optionally notify each."""
        changes = state.directory.change_random_detailed(request.share, state.rng)
        notify = request.notify and state.notifier is not None
        if notify:
            try:
                await state.notify([(hsa_id, "updated", attrs) for hsa_id, attrs in changes])
            except KafkaError as error:
                return _not_notified(error)
        hsa_ids = [hsa_id for hsa_id, _ in changes]
        return ChangesAnswer(changed=len(hsa_ids), hsa_ids=hsa_ids, notified=notify)

    @app.post("/admin/faults", tags=["admin"], response_model=Faults)
    async def set_faults(change: FaultsChange) -> Faults:
        """Change the faults given; the others keep their value (null switches one off)."""
        state.faults = change.applied_to(state.faults)
        return state.faults

    @app.get("/admin/faults", tags=["admin"], response_model=Faults)
    async def get_faults() -> Faults:
        return state.faults

    @app.post(
        "/admin/invalid-rows",
        tags=["admin"],
        status_code=204,
        responses={404: {"model": ErrorAnswer}},
    )
    async def spoil_row(request: InvalidRowRequest) -> Response:
        """Make this unit's export row bad (bad_kombika, bad_org, not_json)."""
        try:
            state.directory.inject_invalid(request.hsa_id, request.kind)
        except KeyError:
            return JSONResponse({"error": "unit is not in the directory"}, status_code=404)
        return Response(status_code=204)

    @app.post("/admin/reset", tags=["admin"], status_code=204)
    async def reset() -> Response:
        """Back to the generated directory, no faults (notification versions keep counting)."""
        state.reset()
        return Response(status_code=204)

    return app


async def _latency(faults: Faults) -> None:
    if faults.latency_ms > 0:
        await asyncio.sleep(faults.latency_ms / 1000)


async def _export_body(
    snapshot: DirectorySnapshot, header: dict[str, Any], faults: Faults
) -> AsyncIterator[bytes]:
    """Chunks of about 500 lines, built in a worker thread; cut off if the faults say so."""
    yield _line(header)
    lines = snapshot.export_lines()
    cut_after = faults.export_truncate_after
    sent = 0
    while True:
        wanted = (
            EXPORT_CHUNK_LINES if cut_after is None else min(EXPORT_CHUNK_LINES, cut_after - sent)
        )
        chunk = await asyncio.to_thread(_take, lines, wanted) if wanted > 0 else []
        if chunk:
            yield b"".join(chunk)
            sent += len(chunk)
        if cut_after is not None and sent >= cut_after:
            await close_connection_abruptly()
            return
        if len(chunk) < wanted:
            break
        if faults.export_delay_ms > 0:
            await asyncio.sleep(faults.export_delay_ms / 1000)
    yield _line({"end": {"count": sent}})


def _take(lines: Iterator[bytes], count: int) -> list[bytes]:
    return list(itertools.islice(lines, count))


def _line(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode() + b"\n"


def _not_notified(error: KafkaError) -> JSONResponse:
    body = {"error": f"changed, but the notification was not published: {error!r}"}
    return JSONResponse(body, status_code=503)
