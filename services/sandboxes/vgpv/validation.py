"""How the VGPV sandbox judges a file: the whole file (format, unit, window, replacement), then
each row (patient id, date, codes). Pure: the units, the window and the holding are given."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from services.vgpv.reading import FileFormatError, ReadFile, ReadHeader, ReadRow, read
from shared.identifiers import (
    InvalidIdentifierError,
    validate_icd10se,
    validate_kva,
    validate_personnummer,
    validate_reserve_vgr,
    validate_samordningsnummer,
)
from shared.schedule import MonthlyWindow, Period

AREAS = frozenset({"primarvard", "rehab"})  # VG Primärvård, Vårdval Rehab
PROFESSIONS = frozenset(
    {"LK", "SJ", "AS", "BM", "DI", "FT", "AT", "KU", "PS", "LO", "UK", "SS", "DT", "KI"}
)
REHAB_PROFESSIONS = frozenset({"FT", "AT"})  # a Vårdval Rehab visit meets one of them
VISIT_TYPES = frozenset({"mottagning", "hembesok", "telefon", "digital"})
ID_CHECKS: dict[str, Callable[[str], str]] = {
    "PNR": validate_personnummer,
    "SNR": validate_samordningsnummer,
    "RNR": validate_reserve_vgr,
}


class KivUnits(Protocol):
    """KIV as the sandbox reads it (a KivDirectory)."""

    def get(self, hsa_id: str) -> dict[str, Any] | None: ...


@dataclass(frozen=True)
class Held:
    """The file the register holds for a unit and month."""

    name: str
    sequence: int


class Holding(Protocol):
    def current(self, unit: str, period: Period) -> Held | None: ...

    def received(self, name: str) -> ReadHeader | None: ...

    def held_rows(self, unit: str, period: Period) -> frozenset[str]:
        """The row keys held for `unit` and `period`, later months' rows applied."""
        ...


@dataclass(frozen=True)
class RowJudgement:
    row: ReadRow
    code: str | None = None  # None: accepted
    reason: str | None = None

    @property
    def accepted(self) -> bool:
        return self.code is None


@dataclass(frozen=True)
class Judgement:
    """A file refused whole (`code`, `reason`), or read with a verdict per row."""

    file: ReadFile | None
    rows: tuple[RowJudgement, ...] = ()
    code: str | None = None
    reason: str | None = None

    @property
    def status(self) -> str:
        if self.code is not None:
            return "avvisad"
        if all(row.accepted for row in self.rows):
            return "godkand"
        return "delvis_godkand" if any(row.accepted for row in self.rows) else "avvisad"


