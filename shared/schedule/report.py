"""What `regbridge status` says of a worker's schedules: the last good run and the latest runs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import create_async_engine

from shared.schedule.claims import SlotClaims, SlotRun

RECENT = 3


async def schedule_lines(database_url: str, kinds: Sequence[str], now: datetime) -> list[str]:
    """For each kind: its last good run with its age, then the latest runs and their outcome."""
    if not kinds:
        return []
    engine = create_async_engine(database_url)
    try:
        claims = SlotClaims(engine)
        await claims.create_schema()
        lines: list[str] = []
        for kind in kinds:
            last, recent = await claims.last(kind), await claims.recent(kind, RECENT)
            lines.append(f"  schedule  {kind}")
            if last is None or last.finished_at is None:
                lines.append("    last success  never (no good run remembered)")
            else:
                age = _age(now - _aware(last.finished_at))
                lines.append(f"    last success  slot {_slot(last)}, {age} ago")
            lines += [f"    {_slot(run)}  {run.claimed_by}  {_outcome(run)}" for run in recent]
        return lines
    finally:
        await engine.dispose()


def _slot(run: SlotRun) -> str:
    return run.slot_at.isoformat(timespec="minutes")


def _outcome(run: SlotRun) -> str:
    if run.finished_at is None:
        return "running (or its replica died)"
    return run.outcome or "-"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    hours, rest = divmod(max(seconds, 0), 3600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"
