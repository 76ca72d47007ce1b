"""The register's checks of a whole record, per resource: every failing field, as a 400 lists."""

# The en dash of ranges ("61–91") is meant: messages quote the handbook.
# ruff: noqa: RUF001, RUF003

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from services.sandboxes.gvr.checks import Checker
from services.sandboxes.gvr.codes import (
    AKUT,
    ATC,
    BTYP,
    ICD10SE,
    IKOD,
    KVA,
    TAXA,
    TILLSTAND,
    UKOD,
    VDG,
)
from services.sandboxes.gvr.codes import KONTAKTKATEGORI as KATEGORI
from services.sandboxes.gvr.kombika import KombikaRegistry
from services.sandboxes.gvr.schema import (
    CARE_PERIOD_PATTERN,
    CLASS_PATTERN,
    ERSMO_CODE_PATTERN,
    REGION_CODE_PATTERN,
    SINGLE_PATTERN,
    SOURCE_PATTERN,
    Atgard,
    Besok,
    Diagnos,
    Fel,
    FelKod,
    Gemensamt,
    Inskrivning,
    Lakemedel,
    Patientavgift,
    Produkt,
    Resursgrupp,
    Tillganglighet,
    Tillstand,
    Utskrivning,
    Vardansvar,
    Vardhandelse,
)
from shared.identifiers import (
    InvalidIdentifierError,
    Kombika,
    validate_atc,
    validate_icd10se,
    validate_kva,
    validate_personnummer,
    validate_reserve_sll,
    validate_samordningsnummer,
)

PATIENT_ID_TYPES: dict[str, tuple[str, Callable[[str], str]]] = {
    "PNR": ("personnummer", validate_personnummer),
    "SNR": ("samordningsnummer", validate_samordningsnummer),
    "RESERV": ("reservnummer (Region Stockholm)", validate_reserve_sll),
}
_SOURCE_RULE = "1–64 tecken, det första inte blanksteg"
_CODE_RULE = "1–10 bokstäver eller siffror"
_PERIOD_RULE = "vårdperiodkod: 1–40 bokstäver eller siffror"
_FORMS = ("HEMSJUKVARD", "OKANT")
_LEVELS = ("BASAL", "AVANCERAD", "OKANT")


@dataclass(frozen=True)
class RecordKey:
    """GVR's own key of a record: patient + event date + event time + kombika; and, for a
    resource keyed by its source (availability), kallsystem + kallId too."""

    patient_id: str
    day: str
    time: str
    kombika: str
    source: tuple[str, str] | None = None  # (kallsystem, kallId)


@dataclass(frozen=True)
class Checked:
    """The outcome of `validate`: the errors, or (when there are none) the record's key."""

    errors: list[Fel]
    key: RecordKey | None


Rules = Callable[[Checker, date | None, KombikaRegistry], Kombika | str | None]


@dataclass(frozen=True)
class Resource:
    """One GVR resource: its path, body model, event date and time fields, and its rules;
    `by_source`: its key holds kallsystem + kallId (two bookings of one patient at one unit on
    one day are two records — GVR's real key for availability is not public)."""

    name: str
    path: str
    model: type[Gemensamt]
    date_field: str
    time_field: str | None
    rules: Rules
    by_source: bool = False

    def validate(self, body: Any, registry: KombikaRegistry) -> Checked:
        if not isinstance(body, dict):
            return Checked([Fel(falt="", kod=FelKod.FORMAT, meddelande="ej ett JSON-objekt")], None)
        found: list[Fel] = []
        checker = Checker(found, body)
        checker.fields_of(self.model)
        day = checker.day(self.date_field)
        time = checker.clock(self.time_field) if self.time_field else ""
        if self.time_field and body.get(self.time_field) is None:
            time = ""  # a date-only record (its time field is optional where the model says so)
        patient_id = _patient(checker)
        system = checker.text("kallsystem", SOURCE_PATTERN, _SOURCE_RULE)
        source_id = checker.text("kallId", SOURCE_PATTERN, _SOURCE_RULE)
        enhet = self.rules(checker, day, registry)
        if found or day is None or time is None or patient_id is None or enhet is None:
            return Checked(found, None)
        source = (system or "", source_id or "") if self.by_source else None
        return Checked([], RecordKey(patient_id, day.isoformat(), time, str(enhet), source))


