"""The submission ledger: per register and record, what is applied, in flight, parked, replayed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime
from functools import partial
from typing import Any

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
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from shared.delivery.ledger_schema import (
    EVENT_KEY,
    PARKED_KEY,
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
    metadata,
    parked,
    records,
    replay_audit,
    upsert,
)
from shared.delivery.ledger_sql import (
    ChunkSql,
    begun_rows,
    event_pairs,
    judged,
    parked_of,
    settlement_rows,
    to_json,
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

_SCHEMA_LOCK = 0x72656762  # PostgreSQL advisory lock held while a replica creates the schema
_IDENTITY = ("event_id", "record_id", "record_version")


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
        # a statement alone is atomic: PostgreSQL runs the chunk's ones without BEGIN and COMMIT
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._sql = ChunkSql(engine.dialect.name)
        up = partial(upsert, engine.dialect.name)
        # One event at a time (the chunk's statements are in ledger_sql.py): the strongest outcome
        # wins, accepted > skipped > dead_lettered; a parked event's move keeps seq and parked_at.
        outcome = ("record_id", "record_version", "outcome", "at")
        self._upsert_skipped = up(
            events, EVENT_KEY, outcome, lambda _: events.c.outcome != "accepted"
        )
        self._upsert_dead_lettered = up(
            events, EVENT_KEY, ("at",), lambda _: events.c.outcome == "dead_lettered"
        )
        self._upsert_parked = up(parked, PARKED_KEY, ("location",))

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

    async def _fetch(
        self, statement: Executable, params: dict[str, Any], *, rows: bool = True
    ) -> list[Row[Any]]:
        """One statement (and its rows): on PostgreSQL without BEGIN and COMMIT around it (a
        statement alone is atomic), on SQLite in a transaction when it writes."""
        engine = self._autocommit if self._postgres else self.engine
        async with engine.begin() as conn:
            result = await conn.execute(statement, params)
            return list(result) if rows else []

    # --- a chunk ------------------------------------------------------------------------------

    async def open(
        self, register: str, identities: Sequence[EventIdentity], now: datetime
    ) -> tuple[list[Decision], dict[str, list[Parked]]]:
        """`decide_many`, `parked_records` of their records and `begin_many` of each record's last
        event at once: the decisions see the ledger as it was before the submissions are noted.
        One statement on PostgreSQL; on SQLite a read and an upsert in one transaction."""
        if not identities:
            return [], {}
        last = {i.record_id: i for i in identities}
        read = {"register": register, "events": to_json(event_pairs(identities))}
        begun = {"register": register, "begun": to_json(begun_rows(last.values())), "now": now}
        if self._postgres:
            rows = await self._fetch(self._sql.open, read | begun)
        else:
            async with self.engine.begin() as conn:
                rows = list(await conn.execute(self._sql.read, read))
                await conn.execute(self._sql.begin, begun)
        return judged(identities, rows), parked_of(list(last), rows)

    async def settle(self, register: str, settlement: Settlement, now: datetime) -> None:
        """A whole chunk's outcomes in one transaction: accepted, skipped, dead-lettered, parked,
        released, and the in-flight rows of its records cleared. One statement on PostgreSQL; on
        SQLite one per table touched (records, events, in flight, parked in, parked out)."""
        params = settlement_rows(settlement)
        if not any(params.values()):
            return
        common = {"register": register, "now": now}
        if self._postgres:
            await self._fetch(
                self._sql.settle, common | {k: to_json(v) for k, v in params.items()}, rows=False
            )
            return
        async with self.engine.begin() as conn:
            for statement, names in self._sql.settle_parts:
                if any(params[name] for name in names):
                    values = {name: to_json(params[name]) for name in names}
                    await conn.execute(statement, common | values)

    # --- deciding -----------------------------------------------------------------------------

    async def decide(self, register: str, identity: EventIdentity) -> Decision:
        """New, duplicate, stale, or in flight (a crash left a submission: reconcile first)."""
        return (await self.decide_many(register, [identity]))[0]

    async def decide_many(
        self, register: str, identities: Sequence[EventIdentity]
    ) -> list[Decision]:
        """`decide` for a batch, each judged against the ledger alone: one query, any size."""
        if not identities:
            return []
        batch = to_json(event_pairs(identities))
        rows = await self._fetch(self._sql.decide, {"register": register, "events": batch})
        return judged(identities, rows)

    # --- submitting ---------------------------------------------------------------------------

    async def begin(self, register: str, identity: EventIdentity, now: datetime) -> None:
        """Note a submission before it leaves; replaces an earlier in-flight row of the record."""
        await self.begin_many(register, [identity], now)

    async def begin_many(
        self, register: str, identities: Sequence[EventIdentity], now: datetime
    ) -> None:
        """`begin` for a batch in one statement; a record's last identity is the one noted."""
        if identities:
            last = {i.record_id: i for i in identities}
            params = {"register": register, "begun": to_json(begun_rows(last.values())), "now": now}
            await self._fetch(self._sql.begin, params, rows=False)

    async def accept(
        self, register: str, identity: EventIdentity, reference: str, now: datetime
    ) -> None:
        """The register took it: apply the version (never lowering it), note it, clear flight."""
        await self.accept_many(register, [(identity, reference)], now)

    async def accept_many(
        self, register: str, items: Sequence[tuple[EventIdentity, str]], now: datetime
    ) -> None:
        """`accept` for a batch in one transaction; the items apply in order, as one by one."""
        await self.settle(register, Settlement(accepted=list(items)), now)

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
        if not record_ids:
            return {}
        batch = to_json([[None, record_id] for record_id in record_ids])
        rows = await self._fetch(self._sql.parked, {"register": register, "events": batch})
        return parked_of(record_ids, rows)

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
