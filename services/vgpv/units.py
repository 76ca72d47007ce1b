"""Whose visit it is: the unit a contact names, found in the catalog, in VGPV's Vårdval or not."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

from shared.delivery.errors import NotOursError, NotYetKnownError, PermanentError

UNKNOWN_UNIT = "unknown_unit"  # the dead letter's class once the grace has passed
UNIT_NOT_IN_KIV = "unit_not_in_kiv"
UNIT_WITHOUT_CODE = "unit_without_code"
VASTRA_GOTALAND = "14"  # county code


class ClosedUnitError(PermanentError):
    """The unit is closed on the visit's date: the register would refuse the row."""

    error_class = "closed_unit"


class RegionalView(Protocol):
    @property
    def unit_code(self) -> str | None: ...

    @property
    def vardval(self) -> bool: ...

    @property
    def vardval_area(self) -> str | None: ...


class CatalogUnit(Protocol):
    @property
    def hsa_id(self) -> str: ...

    @property
    def county_code(self) -> str | None: ...

    @property
    def regional(self) -> RegionalView | None: ...

    def active_on(self, day: date) -> bool: ...


class UnitCatalog(Protocol):
    """What the VGPV worker asks of the catalog (a CatalogView answers it)."""

    def unit(self, hsa_id: str) -> CatalogUnit | None: ...


@dataclass(frozen=True)
class UnitRules:
    """Which units report to VGPV (the settings' `vardval_areas` …)."""

    areas: frozenset[str] = frozenset({"primarvard", "rehab"})
    default_area: str = "primarvard"
    hsa_prefixes: tuple[str, ...] = ("SE2321000131-",)
    grace: timedelta = timedelta(0)


@dataclass(frozen=True)
class ReportingUnit:
    """A unit of VG Primärvård or Vårdval Rehab, as its rows name it."""

    hsa_id: str
    unit_code: str
    area: str


def reporting_unit(
    path: str, hsa_id: str, day: date, catalog: UnitCatalog, rules: UnitRules
) -> ReportingUnit:
    """The unit `hsa_id` (named at `path`) if it reports to VGPV on `day`; else NotOursError
    (another region's, or not in VGPV's Vårdval), NotYetKnownError (a VGR unit the catalog or
    KIV does not list yet, retried for the grace), ClosedUnitError."""
    unit = catalog.unit(hsa_id)
    if unit is None:
        if hsa_id.startswith(rules.hsa_prefixes):
            raise NotYetKnownError(
                f"{path}: {hsa_id} is not in the catalog (yet)",
                grace=rules.grace,
                final_class=UNKNOWN_UNIT,
            )
        raise NotOursError(f"{path}: {hsa_id} is not in Västra Götaland's directory: not VGPV's")
    regional = unit.regional
    if regional is None:
        if unit.county_code == VASTRA_GOTALAND:
            raise NotYetKnownError(
                f"{path}: {hsa_id} is a Västra Götaland unit that KIV does not list (yet)",
                grace=rules.grace,
                final_class=UNIT_NOT_IN_KIV,
            )
        raise NotOursError(
            f"{path}: {hsa_id} is a unit of county {unit.county_code or 'unknown'}, not VGPV's"
        )
    if not regional.vardval:
        raise NotOursError(f"{path}: {hsa_id} is not in a Vårdval: not VGPV's")
    area = regional.vardval_area or rules.default_area
    if area not in rules.areas:
        raise NotOursError(
            f"{path}: {hsa_id} is in Vårdval {area}, not VG Primärvård or Vårdval Rehab"
        )
    if not unit.active_on(day):
        raise ClosedUnitError(f"{path}: {hsa_id} is closed on {day}")
    if not regional.unit_code:
        raise NotYetKnownError(
            f"{path}: {hsa_id} has no vgrAnsvarsnummer in KIV",
            grace=rules.grace,
            final_class=UNIT_WITHOUT_CODE,
        )
    return ReportingUnit(hsa_id, regional.unit_code, area)
