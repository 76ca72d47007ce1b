"""The code-server sandbox's HTTP API: the MEK file, and admin routes that change it."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from services.sandboxes.codeserver.mek import CodeServerFile

XML = "application/xml"


class MappingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kombika: str = Field(description="5 + 3 digits + 1–3 alphanumerics, e.g. 19108011M04.")  # noqa: RUF001
    hsa_id: str = Field(description="HSA-id of the unit, e.g. SE2321000016-14L1.")
    from_date: date = Field(description="First valid day.")
    till_date: date | None = Field(default=None, description="Last valid day; null: open.")


class FileAnswer(BaseModel):
    file_id: int = Field(description="MEKFilId of the file now.")
    rows: int = Field(description="Rows (mappningar) in the file now.")


class RemoveAnswer(BaseModel):
    removed: int


class ErrorAnswer(BaseModel):
    error: str


class CodeServerApi(FastAPI):
    """FastAPI with the file it serves at hand."""

    file: CodeServerFile


def create_app(file: CodeServerFile) -> CodeServerApi:
    """The code-server sandbox over `file`."""
    app = CodeServerApi(
        title="Code-server sandbox",
        version="1",
        summary="Region Stockholm's MEK file (kombika ↔ HSA-id), generated from the HSA sandbox.",
    )
    app.file = file

    @app.get(
        "/mek.xml",
        tags=["file"],
        response_class=Response,
        responses={200: {"content": {XML: {}}, "description": "The whole MEK file."}},
    )
    async def mek_file() -> Response:
        """Every mapping as the code server exports it: ``mappningar`` (MEKFilId, ExportDatum now)
        of ``mappning`` rows: Kombikakod, HSAId, FromDatum, TillDatum (absent: open), SkapadDatum.
        """
        return Response(file.xml(), media_type=XML)

    @app.post(
        "/admin/mappings",
        tags=["admin"],
        status_code=201,
        response_model=FileAnswer,
        responses={422: {"model": ErrorAnswer}},
    )
    async def add_mapping(request: MappingRequest) -> Any:
        """Add a mapping (SkapadDatum now); 422 for a malformed kombika or HSA-id."""
        try:
            file.add(request.kombika, request.hsa_id, request.from_date, request.till_date)
        except ValueError as error:
            return JSONResponse({"error": str(error)}, status_code=422)
        return _file_answer(file)

    @app.delete(
        "/admin/mappings/{kombika}",
        tags=["admin"],
        response_model=RemoveAnswer,
        responses={404: {"model": ErrorAnswer}},
    )
    async def remove_mapping(kombika: str) -> Any:
        """Drop every row of this kombika."""
        removed = file.remove(kombika)
        if not removed:
            return JSONResponse({"error": "kombika is not in the file"}, status_code=404)
        return RemoveAnswer(removed=removed)

    @app.post("/admin/reset", tags=["admin"], response_model=FileAnswer)
    async def reset() -> FileAnswer:
        """Back to the generated rows (MEKFilId keeps growing)."""
        file.reset()
        return _file_answer(file)

    return app


def _file_answer(file: CodeServerFile) -> FileAnswer:
    rows = file.rows()  # file_id read after: never older than the rows counted
    return FileAnswer(file_id=file.file_id, rows=len(rows))