def _patient(c: Checker) -> str | None:
    typ = c.raw("patientIdTyp")
    kind = PATIENT_ID_TYPES.get(typ) if isinstance(typ, str) else None
    if kind is None and c.data.get("patientIdTyp") is not None:
        c.fail("patientIdTyp", FelKod.KOD_OKAND, f"måste vara PNR, SNR eller RESERV, fick {typ!r}")
    value = c.text("patientId")
    if value is None:
        return None
    if kind is None:
        if len(value) == 12 and value.isdigit():
            return value
        c.fail("patientId", FelKod.PATIENTID, "måste vara 12 siffror utan skiljetecken")
        return None
    name, validator = kind
    try:
        return validator(value)
    except InvalidIdentifierError as error:
        c.fail("patientId", FelKod.PATIENTID, f"inte ett giltigt {name}: {error.rule}")
        return None


def _akut(c: Checker) -> None:
    value = c.text("akut")
    if value is not None and value not in AKUT:
        c.fail("akut", FelKod.KOD_OKAND, f"akut måste vara J, N, 1 eller 2, fick {value!r}")


def _atc_substance(value: str) -> str:
    validate_atc(value)
    if len(value) != 7:
        raise InvalidIdentifierError("ATC", "must be the substance level, 7 characters", value)
    return value


def _diagnoses(c: Checker, day: date | None) -> set[int] | None:
    """Checks each diagnosis; the `ordning` values when they are all readable, else None."""
    rows = c.objects("diagnoser")
    ordinals: list[int] = []
    readable = True
    for row, _ in rows:
        row.fields_of(Diagnos)
        row.structured_code("kod", ICD10SE, day, validate_icd10se)
        ordinal = row.whole_number("ordning")
        if ordinal is None:
            readable = False
        else:
            ordinals.append(ordinal)
    if not readable:
        return None
    if sorted(ordinals) != list(range(1, len(ordinals) + 1)):
        c.fail(
            "diagnoser",
            FelKod.ORDNING,
            f"ordning måste vara 1…{len(ordinals)} utan luckor eller dubbletter "
            f"(1 = huvuddiagnos), fick {ordinals}",
        )
    return set(ordinals)


def _link(row: Checker, name: str, rows: set[int] | None, what: str) -> None:
    link = row.whole_number(name)
    if link is not None and rows is not None and link not in rows:
        row.fail(name, FelKod.ORDNING, f"det finns {what} med ordning {link}")


def _procedures(
    c: Checker,
    day: date | None,
    diagnoses: set[int] | None,
    conditions: set[int] | None = None,
    last: date | None = None,
) -> None:
    """`last`: the event's last date (slutdatum), else the event date: no procedure after it."""
    limit = last or day
    for row, _ in c.objects("atgarder"):
        row.fields_of(Atgard)
        row.structured_code("kod", KVA, day, validate_kva)
        _link(row, "diagnosRad", diagnoses, "ingen diagnos")
        _link(row, "tillstandRad", conditions or set(), "inget tillstånd")
        performed = row.day("datum")
        if performed is not None and limit is not None and performed > limit:
            row.fail(
                "datum",
                FelKod.DATUM,
                f"åtgärdsdatum {performed} är efter händelsens sista dag {limit}",
            )


def _medicines(
    c: Checker, day: date | None, diagnoses: set[int] | None, conditions: set[int]
) -> None:
    for row, _ in c.objects("lakemedel"):
        row.fields_of(Lakemedel)
        row.structured_code("atc", ATC, day, _atc_substance)
        row.day("datum")
        _link(row, "diagnosRad", diagnoses, "ingen diagnos")
        _link(row, "tillstandRad", conditions, "inget tillstånd")


