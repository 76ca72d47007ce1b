"""FHIR on the wire for the NVR sandbox: reading a JSON body, OperationOutcomes, answers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from services.nvr.rules import RULE_SYSTEM, RuleViolation
from shared.identifiers import mask_personal_ids

FHIR_JSON = "application/fhir+json"
ACCEPTED_TYPES = frozenset({FHIR_JSON, "application/json"})
_ISSUE_CODES = {403: "forbidden", 404: "not-found", 409: "duplicate", 410: "deleted"}


class FhirResponse(Response):
    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def status_line(status: int) -> str:
    """``"201 Created"``, as a batch-response entry writes it."""
    phrase = "Unprocessable Entity" if status == 422 else HTTPStatus(status).phrase
    return f"{status} {phrase}"


def outcome(code: str, text: str, expression: str | None = None) -> dict[str, Any]:
    """An OperationOutcome of one error issue (the text masked for identity numbers)."""
    issue: dict[str, Any] = {
        "severity": "error",
        "code": code,
        "details": {"text": mask_personal_ids(text)},
    }
    if expression is not None:
        issue["expression"] = [expression]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def violations_outcome(violations: Sequence[RuleViolation]) -> dict[str, Any]:
    """One issue per violated rule: the rule as a coding, the field as the expression."""
    issues = [
        {
            "severity": "error",
            "code": _ISSUE_CODES.get(v.status, "business-rule"),
            "details": {"coding": [{"system": RULE_SYSTEM, "code": v.rule}], "text": v.text},
            "expression": [v.field],
        }
        for v in violations
    ]
    return {"resourceType": "OperationOutcome", "issue": issues}


def answer(
    status: int, code: str, text: str, expression: str | None = None, **headers: str
) -> FhirResponse:
    return FhirResponse(outcome(code, text, expression), status_code=status, headers=headers)


def unauthorized() -> FhirResponse:
    text = "a valid bearer token is required (missing, unknown, expired or revoked)"
    return answer(401, "login", text, **{"WWW-Authenticate": 'Bearer error="invalid_token"'})


async def json_body(request: Request) -> Any | FhirResponse:
    """The parsed body, or the 415 (content type) or 400 (not UTF-8, not JSON) to answer."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ACCEPTED_TYPES:
        text = f"content type must be {FHIR_JSON} or application/json, got {content_type!r}"
        return answer(415, "not-supported", text[:200])
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return answer(400, "invalid", f"the body is not UTF-8 (byte {error.start})")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        where = f"line {error.lineno} column {error.colno}"
        return answer(400, "invalid", f"the body is not valid JSON ({error.msg} at {where})")
