"""Events for GVR tests: an open and a closed unit's kombika, a visit, a waiting-list entry."""

from __future__ import annotations

import copy
import uuid
from datetime import date
from typing import Any

from services.sandboxes.hsa import HsaSandbox
from shared.contracts import CARE_CONTACT_EXAMPLES, CARE_WAIT_EXAMPLES

VISIT_DAY = date(2025, 3, 14)


def kombikas(hsa: HsaSandbox) -> tuple[str, str]:
    """An open unit's kombika valid on the visit day, and a closed unit's kombika."""
    open_code = closed_code = None
    for unit in hsa.directory.iter_units():
        codes = unit.get("kombika") or []
        if not codes or codes[-1]["validFrom"] > "20250314":
            continue
        if unit.get("hsaEndDate") and unit["hsaEndDate"] <= "20250101":
            closed_code = closed_code or codes[-1]["code"]
        elif not unit.get("hsaEndDate"):
            open_code = open_code or codes[-1]["code"]
    assert open_code, "the generated directory has no open unit with a kombika"
    assert closed_code, "the generated directory has no closed unit with a kombika"
    return open_code, closed_code


def visit(
    record_id: str, kombika: str, version: int = 1, op: str = "create", **changes: Any
) -> dict[str, Any]:
    event = copy.deepcopy(CARE_CONTACT_EXAMPLES["outpatient_visit"])
    event.update(
        event_id=str(uuid.uuid4()), record_id=record_id, record_version=version, operation=op
    )
    event["payload"].update(kombika=kombika, referring_kombika=kombika)
    event["payload"].pop("care_period_code", None)
    event["payload"].update(changes)
    return event


def wait_entry(
    record_id: str, kombika: str, version: int = 1, op: str = "create", **changes: Any
) -> dict[str, Any]:
    """A waiting-list entry at `kombika`: the contract's example, referred and not booked yet,
    with `changes` (None removes a field)."""
    event = copy.deepcopy(CARE_WAIT_EXAMPLES["waiting"])
    event.update(
        event_id=str(uuid.uuid4()), record_id=record_id, record_version=version, operation=op
    )
    payload = event["payload"]
    for field in ("booked_on", "booked_for"):
        payload.pop(field)
    payload.update(kombika=kombika, **changes)
    event["payload"] = {name: value for name, value in payload.items() if value is not None}
    return event
