"""How the CVR sandbox judges a file: the whole file (format, name, unit, replacement), then each
row (status, patient id, unit, codes, dates, the wait's days). Pure: the holding is given.

The register counts the wait itself: `vantedagar` must be what the row's own dates and
`pvv_dagar` give (`services.cvr.waits`, the rule regbridge renders with), or the row is refused
`VANTETID`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from services.cvr.format import (
    COMPLETED,
    ID_TYPES,
    NO,
    REMOVAL_REASONS,
    REMOVED,
    STATUSES,
    WAIT_KIND_OF,
    WAITING,
    YES,
    end_date,
    file_name,
)
from services.cvr.reading import FileFormatError, ReadFile, ReadHeader, ReadRow, read
from services.cvr.waits import guarantee_start
from shared.files.lines import FileBuildError
from shared.files.register import FileKey
from shared.identifiers import (
    InvalidIdentifierError,
    PatientIdType,
    parse_kombika,
    validate_hsa_id,
    validate_patient_id,
)
from shared.schedule import Period

CODE = re.compile(r"[0-9A-Za-z]{1,10}", re.ASCII)  # cvr_kod and prioritet
DAYS = re.compile(r"0|[1-9][0-9]{0,5}", re.ASCII)
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


@dataclass(frozen=True)
class Held:
    """The file the register holds for an owner and period."""

    name: str
    sequence: int


class Holding(Protocol):
    def current(self, owner: str, period: Period) -> Held | None: ...

    def received(self, name: str) -> ReadHeader | None: ...


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


def judge(name: str, content: bytes, *, holding: Holding) -> Judgement:
    """The register's word on the file `content` delivered as `name`."""
    try:
        parsed = read(content)
    except FileFormatError as error:
        where = f"rad {error.line}: " if error.line is not None else ""
        return Judgement(None, code=error.code, reason=f"{where}{error.reason}")
    try:
        _check_file(name, parsed.header, holding)
    except Refused as refused:
        return Judgement(parsed, code=refused.code, reason=refused.reason)
    seen: set[str] = set()
    verdicts = []
    for row in parsed.rows:
        problem = (
            ("DUBBLETT", f"radnyckel {row.record_id} is already in this file")
            if row.record_id in seen
            else check_row(row.values, parsed.header)
        )
        seen.add(row.record_id)
        verdicts.append(RowJudgement(row, *problem) if problem else RowJudgement(row))
    return Judgement(parsed, tuple(verdicts))


def _check_file(name: str, header: ReadHeader, holding: Holding) -> None:
    if header.name != name:
        raise Refused("FILNAMN", f"the header names {header.name}, the file is {name}")
    if not valid_owner(header.owner):
        raise Refused("ENHET", f"enhet {header.owner} is neither an HSA-id nor a kombika")
    try:
        expected = file_name(FileKey(header.period, header.owner), header.sequence)
    except FileBuildError as error:
        raise Refused("FILNAMN", str(error)) from None
    if name != expected:
        raise Refused("FILNAMN", f"a file of {header.owner}, {header.period}: {expected}")
    _check_replacement(header, holding)


def valid_owner(owner: str) -> bool:
    """An HSA-id, or a kombika as one word (no spaces)."""
    try:
        validate_hsa_id(owner)
    except InvalidIdentifierError:
        try:
            return str(parse_kombika(owner)) == owner
        except InvalidIdentifierError:
            return False
    return True


def _check_replacement(header: ReadHeader, holding: Holding) -> None:
    """As VGPV's: the register keeps the latest file per owner and period; a new file of a
    period it holds names the held one in `ersatter`, with a higher sequence."""
    current = holding.current(header.owner, header.period)
    if current is None:
        if header.replaces is None:
            return
        replaced = holding.received(header.replaces)
        if replaced is None or (replaced.owner, replaced.period) != (header.owner, header.period):
            raise Refused(
                "ERSATTNING",
                f"ersatter {header.replaces}: no file of this unit and period by that name",
            )
        if replaced.sequence >= header.sequence:
            raise Refused("ERSATTNING", f"sekvens {header.sequence} must be above the replaced")
        return
    if header.replaces != current.name:
        raise Refused(
            "ERSATTNING",
            f"the register holds {current.name} for {header.owner} {header.period}: "
            f"a new file must name it in ersatter",
        )
    if header.sequence <= current.sequence:
        raise Refused("ERSATTNING", f"sekvens {header.sequence} must be above {current.name}'s")


