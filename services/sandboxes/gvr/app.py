"""The GVR sandbox's HTTP API: create, correct, cancel and look up per resource, admin routes."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import FastAPI, Path, Request
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from services.sandboxes.faults import FaultAnswers, FaultMiddleware
from services.sandboxes.gvr import admin
from services.sandboxes.gvr.checks import Checker
from services.sandboxes.gvr.openapi30 import OPENAPI_VERSION, add_schemas, to_openapi_30
from services.sandboxes.gvr.schema import HSA_PATTERN, Fel, FelKod, FelSvar, Kvitto, Traffar
from services.sandboxes.gvr.state import SandboxState
from services.sandboxes.gvr.store import Outcome, Result, Status, StoredRecord
from services.sandboxes.gvr.validation import RESOURCES, RecordKey, Resource
from services.sandboxes.server import BodyLimit

FAULTED_PREFIXES = ("/vardhandelse", "/tillganglighet")
"""The register's routes, the only ones faults apply to (never the admin routes, the OpenAPI)."""
FAULT_ANSWERS = FaultAnswers(
    content_type="application/json",
    body=lambda kod, meddelande: json.dumps(
        {"fel": [{"falt": "", "kod": kod, "meddelande": meddelande}]}, ensure_ascii=False
    ).encode(),
    maintenance=(FelKod.UNDERHALL.value, "GVR är stängt för underhåll"),
    forbidden=(FelKod.BEHORIGHET.value, "klientcertifikatet saknar behörighet till GVR"),
    throttled=(FelKod.STRYPT.value, "för många anrop; försök igen om {seconds} s"),
    error=(FelKod.INTERNT.value, "internt fel i GVR (fel injicerat)"),
)
MAX_REQUEST_BYTES = 1024 * 1024
"""The largest request body the sandbox takes (1 MiB): 413 with `GVR-FORMAT` above it."""


def _too_large(size: int | None) -> bytes:
    how_big = f"{size} byte" if size is not None else f"större än {MAX_REQUEST_BYTES} byte"
    text = f"anropet är {how_big}; GVR tar emot högst {MAX_REQUEST_BYTES} byte"
    return FAULT_ANSWERS.body(FelKod.FORMAT.value, text)


_KOMBIKA_QUERY = ("enhet.inr", "enhet.klin", "enhet.avd")
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait (503: when the end is known).",
        "schema": {"type": "integer"},
    }
}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": FelSvar, "description": "Validation: every failing field."},
    403: {"model": FelSvar, "description": "The client certificate has no permission."},
    429: {"model": FelSvar, "description": "Throttled.", "headers": _RETRY_AFTER},
    500: {"model": FelSvar, "description": "Transient internal error."},
    503: {"model": FelSvar, "description": "Maintenance window.", "headers": _RETRY_AFTER},
}


class GvrSandboxApi(FastAPI):
    """FastAPI behind the fault layer (outermost, so it holds uvicorn's raw `send`)."""

    sandbox: SandboxState

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def inner(scope: Scope, receive: Receive, send: Send) -> None:
            await FastAPI.__call__(self, scope, receive, send)

        limited = BodyLimit(inner, MAX_REQUEST_BYTES, FAULT_ANSWERS.content_type, _too_large)
        faulted = FaultMiddleware(limited, self.sandbox.faults, FAULTED_PREFIXES, FAULT_ANSWERS)
        await faulted(scope, receive, send)

    def openapi(self) -> dict[str, Any]:
        """OpenAPI 3.0.3 (GVR documents its API in 3.0), with the request bodies' schemas."""
        if self.openapi_schema is None:
            document = super().openapi()
            for path, operations in document["paths"].items():
                if path.startswith(FAULTED_PREFIXES):  # 400 with `fel`, never FastAPI's 422
                    for operation in operations.values():
                        operation["responses"].pop("422", None)
            add_schemas(document, [resource.model for resource in RESOURCES])
            self.openapi_schema = to_openapi_30(document)
        return self.openapi_schema


