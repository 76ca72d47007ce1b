"""Care-contact events → GVR requests: pure functions, no I/O.

Operations (``path`` from `GvrPaths` by ``payload.kind``; ``reference`` = GVR's id from the ledger)

    create   POST   {path}                body: the record (a reference, if any, is ignored)
    correct  PUT    {path}/{reference}    body: the whole record again
    cancel   DELETE {path}?id={reference}&patientId=…&enhet.inr=…&enhet.klin=…&enhet.avd=…
                    &<date field>=…[&<time field>=…]
    lookup   GET    {path}?patientId=…&enhet.inr=…&enhet.klin=…&enhet.avd=…&<date>=…[&<time>=…]

A correct or cancel without a reference raises `NotYetAppliedError` (transient: the create may be
in flight). GVR's key of a record is ``(patientId, date, time, kombika)``; availability, a
date-only visit and the ERSMO kinds have no time in their key ("" in `GvrRequest.key`).
Timestamps are converted to Europe/Stockholm: *date* is YYYY-MM-DD, *time* HH:MM (seconds
dropped), *zoned* ISO 8601 with the local offset, to the second. Optional fields that are None
are left out of the body; the first contract's lists are always sent (possibly empty).

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
      a unit_hsa_id (instead of a kombika) → {"hsaId": "SE…"}; in a query ``enhet.hsaId``
      patient.lkf / base_area / birth_date / sex → patientLkf / patientBasomrade /
                                      patientFodelsedatum / patientKon (each when given)
      procedures[i].condition_index → atgarder[i].tillstandRad (index + 1); diagnosRad only
                                      when the procedure is linked to a diagnosis
      ends_on → slutdatum · end_unit → slutenhet (kombika or hsaId object) · commission →
      ersUppdrag (the ERSMO kinds and outpatient visits; each when given)
    outpatient_visit → besok (key: besoksdatum + besokstid, "" for a date-only visit)
      kombika | unit_hsa_id → enhet · visited_at → besoksdatum (date) + besokstid (time), or
      visited_on → besoksdatum alone · visit_type → besokstyp · professions → yrkeskategorier
      (in order, possibly empty) · akut → akut (J, N, 1, 2) · tariff → taxa · patient_fee +
      patient_fee_class → patientavgift {kod, klass} · care_period_code → vardperiodkod ·
      contact_type → kontakttyp · contact_form → kontaktform (OPPENVARD | HEMSJUKVARD) ·
      diagnoses → diagnoser · conditions[i] → tillstand[i] {kod, klass, datum, ordning: i + 1,
      diagnosRad} · procedures → atgarder · atc_codes + medications → lakemedel ({atc}, then
      {atc, datum, diagnosRad, tillstandRad}) · products → produkter {kod, klass, antal} ·
      resource_groups → resursgrupper {kod, klass} · referring_kombika | referring_unit_hsa_id
      → remitterandeEnhet · referred_to_unit → remitteradTill · stay_before / care_before /
      stay_after / care_after → visteFore / vardFore / visteEfter / vardEfter ·
      belongs_to_care_responsibility / belongs_to_contact → tillhorVardansvar /
      tillhorVardkontakt (all optional; new lists only when not empty)
    care_responsibility → vardansvar (key date: startdatum, no time)
      starts_on → startdatum · form → vardansvarsform (HEMSJUKVARD | OKANT) · level → niva
      (BASAL | AVANCERAD | OKANT) · diagnoses → diagnoser · conditions → tillstand
    care_period | examination | dispatch → vardperiod | undersokning | expediering
      starts_on → startdatum (key date, no time), and the common fields above
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
    care.wait (a waiting-list entry, from care.waits.v1) → tillganglighet: its booking's record,
      in services/gvr/waits.py (the call follows the entry's state and the ledger's reference)
      kombika | unit_hsa_id → enhet · (every wait) → kontaktkategori OPPENVARD · guarantee_applies
      → vardgaranti · booked_on → bokningsdatum · referral_received → remissdatum · decided_on →
      beslutsdatum · the open or latest exception → undantagskod (PVV | MOV) · record_id →
      kallId; booked_for is not sent (GVR's besokstid is a time, the entry knows the day)

In the autumn hour that repeats (02:00-03:00 on the last Sunday of October) two instants have the
same local date and time; that is GVR's key format, not something the mapping can disambiguate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from shared.contracts import (
    Admission,
    Availability,
    CareContactEvent,
    CareEpisode,
    CarePatient,
    CareResponsibility,
    CareWaitEvent,
    Condition,
    Discharge,
    Medication,
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
_FORMS = {"outpatient": "OPPENVARD", "home_care": "HEMSJUKVARD"}
_RESPONSIBILITY_FORMS = {"home_care": "HEMSJUKVARD", "unknown": "OKANT"}
_LEVELS = {"basic": "BASAL", "advanced": "AVANCERAD", "unknown": "OKANT"}
_EPISODES = {"care_period": "vardperiod", "examination": "undersokning", "dispatch": "expediering"}
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
    care_responsibility: str = "/vardhandelse/vardansvar"
    care_period: str = "/vardhandelse/vardperiod"
    examination: str = "/vardhandelse/undersokning"
    dispatch: str = "/vardhandelse/expediering"

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
    resource: str  # besok | inskrivning | utskrivning | tillganglighet | vardansvar | …
    key: tuple[str, str, str, str]
    operation: str  # the event's: create | correct | cancel
    reference: str | None = None  # the GVR id a PUT/DELETE addresses
    expect: Mapping[str, Any] = field(default_factory=dict)  # GET: what a hit must carry


@dataclass(frozen=True)
class GvrCall:
    """What an event becomes: the call that applies it, and the GET that finds it (None when it
    cannot be looked up); `withdraws`: a waiting-list booking's DELETE, after which the ledger
    keeps the record's id as withdrawn (services/gvr/waits.py)."""

    apply: GvrRequest
    lookup: GvrRequest | None
    withdraws: bool = False


