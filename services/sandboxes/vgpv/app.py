"""The VGPV sandbox's HTTP API: upload a file by name, read back files, receipts and the holding."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.types import Receive, Scope, Send

from services.sandboxes.faults import FaultAnswers, FaultMiddleware, Faults, FaultsChange
from services.sandboxes.server import BodyLimit
from services.sandboxes.vgpv.state import SandboxState
from shared.schedule import InvalidPeriodError, Period

FAULTED_PREFIXES = ("/filer",)
"""The register's routes, the only ones faults apply to (never the admin routes, the OpenAPI)."""
FAULT_ANSWERS = FaultAnswers(
    content_type="application/json",
    body=lambda kod, orsak: json.dumps({"kod": kod, "orsak": orsak}, ensure_ascii=False).encode(),
    maintenance=("UNDERHALL", "VGPV är stängt för underhåll"),
    forbidden=("BEHORIGHET", "klientcertifikatet saknar behörighet till VGPV"),
    throttled=("STRYPT", "för många anrop; försök igen om {seconds} s"),
    error=("INTERNT", "internt fel i VGPV (fel injicerat)"),
)
MAX_FILE_BYTES = 64 * 1024 * 1024
NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"
FileName = Annotated[str, Path(pattern=NAME, description="The file's name (its header's).")]


def _too_large(size: int | None) -> bytes:
    how_big = f"{size} byte" if size is not None else f"över {MAX_FILE_BYTES} byte"
    return FAULT_ANSWERS.body("STORLEK", f"filen är {how_big}; VGPV tar högst {MAX_FILE_BYTES}")


class ClockChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    now: AwareDatetime | None = Field(
        description="The register's time from now on (it ticks on from it); null: the real time."
    )


class ClockAnswer(BaseModel):
    now: AwareDatetime
    offset_s: float


class VgpvSandboxApi(FastAPI):
    """FastAPI behind the fault layer (outermost, so it holds uvicorn's raw `send`)."""

    sandbox: SandboxState

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def inner(scope: Scope, receive: Receive, send: Send) -> None:
            await FastAPI.__call__(self, scope, receive, send)

        limited = BodyLimit(inner, MAX_FILE_BYTES, FAULT_ANSWERS.content_type, _too_large)
        faulted = FaultMiddleware(limited, self.sandbox.faults, FAULTED_PREFIXES, FAULT_ANSWERS)
        await faulted(scope, receive, send)


def create_app(state: SandboxState) -> VgpvSandboxApi:
    app = VgpvSandboxApi(
        title="VGPV sandbox",
        version="1",
        summary="VG Primärvård's and Vårdval Rehab's monthly visit file (docs/vgpv-file.md).",
    )
    app.sandbox = state
    store = state.store

    @app.put("/filer/{filnamn}", tags=["register"], response_model=None)
    async def upload(filnamn: FileName, request: Request) -> JSONResponse:
        """Upload a file: 200 with the receipt (every row's verdict) when read, 422 with the
        receipt when refused whole, 409 with the stored receipt for a name already received."""
        status, answer = state.receive(filnamn, await request.body())
        return JSONResponse(answer, status_code=status)

    @app.get("/filer/{filnamn}/kvitto", tags=["register"], response_model=None)
    async def receipt(filnamn: FileName) -> JSONResponse:
        """The receipt of a file received (404: the register has no file by that name)."""
        known = store.get(filnamn)
        if known is None:
            return _unknown(filnamn)
        return JSONResponse(known.receipt)

    @app.get("/filer/{filnamn}", tags=["register"], response_model=None)
    async def content(filnamn: FileName) -> Response:
        """The file as it was uploaded."""
        known = store.get(filnamn)
        if known is None:
            return _unknown(filnamn)
        return Response(known.content, media_type="text/plain")

    @app.get("/filer", tags=["register"])
    async def files() -> list[dict[str, Any]]:
        """Every file received, in order: name, status and uploads of the name."""
        uploads = store.uploads()
        return [
            {
                "filnamn": name,
                "status": known.receipt["status"],
                "kvittoId": known.receipt["kvittoId"],
                "uppladdningar": uploads.get(name, 0),
            }
            for name in store.names()
            if (known := store.get(name)) is not None
        ]

    @app.get("/innehav", tags=["register"], response_model=None)
    async def holding(
        enhet: Annotated[str | None, Query(description="A unit's HSA-id.")] = None,
        period: Annotated[str | None, Query(description="YYYY-MM.")] = None,
    ) -> JSONResponse:
        """The rows the register holds per unit and month (the latest file, later months'
        corrections, cancellations and late rows applied; `fil` null for a month of late rows
        only)."""
        try:
            month = Period.parse(period) if period is not None else None
        except InvalidPeriodError as error:
            return JSONResponse({"kod": "PERIOD", "orsak": str(error)}, status_code=400)
        return JSONResponse(store.holding(enhet, month))

    _admin_routes(app, state)
    return app


def _admin_routes(app: FastAPI, state: SandboxState) -> None:
    @app.get("/admin/uploads", tags=["admin"])
    async def uploads() -> dict[str, int]:
        """Uploads per file name, duplicates included (a name twice: delivered twice)."""
        return state.store.uploads()

    @app.post("/admin/faults", tags=["admin"], response_model=Faults)
    async def set_faults(change: FaultsChange) -> Faults:
        """Change the faults given; the others keep their value (null switches one off)."""
        return state.faults.change(change)

    @app.get("/admin/faults", tags=["admin"], response_model=Faults)
    async def get_faults() -> Faults:
        return state.faults.faults

    @app.post("/admin/clock", tags=["admin"], response_model=ClockAnswer)
    async def set_clock(change: ClockChange) -> ClockAnswer:
        """Move the register's clock (into a window, past its close) or back to the real time."""
        now = state.clock.set(change.now)
        return ClockAnswer(now=now, offset_s=state.clock.offset.total_seconds())

    @app.get("/admin/clock", tags=["admin"], response_model=ClockAnswer)
    async def get_clock() -> ClockAnswer:
        return ClockAnswer(now=state.clock(), offset_s=state.clock.offset.total_seconds())

    @app.post("/admin/reset", tags=["admin"], status_code=204)
    async def reset() -> Response:
        """No files, no uploads, no faults, the real time."""
        state.reset()
        return Response(status_code=204)


def _unknown(name: str) -> JSONResponse:
    return JSONResponse({"kod": "OKAND", "orsak": f"no file {name}"}, status_code=404)
