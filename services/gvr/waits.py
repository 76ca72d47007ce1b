"""Waiting-list entries (care.wait) → GVR's availability service: a booking's record. Pure.

A `care.wait` event carries the entry's whole state; GVR holds a **booking record**
(`tillganglighet`, the same resource as the care contacts' `availability` kind) for as long as
the entry is booked. So the call follows the entry's state and the ledger's reference (GVR's id
of the entry's record), not the envelope's operation:

    the entry now                          reference      call
    booked (booked_on set), not removed,   none           POST   /tillganglighet
    not cancelled (completed or not)       GVR's id       PUT    /tillganglighet/{id}  (whole)
    booking cleared, removed, or the       GVR's id       DELETE /tillganglighet?id=…&patientId=…
    event's operation is cancel                                  &enhet.…[&bokningsdatum=…]
    any of these                           none, or       nothing: NothingToSendError,
                                           withdrawn      skipped as `no_booking`

*Withdrawn*: after a DELETE the ledger keeps ``makulerad:<id>`` (`withdrawn`), since GVR refuses
a PUT of a makulerad record: the entry booked again is a new POST. A completed entry keeps its
booking record (the booking happened; completion is CVR's news, not GVR's availability data).
A correct event for an entry GVR never held is a POST, never a wait for a create that will not
come; the runtime's order per record still holds every later event behind an earlier one in
retry.

Field by field, care.wait → tillganglighet:

    source_system → kallsystem · record_id (the entry's id) → kallId
    payload.patient.id / id_type → patientId / patientIdTyp (as the care contacts')
    payload.kombika | unit_hsa_id → enhet ({inr, klin, avd} or {hsaId})
    (every wait) → kontaktkategori: `WaitCodes.contact_category`, OPPENVARD by default — a
      waiting-list entry waits for a visit, an examination, a treatment or an operation in
      specialised care; the contract does not say which are inpatient, so none is
    guarantee_applies → vardgaranti · booked_on → bokningsdatum (the key's date) ·
    referral_received → remissdatum · decided_on → beslutsdatum (when set)
    exceptions → undantagskod: the open period if there is one (the latest started), else the
      one that ended last (then the latest started; a tie of kinds goes to PVV); patient_chosen
      → `WaitCodes.patient_chosen` (PVV), medically_caused → `WaitCodes.medically_caused` (MOV)
    booked_for → not sent: GVR's appointment field (besokstid) is a time of day with its zone,
      and the entry knows only the day
    cvr_code, wait_kind, priority, completed_on, removed_on, removed_reason → not sent (CVR's)

Look-ups (after a crash, or a 409 on a POST): GET by patientId + enhet + bokningsdatum; a POST
expects a live record with our kallsystem + kallId, a PUT the whole body, a DELETE a makulerad
record with our id — and a DELETE whose entry has no booking day left cannot be looked up (GVR's
DELETE answers 409 for a record already makulerad, which the worker takes as done).
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from services.gvr.mapping import (
    CANCELLED,
    GvrCall,
    GvrRequest,
    common_fields,
    reporting_unit,
    unit_fields,
)
from shared.contracts import CareWaitEvent, Operation
from shared.contracts.care_wait import CareWait, WaitException
from shared.delivery.errors import NothingToSendError

RESOURCE = "tillganglighet"
RECORD_PREFIX = "care.wait:"
"""Before an entry's id in the worker's ledger and results: a care contact with the same id is
another record."""
NO_BOOKING = "no_booking"
"""The skip's reason: the entry has no booking now, and GVR holds no live record of it."""
WITHDRAWN = "makulerad:"
"""Before GVR's id in the ledger once the entry's booking record is makulerad."""