@dataclass(frozen=True)
class _Record:
    resource: str
    body: dict[str, Any]
    unit: Kombika | str  # a kombika, or an HSA-id
    when: tuple[tuple[str, str], ...]  # the key's date (and time) as (GVR field, value)

    @cached_property
    def key(self) -> tuple[str, str, str, str]:
        """GVR's key: (patientId, date, time or "", unit)."""
        when = self.when
        time = when[1][1] if len(when) > 1 else ""
        return (self.body["patientId"], when[0][1], time, str(self.unit))


def gvr_call(event: CareContactEvent, reference: str | None, paths: GvrPaths) -> GvrCall:
    """`to_gvr_request` and `lookup_request` of `event`, its record mapped once for both."""
    record = _record(event)
    return GvrCall(_apply(event, record, reference, paths), _lookup(event, record, paths))


def to_gvr_request(event: CareContactEvent, reference: str | None, paths: GvrPaths) -> GvrRequest:
    """The GVR call that applies `event`; see the module docstring for every field."""
    return _apply(event, _record(event), reference, paths)


def lookup_request(event: CareContactEvent, paths: GvrPaths) -> GvrRequest:
    """GET by GVR's key, to learn whether `event` was applied (reconciliation after a crash).

    `expect`: for a create, a live record with this kallsystem + kallId; for a correction, a live
    record equal to the whole corrected body; for a cancellation, a makulerad one with our kallId.
    """
    return _lookup(event, _record(event), paths)


def _apply(
    event: CareContactEvent, record: _Record, reference: str | None, paths: GvrPaths
) -> GvrRequest:
    operation = event.operation
    create = GvrRequest(
        method="POST",
        path=paths.for_kind(event.payload.kind),
        json=record.body,
        resource=record.resource,
        key=record.key,
        operation=str(operation),
    )
    if operation is Operation.CREATE:
        return create
    if reference is None:
        raise NotYetAppliedError(
            f"{operation} of record {event.record_id} before GVR's id of it is known "
            "(its create may still be in flight)"
        )
    if operation is Operation.CORRECT:
        path = f"{create.path}/{quote(reference, safe='')}"
        return replace(create, method="PUT", path=path, reference=reference)
    params = (("id", reference), *_locator(record))
    return replace(create, method="DELETE", params=params, json=None, reference=reference)


