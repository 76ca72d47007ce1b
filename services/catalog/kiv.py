"""KIV (Katalog i Väst), Västra Götaland's regional directory, beside HSA. Pure; no I/O.

KIV is linked to HSA by HSA-id and adds what the region keeps about its units: its own unit
number, responsibility area, care type, whether the unit is in Vårdval, and the unit's end date.
A unit in both directories takes each attribute from its owner:

- HSA owns the national attributes: name, care giver, codes, addresses, coordinates, start date
  and kombikas;
- KIV owns the regional attributes and the end date (the region closes its units in KIV first).

A KIV unit that HSA does not list is not published: the workers need HSA's care giver.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from services.catalog.normalise import InvalidUnitError, hsa_date, hsa_timestamp
from shared.catalog.models import CareUnit, RegionalAttributes


@dataclass(frozen=True)
class KivUnit:
    """One KIV unit record as the catalog uses it."""

    hsa_id: str
    name: str | None
    regional: RegionalAttributes
    end_date: date | None
    updated_at: datetime | None


def _single(raw: Mapping[str, Any], attribute: str) -> str | None:
    """LDAP attributes may come as one value or a list of them: the first, as text."""
    value = raw.get(attribute)
    if isinstance(value, list):
        value = value[0] if value else None
    return None if value in (None, "") else str(value)


def _flag(raw: Mapping[str, Any], attribute: str) -> bool:
    value = raw.get(attribute)
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, bool) or value is None:
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "j", "ja", "yes"):
        return True
    if text in ("false", "0", "n", "nej", "no", ""):
        return False
    raise InvalidUnitError(f"{attribute}: expected a boolean, got {value!r}")


def normalise_kiv_unit(raw: Mapping[str, Any]) -> KivUnit:
    """One KIV record (LDAP attribute names) → KivUnit, or InvalidUnitError naming the field."""
    if not isinstance(raw, Mapping) or not _single(raw, "hsaIdentity"):
        raise InvalidUnitError("hsaIdentity: required field is missing")
    return KivUnit(
        hsa_id=str(_single(raw, "hsaIdentity")),
        name=_single(raw, "ou"),
        regional=RegionalAttributes(
            unit_code=_single(raw, "vgrAnsvarsnummer"),
            responsibility_area=_single(raw, "vgrAO3kod"),
            care_type=_single(raw, "vgrCareType"),
            vardval=_flag(raw, "vgrVardVal"),
            vardval_area=_single(raw, "vgrVardValOmrade"),
        ),
        end_date=hsa_date(_single(raw, "hsaEndDate"), "hsaEndDate"),
        updated_at=hsa_timestamp(_single(raw, "modifyTimestamp"), "modifyTimestamp"),
    )


def merge(hsa: CareUnit, kiv: KivUnit | None) -> CareUnit:
    """The unit as the catalog publishes it: HSA's, with KIV's attributes where KIV owns them."""
    if kiv is None:
        return hsa
    if kiv.hsa_id != hsa.hsa_id:
        raise ValueError(f"cannot merge KIV unit {kiv.hsa_id} into HSA unit {hsa.hsa_id}")
    changed = [t for t in (hsa.source_updated_at, kiv.updated_at) if t is not None]
    return hsa.model_copy(
        update={
            "regional": kiv.regional,
            "end_date": kiv.end_date,
            "sources": ("hsa", "kiv"),
            "source_updated_at": max(changed) if changed else None,
        }
    )
