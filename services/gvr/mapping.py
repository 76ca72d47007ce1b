"""Care-contact events → GVR requests: pure functions, no I/O.

Operations (``path`` from `GvrPaths` by ``payload.kind``; ``reference`` = GVR's id from the ledger)

    create   POST   {path}                body: the record (a reference, if any, is ignored)
    correct  PUT    {path}/{reference}    body: the whole record again
    cancel   DELETE {path}?id={reference}&patientId=…&enhet.inr=…&enhet.klin=…&enhet.avd=…
                    &<date field>=…[&<time field>=…]
    lookup   GET    {path}?patientId=…&enhet.inr=…&enhet.klin=…&enhet.avd=…&<date>=…[&<time>=…]

A correct or cancel without a reference raises `NotYetAppliedError` (transient: the create may be
in flight). GVR's key of a record is ``(patientId, date, time, kombika)``; availability has no time
in its key ("" in `GvrRequest.key`). Timestamps are converted to Europe/Stockholm: *date* is
YYYY-MM-DD, *time* HH:MM (seconds dropped), *zoned* ISO 8601 with the local offset, to the second.
Optional fields that are None are left out of the body; lists are always sent (possibly empty).

Field by field, contract → GVR:

    every kind
      source_system                 → kallsystem
      record_id                     → kallId
      payload.patient.id            → patientId
      payload.patient.id_type       → patientIdTyp: PNR → "PNR", SNR → "SNR", RESERVE_SLL →
                                      "RESERV"; RESERVE_VGR, NRID → InvalidEventError (permanent)
      a kombika "11010046M30"       → {"inr": "11010", "klin": "046", "avd": "M30"}
      diagnoses[i]                  → diagnoser[i] {"kod": code, "ordning": i + 1} (1 = main)
      procedures[i]                 → atgarder[i] {"kod": code, "diagnosRad":
                                      diagnosis_index + 1, "datum": performed_on (YYYY-MM-DD)}
      atc_codes[i]                  → lakemedel[i] {"atc": code}
      event_id, event_type, schema_version, occurred_at, record_version, operation, payload.kind
                                    → not sent (kind picks the resource, operation the method)
    outpatient_visit → besok
      kombika → enhet · visited_at → besoksdatum (date) + besokstid (time) · visit_type →
      besokstyp · professions → yrkeskategorier (in order) · akut → akut · tariff → taxa ·
      care_period_code → vardperiodkod (optional) · contact_type → kontakttyp · diagnoses →
      diagnoser · procedures → atgarder · atc_codes → lakemedel · referring_kombika →
      remitterandeEnhet (optional)
    admission → inskrivning
      kombika → enhet · admitted_at → inskrivningsdatum (date) + inskrivningstid (time) ·
      admission_code → inskrivningskod · referring_kombika → remitterandeEnhet (optional) ·
      akut → akut · psychiatric_care_form → psykiatriskVardform (optional) · care_period_code →
      vardperiodkod
    discharge → utskrivning (key and cancel use the discharging unit)
      discharging_kombika → enhet · admitting_kombika → inskrivandeEnhet · discharged_at →
      utskrivningsdatum (date) + utskrivningstid (time) · discharge_code → utskrivningskod ·
      referred_to_kombika → utskrivenTill (optional) · died_at → dodstid (zoned, optional) ·
      diagnoses → diagnoser · procedures → atgarder · care_period_code → vardperiodkod
    availability → tillganglighet (key date: bokningsdatum, no time)
      kombika → enhet · contact_category → kontaktkategori: outpatient → "OPPENVARD", inpatient
      → "SLUTENVARD", rehab_coordinator → "REHABKOORDINATOR" · care_guarantee → vardgaranti
      (boolean) · booked_on → bokningsdatum · appointment_at → besokstid (zoned, optional) ·
      referral_received_on → remissdatum · decided_on → beslutsdatum · referral_type → remisstyp
      · exception_code → undantagskod (the last four optional)

In the autumn hour that repeats (02:00-03:00 on the last Sunday of October) two instants have the
same local date and time; that is GVR's key format, not something the mapping can disambiguate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from shared.contracts import (
    Admission,
    Availability,
    CareContactEvent,
    Discharge,
    Operation,
    OutpatientVisit,
    Procedure,
)
from shared.delivery.errors import InvalidEventError, NotYetAppliedError
from shared.identifiers import Kombika, PatientIdType, parse_kombika

STOCKHOLM = ZoneInfo("Europe/Stockholm")
CANCELLED = "MAKULERAD"
"""GVR's status of a cancelled record (still readable by GET)."""

