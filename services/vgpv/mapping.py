"""A care contact → its place in VGPV's files: the unit's month, and the row it becomes. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from services.vgpv.units import UnitCatalog, UnitRules, reporting_unit
from shared.contracts import CareContactEvent, OutpatientVisit
from shared.delivery.errors import InvalidEventError, NotOursError
from shared.files.register import FileKey, Placement
from shared.identifiers import PatientIdType
from shared.schedule import Period

STOCKHOLM = ZoneInfo("Europe/Stockholm")
ID_TYPES = {  # the contract's id type → the file's idtyp
    PatientIdType.PNR: "PNR",
    PatientIdType.SNR: "SNR",
    PatientIdType.RESERVE_VGR: "RNR",  # Västra Götaland's reserve number
}
DEFAULT_VISIT_TYPES = {"1": "mottagning", "2": "hembesok", "3": "telefon", "4": "digital"}
HOME_VISIT = "hembesok"
OFFICE_VISIT = "mottagning"
ROW_FIELDS = (
    "idtyp",
    "personid",
    "besoksdatum",
    "enhet_hsaid",
    "ansvarsnummer",
    "vardval",
    "yrkeskategorier",
    "besokstyp",
    "akut",
    "diagnoser",
    "atgarder",
)
"""A row's values, in the file's column order (docs/vgpv-file.md)."""


@dataclass(frozen=True)
class MappingRules:
    """What the settings decide about placing a visit."""

    units: UnitRules = field(default_factory=UnitRules)
    visit_types: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_VISIT_TYPES))
    zone: ZoneInfo = STOCKHOLM


def visit_day(visit: OutpatientVisit, zone: ZoneInfo = STOCKHOLM) -> date:
    """The visit's date on the region's clock (a time given in another offset moves to it)."""
    if visit.visited_at is not None:
        return visit.visited_at.astimezone(zone).date()
    return visit.day


def place(event: CareContactEvent, catalog: UnitCatalog, rules: MappingRules) -> Placement:
    """The file (the visit's month, its unit) and row of `event`.

    NotOursError: not an outpatient visit, or a unit that does not report to VGPV (a kombika is
    Region Stockholm's code: its contacts are GVR's). InvalidEventError: a visit VGPV cannot
    take as it is (the reason names the field). NotYetKnownError, ClosedUnitError: see
    `reporting_unit`."""
    visit = event.payload
    if not isinstance(visit, OutpatientVisit):
        raise NotOursError(f"payload.kind {visit.kind}: VGPV's file holds outpatient visits only")
    if visit.unit_hsa_id is None:
        raise NotOursError(
            f"payload.kombika {visit.kombika}: a kombika is Region Stockholm's code, not VGPV's"
        )
    day = visit_day(visit, rules.zone)
    unit = reporting_unit("payload.unit_hsa_id", visit.unit_hsa_id, day, catalog, rules.units)
    values: dict[str, Any] = {
        "idtyp": _id_type(visit),
        "personid": visit.patient.id,
        "besoksdatum": day.isoformat(),
        "enhet_hsaid": unit.hsa_id,
        "ansvarsnummer": unit.unit_code,
        "vardval": unit.area,
        "yrkeskategorier": _professions(visit),
        "besokstyp": _visit_type(visit, rules.visit_types),
        "akut": "J" if visit.akut in ("J", "1") else "N",
        "diagnoser": list(visit.diagnoses),
        "atgarder": list(dict.fromkeys(p.code for p in visit.procedures)),
    }
    return Placement(FileKey(Period.of(day), unit.hsa_id), values)


def _id_type(visit: OutpatientVisit) -> str:
    id_type = visit.patient.id_type
    code = ID_TYPES.get(PatientIdType(id_type))
    if code is None:
        raise InvalidEventError(
            f"payload.patient.id_type: VGPV takes a personnummer, a samordningsnummer or "
            f"Västra Götaland's reserve number (PNR, SNR, RESERVE_VGR), not {id_type}"
        )
    return code


def _professions(visit: OutpatientVisit) -> list[str]:
    if not visit.professions:
        raise InvalidEventError(
            "payload.professions: VGPV needs the profession category of whoever the patient met"
        )
    return list(dict.fromkeys(code.upper() for code in visit.professions))


def _visit_type(visit: OutpatientVisit, visit_types: Mapping[str, str]) -> str:
    if visit.contact_form == "home_care":
        return HOME_VISIT
    if visit.visit_type is None:
        return OFFICE_VISIT
    known = visit_types.get(visit.visit_type)
    if known is None:
        choices = ", ".join(sorted(visit_types))
        raise InvalidEventError(
            f"payload.visit_type: {visit.visit_type} is not a visit type VGPV knows ({choices})"
        )
    return known