class WaitCodes(BaseModel):
    """GVR's codes for what a waiting-list entry implies (``REGBRIDGE_GVR_WAIT_CODES__…``):
    configuration, to follow the official specification."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    contact_category: str = Field(default="OPPENVARD", description="kontaktkategori of a wait")
    patient_chosen: str = Field(default="PVV", description="undantagskod: patient-chosen wait")
    medically_caused: str = Field(default="MOV", description="undantagskod: medically caused")


def ledger_id(record_id: str) -> str:
    """The entry's record id in the GVR worker's ledger and results."""
    return RECORD_PREFIX + record_id


def live(reference: str | None) -> str | None:
    """GVR's id of the entry's live booking record, if the ledger knows one."""
    if reference is None or reference.startswith(WITHDRAWN):
        return None
    return reference


def withdrawn(reference: str) -> str:
    """The ledger's reference once GVR's record `reference` is makulerad."""
    return reference if reference.startswith(WITHDRAWN) else WITHDRAWN + reference


def booking_call(
    event: CareWaitEvent, reference: str | None, path: str, codes: WaitCodes
) -> GvrCall:
    """The call that brings GVR's booking record in line with the entry (module docstring);
    NothingToSendError (`no_booking`) when there is none to make."""
    wait = event.payload
    current = live(reference)
    if _booked(event):
        body = booking_body(event, codes)
        create = GvrRequest(
            method="POST",
            path=path,
            json=body,
            resource=RESOURCE,
            key=_key(wait, body["bokningsdatum"]),
            operation="create",
        )
        source = {"kallsystem": body["kallsystem"], "kallId": body["kallId"]}
        if current is None:
            return GvrCall(create, _lookup(path, create, wait, source))
        correct = GvrRequest(
            method="PUT",
            path=f"{path}/{quote(current, safe='')}",
            json=body,
            resource=RESOURCE,
            key=create.key,
            operation="correct",
            reference=current,
        )
        return GvrCall(correct, _lookup(path, correct, wait, dict(body)))
    if current is None:
        raise NothingToSendError(
            f"waiting-list entry {event.record_id}: {_unbooked(event)}, and GVR holds no live "
            "booking record of it: nothing to send",
            reason=NO_BOOKING,
        )
    day = wait.booked_on.isoformat() if wait.booked_on else None
    where = _where(wait) + ((("bokningsdatum", day),) if day else ())
    cancel = GvrRequest(
        method="DELETE",
        path=path,
        params=(("id", current), *where),
        resource=RESOURCE,
        key=_key(wait, day or ""),
        operation="cancel",
        reference=current,
    )
    expect = {"id": current, "status": CANCELLED}
    lookup = _lookup(path, cancel, wait, expect) if day else None
    return GvrCall(cancel, lookup, withdraws=True)


def booking_body(event: CareWaitEvent, codes: WaitCodes) -> dict[str, Any]:
    """The booking record of a booked entry (the module docstring's table)."""
    wait = event.payload
    assert wait.booked_on is not None  # only a booked entry has a booking record
    body = common_fields(event, reporting_unit(wait.kombika, wait.unit_hsa_id)) | {
        "kontaktkategori": codes.contact_category,
        "vardgaranti": wait.guarantee_applies,
        "bokningsdatum": wait.booked_on.isoformat(),
        "remissdatum": wait.referral_received.isoformat(),
    }
    if wait.decided_on is not None:
        body["beslutsdatum"] = wait.decided_on.isoformat()
    period = reported_exception(wait.exceptions)
    if period is not None:
        body["undantagskod"] = (
            codes.patient_chosen if period.kind == "patient_chosen" else codes.medically_caused
        )
    return body


def reported_exception(periods: tuple[WaitException, ...]) -> WaitException | None:
    """The exception period whose code the booking record carries: the open one (the latest
    started), else the one that ended last (then the latest started; PVV before MOV)."""
    if not periods:
        return None
    return max(periods, key=_recency)


def _recency(period: WaitException) -> tuple[bool, date, date, bool]:
    """Open first; then the later end (an open period's own start stands in), the later start,
    PVV."""
    last = period.start if period.end is None else period.end
    return (period.end is None, last, period.start, period.kind == "patient_chosen")


def _booked(event: CareWaitEvent) -> bool:
    wait = event.payload
    return (
        wait.booked_on is not None
        and wait.removed_on is None
        and event.operation is not Operation.CANCEL
    )


def _unbooked(event: CareWaitEvent) -> str:
    """Why the entry has no booking record to hold now."""
    wait = event.payload
    if event.operation is Operation.CANCEL:
        return "withdrawn by its journal (cancel)"
    if wait.removed_on is not None:
        return "removed from the list"
    return "not booked"


def _where(wait: CareWait) -> tuple[tuple[str, str], ...]:
    unit = reporting_unit(wait.kombika, wait.unit_hsa_id)
    fields = tuple((f"enhet.{name}", value) for name, value in unit_fields(unit).items())
    return (("patientId", wait.patient.id), *fields)


def _key(wait: CareWait, day: str) -> tuple[str, str, str, str]:
    return (wait.patient.id, day, "", str(reporting_unit(wait.kombika, wait.unit_hsa_id)))


def _lookup(path: str, call: GvrRequest, wait: CareWait, expect: dict[str, Any]) -> GvrRequest:
    """GET by the booking's key (its day is `call.key`'s), for a hit that carries `expect`."""
    return GvrRequest(
        method="GET",
        path=path,
        params=(*_where(wait), ("bokningsdatum", call.key[1])),
        resource=RESOURCE,
        key=call.key,
        operation=call.operation,
        expect=expect,
    )
