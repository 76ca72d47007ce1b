"""The KIV sandbox's HTTP API: record lookups, a streamed NDJSON export (always current), admin."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response, StreamingResponse

from services.sandboxes.hsa.directory import SWEDEN
from services.sandboxes.hsa.generator import hsa_timestamp
from services.sandboxes.kiv.directory import KivDirectory, KivRecord
from services.sandboxes.kiv.schema import (
    ErrorAnswer,
    KivUnit,
    RemoveAnswer,
    ResetAnswer,
    UpsertAnswer,
)
from shared.identifiers import InvalidIdentifierError

EXPORT_CHUNK_LINES = 500
NDJSON = "application/x-ndjson"


class KivSandboxApi(FastAPI):
    """FastAPI with the directory it serves at hand."""

    directory: KivDirectory


def create_app(directory: KivDirectory) -> KivSandboxApi:
    """The KIV sandbox over `directory`."""
    app = KivSandboxApi(
        title="KIV sandbox",
        version="1",
        summary="Katalog i Väst, generated from the HSA sandbox: lookups, a full export, admin.",
    )
    app.directory = directory

    @app.get(
        "/units/{hsa_id}",
        tags=["directory"],
        response_model=None,
        responses={200: {"model": KivUnit, "description": "The record, or {} when unknown."}},
    )
    async def get_unit(hsa_id: str) -> JSONResponse:
        """The record's attributes; an unknown HSA-id answers ``{}`` (not an error), as HSA does."""
        return JSONResponse(directory.get(hsa_id) or {})

    @app.get(
        "/export",
        tags=["directory"],
        response_class=StreamingResponse,
        responses={200: {"content": {NDJSON: {}}, "description": "Header, records, trailer."}},
    )
    async def export() -> Response:
        """Every record as NDJSON: a header line, one record per line, a trailer line.

        ``{"export": {"generatedAt": …, "asOf": "YYYYMMDDhhmmss", "count": N}}`` first, then N
        records, then ``{"end": {"count": N}}``: complete only when the trailer has arrived.
        Unlike HSA's, KIV's export is current: `asOf` is now (Swedish local time).
        """
        now = hsa_timestamp(directory.clock().astimezone(SWEDEN))
        units = directory.snapshot()
        header = {"export": {"generatedAt": now, "asOf": now, "count": len(units)}}
        return StreamingResponse(_export_body(units, header), media_type=NDJSON)

    @app.post(
        "/admin/units",
        tags=["admin"],
        response_model=UpsertAnswer,
        responses={201: {"model": UpsertAnswer, "description": "Created."}},
    )
    async def upsert_unit(unit: KivUnit) -> JSONResponse:
        """Create a record or merge the attributes given (null drops one); bumps modifyTimestamp.

        Answers 201 when the record is new, 200 when it was updated.
        """
        try:
            stored, created = directory.upsert(unit.model_dump(mode="json", exclude_unset=True))
        except InvalidIdentifierError as error:
            return JSONResponse({"error": str(error)}, status_code=422)
        answer = UpsertAnswer(unit=stored, created=created)
        return JSONResponse(answer.model_dump(mode="json"), status_code=201 if created else 200)

    @app.delete(
        "/admin/units/{hsa_id}",
        tags=["admin"],
        response_model=RemoveAnswer,
        responses={404: {"model": ErrorAnswer}},
    )
    async def remove_unit(hsa_id: str) -> Any:
        """Remove a record."""
        if not directory.remove(hsa_id):
            return JSONResponse({"error": "unit is not in KIV"}, status_code=404)
        return RemoveAnswer(removed=True)

    @app.post("/admin/reset", tags=["admin"], response_model=ResetAnswer)
    async def reset() -> ResetAnswer:
        """Back to the generated records."""
        directory.reset()
        return ResetAnswer(count=directory.count)

    return app


async def _export_body(units: list[KivRecord], header: dict[str, Any]) -> AsyncIterator[bytes]:
    """The header, chunks of about 500 lines (built in a worker thread), the trailer."""
    yield _line(header)
    for first in range(0, len(units), EXPORT_CHUNK_LINES):
        chunk = units[first : first + EXPORT_CHUNK_LINES]
        yield await asyncio.to_thread(_lines, chunk)
    yield _line({"end": {"count": len(units)}})


def _lines(units: list[KivRecord]) -> bytes:
    return b"".join(_line(unit) for unit in units)


def _line(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
