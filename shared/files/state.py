"""A file register's state in the ledger's database: each record's latest version, the files built
from it (their rows frozen at the cut-off, so a file renders to the same bytes every time), the
register's receipts, and what the register holds of each record.

Every file goes built → delivering → received → done:

- **built**: its rows are chosen and numbered in one statement (`INSERT … SELECT`), never held in
  memory; a file identical to the register's latest one is not built at all.
- **delivering**: noted before the upload leaves. After a crash the register is asked first
  (`lookup`): a file it has is never uploaded again.
- **received**: the receipt and every row's verdict are stored, and what the register now holds
  of each record, in one transaction.
- **done**: each event's result (and each refused row's dead letter) is durable in Kafka. A
  record's `reported_event` is the outbox: a result is published until it is set.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    literal,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.delivery.ledger_schema import UtcDateTime, events, records, upsert
from shared.delivery.worker import EventIdentity
from shared.files.register import FileHeader, FileKey, FileRow, Placement, Receipt, RowKind
from shared.schedule import Period

_SCHEMA_LOCK = 0x72656764  # PostgreSQL advisory lock held while a replica creates the tables
_HELD = ("accepted", "partly_accepted")  # receipts of a file the register holds
PAGE = 2_000  # rows read at a time when a file is rendered or its results published
FileStatus = str  # "built" | "delivering" | "received" | "done" | "failed"

metadata = MetaData()

file_records = Table(
    "regbridge_file_records",
    metadata,
    Column("register", Text, primary_key=True),
    Column("record_id", Text, primary_key=True),
    Column("period", Text),  # YYYY-MM; None: cancelled before it was ever placed
    Column("owner", Text),
    Column("record_version", BigInteger, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("cancelled", Boolean, nullable=False),
    Column("carried", Boolean, nullable=False, default=False),  # in each later period's file
    Column("row_values", Text, nullable=False),  # JSON ("{}" for a cancellation)
    Column("raw", LargeBinary, nullable=False),  # the event as consumed: a refused row's letter
    Column("updated_at", UtcDateTime, nullable=False),
    Column("refused_version", BigInteger),  # the register refused this version: not sent again
    Column("slot_period", Text),  # the period whose file carries its correction (K/M rows)
    Column("held_version", BigInteger),  # what the register holds; None: nothing
    Column("held_cancelled", Boolean, nullable=False, default=False),
    Column("held_file", Text),
    Column("reported_event", Text),  # the event whose result is published (the outbox)
    Index("ix_regbridge_file_records_owner", "register", "owner", "period"),
)

file_changes = Table(  # which (owner, period) changed since its file was last built
    "regbridge_file_changes",
    metadata,
    Column("register", Text, primary_key=True),
    Column("owner", Text, primary_key=True),
    Column("period", Text, primary_key=True),
    Column("counter", BigInteger, nullable=False),
)

files = Table(
    "regbridge_files",
    metadata,
    Column("register", Text, primary_key=True),
    Column("name", Text, primary_key=True),
    Column("period", Text, nullable=False),
    Column("owner", Text, nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("replaces", Text),
    Column("built_at", UtcDateTime, nullable=False),
    Column("row_count", BigInteger, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("receipt_id", Text),
    Column("receipt_status", Text),  # accepted | partly_accepted | refused
    Column("receipt_reason", Text),
    Column("receipt_raw", Text),
    Column("received_at", UtcDateTime),
    Column("finished_at", UtcDateTime),
    Index("ix_regbridge_files_key", "register", "period", "owner", "sequence", unique=True),
)

file_rows = Table(
    "regbridge_file_rows",
    metadata,
    Column("register", Text, primary_key=True),
    Column("file", Text, primary_key=True),
    Column("number", BigInteger, primary_key=True),
    Column("record_id", Text, nullable=False),
    Column("record_version", BigInteger, nullable=False),
    Column("event_id", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("corrects", Text),
    Column("row_values", Text, nullable=False),
    Column("verdict", Text),  # accepted | refused, from the receipt
    Column("code", Text),
    Column("reason", Text),
    Index("ix_regbridge_file_rows_record", "register", "file", "record_id"),
)

leases = Table(
    "regbridge_file_leases",
    metadata,
    Column("register", Text, primary_key=True),
    Column("holder", Text, nullable=False),
    Column("until", UtcDateTime, nullable=False),
)


@dataclass(frozen=True)
class Intake:
    """One event's change to the state: its placement (None for a cancellation that names no
    file) and the bytes it came as."""

    identity: EventIdentity
    placement: Placement | None
    cancelled: bool
    raw: bytes


@dataclass(frozen=True)
class FileInfo:
    """A built file as the state keeps it."""

    name: str
    key: FileKey
    sequence: int
    replaces: str | None
    built_at: datetime
    row_count: int
    status: FileStatus
    attempts: int
    last_error: str | None
    receipt_id: str | None
    receipt_status: str | None
    receipt_reason: str | None
    receipt_raw: str | None
    received_at: datetime | None
    finished_at: datetime | None

    @property
    def header(self) -> FileHeader:
        return FileHeader(
            self.key, self.name, self.sequence, self.replaces, self.built_at, self.row_count
        )

    @property
    def held(self) -> bool:
        """The register holds it (its receipt accepted at least one row)."""
        return self.receipt_status in ("accepted", "partly_accepted")


@dataclass(frozen=True)
class RowResult:
    """One row's fate after its file's receipt, with what a result or a dead letter needs."""

    number: int
    record_id: str
    record_version: int
    event_id: str
    kind: RowKind
    verdict: str
    code: str | None
    reason: str | None
    raw: bytes | None  # the event, when it is still the record's latest (a refused row's letter)


@dataclass(frozen=True)
class Withdrawn:
    """A cancellation whose record the register does not hold (never delivered, or withdrawn by
    a replacement): accepted, its result not yet published."""

    record_id: str
    record_version: int
    event_id: str
    held_file: str | None


def _info(row: Row[Any]) -> FileInfo:
    return FileInfo(
        name=row.name,
        key=FileKey(Period.parse(row.period), row.owner),
        sequence=row.sequence,
        replaces=row.replaces,
        built_at=row.built_at,
        row_count=row.row_count,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        receipt_id=row.receipt_id,
        receipt_status=row.receipt_status,
        receipt_reason=row.receipt_reason,
        receipt_raw=row.receipt_raw,
        received_at=row.received_at,
        finished_at=row.finished_at,
    )


def _out_of_date() -> Any:
    """A record whose current state the register does not hold yet (and did not refuse)."""
    r = file_records.c
    not_refused = or_(r.refused_version.is_(None), r.refused_version != r.record_version)
    changed = or_(r.held_version.is_(None), r.held_version != r.record_version)
    return or_(
        and_(not_(r.cancelled), changed, not_refused),
        and_(r.cancelled, r.held_version.is_not(None), not_(r.held_cancelled)),
    )


class FileState:
    """The state of one file register (`register` names its rows in shared tables)."""

    def __init__(self, engine: AsyncEngine, register: str) -> None:
        self.engine = engine
        self.register = register
        self._dialect = engine.dialect.name

    async def create_schema(self) -> None:
        async with self.engine.begin() as conn:
            if self._dialect == "postgresql":
                await conn.execute(select(func.pg_advisory_xact_lock(_SCHEMA_LOCK)))
            await conn.run_sync(metadata.create_all)

    # --- intake -------------------------------------------------------------------------------

    async def store(self, items: Sequence[Intake], now: datetime) -> dict[str, str]:
        """Each event's change, in one transaction: its record's latest state (the change noted
        for its unit's month). Returns an error text per event id that cannot be taken (a record
        the register holds in another file, moved by this version)."""
        refused: dict[str, str] = {}
        r = file_records.c
        async with self.engine.begin() as conn:
            ids = sorted({i.identity.record_id for i in items})
            held: dict[str, Row[Any]] = {}
            for start in range(0, len(ids), 500):
                rows = await conn.execute(
                    select(r.record_id, r.period, r.owner, r.held_version, r.carried).where(
                        r.register == self.register, r.record_id.in_(ids[start : start + 500])
                    )
                )
                held.update({row.record_id: row for row in rows})
            latest: dict[str, dict[str, Any]] = {}
            changes: set[tuple[str, str]] = set()
            for item in items:
                identity, placement = item.identity, item.placement
                before = held.get(identity.record_id)
                period = owner = None
                if before is not None and (item.cancelled or placement is None):
                    period, owner = before.period, before.owner  # withdrawn where it is
                elif placement is not None:
                    period, owner = str(placement.key.period), placement.key.owner
                if (
                    before is not None
                    and before.held_version is not None
                    and (before.owner != owner or (before.period != period and not before.carried))
                ):
                    refused[identity.event_id] = (
                        f"moved_after_delivery: the register holds record {identity.record_id} "
                        f"in {before.owner}'s file of {before.period}; this version places it in "
                        f"{owner}'s file of {period}. Cancel it and report the visit under a new "
                        f"record id"
                    )
                    continue
                values = {} if item.cancelled or placement is None else dict(placement.values)
                latest[identity.record_id] = {
                    "register": self.register,
                    "record_id": identity.record_id,
                    "period": period,
                    "owner": owner,
                    "record_version": identity.record_version,
                    "event_id": identity.event_id,
                    "cancelled": item.cancelled,
                    "carried": placement is not None and placement.carried and not item.cancelled,
                    "row_values": json.dumps(values, ensure_ascii=False, sort_keys=True),
                    "raw": item.raw,
                    "updated_at": now,
                    "refused_version": None,
                    "reported_event": None,
                    "held_cancelled": False,
                }
                for where in (before, None):
                    p, o = (where.period, where.owner) if where is not None else (period, owner)
                    if p is not None and o is not None:
                        changes.add((o, p))
            if latest:
                updated = (
                    "period",
                    "owner",
                    "record_version",
                    "event_id",
                    "cancelled",
                    "carried",
                    "row_values",
                    "raw",
                    "updated_at",
                    "refused_version",
                    "reported_event",
                )
                stmt = upsert(self._dialect, file_records, ("register", "record_id"), updated)
                await conn.execute(stmt, [latest[key] for key in sorted(latest)])
            if changes:
                await self._note_changes(conn, sorted(changes))
        return refused

    async def _note_changes(
        self, conn: AsyncConnection, changes: Sequence[tuple[str, str]]
    ) -> None:
        rows = [
            {"register": self.register, "owner": o, "period": p, "counter": 1} for o, p in changes
        ]
        insert = postgresql.insert if self._dialect == "postgresql" else sqlite.insert
        stmt = insert(file_changes).on_conflict_do_update(
            index_elements=("register", "owner", "period"),
            set_={"counter": file_changes.c.counter + 1},
        )
        await conn.execute(stmt, rows)

    async def holds_event(self, record_id: str, event_id: str) -> bool:
        """Is this event the record's stored state (a crash between store and the ledger)?"""
        r = file_records.c
        query = select(literal(1)).where(
            r.register == self.register, r.record_id == record_id, r.event_id == event_id
        )
        async with self.engine.connect() as conn:
            return (await conn.execute(query)).first() is not None

    # --- building -----------------------------------------------------------------------------

    async def owners_to_build(self, period: Period) -> list[str]:
        """Owners whose file of `period` may differ from the last one built: a change noted for
        them in this period or an earlier one, or rows carried into a period not yet built."""
        c, r, f = file_changes.c, file_records.c, files.c
        changed = select(c.owner).where(c.register == self.register, c.period <= str(period))
        no_file = ~exists(
            select(literal(1)).where(
                f.register == self.register, f.period == str(period), f.owner == r.owner
            )
        )
        carried = select(r.owner).where(
            r.register == self.register, r.carried, r.period < str(period), no_file
        )
        query = changed.union(carried).order_by("owner")
        async with self.engine.connect() as conn:
            return [row.owner for row in await conn.execute(query)]

    async def build(
        self,
        key: FileKey,
        now: datetime,
        name_of: Callable[[FileKey, int], str],
        *,
        corrections: bool = True,
    ) -> FileInfo | None:
        """Build the owner's file of the period as the state is now (the cut-off `now`), unless
        it would be empty with nothing to replace, or the same rows as the latest file. The
        changes it took into account are consumed either way."""
        period, owner = str(key.period), key.owner
        r, c, f, fr = file_records.c, file_changes.c, files.c, file_rows.c
        async with self.engine.begin() as conn:
            counters = {
                row.period: row.counter
                for row in await conn.execute(
                    select(c.period, c.counter).where(
                        c.register == self.register, c.owner == owner, c.period <= period
                    )
                )
            }
            earlier = list(
                await conn.execute(
                    select(files)
                    .where(f.register == self.register, f.period == period, f.owner == owner)
                    .order_by(f.sequence.desc())
                )
            )
            latest = earlier[0] if earlier else None
            if latest is not None and latest.status not in ("done", "failed"):
                return None  # the one in hand is delivered first
            sequence = 1 if latest is None else latest.sequence + 1
            held = next((e for e in earlier if e.receipt_status in _HELD), None)
            answered = next((e for e in earlier if e.receipt_status is not None), None)
            name = name_of(key, sequence)
            mine = and_(r.register == self.register, r.owner == owner)
            if corrections:
                await conn.execute(
                    update(file_records)
                    .where(
                        mine,
                        r.period < period,
                        not_(r.carried),
                        or_(r.slot_period.is_(None), r.slot_period < period),
                        _out_of_date(),
                    )
                    .values(slot_period=period)
                )
            not_refused = or_(r.refused_version.is_(None), r.refused_version != r.record_version)
            own = or_(r.period == period, and_(r.carried, r.period < period))  # the period's rows
            kind = case(
                (own, literal("row")),
                (r.cancelled, literal("cancellation")),
                else_=literal("correction"),
            )
            chosen = or_(
                and_(own, not_(r.cancelled), not_refused),
                and_(
                    literal(corrections),
                    r.period < period,
                    not_(r.carried),
                    r.slot_period == period,
                    or_(
                        and_(not_(r.cancelled), not_refused),
                        and_(r.cancelled, r.held_version.is_not(None)),
                    ),
                ),
            )
            order = (
                case((own, 0), (r.cancelled, 2), else_=1),
                case((own, literal("")), else_=r.period),
                r.record_id,
            )
            number = func.row_number().over(order_by=order)
            source = select(
                literal(self.register),
                literal(name),
                number,
                r.record_id,
                r.record_version,
                r.event_id,
                kind,
                case((own, None), else_=r.period),
                case((r.cancelled, literal("{}")), else_=r.row_values),
            ).where(mine, chosen)
            columns = [
                "register", "file", "number", "record_id", "record_version", "event_id",
                "kind", "corrects", "row_values",
            ]  # fmt: skip
            await conn.execute(file_rows.insert().from_select(columns, source))
            count = (
                await conn.execute(
                    select(func.count()).where(fr.register == self.register, fr.file == name)
                )
            ).scalar_one()
            same = held is not None and await self._same_rows(conn, name, held.name)
            for done_period, counter in counters.items():  # consumed unless changed meanwhile
                await conn.execute(
                    delete(file_changes).where(
                        c.register == self.register,
                        c.owner == owner,
                        c.period == done_period,
                        c.counter == counter,
                    )
                )
            if same or (count == 0 and held is None):
                await conn.execute(
                    delete(file_rows).where(fr.register == self.register, fr.file == name)
                )
                return None
            # a replacement names the file the register holds (or, refused whole, the one it
            # answered last): a file it never received is no file to replace
            replaced = held or answered
            replaces = None if replaced is None else replaced.name
            await conn.execute(
                files.insert().values(
                    register=self.register,
                    name=name,
                    period=period,
                    owner=owner,
                    sequence=sequence,
                    replaces=replaces,
                    built_at=now,
                    row_count=count,
                    status="built",
                    attempts=0,
                )
            )
            row = (
                await conn.execute(select(files).where(f.register == self.register, f.name == name))
            ).one()
            return _info(row)

    async def _same_rows(self, conn: AsyncConnection, new: str, old: str) -> bool:
        fr = file_rows.c

        def rows_of(name: str) -> Any:
            return select(fr.record_id, fr.record_version, fr.kind).where(
                fr.register == self.register, fr.file == name
            )

        for a, b in ((new, old), (old, new)):
            extra = rows_of(a).except_(rows_of(b)).subquery()
            if (await conn.execute(select(func.count()).select_from(extra))).scalar_one():
                return False
        return True

    # --- reading ------------------------------------------------------------------------------

    async def file(self, name: str) -> FileInfo | None:
        f = files.c
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(files).where(f.register == self.register, f.name == name))
            ).first()
        return None if row is None else _info(row)

    async def files_of(
        self, period: Period | None = None, *, unfinished: bool = False
    ) -> list[FileInfo]:
        f = files.c
        query = select(files).where(f.register == self.register)
        if period is not None:
            query = query.where(f.period == str(period))
        if unfinished:
            query = query.where(f.status.in_(("built", "delivering", "received")))
        query = query.order_by(f.period, f.owner, f.sequence)
        async with self.engine.connect() as conn:
            return [_info(row) for row in await conn.execute(query)]

    async def rows(self, name: str) -> AsyncIterator[list[FileRow]]:
        """The file's rows in order, a page at a time (never the whole file in memory)."""
        fr = file_rows.c
        after = 0
        while True:
            async with self.engine.connect() as conn:
                page = list(
                    await conn.execute(
                        select(file_rows)
                        .where(fr.register == self.register, fr.file == name, fr.number > after)
                        .order_by(fr.number)
                        .limit(PAGE)
                    )
                )
            if not page:
                return
            yield [
                FileRow(
                    number=row.number,
                    record_id=row.record_id,
                    record_version=row.record_version,
                    event_id=row.event_id,
                    kind=row.kind,
                    values=json.loads(row.row_values),
                    corrects=None if row.corrects is None else Period.parse(row.corrects),
                )
                for row in page
            ]
            after = page[-1].number

    async def refused_rows(self, name: str, limit: int = 1000) -> list[Row[Any]]:
        fr = file_rows.c
        query = (
            select(fr.number, fr.record_id, fr.record_version, fr.kind, fr.code, fr.reason)
            .where(fr.register == self.register, fr.file == name, fr.verdict == "refused")
            .order_by(fr.number)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return list(await conn.execute(query))

    async def owners_not_accepted(self, period: Period) -> list[str]:
        """Owners with visits in `period` whose latest file the register does not hold (none
        built, not yet delivered, or refused whole)."""
        r, f = file_records.c, files.c
        held = exists(
            select(literal(1)).where(
                f.register == self.register,
                f.period == str(period),
                f.owner == r.owner,
                f.receipt_status.in_(_HELD),
            )
        )
        query = (
            select(r.owner)
            .where(r.register == self.register, not_(r.cancelled))
            .where(or_(r.period == str(period), and_(r.carried, r.period < str(period))))
            .where(not_(held))
            .distinct()
            .order_by(r.owner)
        )
        async with self.engine.connect() as conn:
            return [row.owner for row in await conn.execute(query)]

    # --- delivering ---------------------------------------------------------------------------

    async def mark(
        self, name: str, status: FileStatus, now: datetime, error: str | None = None
    ) -> None:
        f = files.c
        values: dict[str, Any] = {"status": status, "last_error": error}
        if status == "delivering":
            values["attempts"] = f.attempts + 1
        if status in ("done", "failed"):
            values["finished_at"] = now
        async with self.engine.begin() as conn:
            await conn.execute(
                update(files).where(f.register == self.register, f.name == name).values(**values)
            )

    async def receive(self, info: FileInfo, receipt: Receipt, now: datetime) -> None:
        """The receipt, every row's verdict, and what the register now holds, in one
        transaction; the refused versions are not sent again (until replayed), and their events
        are dead letters in the ledger too, so that a replay is taken again."""
        f, fr, r = files.c, file_rows.c, file_records.c
        name = info.name
        verdicts = {v.number: v for v in receipt.rows}
        whole = receipt.status == "refused"
        async with self.engine.begin() as conn:
            await conn.execute(
                update(files)
                .where(f.register == self.register, f.name == name)
                .values(
                    status="received",
                    receipt_id=receipt.receipt_id,
                    receipt_status=receipt.status,
                    receipt_reason=receipt.reason,
                    receipt_raw=receipt.raw,
                    received_at=receipt.received_at,
                    last_error=None,
                )
            )
            this_file = and_(fr.register == self.register, fr.file == name)
            if whole:
                await conn.execute(
                    update(file_rows)
                    .where(this_file)
                    .values(verdict="refused", code="FIL", reason=receipt.reason or "refused")
                )
            else:
                await conn.execute(update(file_rows).where(this_file).values(verdict="accepted"))
                refused = [
                    {"n": v.number, "code": v.code, "reason": v.reason}
                    for v in verdicts.values()
                    if not v.accepted
                ]
                if refused:
                    stmt = (
                        update(file_rows)
                        .where(this_file, fr.number == bindparam("n"))
                        .values(
                            verdict="refused", code=bindparam("code"), reason=bindparam("reason")
                        )
                    )
                    await conn.execute(stmt, refused)
            accepted = (
                select(file_rows)
                .where(this_file, fr.record_id == r.record_id, fr.verdict == "accepted")
                .correlate(file_records)
            )
            # a file's rows are its owner's records: the (register, owner, period) index keeps
            # each update to one unit's records, not the whole month's
            mine = and_(r.register == self.register, r.owner == info.key.owner)
            if not whole:  # the register holds this file now: its rows, and no other's
                await conn.execute(  # UPDATE … FROM: one join, not a subquery per record
                    update(file_records)
                    .where(
                        mine,
                        fr.register == self.register,
                        fr.file == name,
                        fr.verdict == "accepted",
                        fr.record_id == r.record_id,
                    )
                    .values(
                        held_version=fr.record_version,
                        held_cancelled=fr.kind == "cancellation",
                        held_file=name,
                    )
                )
                earlier = select(f.name).where(
                    f.register == self.register,
                    f.period == str(info.key.period),
                    f.owner == info.key.owner,
                    f.sequence < info.sequence,
                )
                if info.sequence > 1:  # a replacement: what it leaves out is withdrawn
                    await conn.execute(  # held_file stays: the result says what withdrew it
                        update(file_records)
                        .where(
                            mine,
                            r.held_version.is_not(None),
                            r.held_file.in_(earlier),
                            not_(exists(accepted)),
                        )
                        .values(held_version=None, held_cancelled=False)
                    )
            refused_rows = await conn.execute(
                select(
                    fr.record_id,
                    fr.record_version,
                    fr.event_id,
                    fr.kind,
                    r.record_version.label("current"),
                    r.held_version,
                    r.held_cancelled,
                )
                .join(file_records, and_(r.register == fr.register, r.record_id == fr.record_id))
                .where(this_file, fr.verdict == "refused")
            )
            lost = [  # a whole file refused leaves the register holding what it held before
                row
                for row in refused_rows
                if not (
                    whole
                    and row.held_version == row.record_version
                    and row.held_cancelled == (row.kind == "cancellation")
                )
            ]
            current = [
                {"rid": row.record_id, "v": row.record_version}
                for row in lost
                if row.current == row.record_version
            ]
            if current:
                await conn.execute(
                    update(file_records)
                    .where(mine, r.record_id == bindparam("rid"))
                    .values(refused_version=bindparam("v")),
                    current,
                )
            await self._refused_in_ledger(conn, lost, now)

    async def _refused_in_ledger(
        self, conn: AsyncConnection, rows: Sequence[Row[Any]], now: datetime
    ) -> None:
        """A refused row's event is a dead letter in the ledger: its replay is taken again."""
        e, rec = events.c, records.c
        for row in rows:
            await conn.execute(
                update(events)
                .where(e.register == self.register, e.event_id == row.event_id)
                .values(outcome="dead_lettered", at=now)
            )
            await conn.execute(
                update(records)
                .where(
                    rec.register == self.register,
                    rec.record_id == row.record_id,
                    rec.last_event_id == row.event_id,
                )
                .values(applied_version=row.record_version - 1)
            )

    async def results(self, name: str) -> AsyncIterator[list[RowResult]]:
        """The rows of a received file whose result is not yet published, a page at a time."""
        fr, r = file_rows.c, file_records.c
        after = 0
        while True:
            query = (
                select(
                    fr.number,
                    fr.record_id,
                    fr.record_version,
                    fr.event_id,
                    fr.kind,
                    fr.verdict,
                    fr.code,
                    fr.reason,
                    case((r.event_id == fr.event_id, r.raw), else_=None).label("raw"),
                )
                .join(file_records, and_(r.register == fr.register, r.record_id == fr.record_id))
                .where(fr.register == self.register, fr.file == name, fr.number > after)
                .where(or_(r.reported_event.is_(None), r.reported_event != fr.event_id))
                .order_by(fr.number)
                .limit(PAGE)
            )
            async with self.engine.connect() as conn:
                page = list(await conn.execute(query))
            if not page:
                return
            yield [
                RowResult(
                    row.number,
                    row.record_id,
                    row.record_version,
                    row.event_id,
                    row.kind,
                    row.verdict or "refused",
                    row.code,
                    row.reason,
                    row.raw,
                )
                for row in page
            ]
            after = page[-1].number

    async def withdrawn(self, owner: str, period: Period) -> list[Withdrawn]:
        """Cancellations of the owner's records up to `period` that the register does not hold
        and whose result is not yet published."""
        r = file_records.c
        query = select(r.record_id, r.record_version, r.event_id, r.held_file).where(
            r.register == self.register,
            r.owner == owner,
            r.period <= str(period),
            r.cancelled,
            r.held_version.is_(None),
            or_(r.reported_event.is_(None), r.reported_event != r.event_id),
        )
        async with self.engine.connect() as conn:
            return [Withdrawn(*row) for row in await conn.execute(query)]

    async def reported(self, events_by_record: Mapping[str, str]) -> None:
        """Note the published results (the outbox's mark)."""
        r = file_records.c
        if not events_by_record:
            return
        stmt = (
            update(file_records)
            .where(r.register == self.register, r.record_id == bindparam("rid"))
            .values(reported_event=bindparam("eid"))
        )
        async with self.engine.begin() as conn:
            await conn.execute(stmt, [{"rid": k, "eid": v} for k, v in events_by_record.items()])

    # --- one delivery run at a time -----------------------------------------------------------

    async def lease(self, holder: str, now: datetime, until: datetime) -> bool:
        """Take (or renew) the register's delivery lease; False while another holds it."""
        l = leases.c  # noqa: E741
        stmt = upsert(
            self._dialect,
            leases,
            ("register",),
            ("holder", "until"),
            lambda new: or_(l.until < now, l.holder == new.holder),
        )
        async with self.engine.begin() as conn:
            await conn.execute(
                stmt, [{"register": self.register, "holder": holder, "until": until}]
            )
            row = (await conn.execute(select(l.holder).where(l.register == self.register))).one()
        return bool(row.holder == holder)

    async def release(self, holder: str) -> None:
        l = leases.c  # noqa: E741
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(leases).where(l.register == self.register, l.holder == holder)
            )