class Refused(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def judge(
    name: str,
    content: bytes,
    *,
    now: datetime,
    kiv: KivUnits,
    window: MonthlyWindow,
    holding: Holding,
) -> Judgement:
    """The register's word on the upload `content` named `name`, at `now`."""
    try:
        parsed = read(content)
    except FileFormatError as error:
        where = f"rad {error.line}: " if error.line is not None else ""
        return Judgement(None, code=error.code, reason=f"{where}{error.reason}")
    try:
        unit = _check_file(name, parsed.header, now, kiv, window, holding)
    except Refused as refused:
        return Judgement(parsed, code=refused.code, reason=refused.reason)
    held: dict[Period, frozenset[str]] = {}

    def held_rows(period: Period) -> frozenset[str]:
        if period not in held:
            held[period] = holding.held_rows(parsed.header.unit_hsa_id, period)
        return held[period]

    seen: set[str] = set()
    verdicts = []
    for row in parsed.rows:
        code_reason = _check_row(row, parsed.header, unit, held_rows, seen)
        seen.add(row.record_id)
        verdicts.append(RowJudgement(row, *code_reason) if code_reason else RowJudgement(row))
    return Judgement(parsed, tuple(verdicts))


def _check_file(
    name: str,
    header: ReadHeader,
    now: datetime,
    kiv: KivUnits,
    window: MonthlyWindow,
    holding: Holding,
) -> Mapping[str, Any]:
    if header.name != name:
        raise Refused("FILNAMN", f"the header names {header.name}, the upload {name}")
    period_window = window.window(header.period)
    if now < period_window.opens_at:
        raise Refused(
            "TIDIG",
            f"{header.period}'s window opens {period_window.opens_at.isoformat()}: too early",
        )
    if now >= period_window.closes_at:
        raise Refused(
            "SEN",
            f"{header.period}'s window closed {period_window.closes_at.isoformat()}: too late",
        )
    unit = kiv.get(header.unit_hsa_id)
    if unit is None:
        raise Refused("ENHET", f"{header.unit_hsa_id} is not a unit in KIV")
    area = unit.get("vgrVardValOmrade") or ("primarvard" if unit.get("vgrVardVal") else None)
    if not unit.get("vgrVardVal") or area not in AREAS:
        raise Refused(
            "ENHET", f"{header.unit_hsa_id} is not in VG Primärvård or Vårdval Rehab in KIV"
        )
    if header.unit_code and header.unit_code != unit.get("vgrAnsvarsnummer"):
        raise Refused(
            "ANSVARSNUMMER",
            f"{header.unit_code} is not {header.unit_hsa_id}'s ansvarsnummer in KIV",
        )
    if header.area and header.area != area:
        raise Refused("VARDVAL", f"{header.unit_hsa_id} is in {area} in KIV, not {header.area}")
    _check_replacement(header, holding)
    return {**unit, "vgrVardValOmrade": area}


def _check_replacement(header: ReadHeader, holding: Holding) -> None:
    current = holding.current(header.unit_hsa_id, header.period)
    if current is None:
        if header.replaces is None:
            return
        replaced = holding.received(header.replaces)
        if replaced is None or (replaced.unit_hsa_id, replaced.period) != (
            header.unit_hsa_id,
            header.period,
        ):
            raise Refused(
                "ERSATTNING",
                f"ersatter {header.replaces}: no file of this unit and month by that name",
            )
        if replaced.sequence >= header.sequence:
            raise Refused("ERSATTNING", f"sekvens {header.sequence} must be above the replaced")
        return
    if header.replaces != current.name:
        raise Refused(
            "ERSATTNING",
            f"the register holds {current.name} for {header.unit_hsa_id} {header.period}: "
            f"a new file must name it in ersatter",
        )
    if header.sequence <= current.sequence:
        raise Refused("ERSATTNING", f"sekvens {header.sequence} must be above {current.name}'s")


def _check_row(
    row: ReadRow,
    header: ReadHeader,
    unit: Mapping[str, Any],
    held_rows: Callable[[Period], frozenset[str]],
    seen: set[str],
) -> tuple[str, str] | None:
    """(code, reason) of the first thing wrong with `row`, or None. A correction (`K`) of a row
    the register does not hold for its earlier month is a late row of that month: its values
    are checked as a row's of that month, whatever the version."""
    if row.record_id in seen:
        return "DUBBLETT", f"radnyckel {row.record_id} is already in this file"
    period = header.period if row.kind == "row" else row.corrects
    assert period is not None  # the reader saw to it
    if row.kind != "row" and period >= header.period:
        return "KORRIGERING", f"a correction corrects an earlier month than {header.period}"
    if row.kind == "cancellation":
        if row.record_id not in held_rows(period):
            return "KORRIGERING", f"the register holds no row {row.record_id} for {period}"
        return None
    return _check_values(row.values, period, header, unit)


def _check_values(
    values: Mapping[str, Any], period: Period, header: ReadHeader, unit: Mapping[str, Any]
) -> tuple[str, str] | None:
    check = ID_CHECKS.get(values.get("idtyp") or "")
    if check is None:
        return "IDTYP", f"idtyp {values.get('idtyp')} is not PNR, SNR or RNR"
    try:
        check(values.get("personid") or "")
    except InvalidIdentifierError as error:
        return "PERSONID", str(error)
    try:
        day = date.fromisoformat(values.get("besoksdatum") or "")
    except ValueError:
        return "DATUM", "besoksdatum must be YYYY-MM-DD"
    if Period.of(day) != period:
        return "DATUM", f"besoksdatum {day} is not in {period}"
    if values.get("enhet_hsaid") != header.unit_hsa_id:
        return "ENHET", f"enhet_hsaid {values.get('enhet_hsaid')} is not the file's unit"
    if values.get("ansvarsnummer") != unit.get("vgrAnsvarsnummer"):
        return "ANSVARSNUMMER", f"{values.get('ansvarsnummer')} is not the unit's in KIV"
    professions = values.get("yrkeskategorier") or []
    unknown = [code for code in professions if code not in PROFESSIONS]
    if not professions or unknown:
        return "YRKE", f"yrkeskategorier must be known codes, not {unknown or 'none'}"
    if unit["vgrVardValOmrade"] == "rehab" and not REHAB_PROFESSIONS & set(professions):
        return "YRKE", "a Vårdval Rehab visit meets a physiotherapist (FT) or an OT (AT)"
    if values.get("besokstyp") not in VISIT_TYPES:
        choices = ", ".join(sorted(VISIT_TYPES))
        return "BESOKSTYP", f"besokstyp {values.get('besokstyp')} is not one of {choices}"
    if values.get("akut") not in ("J", "N"):
        return "AKUT", "akut must be J or N"
    for code in values.get("diagnoser") or []:
        try:
            validate_icd10se(code)
        except InvalidIdentifierError as error:
            return "DIAGNOS", f"{code}: {error.rule}"
    for code in values.get("atgarder") or []:
        try:
            validate_kva(code)
        except InvalidIdentifierError as error:
            return "KVA", f"{code}: {error.rule}"
    return None
