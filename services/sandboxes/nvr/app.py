"""The NVR sandbox's HTTP API: token, report/change bundles, Immunization by id, vaccine list."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from services.nvr.rules import CAREGIVER_NOT_ALLOWED, F_CAREGIVER, unknown_record, violation
from services.sandboxes.faults import FaultAnswers, FaultMiddleware
from services.sandboxes.nvr import admin
from services.sandboxes.nvr.auth import OAuthClient
from services.sandboxes.nvr.batch import checked_immunization, process_bundle, submit
from services.sandboxes.nvr.fhir import (
    FHIR_JSON,
    FhirResponse,
    answer,
    json_body,
    outcome,
    unauthorized,
    violations_outcome,
)
from services.sandboxes.nvr.state import NvrState
from services.sandboxes.nvr.store import StoredImmunization
from services.sandboxes.server import BodyLimit

_FHIR_BODY = {
    "requestBody": {
        "required": True,
        "content": {FHIR_JSON: {"schema": {"type": "object"}}},
        "description": "FHIR R4 JSON as docs/nvr-api.md describes it.",
    }
}
_FAULTS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Bearer token missing, unknown, expired or revoked."},
    429: {"description": "Throttled (fault injection); Retry-After."},
    500: {"description": "Internal error (fault injection)."},
    503: {"description": "Maintenance (fault injection); Retry-After when its end is known."},
}
FAULT_ANSWERS = FaultAnswers(
    content_type=FHIR_JSON,
    body=lambda code, text: json.dumps(outcome(code, text)).encode(),
    maintenance=("transient", "NVR is closed for maintenance"),
    forbidden=("forbidden", "the client has no permission for NVR"),
    throttled=("throttled", "too many calls; retry in {seconds} s"),
    error=("exception", "internal error in NVR (injected)"),
)
"""The faults' OperationOutcomes (faults apply to the FHIR base and the vaccine list only)."""
MAX_REQUEST_BYTES = 5 * 1024 * 1024
"""The largest request body the sandbox takes (5 MiB): 413 with a `too-long` outcome above it."""


def _too_large(size: int | None) -> bytes:
    how_big = f"{size} bytes" if size is not None else f"over {MAX_REQUEST_BYTES} bytes"
    text = f"request body is {how_big}; NVR accepts at most {MAX_REQUEST_BYTES}"
    return json.dumps(outcome("too-long", text)).encode()


_ID = Annotated[str, Path(alias="id", description="The id the register gave (nvr-…).")]


class NvrSandboxApi(FastAPI):
    """FastAPI behind the fault layer (outermost, so it holds uvicorn's raw `send`)."""

    sandbox: NvrState

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def inner(scope: Scope, receive: Receive, send: Send) -> None:
            await FastAPI.__call__(self, scope, receive, send)

        profile = self.sandbox.profile
        prefixes = (profile.fhir_path, profile.vaccines_path)
        limited = BodyLimit(inner, MAX_REQUEST_BYTES, FHIR_JSON, _too_large)
        faulted = FaultMiddleware(limited, self.sandbox.faults, prefixes, FAULT_ANSWERS)
        await faulted(scope, receive, send)


def create_app(state: NvrState) -> NvrSandboxApi:
    app = NvrSandboxApi(
        title="NVR sandbox",
        version="1",
        summary="Nationella vaccinationsregistret as regbridge's sandbox defines it "
        "(docs/nvr-api.md).",
    )
    app.sandbox = state
    _add_token_route(app, state)
    _add_fhir_routes(app, state)
    admin.add_routes(app, state)

    @app.get("/health", tags=["admin"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _add_token_route(app: FastAPI, state: NvrState) -> None:
    @app.post(
        state.profile.token_path,
        tags=["oauth2"],
        summary="OAuth2 client credentials: a bearer token",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "grant_type": {"type": "string", "enum": ["client_credentials"]},
                                "client_id": {"type": "string"},
                                "client_secret": {"type": "string"},
                            },
                            "required": ["grant_type"],
                        }
                    }
                },
            }
        },
    )
    async def token(request: Request) -> JSONResponse:
        issued = state.tokens.token(await request.body(), request.headers.get("authorization"))
        headers = {"Cache-Control": "no-store"}
        if issued.status == 401:
            headers["WWW-Authenticate"] = "Basic"
        return JSONResponse(issued.body, status_code=issued.status, headers=headers)


