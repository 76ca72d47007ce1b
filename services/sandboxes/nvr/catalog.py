"""What the NVR sandbox looks entries up in: the vaccine and batch list, the HSA care units.

``GET /vaccines`` serves the list as FHIR: a `collection` Bundle of one `Medication` per batch
(R4's Medication has a single ``batch``), see `medication_bundle` and docs/nvr-api.md.
"""

from __future__ import annotations

import threading
from datetime import date
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from services.nvr.profile import NvrProfile
from services.nvr.rules import UnitOwner, VaccineFacts
from services.sandboxes.hsa.directory import HsaDirectory
from services.sandboxes.nvr.vaccines import DEFAULT_VACCINES

_MAX_REMEMBERED = 1_000_000
COVID19_ATC_PREFIX = "J07BN"  # WHO ATC: Covid-19 vaccines


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: str = Field(max_length=80)
    expiresOn: date | None = None


class Vaccine(BaseModel):
    """One product of the vaccine list, as ``/admin/vaccines`` shows it (``GET /vaccines``
    serves it as Medications). A COVID-19 vaccine is one whose ATC code is in J07BN."""

    model_config = ConfigDict(extra="forbid")

    nplId: str = Field(pattern=r"^[0-9]{1,14}$")
    name: str
    atcCode: str | None = None
    batches: list[Batch] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def covid19(self) -> bool:
        return is_covid19(self.atcCode)

    @model_validator(mode="before")
    @classmethod
    def _derived_covid19(cls, data: Any) -> Any:
        """``covid19`` as ``GET /admin/vaccines`` shows it may come back, if it agrees."""
        if isinstance(data, dict) and "covid19" in data:
            data = dict(data)
            if bool(data.pop("covid19")) != is_covid19(data.get("atcCode")):
                raise ValueError("covid19 follows the ATC code (group J07BN); set atcCode")
        return data


def is_covid19(atc_code: str | None) -> bool:
    return (atc_code or "").upper().startswith(COVID19_ATC_PREFIX)


def medications(vaccine: Vaccine, profile: NvrProfile) -> list[dict[str, Any]]:
    """One FHIR R4 Medication per batch (one without ``batch`` when the vaccine has none)."""
    coding: list[dict[str, Any]] = [
        {"system": profile.npl_id_system, "code": vaccine.nplId, "display": vaccine.name}
    ]
    if vaccine.atcCode:
        coding.append({"system": profile.atc_system, "code": vaccine.atcCode})
    code = {"coding": coding, "text": vaccine.name}
    if not vaccine.batches:
        return [{"resourceType": "Medication", "id": vaccine.nplId, "code": code}]
    listed = []
    for index, batch in enumerate(vaccine.batches, start=1):
        lot: dict[str, Any] = {"lotNumber": batch.number}
        if batch.expiresOn is not None:
            lot["expirationDate"] = batch.expiresOn.isoformat()
        medication = {"resourceType": "Medication", "id": f"{vaccine.nplId}-{index}", "code": code}
        listed.append(medication | {"batch": lot})
    return listed


def medication_bundle(vaccines: list[Vaccine], profile: NvrProfile) -> dict[str, Any]:
    """The vaccine list as ``GET /vaccines`` answers it: a `collection` Bundle of Medications."""
    entries = [
        {"fullUrl": f"urn:uuid:{uuid5(NAMESPACE_URL, medication['id'])}", "resource": medication}
        for vaccine in vaccines
        for medication in medications(vaccine, profile)
    ]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


class VaccineList:
    """The current vaccine list and its index by NPL-id; replaced whole, read lock-free."""

    def __init__(self, vaccines: list[dict[str, Any]] | None = None) -> None:
        self._initial = DEFAULT_VACCINES if vaccines is None else vaccines
        self.replace([Vaccine.model_validate(v) for v in self._initial])

    def replace(self, vaccines: list[Vaccine]) -> None:
        index = {
            v.nplId: VaccineFacts(v.covid19, frozenset(b.number for b in v.batches))
            for v in vaccines
        }
        self._vaccines, self._index = list(vaccines), index  # one assignment: readers see either

    def reset(self) -> None:
        self.replace([Vaccine.model_validate(v) for v in self._initial])

    def facts(self, npl_id: str) -> VaccineFacts | None:
        return self._index.get(npl_id)

    def as_json(self) -> list[dict[str, Any]]:
        return [v.model_dump(mode="json") for v in self._vaccines]

    def as_bundle(self, profile: NvrProfile) -> dict[str, Any]:
        return medication_bundle(self._vaccines, profile)


class CareUnits:
    """Care unit → care provider from the sandbox's `HsaDirectory`, remembered once looked up.

    The directory builds a unit in ~0.2 ms; at 100,000 vaccinations that matters, so answers are
    cached. After editing `directory`, call `forget` (a reset does).
    """

    def __init__(self, directory: HsaDirectory) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._owners: dict[str, UnitOwner | None] = {}

    def owner(self, hsa_id: str) -> UnitOwner | None:
        try:
            return self._owners[hsa_id]
        except KeyError:
            pass
        unit = self.directory.get(hsa_id)
        owner = None
        if unit is not None and unit.get("careGiver") and unit.get("careGiverOrgNo"):
            owner = UnitOwner(str(unit["careGiver"]), str(unit["careGiverOrgNo"]))
        with self._lock:
            if len(self._owners) >= _MAX_REMEMBERED:  # made-up ids must not grow it forever
                self._owners.clear()
            self._owners[hsa_id] = owner
        return owner

    def forget(self) -> None:
        with self._lock:
            self._owners.clear()
