"""Catalog topic values for tests: valid units and vaccines, as the catalog sync writes them."""

from __future__ import annotations

from datetime import date
from typing import Any

from shared.catalog.models import Batch, CareUnit, KombikaPeriod, Vaccine

REGION_ORG = "2321000016"  # Region Stockholm
REGION = f"SE{REGION_ORG}"
PRIVATE_ORG = "5565594230"
PRIVATE = f"SE{PRIVATE_ORG}"


def hsa(n: int, org: str = REGION) -> str:
    return f"{org}-U{n:06d}"


def care_unit(n: int, **fields: Any) -> CareUnit:
    """Unit number `n` of Region Stockholm, active since 2020; `fields` override anything."""
    values: dict[str, Any] = {
        "hsa_id": hsa(n),
        "name": f"Vårdcentralen {n}",
        "care_giver_hsa_id": f"{REGION}-1",
        "care_giver_name": "Region Stockholm",
        "care_giver_org_number": REGION_ORG,
        "destination_indicators": ("03",),
        "municipality_code": "0180",
        "county_code": "01",
        "start_date": date(2020, 1, 1),
    }
    return CareUnit.model_validate(values | fields)


def period(kombika: str, valid_from: date, valid_to: date | None = None) -> KombikaPeriod:
    return KombikaPeriod(kombika=kombika, valid_from=valid_from, valid_to=valid_to)


def vaccine(npl_id: str, *batches: tuple[str, date | None], **fields: Any) -> Vaccine:
    values: dict[str, Any] = {
        "npl_id": npl_id,
        "name": f"Vaccin {npl_id}",
        "atc_code": "J07BX03",
        "batches": tuple(Batch(number=n, expires_on=e) for n, e in batches),
    }
    return Vaccine.model_validate(values | fields)


def record(value: CareUnit | Vaccine) -> tuple[bytes, bytes]:
    """The (key, value) pair the catalog topics carry for `value`."""
    key = value.hsa_id if isinstance(value, CareUnit) else value.npl_id
    return key.encode(), value.model_dump_json().encode()
