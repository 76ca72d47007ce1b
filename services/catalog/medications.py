"""NVR's vaccine list as FHIR (a Bundle of Medications, one per batch) → the catalog's Vaccines.

R4's ``Medication`` has a single ``batch``, so NVR's list holds one Medication per batch (and
one without ``batch`` for a vaccine that has none). They are grouped by NPL-id — the
``code.coding`` under `VaccineSystems.npl_id` — into one `Vaccine`: name from ``code.text`` (else
the NPL coding's display), ATC code from the coding under `VaccineSystems.atc`, a COVID-19
vaccine when that code is in ATC group J07BN, batches from ``batch.lotNumber`` and
``batch.expirationDate`` (its day; a year or month alone is no expiry date).
docs/nvr-api.md, "vaccine list".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.medication import Medication
from pydantic import ValidationError

from shared.catalog.models import Vaccine

COVID19_ATC_PREFIX = "J07BN"  # WHO ATC: Covid-19 vaccines


class VaccineListError(ValueError):
    """The answer is not a FHIR Bundle of Medications (the message says what it lacked)."""


@dataclass(frozen=True)
class VaccineSystems:
    """The coding systems of the vaccine list (HL7 Sweden's NPL-id, WHO's ATC)."""

    npl_id: str = "http://electronichealth.se/identifier/nplid"
    atc: str = "http://www.whocc.no/atc"


@dataclass(frozen=True)
class ListedVaccine:
    """One NPL-id of the list: its Vaccine, or why its Medications could not be read."""

    npl_id: str | None
    vaccine: Vaccine | None
    problem: str | None = None


def medications(body: Any) -> list[Medication]:
    """The Medications of a `searchset` or `collection` Bundle; VaccineListError otherwise."""
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise VaccineListError("no FHIR Bundle")
    try:
        bundle = Bundle.model_validate(body)
    except ValidationError as exc:
        raise VaccineListError(f"not a valid FHIR R4 Bundle: {exc.error_count()} errors") from None
    if bundle.type not in ("searchset", "collection"):
        raise VaccineListError(f"a Bundle of type {bundle.type}, not searchset or collection")
    return [
        entry.resource for entry in bundle.entry or [] if isinstance(entry.resource, Medication)
    ]


def listed_vaccines(body: Any, systems: VaccineSystems | None = None) -> Iterator[ListedVaccine]:
    """The list's vaccines, one per NPL-id in the order first listed."""
    systems = systems or VaccineSystems()
    groups: dict[str, list[Medication]] = {}
    for medication in medications(body):
        npl_id = _code(medication, systems.npl_id)
        if npl_id is None:
            where = f"Medication/{medication.id}" if medication.id else "a Medication"
            yield ListedVaccine(None, None, f"{where} has no coding under {systems.npl_id}")
            continue
        groups.setdefault(npl_id, []).append(medication)
    for npl_id, group in groups.items():
        try:
            vaccine = normalise_vaccine(npl_id, group, systems)
        except ValidationError as exc:
            yield ListedVaccine(npl_id, None, f"vaccine {npl_id}: {exc}")
        else:
            yield ListedVaccine(npl_id, vaccine)


def normalise_vaccine(
    npl_id: str, group: Sequence[Medication], systems: VaccineSystems | None = None
) -> Vaccine:
    """The Medications of one NPL-id → Vaccine (pydantic's ValidationError when invalid)."""
    systems = systems or VaccineSystems()
    name = next((m.code.text for m in group if m.code is not None and m.code.text), None)
    name = name or next(
        (c.display for m in group for c in _codings(m, systems.npl_id) if c.display), ""
    )
    atc = next((code for m in group if (code := _code(m, systems.atc))), None)
    batches = [
        {
            "number": m.batch.lotNumber,
            "expires_on": _day(m.batch.expirationDate),
        }
        for m in group
        if m.batch is not None and m.batch.lotNumber
    ]
    return Vaccine.model_validate(
        {
            "npl_id": npl_id,
            "name": name,
            "atc_code": atc,
            "covid19": (atc or "").upper().startswith(COVID19_ATC_PREFIX),
            "batches": batches,
        }
    )


def _day(value: object) -> date | None:
    """A dateTime's day; None when absent or only a year or month ("2027-06")."""
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else None


def _codings(medication: Medication, system: str) -> list[Any]:
    if medication.code is None:
        return []
    return [c for c in medication.code.coding or [] if c.system == system and c.code]


def _code(medication: Medication, system: str) -> str | None:
    found = _codings(medication, system)
    return str(found[0].code) if found else None
