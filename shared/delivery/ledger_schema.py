"""The submission ledger's tables, upserts, and values, and the rule that decides an event."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ColumnElement,
    DateTime,
    Dialect,
    Executable,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects import postgresql, sqlite

from shared.delivery.worker import EventIdentity

EventOutcome = Literal["accepted", "skipped", "dead_lettered"]
DecisionKind = Literal["new", "duplicate", "stale", "in_flight"]


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware instant, stored as UTC on every dialect (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"the ledger stores timezone-aware datetimes only, got {value!r}")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        if not isinstance(value, datetime):
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# An auto-incrementing key: BIGSERIAL on PostgreSQL, INTEGER PRIMARY KEY AUTOINCREMENT on SQLite.
_Serial = BigInteger().with_variant(Integer, "sqlite")

metadata = MetaData()

records = Table(
    "regbridge_records",
    metadata,
    Column("register", Text, primary_key=True),
    Column("record_id", Text, primary_key=True),
    Column("applied_version", BigInteger, nullable=False),
    Column("reference", Text, nullable=False),
    Column("last_event_id", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

events = Table(
    "regbridge_events",
    metadata,
    Column("register", Text, primary_key=True),
    Column("event_id", Text, primary_key=True),
    Column("record_id", Text, nullable=False),
    Column("record_version", BigInteger, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("at", UtcDateTime, nullable=False),
    CheckConstraint(
        "outcome IN ('accepted', 'skipped', 'dead_lettered')", name="ck_regbridge_events_outcome"
    ),
)

inflight = Table(
    "regbridge_inflight",
    metadata,
    Column("register", Text, primary_key=True),
    Column("record_id", Text, primary_key=True),
    Column("event_id", Text, nullable=False),
    Column("record_version", BigInteger, nullable=False),
    Column("operation", Text, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
)

parked = Table(
    "regbridge_parked",
    metadata,
    Column("seq", _Serial, primary_key=True, autoincrement=True),
    Column("register", Text, nullable=False),
    Column("record_id", Text, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("location", Text, nullable=False),  # "retry:30s", "retry:5m", …, "dlq"
    Column("parked_at", UtcDateTime, nullable=False),
    UniqueConstraint("register", "record_id", "event_id", name="uq_regbridge_parked_event"),
    sqlite_autoincrement=True,  # never reuse a seq, even after the newest row is unparked
)

replay_audit = Table(
    "regbridge_replay_audit",
    metadata,
    Column("id", _Serial, primary_key=True, autoincrement=True),
    Column("dlq_topic", Text, nullable=False),
    Column("dlq_partition", Integer, nullable=False),
    Column("dlq_offset", BigInteger, nullable=False),
    Column("event_id", Text),  # None when the dead letter could not even be parsed
    Column("record_id", Text),
    Column("target_topic", Text, nullable=False),
    Column("replayed_by", Text, nullable=False),
    Column("replayed_at", UtcDateTime, nullable=False),
    Column("batch_id", Text, nullable=False),
    Column("forced", Boolean, nullable=False),
    Index("ix_regbridge_replay_audit_dlq", "dlq_topic", "dlq_partition", "dlq_offset"),
    sqlite_autoincrement=True,
)

clusters = Table(
    "regbridge_kafka_clusters",
    metadata,
    Column("register", Text, primary_key=True),
    Column(
        "cluster_id", Text, nullable=False
    ),  # the Kafka cluster whose offsets the ledger follows
    Column("bound_at", UtcDateTime, nullable=False),
)

RECORD_KEY = ("register", "record_id")  # records, inflight
EVENT_KEY = ("register", "event_id")  # events
PARKED_KEY = ("register", "record_id", "event_id")  # parked (seq is the surrogate key)


def upsert(
    dialect: str,
    table: Table,
    key: Sequence[str],
    update: Sequence[str],
    where: Callable[[Any], ColumnElement[bool]] | None = None,
) -> Executable:
    """INSERT … ON CONFLICT (key) DO UPDATE SET update = excluded.update [WHERE where(excluded)]."""
    stmt = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    new = stmt.excluded
    return stmt.on_conflict_do_update(
        index_elements=key,
        set_={column: new[column] for column in update},
        where=None if where is None else where(new),
    )


def insert_ignoring(dialect: str, table: Table, key: Sequence[str]) -> Executable:
    """INSERT … ON CONFLICT (key) DO NOTHING."""
    stmt = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    return stmt.on_conflict_do_nothing(index_elements=key)


@dataclass(frozen=True, slots=True)
class InFlight:
    """A submission begun and not yet finished: after a crash, reconcile before sending again."""

    event_id: str
    record_version: int
    operation: str
    started_at: datetime


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with an event; `reference` and `applied_version` are the record's, if known."""

    kind: DecisionKind
    reference: str | None
    applied_version: int | None
    inflight: InFlight | None


@dataclass(frozen=True, slots=True)
class Parked:
    """An event waiting in retry or dead-lettered; later events of its record follow it."""

    event_id: str
    location: str
    seq: int
    parked_at: datetime


@dataclass
class Settlement:
    """Everything one chunk changes in the ledger, written in one transaction."""

    accepted: list[tuple[EventIdentity, str]] = field(default_factory=list)
    skipped: list[EventIdentity] = field(default_factory=list)
    dead_lettered: list[EventIdentity] = field(default_factory=list)
    park: list[tuple[EventIdentity, str]] = field(default_factory=list)  # (event, location)
    unpark: list[EventIdentity] = field(default_factory=list)
    settled_records: list[str] = field(default_factory=list)  # their in-flight rows are done


@dataclass(frozen=True)
class ReplayAuditEntry:
    """One dead letter replayed: from where, to where, by whom, in which batch."""

    dlq_topic: str
    dlq_partition: int
    dlq_offset: int
    event_id: str | None
    record_id: str | None
    target_topic: str
    replayed_by: str
    replayed_at: datetime
    batch_id: str
    forced: bool = False


_NEW = Decision("new", None, None, None)


def judge(
    identity: EventIdentity, outcome: str | None, record: Any | None, flight: InFlight | None
) -> Decision:
    """The decision rule, from the event's outcome row, its record's row and in-flight row."""
    if outcome is None and record is None and flight is None:
        return _NEW  # (most of a chunk: one value for all)
    reference = None if record is None else str(record.reference)
    applied = None if record is None else int(record.applied_version)
    kind: DecisionKind
    if outcome in ("accepted", "skipped"):
        kind = "duplicate"  # a dead-lettered event is deliberately not: its replay must run again
    elif flight is not None:
        kind = "in_flight"
    elif record is None or identity.record_version > record.applied_version:
        kind = "new"
    elif identity.record_version == applied and record.last_event_id == identity.event_id:
        kind = "duplicate"
    else:
        kind = "stale"
    return Decision(kind, reference, applied, flight)
