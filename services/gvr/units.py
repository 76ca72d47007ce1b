"""Which units a care contact or waiting-list entry names, on which day: checked in the catalog."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from shared.contracts import (
    Admission,
    Availability,
    CareContactEvent,
    CareEpisode,
    CareResponsibility,
    CareWaitEvent,
    Discharge,
    OutpatientVisit,
)
from shared.delivery.errors import NotOursError, NotYetKnownError, PermanentError

STOCKHOLM = ZoneInfo("Europe/Stockholm")


UNKNOWN_UNIT = "unknown_unit"  # the dead letter's class once the grace has passed


def unknown_unit(message: str, grace: timedelta) -> NotYetKnownError:
    """A kombika the catalog has never known, or an unknown HSA-id: retried while `grace` lasts
    (the code server's file may lag a new unit), then an `unknown_unit` dead letter."""
    return NotYetKnownError(message, grace=grace, final_class=UNKNOWN_UNIT)


class ClosedUnitError(PermanentError):
    """A unit closed on the event's date, or a kombika the code server knows but not as open on
    that date (GVR rejects the whole call: GVR-KOMBIKA-STANGD)."""

    error_class = "closed_unit"


class ActiveUnit(Protocol):
    hsa_id: str
    county_code: str | None

    def active_on(self, day: date) -> bool: ...


class UnitCatalog(Protocol):
    """What the GVR worker asks of the catalog (a CatalogView answers it)."""

    def unit_by_kombika(self, kombika: str, day: date) -> ActiveUnit | None: ...

    def knows_kombika(self, kombika: str) -> bool: ...

    def unit(self, hsa_id: str) -> ActiveUnit | None: ...


def event_day(event: CareContactEvent) -> date:
    """The date GVR judges codes and units by: the contact's own date, in Swedish time."""
    payload = event.payload
    match payload:
        case OutpatientVisit():
            if payload.visited_at is None:
                return payload.day
            return payload.visited_at.astimezone(STOCKHOLM).date()
        case Admission():
            return payload.admitted_at.astimezone(STOCKHOLM).date()
        case Discharge():
            return payload.discharged_at.astimezone(STOCKHOLM).date()
        case Availability():
            return payload.booked_on
        case CareResponsibility() | CareEpisode():
            return payload.starts_on
    raise AssertionError(f"unknown care contact {type(payload).__name__}")


UNIT_FIELDS = (
    "kombika",
    "unit_hsa_id",
    "referring_kombika",
    "referring_unit_hsa_id",
    "admitting_kombika",
    "discharging_kombika",
    "referred_to_kombika",
    "referred_to_unit",
    "end_unit",
)
"""The payload fields that can name a unit, in the order they are checked."""

_UNIT_FIELDS_OF: dict[type, tuple[tuple[str, str], ...]] = {}


def named_units(event: CareContactEvent) -> Iterator[tuple[str, str]]:
    """(field path, kombika or HSA-id) of every unit the contact names, referrers included."""
    payload = event.payload
    for path, field in _unit_fields(type(payload)):
        value = getattr(payload, field)
        if value:
            yield path, str(value)


def _unit_fields(kind: type) -> tuple[tuple[str, str], ...]:
    """(path, field) of the UNIT_FIELDS a payload class has, once per class: asking a pydantic
    model for an attribute it lacks goes through its slow `__getattr__` and an exception."""
    found = _UNIT_FIELDS_OF.get(kind)
    if found is None:
        fields = getattr(kind, "model_fields", {})
        found = tuple((f"payload.{f}", f) for f in UNIT_FIELDS if f in fields or hasattr(kind, f))
        _UNIT_FIELDS_OF[kind] = found
    return found


OWN_UNIT_FIELDS = ("kombika", "unit_hsa_id", "admitting_kombika", "discharging_kombika")
"""The fields naming the unit whose contact it is (referrers and end units may be elsewhere)."""


def check_units(
    event: CareContactEvent,
    catalog: UnitCatalog,
    grace: timedelta = timedelta(0),
    counties: frozenset[str] = frozenset({"01"}),
) -> None:
    """Raise for the first unit GVR would refuse: an unknown kombika (NotYetKnownError, retried
    for `grace`), a closed unit (ClosedUnitError); and NotOursError first when the contact's own
    unit is named by an HSA-id the catalog places outside `counties` (Region Stockholm's: a
    kombika is Stockholm's by construction)."""
    named = list(named_units(event))
    check_county(named, catalog, counties)
    check_known(named, event_day(event), catalog, grace)


def wait_units(event: CareWaitEvent) -> list[tuple[str, str]]:
    """(field path, kombika or HSA-id) of the unit a waiting-list entry waits at."""
    wait = event.payload
    if wait.kombika is not None:
        return [("payload.kombika", wait.kombika)]
    assert wait.unit_hsa_id is not None  # the contract sees to one of the two
    return [("payload.unit_hsa_id", wait.unit_hsa_id)]


def wait_day(event: CareWaitEvent) -> date:
    """The date GVR judges a booking's unit by: the booking's own, else (a booking withdrawn)
    the day the event was recorded, in Swedish time."""
    booked = event.payload.booked_on
    return booked if booked is not None else event.occurred_at.astimezone(STOCKHOLM).date()


def check_county(
    named: Sequence[tuple[str, str]], catalog: UnitCatalog, counties: frozenset[str]
) -> None:
    """NotOursError when an own unit (OWN_UNIT_FIELDS) is an HSA-id the catalog places outside
    `counties`."""
    for path, name in named:
        own = path.removeprefix("payload.") in OWN_UNIT_FIELDS
        if own and name.startswith("SE"):
            unit = catalog.unit(name)
            if unit is not None and unit.county_code and unit.county_code not in counties:
                raise NotOursError(
                    f"{path}: {name} is a unit of county {unit.county_code}, not GVR's"
                )


def check_known(
    named: Sequence[tuple[str, str]], day: date, catalog: UnitCatalog, grace: timedelta
) -> None:
    """NotYetKnownError for a unit the catalog does not know (retried for `grace`),
    ClosedUnitError for one not open on `day`."""
    for path, name in named:
        if name.startswith("SE"):  # an HSA-id
            unit, kind = catalog.unit(name), "HSA-id"
        else:
            unit, kind = catalog.unit_by_kombika(name, day), "kombika"
        if unit is None and kind == "kombika" and catalog.knows_kombika(name):
            raise ClosedUnitError(f"{path}: kombika {name} is not open on {day}")
        if unit is None:
            raise unknown_unit(f"{path}: {kind} {name} is not a known unit on {day}", grace)
        if not unit.active_on(day):
            raise ClosedUnitError(f"{path}: {kind} {name} ({unit.hsa_id}) is closed on {day}")
