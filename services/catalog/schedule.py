"""When full imports run: local wall-clock slots, each claimed once across all replicas."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Column, DateTime, MetaData, String, Table, Text, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.delivery.clock import Clock
from shared.logging import get_logger

log = get_logger(__name__)
metadata = MetaData()
slots = Table(
    "regbridge_catalog_slots",
    metadata,
    Column("slot_id", String(120), primary_key=True),
    Column("claimed_by", String(200), nullable=False),
    Column("claimed_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("outcome", Text),
)


def parse_times(texts: Sequence[str]) -> list[time]:
    """'11:30' → time(11, 30); sorted."""
    return sorted(time.fromisoformat(text) for text in texts)


def next_slot(now: datetime, times: Sequence[time], zone: ZoneInfo) -> datetime:
    """The first slot strictly after `now`, as an aware datetime in `zone` (DST-safe: a local
    time that does not exist that day is pushed past the gap by the zone's rules)."""
    local = now.astimezone(zone)
    for days in range(0, 3):
        day = local.date() + timedelta(days=days)
        for at in times:
            candidate = datetime.combine(day, at, tzinfo=zone)
            if candidate > local:
                return candidate
    raise ValueError("no import times configured")


def slot_id(kind: str, at: datetime) -> str:
    return f"{kind}/{at.isoformat(timespec='minutes')}"


class SlotClaims:
    """A slot is run by the replica that inserts its row first; the others see it taken."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create_schema(self) -> None:
        async with self._engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def claim(self, slot: str, owner: str, now: datetime) -> bool:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert(slots).values(slot_id=slot, claimed_by=owner, claimed_at=now)
                )
        except IntegrityError:
            return False
        return True

    async def finish(self, slot: str, outcome: str, now: datetime) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(slots)
                .where(slots.c.slot_id == slot)
                .values(finished_at=now, outcome=outcome)
            )


async def run_schedule(
    *,
    kind: str,
    times: Sequence[time],
    zone: ZoneInfo,
    clock: Clock,
    claims: SlotClaims,
    owner: str,
    job: Callable[[], Awaitable[str]],
) -> None:
    """Forever: sleep until the next slot, claim it, run `job` if ours (its summary is noted)."""
    while True:
        at = next_slot(clock.now(), times, zone)
        await clock.sleep((at - clock.now()).total_seconds())
        slot = slot_id(kind, at)
        if not await claims.claim(slot, owner, clock.now()):
            log.info("slot_taken", slot=slot)
            continue
        log.info("slot_started", slot=slot, owner=owner)
        try:
            outcome = await job()
        except Exception as exc:  # a scheduler outlives a failed import: noted; next slot comes
            outcome = f"failed: {type(exc).__name__}: {exc}"
            log.exception("slot_failed", slot=slot, error=outcome)
        await claims.finish(slot, outcome, clock.now())