def _conditions(c: Checker, day: date | None, diagnoses: set[int] | None) -> set[int]:
    ordinals: set[int] = set()
    for row, _ in c.objects("tillstand"):
        row.fields_of(Tillstand)
        row.code("kod", TILLSTAND, day)
        row.text("klass", CLASS_PATTERN, "1–3 siffror")
        row.day("datum")
        ordinal = row.whole_number("ordning")
        if ordinal is not None:
            ordinals.add(ordinal)
        _link(row, "diagnosRad", diagnoses, "ingen diagnos")
    return ordinals


def _period(c: Checker, day: date | None, registry: KombikaRegistry) -> date | None:
    """slutdatum (not before the event date), slutenhet, ersUppdrag; returns slutdatum."""
    end = c.day("slutdatum")
    if end is not None and day is not None and end < day:
        c.fail("slutdatum", FelKod.DATUM, f"slutdatum {end} är före händelsedatum {day}")
    c.kombika("slutenhet", registry, day, "slutenhet")
    c.text("ersUppdrag", r"\S{1,7}", "ersättningsuppdrag: 1–7 tecken")
    return end


def _besok(c: Checker, day: date | None, registry: KombikaRegistry) -> Kombika | str | None:
    enhet = c.kombika("enhet", registry, day, "enhet")
    last = _period(c, day, registry)
    c.code("besokstyp", BTYP, day)
    professions = c.raw("yrkeskategorier")
    if isinstance(professions, list):
        for index, code in enumerate(professions):
            name = f"yrkeskategorier[{index}]"
            if not isinstance(code, str) or len(code) != 2:
                c.fail(name, FelKod.FORMAT, f"VDG-kod måste vara 2 tecken, fick {code!r}")
            else:
                c.code_value(name, code, VDG, day)
    elif c.data.get("yrkeskategorier") is not None:
        c.fail("yrkeskategorier", FelKod.FORMAT, "måste vara en lista av VDG-koder")
    _akut(c)
    c.code("taxa", TAXA, day)
    for fee, _ in c.objects_one("patientavgift"):
        fee.fields_of(Patientavgift)
        klass = fee.text("klass", CLASS_PATTERN, "1–3 siffror")
        if klass in (None, "006"):
            fee.code("kod", TAXA, day)
        else:
            fee.text("kod", r"[0-9A-Za-z]{1,2}", "1–2 bokstäver eller siffror")
    c.text("vardperiodkod", CARE_PERIOD_PATTERN, _PERIOD_RULE)
    c.text("kontakttyp", REGION_CODE_PATTERN, _CODE_RULE)
    diagnoses = _diagnoses(c, day)
    conditions = _conditions(c, day, diagnoses)
    _procedures(c, day, diagnoses, conditions, last)
    _medicines(c, day, diagnoses, conditions)
    for row, _ in c.objects("produkter"):
        row.fields_of(Produkt)
        row.text("kod", ERSMO_CODE_PATTERN, "1–10 bokstäver eller siffror")
        row.whole_number("antal")
    for row, _ in c.objects("resursgrupper"):
        row.fields_of(Resursgrupp)
        row.text("kod", r"[0-9A-Za-z]{1,4}", "1–4 bokstäver eller siffror")
    for name in ("visteFore", "vardFore", "visteEfter", "vardEfter"):
        c.text(name, SINGLE_PATTERN[1:-1], "en bokstav eller siffra")
    c.kombika("remitterandeEnhet", registry, day, "remitterande enhet")
    c.kombika("remitteradTill", registry, day, "remitterad till")
    return enhet


def _vardansvar(c: Checker, day: date | None, registry: KombikaRegistry) -> Kombika | str | None:
    enhet = c.kombika("enhet", registry, day, "enhet")
    for name, allowed in (("vardansvarsform", _FORMS), ("niva", _LEVELS)):
        value = c.text(name)
        if value is not None and value not in allowed:
            c.fail(name, FelKod.KOD_OKAND, f"måste vara {', '.join(allowed)}, fick {value!r}")
    _period(c, day, registry)
    _conditions(c, day, _diagnoses(c, day))
    return enhet