def create_app(state: SandboxState) -> GvrSandboxApi:
    app = GvrSandboxApi(
        title="GVR sandbox",
        version="1",
        summary="Gemensamt vårdregister as regbridge's sandbox defines it (docs/gvr-api.md).",
    )
    app.openapi_version = OPENAPI_VERSION
    app.sandbox = state
    for resource in RESOURCES:
        _add_resource(app, state, resource)
    admin.add_routes(app, state)
    return app


def fel(status: int, *errors: Fel, record_id: str | None = None) -> JSONResponse:
    body = FelSvar(fel=list(errors), id=record_id).model_dump(mode="json", exclude_none=True)
    return JSONResponse(body, status_code=status)


def _one(status: int, kod: FelKod, meddelande: str, falt: str = "") -> JSONResponse:
    return fel(status, Fel(falt=falt, kod=kod, meddelande=meddelande))


def _kvitto(status: int, record: StoredRecord) -> JSONResponse:
    body = Kvitto(id=record.id, status=record.status.value)
    return JSONResponse(body.model_dump(), status_code=status)


def _refused(result: Result, record_id: str) -> JSONResponse:
    """The 404 or 409 of a store operation that was not done."""
    holder = result.record
    if result.outcome is Outcome.UNKNOWN:
        return _one(404, FelKod.OKANT_ID, f"ingen registrering med id {record_id}", "id")
    if result.outcome is Outcome.CANCELLED:
        return _one(409, FelKod.MAKULERAD, f"{record_id} är makulerad", "id")
    message = f"det finns redan en registrering {holder.id if holder else '?'} med samma nyckel "
    if holder is not None and holder.key.source is not None:
        message += "(patient, datum, kombika, källsystem, käll-id)"
    else:
        message += "(patient, datum, tid, kombika)"
    return fel(
        409,
        Fel(falt="", kod=FelKod.DUBBLETT, meddelande=message),
        record_id=holder.id if holder else None,
    )


async def _body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _NOT_JSON


_NOT_JSON = object()


def _query_doc(required: list[str], optional: list[str]) -> dict[str, Any]:
    return {
        "parameters": [
            {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": {"type": "string"},
            }
            for name in (*required, *optional)
        ]
    }


