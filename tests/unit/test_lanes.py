"""Chunks in hand: the record gate's order, the lane's order, floors and what a lane keeps."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

from shared.delivery.lanes import InHand, Lane, RecordGate


class Job:
    """What the gate and the lane read of a `ChunkJob`: its records and its floor."""

    def __init__(self, *records: str) -> None:
        self.records = set(records)
        self.floor: dict[tuple[str, int], int] = {}


def chunk(lane: Lane, *records: str) -> InHand:
    job: Any = Job(*records)  # stands in for a ChunkJob
    return lane.chunk(job, {}, 0)


def lane() -> Lane:
    consumer: Any = object()
    return Lane("input", consumer, depth=2)


async def test_a_chunk_waits_only_for_earlier_chunks_holding_its_records() -> None:
    gate, input_lane = RecordGate(), lane()
    first, second, third = (chunk(input_lane, *r) for r in (("a", "b"), ("c",), ("b", "c")))
    for fetched in (first, second, third):
        gate.line_up(fetched)
    assert await gate.claim(first) == set()
    assert await gate.claim(second) == set()
    waits = await gate.claim(third)
    assert waits == {first.holds, second.holds}
    gate.release(first)
    assert not all(w.done() for w in waits)
    gate.release(second)
    await asyncio.wait(waits)  # both earlier chunks settled: the third may open its books
    gate.release(third)
    fourth = chunk(input_lane, "a", "b", "c")
    gate.line_up(fourth)
    assert await gate.claim(fourth) == set()  # nobody holds them any more


async def test_chunks_claim_in_fetch_order_whichever_is_parsed_first() -> None:
    # Given two chunks of record "a", of either consumer, lined up as they were fetched
    gate = RecordGate()
    earlier, later = chunk(lane(), "a"), chunk(Lane("retry", Any, 2), "a")
    gate.line_up(earlier)
    gate.line_up(later)
    # When the later one is parsed first and claims
    claiming = asyncio.ensure_future(gate.claim(later))
    await asyncio.sleep(0.01)
    # Then it waits for the earlier one's claim, and then waits for the earlier one to settle
    assert not claiming.done()
    assert await gate.claim(earlier) == set()
    assert await asyncio.wait_for(claiming, 1) == {earlier.holds}


async def test_a_chunk_that_fails_before_claiming_lets_the_next_one_claim() -> None:
    gate = RecordGate()
    failed, next_one = chunk(lane(), "a"), chunk(lane(), "a")
    gate.line_up(failed)
    gate.line_up(next_one)
    claiming = asyncio.ensure_future(gate.claim(next_one))
    gate.passed(failed)  # its task ended (a bug, a cancellation) before it claimed
    assert await asyncio.wait_for(claiming, 1) == set()


async def test_a_hand_back_floors_only_the_chunks_fetched_after_it() -> None:
    input_lane = lane()
    first = chunk(input_lane, "a")
    input_lane.start(first, asyncio.sleep(0))
    second = chunk(input_lane, "b")
    input_lane.start(second, asyncio.sleep(0))
    input_lane.floor_later(second, {("in", 0): 7})
    input_lane.floor_later(first, {("in", 0): 5, ("in", 1): 3})
    input_lane.floor_later(first, {("in", 0): 6})
    assert first.job.floor == {}
    assert second.job.floor == {("in", 0): 5, ("in", 1): 3}  # the lowest offset wins
    input_lane.finished(first)
    input_lane.finished(second)
    await input_lane.settled()


async def test_a_finished_chunk_is_not_kept_reachable_by_the_next() -> None:
    # Given chunks each fetched while the one before was in hand
    input_lane = lane()
    first = chunk(input_lane, "a")
    input_lane.start(first, asyncio.sleep(0))
    second = chunk(input_lane, "b")
    input_lane.start(second, asyncio.sleep(0))
    assert second.previous is first
    gone = weakref.ref(first)
    # When both finish, oldest first
    input_lane.finished(first)
    input_lane.finished(second)
    third = chunk(input_lane, "c")
    del first
    gc.collect()
    # Then nothing holds the first any more: a long run does not keep every chunk it ran
    assert gone() is None
    assert second.previous is None
    assert third.previous is None
    await input_lane.settled()