def _lookup(event: CareContactEvent, record: _Record, paths: GvrPaths) -> GvrRequest:
    body = record.body
    expect: dict[str, Any]
    if event.operation is Operation.CREATE:
        expect = {"kallsystem": body["kallsystem"], "kallId": body["kallId"]}
    elif event.operation is Operation.CORRECT:
        expect = dict(body)
    else:
        expect = {"kallsystem": body["kallsystem"], "kallId": body["kallId"], "status": CANCELLED}
    return GvrRequest(
        method="GET",
        path=paths.for_kind(event.payload.kind),
        params=_locator(record),
        resource=record.resource,
        key=record.key,
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
    if isinstance(payload, Availability):
        return _availability(event, payload)
    if isinstance(payload, CareResponsibility):
        return _care_responsibility(event, payload)
    return _episode(event, payload)


def _outpatient_visit(event: CareContactEvent, visit: OutpatientVisit) -> _Record:
    unit = reporting_unit(visit.kombika, visit.unit_hsa_id)
    body = common_fields(event, unit)
    if visit.visited_at is not None:
        day, time = _local(visit.visited_at)
        when: tuple[tuple[str, str], ...] = (("besoksdatum", day), ("besokstid", time))
        body["besoksdatum"], body["besokstid"] = day, time
    else:
        assert visit.visited_on is not None  # the contract sees to one of the two
        when = (("besoksdatum", visit.visited_on.isoformat()),)
        body["besoksdatum"] = when[0][1]
    # the common fields and `when`, then these, then the optional ones: the order sent
    body["yrkeskategorier"] = list(visit.professions)
    body["diagnoser"] = _diagnoses(visit.diagnoses)
    body["atgarder"] = _procedures(visit.procedures)
    medicines = [{"atc": code} for code in visit.atc_codes]
    if visit.medications:
        medicines += _medications(visit.medications)
    body["lakemedel"] = medicines
    # one visit per event, most of these fields absent: tested inline, not a call each
    if visit.visit_type is not None:
        body["besokstyp"] = visit.visit_type
    if visit.akut is not None:
        body["akut"] = visit.akut
    if visit.tariff is not None:
        body["taxa"] = visit.tariff
    if visit.contact_type is not None:
        body["kontakttyp"] = visit.contact_type
    if visit.care_period_code is not None:
        body["vardperiodkod"] = visit.care_period_code
    _optional(body, "remitterandeEnhet", _any_unit(visit.referring_kombika))
    _optional(body, "remitterandeEnhet", _any_unit(visit.referring_unit_hsa_id))
    if visit.contact_form is not None:
        _optional(body, "kontaktform", _FORMS.get(visit.contact_form))
    if visit.patient_fee is not None:
        fee = {"kod": visit.patient_fee}
        _optional(fee, "klass", visit.patient_fee_class)
        body["patientavgift"] = fee
    if visit.conditions:
        body["tillstand"] = _conditions(visit.conditions)
    if visit.products:
        body["produkter"] = [_coded(p, antal=p.quantity) for p in visit.products]
    if visit.resource_groups:
        body["resursgrupper"] = [_coded(g) for g in visit.resource_groups]
    _optional(body, "remitteradTill", _any_unit(visit.referred_to_unit))
    if visit.stay_before is not None:
        body["visteFore"] = visit.stay_before
    if visit.care_before is not None:
        body["vardFore"] = visit.care_before
    if visit.stay_after is not None:
        body["visteEfter"] = visit.stay_after
    if visit.care_after is not None:
        body["vardEfter"] = visit.care_after
    if visit.belongs_to_care_responsibility is not None:
        body["tillhorVardansvar"] = visit.belongs_to_care_responsibility
    if visit.belongs_to_contact is not None:
        body["tillhorVardkontakt"] = visit.belongs_to_contact
    _span(body, visit.ends_on, visit.end_unit, visit.commission)
    return _Record("besok", body, unit, when)


def _admission(event: CareContactEvent, admission: Admission) -> _Record:
    unit = parse_kombika(admission.kombika)
    day, time = _local(admission.admitted_at)
    body = common_fields(event, unit) | {
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
    body = common_fields(event, unit) | {
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
    body = common_fields(event, unit) | {
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


def _care_responsibility(event: CareContactEvent, duty: CareResponsibility) -> _Record:
    unit = reporting_unit(duty.kombika, duty.unit_hsa_id)
    start = duty.starts_on.isoformat()
    body = common_fields(event, unit) | {
        "startdatum": start,
        "vardansvarsform": _RESPONSIBILITY_FORMS[duty.form],
        "diagnoser": _diagnoses(duty.diagnoses),
    }
    _optional(body, "niva", _LEVELS.get(duty.level or ""))
    _rows(body, "tillstand", _conditions(duty.conditions))
    _span(body, duty.ends_on, duty.end_unit, duty.commission)
    return _Record("vardansvar", body, unit, (("startdatum", start),))


def _episode(event: CareContactEvent, episode: CareEpisode) -> _Record:
    unit = reporting_unit(episode.kombika, episode.unit_hsa_id)
    start = episode.starts_on.isoformat()
    body = common_fields(event, unit) | {"startdatum": start}
    _span(body, episode.ends_on, episode.end_unit, episode.commission)
    return _Record(_EPISODES[episode.kind], body, unit, (("startdatum", start),))


def _span(body: dict[str, Any], ends_on: Any, end_unit: str | None, commission: str | None) -> None:
    if ends_on is None and end_unit is None and commission is None:
        return
    _optional(body, "slutdatum", ends_on.isoformat() if ends_on is not None else None)
    _optional(body, "slutenhet", _any_unit(end_unit))
    _optional(body, "ersUppdrag", commission)


def common_fields(event: CareContactEvent | CareWaitEvent, unit: Kombika | str) -> dict[str, Any]:
    """What every GVR record carries: the patient, the unit, and where it came from."""
    patient = event.payload.patient
    id_type = _ID_TYPES.get(patient.id_type)
    if id_type is None:
        raise InvalidEventError(
            "payload.patient.id_type: GVR accepts PNR, SNR or Region Stockholm reserve numbers"
        )
    body: dict[str, Any] = {
        "patientId": patient.id,
        "patientIdTyp": id_type,
        "enhet": unit_fields(unit),
        "kallsystem": event.source_system,
        "kallId": event.record_id,
    }
    if isinstance(patient, CarePatient):
        _optional(body, "patientLkf", patient.lkf)
        _optional(body, "patientBasomrade", patient.base_area)
        birth = patient.birth_date
        _optional(body, "patientFodelsedatum", birth.isoformat() if birth else None)
        _optional(body, "patientKon", patient.sex)
    return body


def _locator(record: _Record) -> tuple[tuple[str, str], ...]:
    """GVR's key as query parameters: patientId, the unit in dot notation (`unit_fields`), date
    (and time)."""
    where = tuple((f"enhet.{name}", value) for name, value in unit_fields(record.unit).items())
    return (("patientId", record.body["patientId"]), *where, *record.when)


def _diagnoses(codes: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"kod": code, "ordning": position} for position, code in enumerate(codes, start=1)]


def _links(row: Procedure | Medication | Condition) -> dict[str, int]:
    """diagnosRad / tillstandRad: the 1-based row numbers of what the row is linked to."""
    links = {}
    if row.diagnosis_index is not None:
        links["diagnosRad"] = row.diagnosis_index + 1
    condition = None if isinstance(row, Condition) else row.condition_index
    if condition is not None:
        links["tillstandRad"] = condition + 1
    return links


def _procedures(procedures: tuple[Procedure, ...]) -> list[dict[str, Any]]:
    return [{"kod": p.code, **_links(p), "datum": p.performed_on.isoformat()} for p in procedures]


def _medications(rows: tuple[Medication, ...]) -> list[dict[str, Any]]:
    found = []
    for row in rows:
        item: dict[str, Any] = {"atc": row.atc, **_links(row)}
        _optional(item, "datum", row.given_on.isoformat() if row.given_on else None)
        found.append(item)
    return found


def _conditions(rows: tuple[Condition, ...]) -> list[dict[str, Any]]:
    return [
        _coded(row, datum=row.recorded_on.isoformat(), ordning=position, **_links(row))
        for position, row in enumerate(rows, start=1)
    ]


def _coded(row: Any, **extra: Any) -> dict[str, Any]:
    """{kod, klass (when known), …extra} of a coded row (condition, product, resource group)."""
    item: dict[str, Any] = {"kod": row.code}
    _optional(item, "klass", row.code_class)
    return item | extra


def _rows(body: dict[str, Any], name: str, rows: list[dict[str, Any]]) -> None:
    """Lists GVR did not have before ERSMO's content are sent only when not empty."""
    if rows:
        body[name] = rows


def reporting_unit(kombika: str | None, hsa_id: str | None) -> Kombika | str:
    """The unit whose record it is: a parsed kombika, or an HSA-id."""
    if kombika is not None:
        return parse_kombika(kombika)
    assert hsa_id is not None  # the contract sees to one of the two
    return hsa_id


def unit_fields(unit: Kombika | str) -> dict[str, str]:
    """`enhet` as GVR takes it: inr + klin + avd of a kombika, or hsaId."""
    if isinstance(unit, str):
        return {"hsaId": unit}
    return {"inr": unit.inr, "klin": unit.klin, "avd": unit.avd}


def _unit(kombika: str | None) -> dict[str, str] | None:
    return None if kombika is None else unit_fields(parse_kombika(kombika))


def _any_unit(value: str | None) -> dict[str, str] | None:
    """A unit named by kombika or by HSA-id (SE…)."""
    if value is None:
        return None
    return unit_fields(value if value.startswith("SE") else parse_kombika(value))


def _local(moment: datetime) -> tuple[str, str]:
    local = moment.astimezone(STOCKHOLM)
    return local.date().isoformat(), f"{local.hour:02d}:{local.minute:02d}"


def _zoned(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(STOCKHOLM).isoformat(timespec="seconds")


def _optional(body: dict[str, Any], name: str, value: object) -> None:
    if value is not None:
        body[name] = value
