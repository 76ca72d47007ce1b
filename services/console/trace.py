"""A record's trace: per worker, its versions and fates in the ledger, its dead letters, results."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.exc import SQLAlchemyError

from services.console.sources import NoLedgerError, WorkerSource
from shared.delivery.dlq_read import DeadLetter, DlqFilter, TopicNotFoundError, read_dead_letters
from shared.delivery.ledger_schema import events, parked, records, replay_audit


@dataclass(frozen=True)
class Version:
    event_id: str
    record_version: int
    outcome: str  # accepted, skipped, dead_lettered
    at: datetime


@dataclass
class WorkerTrace:
    """What one worker knows of the record."""

    worker: str
    applied_version: int | None = None
    reference: str | None = None  # the register's own id of the record
    updated_at: datetime | None = None
    versions: list[Version] = field(default_factory=list)
    parked: list[tuple[str, str, datetime]] = field(default_factory=list)  # event, where, since
    replays: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)  # the result messages, as JSON
    ledger_note: str | None = None  # why the ledger part is missing

    @property
    def empty(self) -> bool:
        return not (self.reference or self.versions or self.dead_letters or self.results)


async def trace_record(source: WorkerSource, record_id: str) -> WorkerTrace:
    """The record as `source`'s worker saw it; the ledger and Kafka read side by side."""
    found = WorkerTrace(source.name)
    letters, results = await asyncio.gather(
        source.dead_letters(DlqFilter(record_id=record_id)), _results(source, record_id)
    )
    found.dead_letters, found.results = letters, results
    try:
        await _from_ledger(source, record_id, found)
    except NoLedgerError:
        found.ledger_note = "no ledger yet"
    except (SQLAlchemyError, OSError) as exc:  # the trace still shows what Kafka holds
        found.ledger_note = f"ledger unavailable ({type(exc).__name__})"
    return found


async def _from_ledger(source: WorkerSource, record_id: str, found: WorkerTrace) -> None:
    async with source.ledger() as ledger, ledger.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        if records.name not in tables:
            found.ledger_note = "no ledger tables yet"
            return
        mine = (records.c.register == source.name, records.c.record_id == record_id)
        row = (await conn.execute(select(records).where(*mine))).first()
        if row is not None:
            found.applied_version, found.reference = row.applied_version, row.reference
            found.updated_at = row.updated_at
        query = (
            select(events)
            .where(events.c.register == source.name, events.c.record_id == record_id)
            .order_by(events.c.record_version, events.c.at)
        )
        found.versions = [
            Version(r.event_id, r.record_version, r.outcome, r.at)
            for r in await conn.execute(query)
        ]
        waiting = (parked.c.register == source.name, parked.c.record_id == record_id)
        found.parked = [
            (r.event_id, r.location, r.parked_at)
            for r in await conn.execute(select(parked).where(*waiting).order_by(parked.c.seq))
        ]
        if replay_audit.name in tables:
            query = (
                select(replay_audit)
                .where(
                    replay_audit.c.record_id == record_id,
                    replay_audit.c.dlq_topic == source.topics.dlq,
                )
                .order_by(replay_audit.c.id)
            )
            found.replays = [dict(r._mapping) for r in await conn.execute(query)]


async def _results(source: WorkerSource, record_id: str) -> list[dict[str, Any]]:
    """The worker's result messages for the record (keyed by record id): the whole topic read."""
    topic = source.topics.results_topic
    if topic is None:
        return []
    try:
        messages = await read_dead_letters(
            source.settings.kafka, topic, filters=DlqFilter(key=record_id)
        )
    except TopicNotFoundError:
        return []
    found = []
    for message in messages:
        try:
            body = json.loads(message.value or b"")
        except ValueError:
            continue
        if isinstance(body, dict):
            found.append(body)
    return found
