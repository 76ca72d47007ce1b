"""VGPV for tests and the benchmark: a catalog of the sandboxes' directories (HSA's units merged
with KIV's, as the catalog worker merges them) and VGR visits as care.contact events."""

from __future__ import annotations

from typing import Any

from services.catalog.kiv import merge, normalise_kiv_unit
from services.catalog.normalise import normalise_hsa_unit
from services.sandboxes.hsa.directory import HsaDirectory
from services.sandboxes.kiv import KivDirectory
from shared.catalog.index import CatalogIndex
from shared.contracts.examples import demo_event


def kiv_catalog(hsa_units: int, seed: int) -> CatalogIndex:
    """The catalog a worker would follow for the HSA and KIV sandboxes of `hsa_units`, `seed`."""
    kiv = {
        str(raw["hsaIdentity"]): normalise_kiv_unit(raw)
        for raw in KivDirectory(hsa_units, seed).iter_units()
    }
    index = CatalogIndex()
    for raw in HsaDirectory(hsa_units, seed).iter_units():
        unit = normalise_hsa_unit(raw)
        index.put_unit(merge(unit, kiv.get(unit.hsa_id)))
    return index


def vardval_unit(kiv: KivDirectory, area: str, skip: int = 0) -> dict[str, Any]:
    """The `skip`-th open KIV unit of Vårdval `area` (primarvard, rehab)."""
    found = [
        record
        for record in kiv.iter_units()
        if record.get("vgrVardValOmrade") == area and "hsaEndDate" not in record
    ]
    return found[skip]


def vgr_visit(
    record_id: str,
    unit: str | None,
    day: str,
    version: int = 1,
    operation: str = "create",
    **changes: Any,
) -> dict[str, Any]:
    """A primary-care visit at HSA-id `unit` on `day` (YYYY-MM-DD, 09:30 Swedish time)."""
    payload: dict[str, Any] = {
        "kind": "outpatient_visit",
        "patient": {"id_type": "PNR", "id": "191212121212"},
        "unit_hsa_id": unit,
        "visited_at": f"{day}T09:30:00+01:00",
        "visit_type": "1",
        "professions": ["LK"],
        "akut": "N",
        "diagnoses": ["J069"],
        "procedures": [{"code": "AV100", "performed_on": day}],
    }
    payload.update(changes)
    payload = {key: value for key, value in payload.items() if value is not None}
    return demo_event("care.contact", record_id, version, operation, payload)
