"""A waiting-list entry → its place in CVR's reports: its unit's file of a period, and its row.
Pure.

A report (of a month, or of a day: `MappingRules.cadence`) holds every entry **still waiting**
at its cut-off and every entry **completed or removed** in its period. So an entry still
waiting is placed in the period its event was recorded in and *carried*: it is a row of each
later report of its unit until a version completes or removes it; a completed or removed entry
is placed in the period of that date — or, recorded later than that period, in the period it
was recorded in (a late completion is reported in the next report, never lost). The figures
that depend on the report's cut-off (`vantedagar` …) are
computed when the file is rendered (`services.cvr.waits`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from shared.contracts import CareWaitEvent
from shared.contracts.care_wait import CareWait
from shared.delivery.errors import NotOursError, NotYetKnownError
from shared.files.register import FileKey, Placement
from shared.schedule import Cadence, Period

STOCKHOLM = ZoneInfo("Europe/Stockholm")
STOCKHOLM_HSA_PREFIX = "SE2321000016-"  # Region Stockholm's HSA directory
UNKNOWN_UNIT = "unknown_unit"
WAIT_KINDS = {
    "first_visit": "forstabesok",
    "examination": "undersokning",
    "treatment": "behandling",
    "operation": "operation",
}
STATUS_WAITING, STATUS_COMPLETED, STATUS_REMOVED = "V", "G", "A"


class CountyUnit(Protocol):
    @property
    def county_code(self) -> str | None: ...


class UnitCatalog(Protocol):
    """What the CVR worker asks of the catalog (a CatalogView answers it)."""

    def unit(self, hsa_id: str) -> CountyUnit | None: ...


@dataclass(frozen=True)
class MappingRules:
    counties: frozenset[str] = frozenset({"01"})  # Region Stockholm
    hsa_prefixes: tuple[str, ...] = (STOCKHOLM_HSA_PREFIX,)
    grace: timedelta = timedelta(hours=6)
    zone: ZoneInfo = field(default=STOCKHOLM)
    cadence: Cadence = "monthly"  # the reports' periods: months or days


def place(event: CareWaitEvent, catalog: UnitCatalog, rules: MappingRules) -> Placement:
    """The entry's report and row. NotOursError: a unit of another region's; NotYetKnownError:
    an HSA-id of the region's the catalog does not know yet (retried, then `unknown_unit`)."""
    wait = event.payload
    owner = _owner(wait, catalog, rules)
    recorded = event.occurred_at.astimezone(rules.zone).date()
    closed = wait.completed_on or wait.removed_on
    period = Period.of(recorded, rules.cadence)
    if closed is not None:
        period = max(Period.of(closed, rules.cadence), period)
    return Placement(FileKey(period, owner), values(wait, owner), carried=closed is None)


def values(wait: CareWait, owner: str) -> dict[str, Any]:
    """The row's values (the file's column names); `undantag` carries the exception periods for
    the figures computed at the cut-off."""
    status = (
        STATUS_COMPLETED
        if wait.completed_on
        else STATUS_REMOVED
        if wait.removed_on
        else STATUS_WAITING
    )
    return {
        "status": status,
        "idtyp": str(wait.patient.id_type),
        "personid": wait.patient.id,
        "enhet": owner,
        "cvr_kod": wait.cvr_code,
        "vantetyp": WAIT_KINDS[wait.wait_kind],
        "prioritet": wait.priority,
        "vardgaranti": "J" if wait.guarantee_applies else "N",
        "remissdatum": wait.referral_received.isoformat(),
        "beslutsdatum": _iso(wait.decided_on),
        "bokningsdatum": _iso(wait.booked_on),
        "bokad_till": _iso(wait.booked_for),
        "genomford": _iso(wait.completed_on),
        "avford": _iso(wait.removed_on),
        "avford_orsak": wait.removed_reason,
        "undantag": [
            {"kind": e.kind, "start": e.start.isoformat(), "end": _iso(e.end)}
            for e in wait.exceptions
        ],
    }


def _owner(wait: CareWait, catalog: UnitCatalog, rules: MappingRules) -> str:
    if wait.kombika is not None:
        return wait.kombika  # Region Stockholm's own code
    hsa_id = wait.unit_hsa_id
    assert hsa_id is not None  # the contract requires one of the two
    unit = catalog.unit(hsa_id)
    if unit is None:
        if hsa_id.startswith(rules.hsa_prefixes):
            raise NotYetKnownError(
                f"payload.unit_hsa_id: {hsa_id} is not a known unit",
                grace=rules.grace,
                final_class=UNKNOWN_UNIT,
            )
        raise NotOursError(f"payload.unit_hsa_id: {hsa_id} is another region's unit")
    if unit.county_code not in rules.counties:
        raise NotOursError(
            f"payload.unit_hsa_id: {hsa_id} is a unit of county {unit.county_code}, "
            f"not of {', '.join(sorted(rules.counties))}"
        )
    return hsa_id


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()
