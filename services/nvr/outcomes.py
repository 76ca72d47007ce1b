"""NVR's answers read: a batch-response per entry, and OperationOutcomes as precise reasons.

A `batch-response` has one entry per request entry, in the same order (docs/nvr-api.md); each
carries ``response.status`` ("201 Created"), ``response.location``
(``Immunization/<id>/_history/<version>``) on success and ``response.outcome`` (an
OperationOutcome) on failure. A reason names, per issue, the field (``expression``), the rule
(``details.coding[0].code``) and the text for a person (``details.text``, else
``diagnostics``):

    Immunization.lotNumber [batch-not-for-vaccine]: batch LR4567 is not a batch of vaccine …

Identity numbers are masked in every reason, whatever the register sends.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from shared.identifiers import mask_personal_ids

_STATUS = re.compile(r"\s*([1-5][0-9]{2})\b")
_TEXT_LIMIT = 300


class MalformedResponseError(ValueError):
    """The answer is not the FHIR document it should be (not JSON, not a batch-response …)."""


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome issue."""

    severity: str
    code: str
    expression: tuple[str, ...] = ()
    rule: str | None = None
    text: str | None = None

    def describe(self) -> str:
        where = ", ".join(self.expression)
        rule = f"[{self.rule}]" if self.rule else f"[{self.code}]" if self.code else ""
        head = " ".join(part for part in (where, rule) if part)
        text = self.text or "(no text)"
        return mask_personal_ids(f"{head}: {text}" if head else text)


@dataclass(frozen=True)
class EntryResponse:
    """One entry of a batch-response."""

    status: int
    location: str | None = None
    issues: tuple[Issue, ...] = ()

    @property
    def ok(self) -> bool:
        return 200 <= self.status <= 299

    @property
    def id(self) -> str | None:
        """NVR's id of the record, from ``location`` (``Immunization/<id>/_history/<v>``)."""
        return resource_id(self.location) if self.location else None

    @property
    def reason(self) -> str:
        return describe(self.issues)


def parse_batch_response(body: bytes | str) -> list[EntryResponse]:
    """Every entry of a ``batch-response`` Bundle, in order; MalformedResponseError otherwise."""
    document = _json(body)
    if document.get("resourceType") != "Bundle" or document.get("type") not in (
        "batch-response",
        "transaction-response",
    ):
        raise MalformedResponseError("not a batch-response Bundle")
    entries = document.get("entry", [])
    if not isinstance(entries, list):
        raise MalformedResponseError('"entry" is not a list')
    return [_entry(position, entry) for position, entry in enumerate(entries)]


def parse_outcome(outcome: object) -> tuple[Issue, ...]:
    """The issues of an OperationOutcome (a dict, or JSON text/bytes); () if it is none."""
    if isinstance(outcome, bytes | str):
        try:
            outcome = _json(outcome)
        except MalformedResponseError:
            return ()
    if not isinstance(outcome, dict) or outcome.get("resourceType") != "OperationOutcome":
        return ()
    issues = outcome.get("issue")
    if not isinstance(issues, list):
        return ()
    return tuple(_issue(raw) for raw in issues if isinstance(raw, dict))


def describe(issues: tuple[Issue, ...]) -> str:
    """The reason in one line: the errors (fatal/error) if there are any, else every issue."""
    errors = tuple(i for i in issues if i.severity in ("fatal", "error")) or issues
    return "; ".join(issue.describe() for issue in errors) or "(no OperationOutcome)"


def resource_id(location: str) -> str | None:
    """``<id>`` of ``[base/]Immunization/<id>[/_history/<v>]``; None when there is none."""
    parts = [part for part in location.split("?")[0].split("/") if part]
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return parts[-1] if len(parts) >= 2 else None


def parse_status(value: object) -> int:
    """201 from "201 Created" (or "201"); MalformedResponseError otherwise."""
    match = _STATUS.match(value) if isinstance(value, str) else None
    if match is None:
        raise MalformedResponseError(f"entry status {str(value)[:40]!r} is not an HTTP status")
    return int(match.group(1))


def _entry(position: int, entry: object) -> EntryResponse:
    response = entry.get("response") if isinstance(entry, dict) else None
    if not isinstance(response, dict):
        raise MalformedResponseError(f"entry {position} has no response")
    location = response.get("location")
    return EntryResponse(
        status=parse_status(response.get("status")),
        location=location if isinstance(location, str) and location else None,
        issues=parse_outcome(response.get("outcome")),
    )


def _issue(raw: dict[str, Any]) -> Issue:
    details = raw.get("details")
    details = details if isinstance(details, dict) else {}
    codings = details.get("coding")
    first = codings[0] if isinstance(codings, list) and codings else None
    rule = first.get("code") if isinstance(first, dict) else None
    text = details.get("text") or raw.get("diagnostics")
    expression = raw.get("expression") or raw.get("location") or ()
    return Issue(
        severity=str(raw.get("severity", "")),
        code=str(raw.get("code", "")),
        expression=tuple(str(e) for e in expression) if isinstance(expression, list) else (),
        rule=rule if isinstance(rule, str) else None,
        text=" ".join(str(text).split())[:_TEXT_LIMIT] if text else None,
    )


def _json(body: bytes | str) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedResponseError(f"not JSON ({type(exc).__name__})") from None
    if not isinstance(document, dict):
        raise MalformedResponseError("not a JSON object")
    return document
