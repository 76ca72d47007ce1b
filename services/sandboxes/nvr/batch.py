"""Report and change: one checked Immunization into the register, and the bundle of many."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.nvr.rules import RuleContext, RuleViolation, check
from services.sandboxes.nvr.auth import OAuthClient
from services.sandboxes.nvr.fhir import FhirResponse, answer, status_line, violations_outcome
from services.sandboxes.nvr.reading import (
    CheckedImmunization,
    StructureError,
    immunization,
    reported,
)
from services.sandboxes.nvr.state import NvrState
from services.sandboxes.nvr.store import StoredImmunization


@dataclass(frozen=True)
class Submitted:
    """What one report or change came to: the record stored, or why not (status, outcome)."""

    status: int
    record: StoredImmunization | None = None
    outcome: dict[str, Any] | None = None

    def entry(self) -> dict[str, Any]:
        """This result as a batch-response entry."""
        response: dict[str, Any] = {"status": status_line(self.status)}
        if self.record is not None:
            response["location"] = self.record.location
            response["etag"] = f'W/"{self.record.version}"'
            response["lastModified"] = self.record.last_updated
        if self.outcome is not None:
            response["outcome"] = self.outcome
        return {"response": response}


def submit(
    state: NvrState,
    context: RuleContext,
    imm: CheckedImmunization,
    resource: dict[str, Any],
    record_id: str | None = None,
) -> Submitted:
    """Report (`record_id` None) or change one Immunization that passed the structure check."""
    vaccination = reported(imm, state.profile)
    violations = check(vaccination, context)
    if violations:
        return _refused(violations)
    key = (str(vaccination.report_system), str(vaccination.report_value))
    org = vaccination.caregiver_org_number
    if record_id is None:
        stored = state.store.create(key, org, resource)
    else:
        stored = state.store.change(record_id, key, org, resource)
    if isinstance(stored, RuleViolation):
        return _refused([stored])
    return Submitted(201 if record_id is None else 200, stored)


def process_bundle(state: NvrState, client: OAuthClient, body: Any) -> FhirResponse:
    """``POST <fhir_path>``: whole-request 400/413, else the batch-response entry by entry."""
    profile = state.profile
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        return answer(400, "structure", "the body must be a FHIR Bundle")
    if body.get("type") != profile.bundle_type:
        text = f"Bundle.type must be {profile.bundle_type}, got {body.get('type')!r}"
        return answer(400, "structure", text[:200], "Bundle.type")
    entries = body.get("entry", [])
    if not isinstance(entries, list):
        return answer(400, "structure", "Bundle.entry must be a list", "Bundle.entry")
    if len(entries) > profile.max_bundle_entries:
        text = f"{len(entries)} entries; at most {profile.max_bundle_entries} per bundle"
        return answer(413, "too-costly", text, "Bundle.entry")
    checked: list[tuple[Any, CheckedImmunization, dict[str, Any]]] = []
    for index, entry in enumerate(entries):
        where = f"Bundle.entry[{index}]"
        if not isinstance(entry, dict):
            return answer(400, "structure", f"{where} must be an object", where)
        try:
            imm = immunization(entry.get("resource"))
        except StructureError as error:
            return answer(400, "structure", f"{where}.resource: {error}", f"{where}.resource")
        checked.append((entry.get("request"), imm, entry["resource"]))
    context = state.rule_context(client)
    if profile.bundle_type == "transaction":
        return _transaction(state, context, checked)
    results = [_entry(state, context, request, imm, res) for request, imm, res in checked]
    return FhirResponse(
        {
            "resourceType": "Bundle",
            "type": "batch-response",
            "entry": [result.entry() for result in results],
        }
    )


def _entry(
    state: NvrState,
    context: RuleContext,
    request: Any,
    imm: CheckedImmunization,
    resource: dict[str, Any],
) -> Submitted:
    method = request.get("method") if isinstance(request, dict) else None
    url = str(request.get("url") or "").lstrip("/") if isinstance(request, dict) else ""
    if method == "POST" and url == "Immunization":
        return submit(state, context, imm, resource)
    if method == "PUT" and url.startswith("Immunization/") and len(url) > len("Immunization/"):
        record_id = url.removeprefix("Immunization/")
        if imm.immunization.id != record_id:
            text = f"the resource's id must be {record_id}, as in request.url"
            return Submitted(400, outcome=_invalid(text, "Immunization.id"))
        return submit(state, context, imm, resource, record_id)
    text = "request must be POST Immunization or PUT Immunization/<id> (delete is single)"
    return Submitted(400, outcome=_invalid(text, "Bundle.entry.request"))


def _transaction(
    state: NvrState,
    context: RuleContext,
    checked: list[tuple[Any, CheckedImmunization, dict[str, Any]]],
) -> FhirResponse:
    """All or nothing as far as the rules go (store conflicts are not rolled back)."""
    for index, (_request, imm, _resource) in enumerate(checked):
        violations = check(reported(imm, state.profile), context)
        if violations:
            outcome = violations_outcome(violations)
            for issue in outcome["issue"]:
                issue["details"]["text"] = f"Bundle.entry[{index}]: {issue['details']['text']}"
            return FhirResponse(outcome, status_code=violations[0].status)
    results = [_entry(state, context, request, imm, res) for request, imm, res in checked]
    return FhirResponse(
        {
            "resourceType": "Bundle",
            "type": "transaction-response",
            "entry": [result.entry() for result in results],
        }
    )


def _refused(violations: list[RuleViolation]) -> Submitted:
    return Submitted(violations[0].status, outcome=violations_outcome(violations))


def _invalid(text: str, expression: str) -> dict[str, Any]:
    issue = {"severity": "error", "code": "invalid", "details": {"text": text}}
    return {"resourceType": "OperationOutcome", "issue": [issue | {"expression": [expression]}]}


def checked_immunization(resource: Any) -> CheckedImmunization | FhirResponse:
    """A single PUT's body as an Immunization, or its 400."""
    try:
        return immunization(resource)
    except StructureError as error:
        return answer(400, "structure", str(error), "Immunization")
