"""The submission ledger: per register and record, what is applied, in flight, parked, replayed."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Executable,
    Row,
    Table,
    and_,
    delete,
    event,
    func,
    literal,
    select,
)
from sqlalchemy import tuple_ as row_of
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from shared.delivery.ledger_schema import (
    EVENT_KEY,
    PARKED_KEY,
    RECORD_KEY,
    Decision,
    EventOutcome,
    InFlight,
    Parked,
    ReplayAuditEntry,
    Settlement,
    clusters,
    events,
    inflight,
    insert_ignoring,
    judge,
    metadata,
    parked,
    records,
    replay_audit,
    upsert,
)
from shared.delivery.worker import EventIdentity

__all__ = [
    "Decision",
    "InFlight",
    "Ledger",
    "LedgerOfAnotherClusterError",
    "LedgerUnavailableError",
    "Parked",
    "ReplayAuditEntry",
    "Settlement",
]

CHUNK = 500  # ids per IN clause: far below SQLite's and PostgreSQL's bind-parameter limits
_SCHEMA_LOCK = 0x72656762  # PostgreSQL advisory lock held while a replica creates the schema
_IDENTITY = ("event_id", "record_id", "record_version")
_T = TypeVar("_T")


def _chunks(items: Sequence[_T]) -> Iterator[Sequence[_T]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _rows(
    register: str, identities: Iterable[EventIdentity], *fields: str, **values: Any
) -> list[dict[str, Any]]:
    return [
        {"register": register, **{f: getattr(i, f) for f in _IDENTITY + fields}, **values}
        for i in identities
    ]


def _equal(table: Table, **values: Any) -> ColumnElement[bool]:
    return and_(*(table.c[column] == value for column, value in values.items()))


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout = 10000")  # writers queue instead of failing at once
    cursor.execute("PRAGMA journal_mode = WAL")  # readers never block the writer
    cursor.close()


class LedgerUnavailableError(RuntimeError):
    """The ledger's database cannot be reached now: the worker pauses and waits for it."""


class LedgerOfAnotherClusterError(RuntimeError):
    """The ledger follows another Kafka cluster's topics: trusting it would skip events as stale
    or duplicate (a replaced or restored cluster, a copied database, a dev broker started anew)."""

    def __init__(self, register: str, bound: str, current: str) -> None:
        super().__init__(
            f"the {register} ledger belongs to Kafka cluster {bound}, not to {current}, the one "
            f"this worker reaches: its record of what was delivered does not match these topics. "
            f"If the cluster was replaced on purpose and the ledger should follow it, run "
            f"`regbridge ledger rebind --worker {register}`; otherwise point the worker at its own "
            f"ledger (REGBRIDGE_{register.upper()}_DATABASE_URL) or cluster"
        )
        self.register, self.bound, self.current = register, bound, current


