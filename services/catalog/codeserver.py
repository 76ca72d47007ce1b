"""Region Stockholm's code server: the MEK file (kombika ↔ HSA-id with validity dates) → the
compacted `catalog.kombikas.v1`, one record per kombika.

The file is what the region's own GVR adapters read (SLL-RTP/sll-rtjp.gvradapter, MEK-test.xml):

    <mappningar xmlns="http://brainpool.se/mek/MEK.xsd" ExportDatum="…" MEKFilId="1719">
      <mappning>
        <Kombikakod>19108011M04</Kombikakod>
        <HSAId>SE2321000016-14L1</HSAId>
        <FromDatum>2007-04-03T00:00:00+02:00</FromDatum>
        <TillDatum>…</TillDatum>            (optional: the last valid day)
        <SkapadDatum>2007-04-24T15:51:55.257+02:00</SkapadDatum>
      </mappning>
    </mappningar>

A kombika may have several rows over time (a unit reorganised); each becomes an assignment.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException
from pydantic import ValidationError

from services.catalog.snapshot import Entry, Listed, SnapshotReport, publish_snapshot
from services.catalog.writer import CatalogWriter
from shared.catalog.models import KombikaAssignment, KombikaMapping
from shared.delivery.classify import classify_exception, classify_response
from shared.delivery.errors import PermanentError
from shared.identifiers import InvalidIdentifierError, parse_kombika, validate_hsa_id
from shared.settings import KafkaSettings

STOCKHOLM = ZoneInfo("Europe/Stockholm")


class UnreadableCodeFileError(PermanentError):
    """The code server's file is not a MEK file (not XML, or XML of another shape)."""

    error_class = "code_file_unreadable"


@dataclass(frozen=True)
class MekRow:
    """One `mappning` of the file, read: an assignment, or why it cannot be used."""

    number: int  # the row's place in the file, from 1
    kombika: str | None
    assignment: KombikaAssignment | None
    problem: str | None = None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _day(text: str | None, field: str) -> date:
    """An xs:dateTime (or date) of the file → its day in Swedish time."""
    if not text:
        raise ValueError(f"{field}: required")
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{field}: expected an ISO date-time, got {text!r}") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(STOCKHOLM)
    return moment.date()


def _row(number: int, fields: dict[str, str]) -> MekRow:
    raw_kombika = fields.get("Kombikakod", "")
    try:
        kombika = str(parse_kombika(raw_kombika))
    except InvalidIdentifierError as exc:
        return MekRow(number, None, None, f"mappning {number}: {exc}")
    try:
        hsa_id = validate_hsa_id(fields.get("HSAId", ""))
        valid_from = _day(fields.get("FromDatum"), "FromDatum")
        till = fields.get("TillDatum")
        valid_to = _day(till, "TillDatum") + timedelta(days=1) if till else None
        if valid_to is not None and valid_to <= valid_from:
            raise ValueError(f"TillDatum {till} is before FromDatum {fields.get('FromDatum')}")
        assignment = KombikaAssignment(hsa_id=hsa_id, valid_from=valid_from, valid_to=valid_to)
    except (ValueError, ValidationError) as exc:  # InvalidIdentifierError is a ValueError
        return MekRow(number, kombika, None, f"mappning {number}, kombika {kombika}: {exc}")
    return MekRow(number, kombika, assignment)


def read_mek(data: bytes) -> tuple[datetime | None, list[MekRow]]:
    """The file's export time (`ExportDatum`) and its rows, in order; UnreadableCodeFileError if
    it is not a MEK file. Entities are never expanded (defusedxml)."""
    exported: datetime | None = None
    rows: list[MekRow] = []
    fields: dict[str, str] = {}
    try:
        parser = ElementTree.iterparse(io.BytesIO(data), events=("start", "end"))
        for event, element in parser:
            name = _local(element.tag)
            if event == "start":
                if exported is None and name == "mappningar":
                    text = element.get("ExportDatum")
                    exported = datetime.fromisoformat(text) if text else None
                continue
            if name == "mappning":
                rows.append(_row(len(rows) + 1, fields))
                fields = {}
                element.clear()
            elif name != "mappningar":
                fields[name] = (element.text or "").strip()
    except (ElementTree.ParseError, DefusedXmlException, ValueError) as exc:
        raise UnreadableCodeFileError(f"the code server's file is not readable: {exc}") from exc
    return exported, rows


def mappings(rows: list[MekRow]) -> Iterator[Entry]:
    """One entry per kombika: its assignments, sorted; a kombika with an unusable row is seen
    but kept as the topic has it (never half-replaced); a row without a kombika is a problem."""
    assignments: dict[str, list[KombikaAssignment]] = defaultdict(list)
    problems: dict[str, str] = {}
    for row in rows:
        if row.kombika is None:
            yield Entry(None, None, row.problem)
        elif row.assignment is None:
            problems.setdefault(row.kombika, row.problem or "unusable row")
        else:
            assignments[row.kombika].append(row.assignment)
    for kombika in sorted(assignments.keys() | problems.keys()):
        if kombika in problems:
            yield Entry(kombika, None, problems[kombika])
            continue
        ordered = tuple(sorted(set(assignments[kombika]), key=lambda a: (a.valid_from, a.hsa_id)))
        mapping = KombikaMapping(kombika=kombika, assignments=ordered)
        yield Entry(kombika, mapping.model_dump_json(exclude_none=True).encode())


async def fetch_mek(base_url: str, path: str) -> bytes:
    """The code server's file, whole (it is small: one row per kombika and period)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(10, read=60)) as client:
        try:
            response = await client.get(path)
        except httpx.HTTPError as exc:
            raise classify_exception(exc, register="code server") from exc
    error = classify_response(response.status_code, response.text, register="code server")
    if error is not None:
        raise error
    return response.content


async def import_kombikas(
    kafka: KafkaSettings,
    writer: CatalogWriter,
    base_url: str,
    topic: str,
    *,
    path: str = "/mek.xml",
    max_removal_share: float = 0.05,
) -> SnapshotReport:
    """The code server's file into `catalog.kombikas.v1`: changed kombikas published, kombikas
    the file no longer lists tombstoned (withheld above `max_removal_share`)."""
    _exported, rows = read_mek(await fetch_mek(base_url, path))

    async def entries() -> AsyncIterator[Entry]:
        for entry in mappings(rows):
            yield entry

    return await publish_snapshot(
        kafka, writer, topic, Listed(entries()), max_removal_share=max_removal_share
    )