def _vardhandelse(c: Checker, day: date | None, registry: KombikaRegistry) -> Kombika | str | None:
    enhet = c.kombika("enhet", registry, day, "enhet")
    _period(c, day, registry)
    return enhet


def _inskrivning(c: Checker, day: date | None, registry: KombikaRegistry) -> Kombika | str | None:
    enhet = c.kombika("enhet", registry, day, "enhet")
    c.code("inskrivningskod", IKOD, day)
    _akut(c)
    c.kombika("remitterandeEnhet", registry, day, "remitterande enhet")
    c.text("psykiatriskVardform", REGION_CODE_PATTERN, _CODE_RULE)
    c.text("vardperiodkod", CARE_PERIOD_PATTERN, _PERIOD_RULE)
    return enhet


def _utskrivning(c: Checker, day: date | None, registry: KombikaRegistry) -> Kombika | str | None:
    enhet = c.kombika("enhet", registry, day, "utskrivande enhet")
    admitting = c.kombika("inskrivandeEnhet", registry, day, "inskrivande enhet")
    if (
        isinstance(enhet, Kombika)
        and isinstance(admitting, Kombika)
        and enhet.inr + enhet.klin != admitting.inr + (admitting.klin)
    ):
        c.fail(
            "inskrivandeEnhet",
            FelKod.ANNAN_KLINIK,
            f"utskrivande enhet {enhet} måste tillhöra samma inrättning och klinik "
            f"({admitting.inr} {admitting.klin}) som inskrivande enhet {admitting}",
        )
    c.code("utskrivningskod", UKOD, day)
    c.kombika("utskrivenTill", registry, day, "utskriven till")
    c.moment("dodstid")
    _procedures(c, day, _diagnoses(c, day))
    c.text("vardperiodkod", CARE_PERIOD_PATTERN, _PERIOD_RULE)
    return enhet


def _tillganglighet(
    c: Checker, day: date | None, registry: KombikaRegistry
) -> Kombika | str | None:
    enhet = c.kombika("enhet", registry, day, "enhet")
    category = c.text("kontaktkategori")
    if category is not None and category not in KATEGORI:
        allowed = ", ".join(code.code for code in KATEGORI.codes())
        c.fail("kontaktkategori", FelKod.KOD_OKAND, f"måste vara {allowed}, fick {category!r}")
    c.boolean("vardgaranti")
    c.moment("besokstid")
    c.day("remissdatum")
    c.day("beslutsdatum")
    c.text("remisstyp", REGION_CODE_PATTERN, _CODE_RULE)
    c.text("undantagskod", REGION_CODE_PATTERN, _CODE_RULE)
    return enhet


BESOK = Resource("besok", "/vardhandelse/besok", Besok, "besoksdatum", "besokstid", _besok)
INSKRIVNING = Resource(
    "inskrivning",
    "/vardhandelse/inskrivning",
    Inskrivning,
    "inskrivningsdatum",
    "inskrivningstid",
    _inskrivning,
)
UTSKRIVNING = Resource(
    "utskrivning",
    "/vardhandelse/utskrivning",
    Utskrivning,
    "utskrivningsdatum",
    "utskrivningstid",
    _utskrivning,
)
TILLGANGLIGHET = Resource(
    "tillganglighet",
    "/tillganglighet",
    Tillganglighet,
    "bokningsdatum",
    None,
    _tillganglighet,
    by_source=True,
)
VARDANSVAR = Resource(
    "vardansvar", "/vardhandelse/vardansvar", Vardansvar, "startdatum", None, _vardansvar
)
VARDHANDELSER = tuple(
    Resource(name, f"/vardhandelse/{name}", Vardhandelse, "startdatum", None, _vardhandelse)
    for name in ("vardperiod", "undersokning", "expediering")
)
RESOURCES: tuple[Resource, ...] = (
    BESOK,
    INSKRIVNING,
    UTSKRIVNING,
    TILLGANGLIGHET,
    VARDANSVAR,
    *VARDHANDELSER,
)
