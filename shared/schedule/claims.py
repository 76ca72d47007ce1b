"""Slot claims: the replica that inserts a slot's row first runs it; the others see it taken."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, MetaData, String, Table, Text, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

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


class SlotClaims:
    """One row per slot run: who claimed it and when, when it finished and how."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create_schema(self) -> None:
        async with self._engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

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