def _add_resource(app: FastAPI, state: SandboxState, resource: Resource) -> None:
    name, path = resource.name, resource.path
    schema_ref = {"$ref": f"#/components/schemas/{resource.model.__name__}"}
    body_doc = {
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema_ref}}}
    }

    async def checked_body(request: Request) -> tuple[RecordKey, dict[str, Any]] | JSONResponse:
        """The record's key and body, or the 400 that lists what is wrong with it."""
        body = await _body(request)
        if body is _NOT_JSON:
            return _one(400, FelKod.FORMAT, "kroppen är inte giltig JSON (UTF-8)")
        checked = resource.validate(body, state.registry)
        if checked.errors or checked.key is None or not isinstance(body, dict):
            return fel(400, *checked.errors)
        return checked.key, body

    @app.post(
        path,
        tags=[name],
        status_code=201,
        response_model=Kvitto,
        responses={409: {"model": FelSvar, "description": "Same key exists."}, **_ERRORS},
        openapi_extra=body_doc,
        summary=f"Create ({name})",
        operation_id=f"create_{name}",
    )
    async def create(request: Request) -> JSONResponse:
        valid = await checked_body(request)
        if isinstance(valid, JSONResponse):
            return valid
        key, body = valid
        result = state.store.create(name, key, body)
        if result.outcome is not Outcome.DONE or result.record is None:
            return _refused(result, "")
        return _kvitto(201, result.record)

    @app.put(
        f"{path}/{{id}}",
        tags=[name],
        response_model=Kvitto,
        responses={
            404: {"model": FelSvar, "description": "Unknown id."},
            409: {"model": FelSvar, "description": "Makulerad, or the new key is taken."},
            **_ERRORS,
        },
        openapi_extra=body_doc,
        summary=f"Correct ({name}): the whole record again",
        operation_id=f"correct_{name}",
    )
    async def correct(
        record_id: Annotated[str, Path(alias="id", description='"GVR-" + 7 digits.')],
        request: Request,
    ) -> JSONResponse:
        existing = state.store.get(name, record_id)
        if existing is None:
            return _refused(Result(Outcome.UNKNOWN), record_id)
        if existing.status is Status.MAKULERAD:  # the record's state first, then the body
            return _refused(Result(Outcome.CANCELLED, existing), record_id)
        valid = await checked_body(request)
        if isinstance(valid, JSONResponse):
            return valid
        key, body = valid
        result = state.store.correct(name, record_id, key, body)
        if result.outcome is not Outcome.DONE or result.record is None:
            return _refused(result, record_id)
        return _kvitto(200, result.record)

    @app.delete(
        path,
        tags=[name],
        response_model=Kvitto,
        responses={
            404: {"model": FelSvar, "description": "Unknown id."},
            409: {"model": FelSvar, "description": "Already makulerad."},
            **_ERRORS,
        },
        openapi_extra=_query_doc(["id", "patientId", *_KOMBIKA_QUERY], []),
        summary=f"Cancel ({name}): marked MAKULERAD, still readable",
        operation_id=f"cancel_{name}",
    )
    async def cancel(request: Request) -> JSONResponse:
        query = dict(request.query_params)
        found: list[Fel] = []
        checker = Checker(found, query)
        record_id = checker.text("id")
        patient_id, kombika = _query_key(checker, ["id"])
        if found or record_id is None:
            return fel(400, *found)
        record = state.store.get(name, record_id)
        if record is None:
            return _refused(Result(Outcome.UNKNOWN), record_id)
        if (record.key.patient_id, record.key.kombika) != (patient_id, kombika):
            message = f"{record_id} gäller inte denna patient och enhet"
            return _one(400, FelKod.MATCHAR_EJ, message, "id")
        result = state.store.cancel(name, record_id)
        if result.outcome is not Outcome.DONE or result.record is None:
            return _refused(result, record_id)
        return _kvitto(200, result.record)

    time_field = [resource.time_field] if resource.time_field else []

    @app.get(
        path,
        tags=[name],
        response_model=Traffar,
        responses=_ERRORS,
        openapi_extra=_query_doc(["patientId", *_KOMBIKA_QUERY, resource.date_field], time_field),
        summary=f"Look up ({name}) by key; without the time, every record of the day",
        operation_id=f"lookup_{name}",
    )
    async def lookup(request: Request) -> JSONResponse:
        found: list[Fel] = []
        checker = Checker(found, dict(request.query_params))
        patient_id, kombika = _query_key(checker, [resource.date_field])
        day = checker.day(resource.date_field)
        time = checker.clock(resource.time_field) if resource.time_field else None
        if found or patient_id is None or kombika is None or day is None:
            return fel(400, *found)
        hits = state.store.find(name, patient_id, kombika, day.isoformat(), time)
        return JSONResponse(Traffar(traffar=hits).model_dump(mode="json"))


def _query_key(checker: Checker, also_required: list[str]) -> tuple[str | None, str | None]:
    """patientId and the unit (enhet.inr + enhet.klin + enhet.avd, or enhet.hsaId) from query
    parameters."""
    if checker.data.get("enhet.hsaId"):
        for name in ("patientId", *also_required):
            if not checker.data.get(name):
                checker.data.pop(name, None)
                checker.fail(name, FelKod.SAKNAS, "obligatorisk parameter saknas")
        patient = checker.text("patientId", r"[0-9]{12}", "måste vara 12 siffror utan skiljetecken")
        return patient, checker.text("enhet.hsaId", HSA_PATTERN[1:-1], "inte ett HSA-id")
    for name in ("patientId", *_KOMBIKA_QUERY, *also_required):
        if not checker.data.get(name):
            checker.data.pop(name, None)
            checker.fail(name, FelKod.SAKNAS, "obligatorisk parameter saknas")
    patient_id = checker.text("patientId", r"[0-9]{12}", "måste vara 12 siffror utan skiljetecken")
    parts = [
        checker.text("enhet.inr", r"[0-9]{5}", "inrättning måste vara 5 siffror"),
        checker.text("enhet.klin", r"[0-9]{3}", "klinik måste vara 3 siffror"),
        checker.text("enhet.avd", r"[A-Za-z0-9]{1,3}", "avdelning måste vara 1–3 tecken"),  # noqa: RUF001
    ]
    kombika = "".join(part for part in parts if part) if all(parts) else None
    return patient_id, kombika
