"""The catalog page: topic counts, who wrote them, the last imports, one unit as workers read it."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import ConsumerRecord
from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from services.catalog.settings import CatalogSettings
from services.catalog.spec import SPEC as CATALOG
from services.catalog.topic_state import TopicState, Written, written
from services.console.context import console_of, render
from services.console.masking import Masker, Segment
from services.console.security import require_user
from services.console.sources import NoLedgerError, WorkerSource
from shared.catalog.index import CatalogIndex
from shared.catalog.records import UnitView
from shared.kafka import read_to_end
from shared.schedule.claims import SlotClaims, SlotRun, slots
from shared.settings import CommonSettings

RECENT_RUNS = 5  # slot runs shown per schedule
WRITERS_SHOWN = 8  # writers (imports, notifications) shown per topic


@dataclass
class Writer:
    """Who wrote to a topic (`import:<id>` for one import, `notification`), as the topic shows."""

    written_by: str
    records: int = 0
    removals: int = 0  # tombstones
    first_at: datetime | None = None
    last_at: datetime | None = None


@dataclass
class TopicFigures:
    """A catalog topic as read to its end: the keys it holds, its records and their writers."""

    topic: str
    what: str
    state: TopicState = field(default_factory=TopicState)
    records: int = 0
    removals: int = 0
    writers: dict[str, Writer] = field(default_factory=dict)

    @property
    def present(self) -> int:
        return len(self.state.digests)

    @property
    def latest_writers(self) -> list[Writer]:
        ordered = sorted(self.writers.values(), key=lambda w: w.last_at or _EPOCH, reverse=True)
        return ordered[:WRITERS_SHOWN]

    def read(self, record: ConsumerRecord[bytes, bytes], seen: Written) -> None:
        self.state.apply(seen)
        self.records += 1
        self.removals += seen.value is None
        at = datetime.fromtimestamp(record.timestamp / 1000, UTC)
        writer = self.writers.setdefault(seen.written_by or "-", Writer(seen.written_by or "-"))
        writer.records += 1
        writer.removals += seen.value is None
        writer.first_at = writer.first_at or at
        writer.last_at = at


@dataclass(frozen=True)
class UnitRecord:
    """The unit's latest record on the care-unit topic, and the unit as the workers read it."""

    hsa_id: str
    unit: UnitView | None  # None: removed, or a value the workers skip (`skipped` says why)
    skipped: str | None
    value: list[Segment]  # the value as JSON, masked
    org_number: list[Segment]  # the care giver's (a sole trader's is a personal identity number)
    written_by: str | None
    changed_at: datetime | None
    at: datetime
    position: str


@dataclass(frozen=True)
class ScheduleRuns:
    kind: str
    runs: list[SlotRun]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def read_catalog(
    settings: CommonSettings, hsa_id: str | None
) -> tuple[list[TopicFigures], UnitRecord | None]:
    """The three catalog topics read to their end once; `hsa_id`'s latest record kept."""
    topics = settings.topics
    figures = {
        topics.care_units: TopicFigures(topics.care_units, "care units"),
        topics.vaccines: TopicFigures(topics.vaccines, "vaccines"),
        topics.kombikas: TopicFigures(topics.kombikas, "kombikas (code server)"),
    }
    key = hsa_id.encode() if hsa_id else None
    latest: list[tuple[ConsumerRecord[bytes, bytes], Written]] = []

    def keep(record: ConsumerRecord[bytes, bytes]) -> None:
        seen = written(record)
        if seen is None:
            return
        figures[record.topic].read(record, seen)
        if key is not None and record.key == key and record.topic == topics.care_units:
            latest[:] = [(record, seen)]

    await read_to_end(settings.kafka, list(figures), keep)
    found = _unit_record(hsa_id, *latest[0]) if hsa_id and latest else None
    return list(figures.values()), found


def _unit_record(hsa_id: str, record: ConsumerRecord[bytes, bytes], seen: Written) -> UnitRecord:
    """The record through the index every worker's CatalogView fills: the same parsing."""
    index = CatalogIndex()
    skip = index.apply_unit(record.key, record.value)
    text = ""
    if seen.value is not None:
        try:
            text = json.dumps(json.loads(seen.value), ensure_ascii=False, indent=2)
        except ValueError:
            text = seen.value.decode("utf-8", "replace")
    changed = None if seen.changed_at is None else datetime.fromtimestamp(seen.changed_at, UTC)
    unit, masker = index.unit(hsa_id), Masker()
    return UnitRecord(
        hsa_id=hsa_id,
        unit=unit,
        skipped=None if skip is None else f"{skip.reason}: {skip.detail}",
        value=masker(text) if text else [],
        org_number=masker(unit.care_giver.org_number if unit is not None else ""),
        written_by=seen.written_by,
        changed_at=changed,
        at=datetime.fromtimestamp(record.timestamp / 1000, UTC),
        position=f"{record.topic}/{record.partition}/{record.offset}",
    )


async def scheduled_imports(source: WorkerSource) -> tuple[list[ScheduleRuns], str | None]:
    """The catalog's recent import slots from its ledger (who ran each, when, its summary), as
    `regbridge status --worker catalog` reads them; or why they cannot be read."""
    try:
        async with source.ledger() as ledger:
            async with ledger.engine.connect() as conn:
                claimed = await conn.run_sync(lambda c: inspect(c).has_table(slots.name))
            if not claimed:
                return [], "no import has been scheduled yet"
            claims = SlotClaims(ledger.engine)
            return [
                ScheduleRuns(kind, await claims.recent(kind, RECENT_RUNS))
                for kind in CATALOG.schedules
            ], None
    except NoLedgerError:
        return [], "no ledger yet"
    except (SQLAlchemyError, OSError) as exc:
        return [], f"ledger unavailable ({type(exc).__name__})"


def catalog_source(sources: dict[str, WorkerSource]) -> WorkerSource | None:
    """The catalog sync among the workers (its settings say so), if the console has it."""
    return next((s for s in sources.values() if isinstance(s.settings, CatalogSettings)), None)


async def catalog_page(request: Request) -> Response:
    require_user(request)
    console = console_of(request)
    hsa_id = request.query_params.get("hsa_id", "").strip() or None
    source = catalog_source(console.sources)
    settings: CommonSettings = source.settings if source is not None else console.settings
    schedules: list[ScheduleRuns] = []
    note: str | None = "the console has no catalog worker"
    if source is None:
        figures, unit = await read_catalog(settings, hsa_id)
    else:
        (figures, unit), (schedules, note) = await asyncio.gather(
            read_catalog(settings, hsa_id), scheduled_imports(source)
        )
    return render(
        request,
        "catalog.html",
        figures=figures,
        schedules=schedules,
        schedule_note=note,
        hsa_id=hsa_id or "",
        unit=unit,
        today=datetime.now(UTC).date(),
    )


routes: list[BaseRoute] = [Route("/catalog", catalog_page)]
