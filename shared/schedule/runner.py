"""The loop that runs a job at each slot of a schedule, once across all replicas."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from shared.database import out_of_reach
from shared.delivery.clock import Clock
from shared.logging import get_logger
from shared.outage import Outage, until_available
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
    """Forever: sleep until the next slot, claim it, run `job` if ours (its summary is noted).
    The claims' database out of reach is waited for (with back-off), never a dead schedule: a
    slot is claimed, and run, late rather than not at all."""
    outage = Outage("slot claims", {"kind": kind})
    await until_available(claims.create_schema, outage, out_of_reach, clock.sleep)
    at = clock.now()
    while True:
        at = schedule.next_after(max(clock.now(), at, key=utc))  # no slot is considered twice
        await clock.sleep((utc(at) - utc(clock.now())).total_seconds())
        slot = slot_id(kind, at)

        async def claim(slot: str = slot) -> bool:
            return await claims.claim(slot, owner, clock.now())

        if not await until_available(claim, outage, out_of_reach, clock.sleep):
            log.info("slot_taken", slot=slot)
            continue
        log.info("slot_started", slot=slot, owner=owner)
        try:
            outcome = await job()
        except Exception as exc:  # a scheduler outlives a failed job: noted; the next slot comes
            outcome = f"failed: {type(exc).__name__}: {exc}"
            log.exception("slot_failed", slot=slot, error=outcome)

        async def finish(slot: str = slot, outcome: str = outcome) -> None:
            await claims.finish(slot, outcome, clock.now())

        await until_available(finish, outage, out_of_reach, clock.sleep)
