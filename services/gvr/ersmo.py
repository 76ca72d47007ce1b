"""ERSMOIndata 2.2 files (GVR's reimbursement events) → care.contact events: pure, no I/O.

Every `Ersättningshändelse` becomes one event, or one named refusal when the contract cannot
carry it faithfully. The contract's own checks (personnummer check digits, code formats …) are
not repeated here: the event goes out and the worker dead-letters it with the contract's reason.

    Ersättningshändelse ID        → record_id (`record_prefix` + ID); the first record with an ID
                                    in a file is a create (version 1), later ones corrections
                                    (2, 3 …); Makulerad="true" → cancel
    Startdatum / Slutdatum        → visited_on or starts_on / ends_on
    Startverksamhet               → kombika, or unit_hsa_id for an HSA-id (SE2321000016-…)
    Slutverksamhet                → end_unit (left out when it is the Startverksamhet)
    ErsUppdrag                    → commission;  LastUpdated → occurred_at (else the clock's now)
    Patient ID/Lkf/Basområde/Födelsedatum/Kön → patient (id_type: SNR when the day is 61-91,
                                    RESERVE_SLL when it starts with 99, else PNR)
    Vårdkontakt                   → outpatient_visit (Öppenvårdskontakt → contact_form outpatient,
                                    Hemsjukvårdskontakt → home_care; Slutenvårdstillfälle refused)
      Händelsetyp 013 + Typ       → visit_type (BTYP);  014 + Typ → contact_type (VKTYP)
      Avgiftsklass, Patientavgift → patient_fee_class, patient_fee;  Akut → akut
      Yrkeskategori (by OrdnNr)   → professions
      Diagnos (by OrdnNr)         → diagnoses; a row of Klass 020 (ATC) → medications
      Tillstånd (by OrdnNr)       → conditions (DiagnosNr → diagnosis_index)
      Åtgärd (by OrdnNr)          → procedures (KVÅ), or medications for Klass 020 (ATC), with
                                    Datum and DiagnosNr/TillståndNr as links
      Produkt / Resursgrupp       → products (Antal → quantity) / resource_groups
      VisteFöre, VårdFöre, VisteEfter, VårdEfter → stay_before, care_before, stay_after, care_after
      RemissFöre / RemissEfter    → referring_kombika (or referring_unit_hsa_id) / referred_to_unit
      TillhörVårdansvar / TillhörVårdkontakt → belongs_to_care_responsibility / belongs_to_contact
    Vårdansvar                    → care_responsibility (Hemsjukvårdsansvar → home_care, Okänt →
                                    unknown; Händelsetyp Basal/Avancerad/Okänt → level)
    Vårdperiod / Undersökning / Expediering → care_period / examination / dispatch

A link (DiagnosNr, TillståndNr) to a row number the record does not have is left out, with a
warning: the sample files use such numbers (90) where there is no link. Two rows with the same
OrdnNr are refused: which one comes first (the main diagnosis) cannot be known.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import ElementTree

NAMESPACE = uuid.UUID("6f1c7c1e-5a43-4d7e-9a53-2f7c0e9b1d01")
"""Event ids are uuid5 of (source, record id, occurrence, the record's content): converting a
file again repeats them; another record, or the same one changed, gets another id."""
ATC_CLASS = "020"
_FORMS = {"Öppenvårdskontakt": "outpatient", "Hemsjukvårdskontakt": "home_care"}
_DUTY_FORMS = {"Hemsjukvårdsansvar": "home_care", "Okänt": "unknown"}
_LEVELS = {"Basal": "basic", "Avancerad": "advanced", "Okänt": "unknown"}
_EPISODES = {"Vårdperiod": "care_period", "Undersökning": "examination", "Expediering": "dispatch"}
_TYPE_FIELDS = {"013": "visit_type", "014": "contact_type"}
_STAYS = (
    ("VisteFöre", "stay_before"),
    ("VårdFöre", "care_before"),
    ("VisteEfter", "stay_after"),
    ("VårdEfter", "care_after"),
)


@dataclass(frozen=True)
class Note:
    """A refusal or a warning about one record: its ERSMO id and the reason."""

    record_id: str
    reason: str

    def __str__(self) -> str:
        return f"{self.record_id}: {self.reason}"


@dataclass
class Conversion:
    """What a file became: events (JSON-shaped dicts), refusals, warnings."""

    events: list[dict[str, Any]] = field(default_factory=list)
    refusals: list[Note] = field(default_factory=list)
    warnings: list[Note] = field(default_factory=list)


class RefusedError(Exception):
    """A record the contract cannot carry faithfully (the message says why)."""


def convert(
    xml: bytes, *, source_system: str, now: datetime, record_prefix: str = ""
) -> Conversion:
    """Every record of an ERSMOIndata file as a care.contact event, or a refusal."""
    result = Conversion()
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as error:
        result.refusals.append(Note("(file)", f"not well-formed XML ({error})"))
        return result
    if root.tag != "ERSMOIndata":
        result.refusals.append(Note("(file)", f"root element is {root.tag}, not ERSMOIndata"))
        return result
    seen: Counter[str] = Counter()
    for record in root.findall("Ersättningshändelse"):
        ersmo_id = record.get("ID") or "(no ID)"
        seen[ersmo_id] += 1
        warnings: list[str] = []
        try:
            payload = _payload(record, record_prefix, warnings)
        except RefusedError as error:
            result.refusals.append(Note(ersmo_id, str(error)))
            continue
        except ValueError as error:  # a row number that is not a number
            result.refusals.append(Note(ersmo_id, f"not a number where one is due ({error})"))
            continue
        result.warnings.extend(Note(ersmo_id, text) for text in warnings)
        version = seen[ersmo_id]
        operation = "create" if version == 1 else "correct"
        if record.get("Makulerad", "false") in ("true", "1"):
            operation = "cancel"
        content = hashlib.sha256(ElementTree.tostring(record)).hexdigest()
        name = f"{source_system}/{record_prefix}{ersmo_id}/{version}/{content}"
        result.events.append(
            {
                "event_id": str(uuid.uuid5(NAMESPACE, name)),
                "event_type": "care.contact",
                "schema_version": 1,
                "occurred_at": record.get("LastUpdated") or now.isoformat(),
                "source_system": source_system,
                "record_id": record_prefix + ersmo_id,
                "record_version": version,
                "operation": operation,
                "payload": payload,
            }
        )
    return result


def _payload(record: Element, prefix: str, warnings: list[str]) -> dict[str, Any]:
    if record.get("ID") is None:
        raise RefusedError("no ID: the record cannot be told apart from others")
    patient = record.find("Patient")
    if patient is None:
        raise RefusedError("no Patient")
    start, unit = _required(record, "Startdatum"), _required(record, "Startverksamhet")
    common: dict[str, Any] = {"patient": _patient(patient)}
    common["unit_hsa_id" if unit.startswith("SE") else "kombika"] = unit
    end_unit = record.get("Slutverksamhet")
    _put(common, "ends_on", record.get("Slutdatum"))
    _put(common, "end_unit", end_unit if end_unit != unit else None)
    _put(common, "commission", record.get("ErsUppdrag"))
    classes = record.find("Händelseklass")
    event = classes[0] if classes is not None and len(classes) else None
    if event is None:
        raise RefusedError("no Händelseklass")
    if event.tag == "Vårdkontakt":
        return {"kind": "outpatient_visit", **common, "visited_on": start} | _contact(
            event, prefix, warnings
        )
    if event.tag == "Vårdansvar":
        return {"kind": "care_responsibility", **common, "starts_on": start} | _duty(
            event, warnings
        )
    if event.tag in _EPISODES:
        return {"kind": _EPISODES[event.tag], **common, "starts_on": start}
    raise RefusedError(f"unknown Händelseklass {event.tag}")


def _patient(patient: Element) -> dict[str, Any]:
    number = _required(patient, "ID")
    id_type = "PNR"
    if number.startswith("99"):
        id_type = "RESERVE_SLL"
    elif len(number) == 12 and number[6:8].isdigit() and int(number[6:8]) >= 61:
        id_type = "SNR"
    found: dict[str, Any] = {"id_type": id_type, "id": number}
    for attribute, name in (
        ("Lkf", "lkf"),
        ("Basområde", "base_area"),
        ("Födelsedatum", "birth_date"),
        ("Kön", "sex"),
    ):
        _put(found, name, patient.get(attribute))
    return found


def _contact(contact: Element, prefix: str, warnings: list[str]) -> dict[str, Any]:
    form = contact.get("Händelseform", "")
    if form not in _FORMS:
        raise RefusedError(
            f"Vårdkontakt of Händelseform {form!r}: an inpatient episode travels as admission and "
            "discharge events, with times and codes ERSMO's record does not carry"
            if form == "Slutenvårdstillfälle"
            else f"unknown Händelseform {form!r} of Vårdkontakt"
        )
    found: dict[str, Any] = {"contact_form": _FORMS[form]}
    typ, event_type = contact.get("Typ"), contact.get("Händelsetyp")
    if typ is not None:
        if event_type not in _TYPE_FIELDS:
            raise RefusedError(f"Typ {typ!r} without Händelsetyp 013/014: its table is unknown")
        found[_TYPE_FIELDS[event_type]] = typ
    _put(found, "patient_fee", contact.get("Patientavgift"))
    _put(found, "patient_fee_class", contact.get("Avgiftsklass"))
    _put(found, "akut", contact.get("Akut"))
    for attribute, name in (
        ("TillhörVårdansvar", "belongs_to_care_responsibility"),
        ("TillhörVårdkontakt", "belongs_to_contact"),
    ):
        value = contact.get(attribute)
        _put(found, name, prefix + value if value else None)
    professions = _ordered(contact, "Yrkeskategorier", "Yrkeskategori")
    found["professions"] = [_required(row, "Kod") for row in professions]
    rows = _Rows(contact, warnings)
    found |= rows.diagnoses_and_conditions()
    procedures, medications = rows.procedures_and_medications()
    found["procedures"], found["medications"] = procedures, rows.medications + medications
    found["products"] = [
        _coded(row) | {"quantity": int(_required(row, "Antal"))}
        for row in _list(contact, "Produkter", "Produkt")
    ]
    found["resource_groups"] = [
        _coded(row) for row in _list(contact, "Resursgrupper", "Resursgrupp")
    ]
    for element, name in _STAYS:
        stay = contact.find(element)
        _put(found, name, stay.get("Kod") if stay is not None else None)
    before, after = contact.find("RemissFöre"), contact.find("RemissEfter")
    if before is not None:
        code = _required(before, "Kod")
        found["referring_unit_hsa_id" if code.startswith("SE") else "referring_kombika"] = code
    if after is not None:
        found["referred_to_unit"] = _required(after, "Kod")
    return {name: value for name, value in found.items() if value != []}


def _duty(duty: Element, warnings: list[str]) -> dict[str, Any]:
    form = duty.get("Händelseform", "")
    if form not in _DUTY_FORMS:
        raise RefusedError(f"unknown Händelseform {form!r} of Vårdansvar")
    found: dict[str, Any] = {"form": _DUTY_FORMS[form]}
    level = duty.get("Händelsetyp")
    if level is not None and level not in _LEVELS:
        raise RefusedError(f"unknown Händelsetyp {level!r} of Vårdansvar")
    _put(found, "level", _LEVELS.get(level or ""))
    rows = _Rows(duty, warnings)
    found |= rows.diagnoses_and_conditions()
    if rows.medications:
        raise RefusedError("an ATC row among the diagnoses of a Vårdansvar, which has no medicines")
    return {name: value for name, value in found.items() if value != []}


class _Rows:
    """Diagnoses, conditions, procedures and ATC rows of one record, with their links resolved
    from ERSMO's row numbers (OrdnNr) to the contract's 0-based positions."""

    def __init__(self, event: Element, warnings: list[str]) -> None:
        self.event, self.warnings = event, warnings
        self.diagnosis_at: dict[int, int] = {}  # ERSMO OrdnNr → position in diagnoses
        self.condition_at: dict[int, int] = {}
        self.medications: list[dict[str, Any]] = []  # ATC rows found among the diagnoses

    def diagnoses_and_conditions(self) -> dict[str, Any]:
        diagnoses: list[str] = []
        for row in _ordered(self.event, "Diagnoser", "Diagnos"):
            if row.get("Klass") == ATC_CLASS:
                self.medications.append({"atc": _required(row, "Kod")})
                continue
            self.diagnosis_at[int(_required(row, "OrdnNr"))] = len(diagnoses)
            diagnoses.append(_required(row, "Kod"))
        conditions: list[dict[str, Any]] = []
        for row in _ordered(self.event, "Tillståndslista", "Tillstånd"):
            self.condition_at[int(_required(row, "OrdnNr"))] = len(conditions)
            item = _coded(row) | {"recorded_on": _required(row, "Datum")}
            self._link(item, row, "DiagnosNr", "diagnosis_index", self.diagnosis_at)
            conditions.append(item)
        return {"diagnoses": diagnoses, "conditions": conditions}

    def procedures_and_medications(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        procedures: list[dict[str, Any]] = []
        medications: list[dict[str, Any]] = []
        for row in _ordered(self.event, "Åtgärder", "Åtgärd"):
            if row.get("Klass") == ATC_CLASS:
                item = {"atc": _required(row, "Kod"), "given_on": _required(row, "Datum")}
                medications.append(item)
            else:
                item = {"code": _required(row, "Kod"), "performed_on": _required(row, "Datum")}
                procedures.append(item)
            self._link(item, row, "DiagnosNr", "diagnosis_index", self.diagnosis_at)
            self._link(item, row, "TillståndNr", "condition_index", self.condition_at)
        return procedures, medications

    def _link(
        self, item: dict[str, Any], row: Element, attribute: str, name: str, at: dict[int, int]
    ) -> None:
        number = row.get(attribute)
        if number is None:
            return
        position = at.get(int(number))
        if position is None:
            self.warnings.append(
                f"{row.tag} {row.get('Kod')}: {attribute}={number} names no row; link left out"
            )
            return
        item[name] = position


def _ordered(event: Element, group: str, tag: str) -> list[Element]:
    rows = _list(event, group, tag)
    numbers = [int(_required(row, "OrdnNr")) for row in rows]
    twice = sorted({n for n in numbers if numbers.count(n) > 1})
    if twice:
        raise RefusedError(f"{group}: OrdnNr {twice[0]} is given twice, so the order is unknown")
    return [row for _, row in sorted(zip(numbers, rows, strict=True), key=lambda pair: pair[0])]


def _list(event: Element, group: str, tag: str) -> list[Element]:
    found = event.find(group)
    return [] if found is None else found.findall(tag)


def _coded(row: Element) -> dict[str, Any]:
    item: dict[str, Any] = {"code": _required(row, "Kod")}
    _put(item, "code_class", row.get("Klass") or None)
    return item


def _required(element: Element, attribute: str) -> str:
    value = element.get(attribute)
    if value is None:
        raise RefusedError(f"{element.tag} has no {attribute}")
    return value


def _put(target: dict[str, Any], name: str, value: Any) -> None:
    if value is not None:
        target[name] = value