_ID_TYPES = {
    PatientIdType.PNR: "PNR",
    PatientIdType.SNR: "SNR",
    PatientIdType.RESERVE_SLL: "RESERV",
}
_CATEGORIES = {
    "outpatient": "OPPENVARD",
    "inpatient": "SLUTENVARD",
    "rehab_coordinator": "REHABKOORDINATOR",
}


class GvrPaths(BaseModel):
    """Resource path per care-contact kind (docs/gvr-api.md); appended to the base URL
    (``REGBRIDGE_GVR_PATHS__OUTPATIENT_VISIT`` …: configuration, to follow the official
    specification)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    outpatient_visit: str = "/vardhandelse/besok"
    admission: str = "/vardhandelse/inskrivning"
    discharge: str = "/vardhandelse/utskrivning"
    availability: str = "/tillganglighet"

    def for_kind(self, kind: str) -> str:
        path: str = getattr(self, kind)
        return path


@dataclass(frozen=True, kw_only=True)
class GvrRequest:
    """One call to GVR, ready to send; `key` is GVR's key (patientId, date, time, kombika)."""

    method: str  # POST | PUT | DELETE | GET
    path: str
    params: tuple[tuple[str, str], ...] = ()  # query pairs (GET/DELETE), dot notation
    json: dict[str, Any] | None = None  # body (POST/PUT)
    resource: str  # besok | inskrivning | utskrivning | tillganglighet
    key: tuple[str, str, str, str]
    operation: str  # the event's: create | correct | cancel
    reference: str | None = None  # the GVR id a PUT/DELETE addresses
    expect: Mapping[str, Any] = field(default_factory=dict)  # GET: what a hit must carry


@dataclass(frozen=True)
class _Record:
    resource: str
    body: dict[str, Any]
    unit: Kombika
    when: tuple[tuple[str, str], ...]  # the key's date (and time) as (GVR field, value)


def to_gvr_request(event: CareContactEvent, reference: str | None, paths: GvrPaths) -> GvrRequest:
    """The GVR call that applies `event`; see the module docstring for every field."""
    record = _record(event)
    create = GvrRequest(
        method="POST",
        path=paths.for_kind(event.payload.kind),
        json=record.body,
        resource=record.resource,
        key=_key(record),
        operation=str(event.operation),
    )
    if event.operation is Operation.CREATE:
        return create
    if reference is None:
        raise NotYetAppliedError(
            f"{event.operation} of record {event.record_id} before GVR's id of it is known "
            "(its create may still be in flight)"
        )
    if event.operation is Operation.CORRECT:
        path = f"{create.path}/{quote(reference, safe='')}"
        return replace(create, method="PUT", path=path, reference=reference)
    params = (("id", reference), *_locator(record))
    return replace(create, method="DELETE", params=params, json=None, reference=reference)


def lookup_request(event: CareContactEvent, paths: GvrPaths) -> GvrRequest:
    """GET by GVR's key, to learn whether `event` was applied (reconciliation after a crash).

    `expect`: for a create, a live record with this kallsystem + kallId; for a correction, a live
    record equal to the whole corrected body; for a cancellation, a makulerad one with our kallId.
    """
    record = _record(event)
    source = {"kallsystem": record.body["kallsystem"], "kallId": record.body["kallId"]}
    expect: dict[str, Any]
    if event.operation is Operation.CREATE:
        expect = source
    elif event.operation is Operation.CORRECT:
        expect = dict(record.body)
    else:
        expect = {**source, "status": CANCELLED}
    return GvrRequest(
        method="GET",
        path=paths.for_kind(event.payload.kind),
        params=_locator(record),
        resource=record.resource,
        key=_key(record),
        operation=str(event.operation),
        expect=expect,
    )


def _record(event: CareContactEvent) -> _Record:
    payload = event.payload
    if isinstance(payload, OutpatientVisit):
        return _outpatient_visit(event, payload)
    if isinstance(payload, Admission):
        return _admission(event, payload)
    if isinstance(payload, Discharge):
        return _discharge(event, payload)
    return _availability(event, payload)


def _outpatient_visit(event: CareContactEvent, visit: OutpatientVisit) -> _Record:
    unit = parse_kombika(visit.kombika)
    day, time = _local(visit.visited_at)
    body = _common(event, unit) | {
        "besoksdatum": day,
        "besokstid": time,
        "besokstyp": visit.visit_type,
        "yrkeskategorier": list(visit.professions),
        "akut": visit.akut,
        "taxa": visit.tariff,
        "kontakttyp": visit.contact_type,
        "diagnoser": _diagnoses(visit.diagnoses),
        "atgarder": _procedures(visit.procedures),
        "lakemedel": [{"atc": code} for code in visit.atc_codes],
    }
    _optional(body, "vardperiodkod", visit.care_period_code)
    _optional(body, "remitterandeEnhet", _unit(visit.referring_kombika))
    return _Record("besok", body, unit, (("besoksdatum", day), ("besokstid", time)))