class Ledger:
    """Exactly-once at the register on top of at-least-once Kafka; PostgreSQL or SQLite alike."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        up = partial(upsert, engine.dialect.name)
        self._upsert_record = up(
            records,
            RECORD_KEY,
            ("applied_version", "reference", "last_event_id", "updated_at"),
            lambda new: new.applied_version >= records.c.applied_version,  # never goes down
        )
        # The strongest outcome wins: accepted > skipped > dead_lettered.
        outcome = ("record_id", "record_version", "outcome", "at")
        self._upsert_accepted = up(events, EVENT_KEY, outcome)
        self._upsert_skipped = up(
            events, EVENT_KEY, outcome, lambda _: events.c.outcome != "accepted"
        )
        self._upsert_dead_lettered = up(
            events, EVENT_KEY, ("at",), lambda _: events.c.outcome == "dead_lettered"
        )
        self._upsert_inflight = up(
            inflight, RECORD_KEY, ("event_id", "record_version", "operation", "started_at")
        )
        self._upsert_parked = up(parked, PARKED_KEY, ("location",))  # keeps seq and parked_at

    @classmethod
    def from_url(cls, url: str, *, pool_size: int = 10) -> Ledger:
        """An engine for `url`: SQLite gets WAL and a busy timeout, PostgreSQL a checked pool."""
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite":
            return cls(create_async_engine(parsed, pool_size=pool_size, pool_pre_ping=True))
        in_memory = parsed.database in (None, "", ":memory:") or "mode=memory" in str(parsed)
        engine = create_async_engine(parsed, **({} if in_memory else {"pool_size": pool_size}))
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return cls(engine)

    async def create_schema(self) -> None:
        """Create the tables and index that do not exist yet (safe to call on every start)."""
        async with self.engine.begin() as conn:
            if self._postgres:
                await conn.execute(select(func.pg_advisory_xact_lock(_SCHEMA_LOCK)))
            await conn.run_sync(metadata.create_all)

    async def close(self) -> None:
        await self.engine.dispose()

    async def ping(self) -> None:
        """One round trip to the database (raises what the driver raises when it cannot)."""
        async with self.engine.connect() as conn:
            await conn.execute(select(literal(1)))

    async def _write(self, statement: Executable, rows: Sequence[dict[str, Any]] = ()) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(statement, list(rows) or None)

    async def _read(self, statement: Executable) -> list[Row[Any]]:
        async with self.engine.connect() as conn:
            return list(await conn.execute(statement))

    # --- deciding -----------------------------------------------------------------------------

    async def decide(self, register: str, identity: EventIdentity) -> Decision:
        """New, duplicate, stale, or in flight (a crash left a submission: reconcile first)."""
        return (await self.decide_many(register, [identity]))[0]

    async def decide_many(
        self, register: str, identities: Sequence[EventIdentity]
    ) -> list[Decision]:
        """`decide` for a batch, each judged against the ledger alone: 3 queries per 500 events."""
        decisions: list[Decision] = []
        async with self.engine.connect() as conn:
            for chunk in _chunks(identities):
                decisions.extend(await self._decide_chunk(conn, register, chunk))
        return decisions

    async def _decide_chunk(
        self, conn: AsyncConnection, register: str, chunk: Sequence[EventIdentity]
    ) -> list[Decision]:
        event_ids = {i.event_id for i in chunk}
        record_ids = {i.record_id for i in chunk}
        outcomes = await conn.execute(
            select(events).where(
                _equal(events, register=register), events.c.event_id.in_(event_ids)
            )
        )
        outcome_of: dict[str, str] = {row.event_id: row.outcome for row in outcomes}
        applied = await conn.execute(
            select(records).where(
                _equal(records, register=register), records.c.record_id.in_(record_ids)
            )
        )
        record_of = {row.record_id: row for row in applied}
        flights = await conn.execute(
            select(inflight).where(
                _equal(inflight, register=register), inflight.c.record_id.in_(record_ids)
            )
        )
        flight_of = {
            row.record_id: InFlight(row.event_id, row.record_version, row.operation, row.started_at)
            for row in flights
        }
        return [
            judge(
                i,
                outcome_of.get(i.event_id),
                record_of.get(i.record_id),
                flight_of.get(i.record_id),
            )
            for i in chunk
        ]

    # --- submitting ---------------------------------------------------------------------------

    async def begin(self, register: str, identity: EventIdentity, now: datetime) -> None:
        """Note a submission before it leaves; replaces an earlier in-flight row of the record."""
        await self.begin_many(register, [identity], now)

    async def begin_many(
        self, register: str, identities: Sequence[EventIdentity], now: datetime
    ) -> None:
        by_record = sorted(identities, key=lambda i: i.record_id)  # stable; one lock order for all
        if by_record:
            rows = _rows(register, by_record, "operation", started_at=now)
            await self._write(self._upsert_inflight, rows)

    async def accept(
        self, register: str, identity: EventIdentity, reference: str, now: datetime
    ) -> None:
        """The register took it: apply the version (never lowering it), note it, clear flight."""
        await self.accept_many(register, [(identity, reference)], now)

    async def accept_many(
        self, register: str, items: Sequence[tuple[EventIdentity, str]], now: datetime
    ) -> None:
        """`accept` for a batch in one transaction; the items apply in order, as one by one."""
        if not items:
            return
        async with self.engine.begin() as conn:
            await self._accept_in(conn, register, items, now)

    async def _accept_in(
        self,
        conn: AsyncConnection,
        register: str,
        items: Sequence[tuple[EventIdentity, str]],
        now: datetime,
    ) -> None:
        applied = [
            {
                "register": register,
                "record_id": i.record_id,
                "applied_version": i.record_version,
                "reference": reference,
                "last_event_id": i.event_id,
                "updated_at": now,
            }
            for i, reference in sorted(items, key=lambda item: item[0].record_id)  # stable
        ]
        identities = [i for i, _ in items]
        await conn.execute(self._upsert_record, applied)
        rows = _rows(register, identities, outcome="accepted", at=now)
        await conn.execute(self._upsert_accepted, sorted(rows, key=lambda r: r["event_id"]))
        for chunk in _chunks(identities):
            pairs = [(i.record_id, i.event_id) for i in chunk]
            flying = row_of(inflight.c.record_id, inflight.c.event_id).in_(pairs)
            await conn.execute(delete(inflight).where(_equal(inflight, register=register), flying))

    async def settle(self, register: str, settlement: Settlement, now: datetime) -> None:
        """A whole chunk's outcomes in one transaction: accepted, skipped, dead-lettered, parked,
        released, and the in-flight rows of its records cleared."""
        s = settlement
        async with self.engine.begin() as conn:
            if s.accepted:
                await self._accept_in(conn, register, s.accepted, now)
            for identities, outcome, stmt in (
                (s.skipped, "skipped", self._upsert_skipped),
                (s.dead_lettered, "dead_lettered", self._upsert_dead_lettered),
            ):
                if identities:
                    rows = _rows(register, identities, outcome=outcome, at=now)
                    await conn.execute(stmt, sorted(rows, key=lambda r: r["event_id"]))
            if s.park:
                rows = [
                    {
                        "register": register,
                        "record_id": i.record_id,
                        "event_id": i.event_id,
                        "location": location,
                        "parked_at": now,
                    }
                    for i, location in s.park
                ]
                await conn.execute(self._upsert_parked, rows)
            for chunk in _chunks(s.unpark):
                pairs = [(i.record_id, i.event_id) for i in chunk]
                mine = row_of(parked.c.record_id, parked.c.event_id).in_(pairs)
                await conn.execute(delete(parked).where(_equal(parked, register=register), mine))
            for records_chunk in _chunks(sorted(set(s.settled_records))):
                done = inflight.c.record_id.in_(records_chunk)
                await conn.execute(
                    delete(inflight).where(_equal(inflight, register=register), done)
                )

    async def skip(self, register: str, identity: EventIdentity, now: datetime) -> None:
        """A duplicate or stale event was skipped (never overwrites an accepted one)."""
        await self._outcome(register, identity, "skipped", now)

    async def dead_lettered(self, register: str, identity: EventIdentity, now: datetime) -> None:
        """The event went to the dead-letter topic; a later replay of it is processed again."""
        await self._outcome(register, identity, "dead_lettered", now)

    async def abandon(self, register: str, identity: EventIdentity) -> None:
        """The submission definitely failed: forget its in-flight row (not another event's)."""
        await self._write(self._delete_inflight_of(register, identity))

    async def _outcome(
        self, register: str, identity: EventIdentity, outcome: EventOutcome, now: datetime
    ) -> None:
        stmt = self._upsert_skipped if outcome == "skipped" else self._upsert_dead_lettered
        async with self.engine.begin() as conn:
            await conn.execute(stmt, _rows(register, [identity], outcome=outcome, at=now))
            await conn.execute(self._delete_inflight_of(register, identity))

    @staticmethod
    def _delete_inflight_of(register: str, identity: EventIdentity) -> Executable:
        return delete(inflight).where(
            _equal(inflight, register=register, record_id=identity.record_id),
            inflight.c.event_id == identity.event_id,
        )

    # --- per-record order across retries ------------------------------------------------------

    async def park(
        self, register: str, identity: EventIdentity, location: str, now: datetime
    ) -> None:
        """Park the event at `location` ("retry:30s", "dlq"); a move keeps its place in line."""
        ids = {"record_id": identity.record_id, "event_id": identity.event_id}
        row = {"register": register, **ids, "location": location, "parked_at": now}
        await self._write(self._upsert_parked, [row])

    async def unpark(self, register: str, record_id: str, event_id: str) -> None:
        ids = {"register": register, "record_id": record_id, "event_id": event_id}
        await self._write(delete(parked).where(_equal(parked, **ids)))

    async def parked(self, register: str, record_id: str) -> list[Parked]:
        """The record's parked events, in the order they were parked."""
        return (await self.parked_records(register, [record_id]))[record_id]

    async def parked_records(
        self, register: str, record_ids: Sequence[str]
    ) -> dict[str, list[Parked]]:
        """`parked` for many records (every one asked for is a key, [] when nothing waits)."""
        found: dict[str, list[Parked]] = {record_id: [] for record_id in record_ids}
        for chunk in _chunks(list(found)):
            waiting = _equal(parked, register=register), parked.c.record_id.in_(chunk)
            for row in await self._read(select(parked).where(*waiting).order_by(parked.c.seq)):
                found[row.record_id].append(
                    Parked(row.event_id, row.location, row.seq, row.parked_at)
                )
        return found

    # --- replay audit -------------------------------------------------------------------------

    async def audit_replay(self, entries: Sequence[ReplayAuditEntry]) -> None:
        """Note replays before they are sent, so nothing is replayed twice by accident."""
        if entries:
            await self._write(replay_audit.insert(), [asdict(e) for e in entries])

    async def replays_of(
        self, dlq_topic: str, partition: int, offset: int
    ) -> list[ReplayAuditEntry]:
        """Every replay of one dead letter, oldest first."""
        where = {"dlq_topic": dlq_topic, "dlq_partition": partition, "dlq_offset": offset}
        rows = await self._read(
            select(replay_audit).where(_equal(replay_audit, **where)).order_by(replay_audit.c.id)
        )
        return [
            ReplayAuditEntry(**{k: v for k, v in row._mapping.items() if k != "id"}) for row in rows
        ]

    async def replayed_set(self, dlq_topic: str) -> set[tuple[int, int]]:
        """(partition, offset) of every dead letter of `dlq_topic` replayed so far."""
        replayed = select(replay_audit.c.dlq_partition, replay_audit.c.dlq_offset).distinct()
        rows = await self._read(replayed.where(replay_audit.c.dlq_topic == dlq_topic))
        return {(int(partition), int(offset)) for partition, offset in rows}

    # --- the Kafka cluster the ledger follows -----------------------------------------------------

    async def bind_cluster(self, register: str, cluster_id: str, now: datetime) -> None:
        """The first start binds the register's ledger to the cluster; later ones must match."""
        row = {"register": register, "cluster_id": cluster_id, "bound_at": now}
        stmt = insert_ignoring(self.engine.dialect.name, clusters, ("register",))
        await self._write(stmt, [row])
        bound = await self.cluster_of(register)
        if bound != cluster_id:
            raise LedgerOfAnotherClusterError(register, str(bound), cluster_id)

    async def cluster_of(self, register: str) -> str | None:
        rows = await self._read(
            select(clusters.c.cluster_id).where(clusters.c.register == register)
        )
        return str(rows[0].cluster_id) if rows else None

    async def rebind_cluster(self, register: str, cluster_id: str, now: datetime) -> None:
        """An operator's decision: the register's ledger follows `cluster_id` from now on."""
        row = {"register": register, "cluster_id": cluster_id, "bound_at": now}
        stmt = upsert(self.engine.dialect.name, clusters, ("register",), ("cluster_id", "bound_at"))
        await self._write(stmt, [row])

    async def reference_of(self, register: str, record_id: str) -> str | None:
        """The register's own id of the record (what a correction or cancellation needs)."""
        where = _equal(records, register=register, record_id=record_id)
        rows = await self._read(select(records.c.reference).where(where))
        return str(rows[0].reference) if rows else None