def check_row(values: dict[str, str | None], header: ReadHeader) -> tuple[str, str] | None:
    """(code, reason) of the first thing wrong with a row of the file `header` heads, or None."""
    status = values["status"]
    if status not in STATUSES:
        return "STATUS", f"status {status} is not V, G or A"
    problem = _check_codes(values, header)
    if problem is not None:
        return problem
    try:
        days = {name: _date(values, name) for name in _DATES}
    except ValueError as error:
        return "DATUM", str(error)
    referral, start = days["remissdatum"], days["garanti_start"]
    if referral is None or start is None:
        return "DATUM", "remissdatum and garanti_start are required"
    problem = _check_order(days, referral) or _check_outcome(values, days, header.period)
    if problem is not None:
        return problem
    expected_start = guarantee_start(
        WAIT_KIND_OF[values["vantetyp"] or ""], referral, days["beslutsdatum"]
    )
    if start != expected_start:
        return "GARANTISTART", (
            f"garanti_start {start} is not {expected_start} (remissdatum; beslutsdatum for "
            f"a behandling or operation decided on)"
        )
    end = end_date(status, days["genomford"], days["avford"], header.period)
    waited = max(0, (end - start).days)
    pvv = values["pvv_dagar"] or ""
    if not DAYS.fullmatch(pvv) or int(pvv) > waited:
        return "PVV", f"pvv_dagar {pvv or '(empty)'} is not a number of days from 0 to {waited}"
    wait = values["vantedagar"] or ""
    expected = max(0, waited - int(pvv))
    if not DAYS.fullmatch(wait) or int(wait) != expected:
        return "VANTETID", (
            f"vantedagar {wait or '(empty)'}: the register counts {expected} "
            f"({start} to {end}: {waited} days, less {pvv} patient-chosen)"
        )
    return None


_DATES = (
    "remissdatum",
    "beslutsdatum",
    "bokningsdatum",
    "bokad_till",
    "genomford",
    "avford",
    "garanti_start",
)


def _check_codes(values: dict[str, str | None], header: ReadHeader) -> tuple[str, str] | None:
    id_type = values["idtyp"]
    if id_type not in ID_TYPES:
        return "IDTYP", f"idtyp {id_type} is not one of {', '.join(ID_TYPES)}"
    try:
        validate_patient_id(PatientIdType(id_type), values["personid"] or "")
    except InvalidIdentifierError as error:
        return "PERSONID", str(error)
    if values["enhet"] != header.owner:
        return "ENHET", f"enhet {values['enhet']} is not the file's ({header.owner})"
    if not CODE.fullmatch(values["cvr_kod"] or ""):
        return "CVRKOD", f"cvr_kod {values['cvr_kod']} is not 1-10 letters or digits"
    if values["vantetyp"] not in WAIT_KIND_OF:
        return "VANTETYP", f"vantetyp {values['vantetyp']} is not one of {', '.join(WAIT_KIND_OF)}"
    if values["prioritet"] is not None and not CODE.fullmatch(values["prioritet"]):
        return "PRIORITET", f"prioritet {values['prioritet']} is not 1-10 letters or digits"
    for flag in ("vardgaranti", "mov"):
        if values[flag] not in (YES, NO):
            return flag.upper(), f"{flag} must be {YES} or {NO}"
    return None


def _check_order(days: dict[str, date | None], referral: date) -> tuple[str, str] | None:
    pairs = (
        ("remissdatum", "beslutsdatum"),
        ("bokningsdatum", "bokad_till"),
        ("remissdatum", "genomford"),
        ("remissdatum", "avford"),
        ("remissdatum", "garanti_start"),
    )
    for earlier, later in pairs:
        first, then = days[earlier], days[later]
        if first is not None and then is not None and then < first:
            return "DATUM", f"{later} {then} is before {earlier} {first}"
    return None


def _check_outcome(
    values: dict[str, str | None], days: dict[str, date | None], period: Period
) -> tuple[str, str] | None:
    """G needs genomford, A avford and avford_orsak, V neither; a completion or removal is not
    after the period (one before it is a late report, taken)."""
    status, completed, removed = values["status"], days["genomford"], days["avford"]
    reason = values["avford_orsak"]
    if status == COMPLETED and (completed is None or removed is not None or reason is not None):
        return "STATUS", "status G needs genomford, and no avford or avford_orsak"
    if status == REMOVED and (removed is None or reason is None or completed is not None):
        return "STATUS", "status A needs avford and avford_orsak, and no genomford"
    if status == WAITING and (completed is not None or removed is not None or reason is not None):
        return "STATUS", "status V (still waiting) has no genomford, avford or avford_orsak"
    ended = completed or removed
    if ended is not None and ended > period.last_day:
        return "STATUS", f"{'genomford' if completed else 'avford'} {ended} is after {period}"
    if reason is not None and reason not in REMOVAL_REASONS:
        return "AVFORDORSAK", f"avford_orsak {reason} is not one of {', '.join(REMOVAL_REASONS)}"
    return None


def _date(values: dict[str, str | None], name: str) -> date | None:
    text = values[name]
    if text is None:
        return None
    try:
        if ISO_DATE.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise ValueError(f"{name} {text} is not a date YYYY-MM-DD")