def _admission(event: CareContactEvent, admission: Admission) -> _Record:
    unit = parse_kombika(admission.kombika)
    day, time = _local(admission.admitted_at)
    body = _common(event, unit) | {
        "inskrivningsdatum": day,
        "inskrivningstid": time,
        "inskrivningskod": admission.admission_code,
        "akut": admission.akut,
        "vardperiodkod": admission.care_period_code,
    }
    _optional(body, "remitterandeEnhet", _unit(admission.referring_kombika))
    _optional(body, "psykiatriskVardform", admission.psychiatric_care_form)
    when = (("inskrivningsdatum", day), ("inskrivningstid", time))
    return _Record("inskrivning", body, unit, when)


def _discharge(event: CareContactEvent, discharge: Discharge) -> _Record:
    unit = parse_kombika(discharge.discharging_kombika)
    day, time = _local(discharge.discharged_at)
    body = _common(event, unit) | {
        "inskrivandeEnhet": _unit(discharge.admitting_kombika),
        "utskrivningsdatum": day,
        "utskrivningstid": time,
        "utskrivningskod": discharge.discharge_code,
        "diagnoser": _diagnoses(discharge.diagnoses),
        "atgarder": _procedures(discharge.procedures),
        "vardperiodkod": discharge.care_period_code,
    }
    _optional(body, "utskrivenTill", _unit(discharge.referred_to_kombika))
    _optional(body, "dodstid", _zoned(discharge.died_at))
    when = (("utskrivningsdatum", day), ("utskrivningstid", time))
    return _Record("utskrivning", body, unit, when)


def _availability(event: CareContactEvent, availability: Availability) -> _Record:
    unit = parse_kombika(availability.kombika)
    booked = availability.booked_on.isoformat()
    body = _common(event, unit) | {
        "kontaktkategori": _CATEGORIES[availability.contact_category],
        "vardgaranti": availability.care_guarantee,
        "bokningsdatum": booked,
    }
    _optional(body, "besokstid", _zoned(availability.appointment_at))
    received, decided = availability.referral_received_on, availability.decided_on
    _optional(body, "remissdatum", received.isoformat() if received else None)
    _optional(body, "beslutsdatum", decided.isoformat() if decided else None)
    _optional(body, "remisstyp", availability.referral_type)
    _optional(body, "undantagskod", availability.exception_code)
    return _Record("tillganglighet", body, unit, (("bokningsdatum", booked),))


def _common(event: CareContactEvent, unit: Kombika) -> dict[str, Any]:
    patient = event.payload.patient
    id_type = _ID_TYPES.get(patient.id_type)
    if id_type is None:
        raise InvalidEventError(
            "payload.patient.id_type: GVR accepts PNR, SNR or Region Stockholm reserve numbers"
        )
    return {
        "patientId": patient.id,
        "patientIdTyp": id_type,
        "enhet": _unit_fields(unit),
        "kallsystem": event.source_system,
        "kallId": event.record_id,
    }


def _key(record: _Record) -> tuple[str, str, str, str]:
    day = record.when[0][1]
    time = record.when[1][1] if len(record.when) > 1 else ""
    return (record.body["patientId"], day, time, str(record.unit))


def _locator(record: _Record) -> tuple[tuple[str, str], ...]:
    unit = record.unit
    return (
        ("patientId", record.body["patientId"]),
        ("enhet.inr", unit.inr),
        ("enhet.klin", unit.klin),
        ("enhet.avd", unit.avd),
        *record.when,
    )


def _diagnoses(codes: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"kod": code, "ordning": position} for position, code in enumerate(codes, start=1)]


def _procedures(procedures: tuple[Procedure, ...]) -> list[dict[str, Any]]:
    return [
        {"kod": p.code, "diagnosRad": p.diagnosis_index + 1, "datum": p.performed_on.isoformat()}
        for p in procedures
    ]


def _unit_fields(unit: Kombika) -> dict[str, str]:
    return {"inr": unit.inr, "klin": unit.klin, "avd": unit.avd}


def _unit(kombika: str | None) -> dict[str, str] | None:
    return None if kombika is None else _unit_fields(parse_kombika(kombika))


def _local(moment: datetime) -> tuple[str, str]:
    local = moment.astimezone(STOCKHOLM)
    return local.date().isoformat(), local.strftime("%H:%M")


def _zoned(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(STOCKHOLM).isoformat(timespec="seconds")


def _optional(body: dict[str, Any], name: str, value: object) -> None:
    if value is not None:
        body[name] = value
