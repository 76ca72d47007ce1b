"""Slot claims: the replica that inserts a slot's row first runs it; the others see it taken."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

FAILED = "failed: "  # how the outcome of a failed run starts
_SCHEMA_LOCK = 0x72656763  # PostgreSQL advisory lock held while a replica creates the table
metadata = MetaData()
slots = Table(
    "regbridge_schedule_slots",
    metadata,
    Column("slot_id", String(120), primary_key=True),
    Column("claimed_by", String(200), nullable=False),
    Column("claimed_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("outcome", Text),
)


@dataclass(frozen=True)
class SlotRun:
    """One claimed slot: who ran it, when it finished (None: running, or died) and how."""

    slot_id: str
    claimed_by: str
    claimed_at: datetime
    finished_at: datetime | None
    outcome: str | None

    @property
    def succeeded(self) -> bool:
        return self.outcome is not None and not self.outcome.startswith(FAILED)

    @property
    def slot_at(self) -> datetime:
        """The slot's own time (its id is ``<kind>/<local time to the minute>``)."""
        return datetime.fromisoformat(self.slot_id.rpartition("/")[2])


class SlotClaims:
    """One row per slot run: who claimed it and when, when it finished and how."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._schema_lock = asyncio.Lock()
        self._schema_ready = False

    async def create_schema(self) -> None:
        """Create the table if it does not exist yet: safe from several schedules of one process
        at once (one creates, the others wait) and from replicas starting together on
        PostgreSQL (an advisory lock)."""
        async with self._schema_lock:
            if self._schema_ready:
                return
            async with self._engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    await conn.execute(select(func.pg_advisory_xact_lock(_SCHEMA_LOCK)))
                await conn.run_sync(metadata.create_all)
            self._schema_ready = True

    async def claim(self, slot: str, owner: str, now: datetime) -> bool:
        """True if this call inserted the slot's row, so `owner` runs it; False if it was taken."""
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert(slots).values(slot_id=slot, claimed_by=owner, claimed_at=now)
                )
        except IntegrityError:
            return False
        return True

    async def finish(self, slot: str, outcome: str, now: datetime) -> None:
        """Note how the slot's run ended (a summary, or `failed: …`)."""
        async with self._engine.begin() as conn:
            await conn.execute(
                update(slots)
                .where(slots.c.slot_id == slot)
                .values(finished_at=now, outcome=outcome)
            )

    async def recent(self, kind: str, limit: int = 10) -> list[SlotRun]:
        """The latest `limit` slots of `kind` that were claimed, newest first."""
        query = (
            select(slots)
            .where(slots.c.slot_id.startswith(f"{kind}/", autoescape=True))
            .order_by(slots.c.claimed_at.desc())
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [SlotRun(**row._asdict()) for row in rows]

    async def last(self, kind: str) -> SlotRun | None:
        """The latest slot of `kind` that finished well, if any."""
        query = (
            select(slots)
            .where(slots.c.slot_id.startswith(f"{kind}/", autoescape=True))
            .where(slots.c.finished_at.is_not(None))
            .where(~slots.c.outcome.startswith(FAILED, autoescape=True))
            .order_by(slots.c.finished_at.desc())
            .limit(1)
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else SlotRun(**row._asdict())
