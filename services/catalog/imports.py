"""The catalog's two snapshots: HSA's full export of care units, and NVR's list of vaccines."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import httpx
from pydantic import ValidationError

from services.catalog.hsa_client import HsaClient
from services.catalog.normalise import InvalidUnitError, hsa_timestamp, normalise_hsa_unit
from services.catalog.snapshot import Entry, Listed, SnapshotReport, publish_snapshot
from services.catalog.writer import CatalogWriter
from shared.catalog.models import CareUnit, Vaccine
from shared.delivery.classify import classify_exception, classify_response
from shared.logging import get_logger
from shared.oauth2 import TokenRequestError
from shared.settings import KafkaSettings

log = get_logger(__name__)


def unit_value(unit: CareUnit) -> bytes:
    """The value on catalog.care-units.v1: deterministic, so equal units have equal bytes."""
    return unit.model_dump_json(exclude_none=True).encode()


class HsaExport:
    """HSA's full export as a snapshot: its units, as of the time its header gives (`asOf`, or
    `generatedAt` from an HSA that does not say; None if neither)."""

    def __init__(self, hsa: HsaClient) -> None:
        self._hsa = hsa
        self.as_of: datetime | None = None

    def _header(self, header: dict[str, Any]) -> None:
        text = header.get("asOf") or header.get("generatedAt")
        try:
            self.as_of = hsa_timestamp(text, "export.asOf")
        except InvalidUnitError as exc:  # an unreadable as-of protects nothing: say so
            log.warning("export_as_of_unreadable", error=exc.message)

    async def __aiter__(self) -> AsyncIterator[Entry]:
        async for row in self._hsa.export(on_header=self._header):
            if row.unit is None:
                yield Entry(None, None, row.problem)
                continue
            key = row.unit.get("hsaIdentity")
            try:
                unit = normalise_hsa_unit(row.unit)
            except InvalidUnitError as exc:
                where = f"line {row.line_number}: {exc.message}"
                yield Entry(str(key) if key else None, None, where)
            else:
                yield Entry(unit.hsa_id, unit_value(unit), changed_at=unit.source_updated_at)


async def import_units(
    kafka: KafkaSettings,
    writer: CatalogWriter,
    hsa: HsaClient,
    topic: str,
    *,
    max_removal_share: float,
    progress: Callable[[str], None] | None = None,
) -> SnapshotReport:
    """One full import: stream HSA's export, publish what changed, tombstone what disappeared —
    except where a notification made the topic newer than the export."""
    return await publish_snapshot(
        kafka,
        writer,
        topic,
        HsaExport(hsa),
        max_removal_share=max_removal_share,
        progress=progress,
    )


def normalise_vaccine(raw: dict[str, Any]) -> Vaccine:
    """NVR's list entry → Vaccine (docs/nvr-api.md, "vaccine list")."""
    return Vaccine(
        npl_id=str(raw.get("nplId", "")),
        name=raw.get("name") or "",
        atc_code=raw.get("atcCode"),
        covid19=bool(raw.get("covid19", False)),
        batches=tuple(
            {"number": b.get("number"), "expires_on": b.get("expiresOn")}
            for b in raw.get("batches") or []
        ),
    )


async def vaccine_entries(
    base_url: str, *, path: str = "/vaccines", auth: httpx.Auth | None = None
) -> AsyncIterator[Entry]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30, auth=auth) as client:
        try:
            response = await client.get(path)
        except (httpx.HTTPError, TokenRequestError) as exc:
            raise classify_exception(exc, register="NVR") from exc
        error = classify_response(response.status_code, response.text, register="NVR")
        if error is not None:
            raise error
        listed = response.json().get("vaccines", [])
    for raw in listed:
        key = str(raw.get("nplId")) if isinstance(raw, dict) and raw.get("nplId") else None
        try:
            vaccine = normalise_vaccine(raw)
        except (ValidationError, AttributeError) as exc:
            yield Entry(key, None, f"vaccine {key}: {exc}")
        else:
            yield Entry(vaccine.npl_id, vaccine.model_dump_json(exclude_none=True).encode())


async def import_vaccines(
    kafka: KafkaSettings,
    writer: CatalogWriter,
    base_url: str,
    topic: str,
    *,
    path: str = "/vaccines",
    auth: httpx.Auth | None = None,
) -> SnapshotReport:
    """NVR's current vaccines and batches into catalog.vaccines.v1 (`auth`: NVR's OAuth2)."""
    entries = Listed(vaccine_entries(base_url, path=path, auth=auth))
    return await publish_snapshot(kafka, writer, topic, entries, max_removal_share=0.5)
