"""The catalog's two snapshots: HSA's full export of care units, and NVR's list of vaccines."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import httpx

from services.catalog.directory_client import DirectoryClient
from services.catalog.kiv import KivUnit, merge, normalise_kiv_unit
from services.catalog.medications import VaccineSystems, listed_vaccines
from services.catalog.normalise import InvalidUnitError, hsa_timestamp, normalise_hsa_unit
from services.catalog.snapshot import Entry, Listed, SnapshotReport, publish_snapshot
from services.catalog.writer import CatalogWriter
from shared.catalog.models import CareUnit
from shared.delivery.classify import bad_answer, classify_exception, classify_response
from shared.logging import get_logger
from shared.oauth2 import TokenRequestError
from shared.settings import KafkaSettings

log = get_logger(__name__)
FHIR_JSON = "application/fhir+json"


def unit_value(unit: CareUnit) -> bytes:
    """The value on catalog.care-units.v1: deterministic, so equal units have equal bytes."""
    return unit.model_dump_json(exclude_none=True).encode()


class DirectoryExport:
    """HSA's full export as a snapshot — merged, where KIV is configured, with KIV's export by
    HSA-id (each attribute from its owner: services/catalog/kiv.py). It holds its sources as of
    the older of the two exports' headers (`asOf`, or `generatedAt` from a directory that does
    not say; None if neither does)."""

    def __init__(self, hsa: DirectoryClient, kiv: DirectoryClient | None = None) -> None:
        self._hsa = hsa
        self._kiv = kiv
        self._as_of: dict[str, datetime] = {}
        self.as_of: datetime | None = None

    def _header(self, name: str) -> Callable[[dict[str, Any]], None]:
        def read(header: dict[str, Any]) -> None:
            text = header.get("asOf") or header.get("generatedAt")
            try:
                as_of = hsa_timestamp(text, f"{name} export.asOf")
            except InvalidUnitError as exc:  # an unreadable as-of protects nothing: say so
                log.warning("export_as_of_unreadable", directory=name, error=exc.message)
                return
            if as_of is not None:
                self._as_of[name] = as_of
                self.as_of = min(self._as_of.values())

        return read

    async def _regional(self) -> tuple[dict[str, KivUnit], dict[str, str]]:
        """KIV's units by HSA-id, and why a record could not be read (by HSA-id)."""
        units: dict[str, KivUnit] = {}
        problems: dict[str, str] = {}
        if self._kiv is None:
            return units, problems
        async for row in self._kiv.export(on_header=self._header("KIV")):
            key = row.unit.get("hsaIdentity") if row.unit is not None else None
            try:
                if row.unit is None:
                    raise InvalidUnitError(row.problem or "unreadable")
                kiv = normalise_kiv_unit(row.unit)
            except InvalidUnitError as exc:
                if key:  # its HSA unit is kept as it is on the topic: seen, not replaced
                    problems[str(key)] = f"KIV line {row.line_number}: {exc.message}"
                else:
                    log.warning("kiv_row_unreadable", line=row.line_number, error=exc.message)
                continue
            units[kiv.hsa_id] = kiv
        return units, problems

    async def __aiter__(self) -> AsyncIterator[Entry]:
        regional, regional_problems = await self._regional()
        async for row in self._hsa.export(on_header=self._header("HSA")):
            if row.unit is None:
                yield Entry(None, None, row.problem)
                continue
            key = row.unit.get("hsaIdentity")
            try:
                unit = normalise_hsa_unit(row.unit)
            except InvalidUnitError as exc:
                where = f"line {row.line_number}: {exc.message}"
                yield Entry(str(key) if key else None, None, where)
                continue
            problem = regional_problems.pop(unit.hsa_id, None)
            if problem is not None:
                yield Entry(unit.hsa_id, None, problem)
                continue
            merged = merge(unit, regional.pop(unit.hsa_id, None))
            yield Entry(merged.hsa_id, unit_value(merged), changed_at=merged.source_updated_at)
        if regional:  # KIV lists them, HSA does not: without HSA's care giver, not published
            log.warning("kiv_units_not_in_hsa", count=len(regional), first=sorted(regional)[:10])


async def import_units(
    kafka: KafkaSettings,
    writer: CatalogWriter,
    hsa: DirectoryClient,
    topic: str,
    *,
    max_removal_share: float,
    kiv: DirectoryClient | None = None,
    progress: Callable[[str], None] | None = None,
) -> SnapshotReport:
    """One full import: stream HSA's export (merged with KIV's, if given), publish what changed,
    tombstone what disappeared — except where a notification made the topic newer than the
    export."""
    return await publish_snapshot(
        kafka,
        writer,
        topic,
        DirectoryExport(hsa, kiv),
        max_removal_share=max_removal_share,
        progress=progress,
    )


async def vaccine_entries(
    base_url: str,
    *,
    path: str = "/vaccines",
    auth: httpx.Auth | None = None,
    systems: VaccineSystems | None = None,
) -> AsyncIterator[Entry]:
    """NVR's vaccine list (a FHIR Bundle of Medications, services/catalog/medications.py) as
    snapshot entries keyed by NPL-id."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30, auth=auth) as client:
        try:
            response = await client.get(path, headers={"Accept": FHIR_JSON})
        except (httpx.HTTPError, TokenRequestError) as exc:
            raise classify_exception(exc, register="NVR") from exc
        error = classify_response(response.status_code, response.text, register="NVR")
        if error is not None:
            raise error
        try:
            listed = list(listed_vaccines(response.json(), systems))
        except ValueError as exc:  # not JSON, or not a Bundle of Medications (VaccineListError)
            raise bad_answer("NVR", response, f"no vaccine list ({exc})") from None
    for item in listed:
        if item.vaccine is None:
            yield Entry(item.npl_id, None, item.problem)
        else:
            value = item.vaccine.model_dump_json(exclude_none=True).encode()
            yield Entry(item.npl_id, value)


async def import_vaccines(
    kafka: KafkaSettings,
    writer: CatalogWriter,
    base_url: str,
    topic: str,
    *,
    path: str = "/vaccines",
    auth: httpx.Auth | None = None,
    systems: VaccineSystems | None = None,
) -> SnapshotReport:
    """NVR's current vaccines and batches into catalog.vaccines.v1 (`auth`: NVR's OAuth2)."""
    entries = Listed(vaccine_entries(base_url, path=path, auth=auth, systems=systems))
    return await publish_snapshot(kafka, writer, topic, entries, max_removal_share=0.5)
