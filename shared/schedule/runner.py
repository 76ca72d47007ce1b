"""The loop that runs a job at each slot of a schedule, once across all replicas."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from shared.delivery.clock import Clock
from shared.logging import get_logger
from shared.schedule.claims import SlotClaims
from shared.schedule.slots import Schedule, slot_id, utc

log = get_logger(__name__)


async def run_schedule(
    schedule: Schedule,
    *,
    kind: str,
    clock: Clock,
    claims: SlotClaims,
    owner: str,
    job: Callable[[], Awaitable[str]],
) -> None:
    """Forever: sleep until the next slot, claim it, run `job` if ours (its summary is noted)."""
    at = clock.now()
    while True:
        at = schedule.next_after(max(clock.now(), at, key=utc))  # no slot is considered twice
        await clock.sleep((utc(at) - utc(clock.now())).total_seconds())
        slot = slot_id(kind, at)
        if not await claims.claim(slot, owner, clock.now()):
            log.info("slot_taken", slot=slot)
            continue
        log.info("slot_started", slot=slot, owner=owner)
        try:
            outcome = await job()
        except Exception as exc:  # a scheduler outlives a failed job: noted; the next slot comes
            outcome = f"failed: {type(exc).__name__}: {exc}"
            log.exception("slot_failed", slot=slot, error=outcome)
        await claims.finish(slot, outcome, clock.now())
