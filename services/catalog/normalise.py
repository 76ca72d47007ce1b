"""HSA's unit record (GetHsaUnit / export row) → the catalog's CareUnit. Pure; no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from shared.catalog.models import Address, CareUnit, KombikaPeriod
from shared.delivery.errors import PermanentError

STOCKHOLM = ZoneInfo("Europe/Stockholm")


class InvalidUnitError(PermanentError):
    """HSA gave a unit record that cannot become a catalog entry (names the field and rule)."""

    error_class = "invalid_unit"


def hsa_date(value: str | None, field: str) -> date | None:
    """HSA dates are `YYYYMMDD`."""
    if value in (None, ""):
        return None
    try:
        return _date(str(value))
    except ValueError:
        raise InvalidUnitError(f"{field}: expected YYYYMMDD, got {value!r}") from None


def hsa_timestamp(value: str | None, field: str) -> datetime | None:
    """HSA timestamps are `YYYYMMDDhhmmss` in Swedish local time without a zone: add the zone."""
    if value in (None, ""):
        return None
    try:
        local = _local_time(str(value))
    except ValueError:
        raise InvalidUnitError(f"{field}: expected YYYYMMDDhhmmss, got {value!r}") from None
    return local.replace(tzinfo=STOCKHOLM)


@lru_cache(maxsize=65_536)  # an export repeats its dates (start dates, kombika periods) often
def _date(text: str) -> date:
    """`strptime(text, "%Y%m%d")`, read directly where it is eight digits (which strptime reads
    the same way: its two-digit alternatives come first); anything else is left to strptime."""
    if len(text) == 8 and text.isascii() and text.isdigit():
        try:
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            pass
    return datetime.strptime(text, "%Y%m%d").date()


def _local_time(text: str) -> datetime:
    """`strptime(text, "%Y%m%d%H%M%S")`, read directly where it is fourteen digits that make a
    time (strptime reads those the same way); anything else is left to strptime."""
    if len(text) == 14 and text.isascii() and text.isdigit():
        try:
            return datetime(
                int(text[:4]),
                int(text[4:6]),
                int(text[6:8]),
                int(text[8:10]),
                int(text[10:12]),
                int(text[12:]),
            )
        except ValueError:
            pass
    return datetime.strptime(text, "%Y%m%d%H%M%S")


def _kombika_periods(raw: Any) -> tuple[KombikaPeriod, ...]:
    """HSA gives each kombika with its valid-from date; the next one of a unit ends the previous."""
    if not raw:
        return ()
    if not isinstance(raw, list):
        raise InvalidUnitError("kombika: expected a list")
    starts = sorted(
        (
            (hsa_date(item.get("validFrom"), "kombika.validFrom"), str(item.get("code", "")))
            for item in raw
            if isinstance(item, Mapping)
        ),
        key=lambda pair: pair[0] or date.min,
    )
    periods = []
    for index, (valid_from, code) in enumerate(starts):
        valid_to = starts[index + 1][0] if index + 1 < len(starts) else None
        periods.append(
            {"kombika": code, "valid_from": valid_from or date.min, "valid_to": valid_to}
        )
    return tuple(KombikaPeriod.model_validate(p) for p in periods)


def _address(raw: Mapping[str, Any]) -> Address | None:
    text = raw.get("postalAddress")
    if not text:
        return None
    lines = tuple(line.strip() for line in str(text).split("$") if line.strip())
    return Address(lines=lines, postal_code=raw.get("postalCode") or None)


def _codes(raw: Mapping[str, Any], field: str) -> tuple[str, ...]:
    value = raw.get(field) or []
    if isinstance(value, str):
        value = [value]
    return tuple(str(v) for v in value)


def normalise_hsa_unit(raw: Mapping[str, Any]) -> CareUnit:
    """One HSA unit record as the catalog keeps it, or InvalidUnitError saying what is wrong."""
    if not isinstance(raw, Mapping) or not raw.get("hsaIdentity"):
        raise InvalidUnitError("hsaIdentity: required field is missing")
    coordinates = raw.get("geographicalCoordinates") or {}
    try:
        return CareUnit(
            hsa_id=raw["hsaIdentity"],
            name=raw.get("name") or raw.get("publicName") or "",
            public_name=raw.get("publicName"),
            care_giver_hsa_id=raw.get("careGiver"),
            care_giver_name=raw.get("careGiverName"),
            care_giver_org_number=raw.get("careGiverOrgNo"),
            parent_hsa_id=raw.get("parentHsaIdentity") or None,
            business_classification_codes=_codes(raw, "businessClassificationCode"),
            business_types=_codes(raw, "businessType"),
            care_types=_codes(raw, "careType"),
            destination_indicators=_codes(raw, "hsaDestinationIndicator"),
            municipality_code=raw.get("municipalityCode") or None,
            municipality_name=raw.get("municipalityName") or None,
            county_code=raw.get("countyCode") or None,
            county_name=raw.get("countyName") or None,
            postal_address=_address(raw),
            latitude=coordinates.get("lat"),
            longitude=coordinates.get("lon"),
            start_date=hsa_date(raw.get("hsaStartDate"), "hsaStartDate"),
            end_date=hsa_date(raw.get("hsaEndDate"), "hsaEndDate"),
            kombika=_kombika_periods(raw.get("kombika")),
            source_updated_at=hsa_timestamp(raw.get("modifyTimestamp"), "modifyTimestamp"),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidUnitError(f"{where}: {first['msg']}") from None
