"""The loop that runs a job at each slot of a schedule, once across all replicas; a slot missed
while no replica ran (a deploy, a crash) is caught up at start, claimed like any other."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from shared.database import out_of_reach
from shared.delivery.clock import Clock
from shared.logging import get_logger
from shared.outage import Outage, until_available
from shared.schedule.claims import FAILED, SlotClaims
from shared.schedule.metrics import ScheduleMetrics
from shared.schedule.slots import Schedule, slot_id, utc

log = get_logger(__name__)
T = TypeVar("T")


async def run_schedule(
    schedule: Schedule,
    *,
    kind: str,
    clock: Clock,
    claims: SlotClaims,
    owner: str,
    job: Callable[[], Awaitable[str]],
    catch_up: bool = True,
    metrics: ScheduleMetrics | None = None,
) -> None:
    """Forever: sleep until the next slot, claim it, run `job` if ours (its summary is noted).

    At start the last slot that has passed is claimed too (`catch_up`): if no replica ran it,
    this one runs it now. The claims' database out of reach is waited for (with back-off), never
    a dead schedule: a slot is claimed, and run, late rather than not at all. `metrics` follow
    the last successful run and the slots passed since."""
    runner = _Runner(kind, clock, claims, owner, job, Outage("slot claims", {"kind": kind}))
    await runner.available(claims.create_schema)
    if metrics is not None:
        metrics.track(kind, schedule, clock, await runner.available(lambda: claims.last(kind)))
        runner.metrics = metrics
    at = clock.now()
    if catch_up:
        await runner.run(schedule.previous_at_or_before(at), caught_up=True)
    while True:
        at = schedule.next_after(max(clock.now(), at, key=utc))  # no slot is considered twice
        await clock.sleep((utc(at) - utc(clock.now())).total_seconds())
        await runner.run(at)


@dataclass
class _Runner:
    kind: str
    clock: Clock
    claims: SlotClaims
    owner: str
    job: Callable[[], Awaitable[str]]
    outage: Outage
    metrics: ScheduleMetrics | None = None

    async def available(self, call: Callable[[], Awaitable[T]]) -> T:
        return await until_available(call, self.outage, out_of_reach, self.clock.sleep)

    async def run(self, at: datetime, *, caught_up: bool = False) -> None:
        """Claim the slot at `at`; if this replica got it, run the job and note its outcome."""
        slot = slot_id(self.kind, at)
        if not await self.available(lambda: self.claims.claim(slot, self.owner, self.clock.now())):
            if not caught_up:
                log.info("slot_taken", slot=slot)
            return
        log.info("slot_caught_up" if caught_up else "slot_started", slot=slot, owner=self.owner)
        try:
            outcome = await self.job()
        except Exception as exc:  # a scheduler outlives a failed job: noted; the next slot comes
            outcome = f"{FAILED}{type(exc).__name__}: {exc}"
            log.exception("slot_failed", slot=slot, error=outcome)
        finished = self.clock.now()
        await self.available(lambda: self.claims.finish(slot, outcome, finished))
        if self.metrics is not None and not outcome.startswith(FAILED):
            self.metrics.succeeded(self.kind, at, finished)