def _add_fhir_routes(app: FastAPI, state: NvrState) -> None:
    profile = state.profile
    base = profile.fhir_path
    one = f"{base}/Immunization/{{id}}"

    def client_of(request: Request) -> OAuthClient | None:
        return state.tokens.client_of(request.headers.get("authorization"))

    @app.post(base, tags=["fhir"], responses=_FAULTS, openapi_extra=_FHIR_BODY)
    async def report(request: Request) -> Response:
        """Report or change up to `max_bundle_entries` Immunizations: a batch Bundle."""
        client = client_of(request)
        if client is None:
            return unauthorized()
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        return process_bundle(state, client, body)

    @app.put(one, tags=["fhir"], responses=_FAULTS, openapi_extra=_FHIR_BODY)
    async def change(record_id: _ID, request: Request) -> Response:
        """Change one reported Immunization (the whole resource again, with its id)."""
        client = client_of(request)
        if client is None:
            return unauthorized()
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        imm = checked_immunization(body)
        if isinstance(imm, Response):
            return imm
        if imm.immunization.id != record_id:
            text = f"the resource's id must be {record_id}, as in the URL"
            return answer(400, "invalid", text, "Immunization.id")
        result = submit(state, state.rule_context(client), imm, body, record_id)
        if result.record is None:
            return FhirResponse(result.outcome, status_code=result.status)
        return _resource(result.record, Location=result.record.location)

    @app.delete(one, tags=["fhir"], status_code=204, responses=_FAULTS)
    async def delete(record_id: _ID, request: Request) -> Response:
        """Delete one reported Immunization; deleting it again answers 204 again."""
        client = client_of(request)
        if client is None:
            return unauthorized()
        record = state.store.get(record_id)
        if record is None:
            return FhirResponse(violations_outcome([unknown_record(record_id)]), status_code=404)
        allowed = client.allowed_caregivers
        if allowed is not None and record.caregiver_org_number not in allowed:
            text = (
                f"these credentials may not delete for care provider {record.caregiver_org_number}"
            )
            refused = violation(CAREGIVER_NOT_ALLOWED, F_CAREGIVER, text, 403)
            return FhirResponse(violations_outcome([refused]), status_code=403)
        state.store.delete(record_id)
        return Response(status_code=204)

    @app.get(one, tags=["fhir"], responses=_FAULTS)
    async def read(record_id: _ID, request: Request) -> Response:
        """One Immunization as last reported: 410 when deleted, 404 when never held."""
        if client_of(request) is None:
            return unauthorized()
        record = state.store.get(record_id)
        if record is None:
            return FhirResponse(violations_outcome([unknown_record(record_id)]), status_code=404)
        if record.deleted:
            gone = unknown_record(record_id, "is deleted")
            return FhirResponse(violations_outcome([gone]), status_code=410)
        return _resource(record)

    @app.get(f"{base}/Immunization", tags=["fhir"], responses=_FAULTS)
    async def search(
        request: Request,
        identifier: Annotated[
            str | None, Query(description="<system>|<value> of the report identifier.")
        ] = None,
    ) -> Response:
        """The live Immunization holding a report identifier (0 or 1), as a searchset."""
        if client_of(request) is None:
            return unauthorized()
        system, bar, value = (identifier or "").partition("|")
        if not bar or not system or not value:
            text = "search by identifier=<system>|<value> (both parts required)"
            return answer(400, "invalid", text, "identifier")
        record = state.store.find(system, value)
        hits = [] if record is None else [record]
        return FhirResponse(
            {
                "resourceType": "Bundle",
                "type": "searchset",
                "total": len(hits),
                "entry": [
                    {
                        "fullUrl": f"{base}/Immunization/{hit.id}",
                        "resource": hit.resource,
                        "search": {"mode": "match"},
                    }
                    for hit in hits
                ],
            }
        )

    @app.get(profile.vaccines_path, tags=["vaccines"], responses=_FAULTS)
    async def vaccines(request: Request) -> Response:
        """The current vaccines and their batches: a collection Bundle of Medications."""
        if client_of(request) is None:
            return unauthorized()
        return FhirResponse(state.vaccines.as_bundle(profile))


def _resource(record: StoredImmunization, **headers: str) -> FhirResponse:
    return FhirResponse(record.resource, headers={"ETag": f'W/"{record.version}"'} | headers)
