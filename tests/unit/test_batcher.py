"""Batcher: outcomes reach their callers in order, and so does an exception of submit or a
cancellation of its call. Permits: never more events out than the limit, calls of several
included, and nothing kept when a wait is cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from shared.delivery.batcher import Batcher, Outcome, Permits
from shared.delivery.errors import DeliveryError
from shared.delivery.worker import Accepted, EventIdentity, Submission

TIMEOUT = 5.0  # a regression that hangs the callers fails instead


def submission(n: int) -> Submission[Any]:
    return Submission(EventIdentity(f"event-{n}", f"record-{n}", 1, "create"), n, None)


async def accept(batch: Sequence[Submission[Any]]) -> Sequence[Outcome]:
    return [Accepted(f"ref-{s.request}") for s in batch]


async def fail(batch: Sequence[Submission[Any]]) -> Sequence[Outcome]:
    raise RuntimeError("worker bug")


async def cancelled(batch: Sequence[Submission[Any]]) -> Sequence[Outcome]:
    raise asyncio.CancelledError  # the register's call cancelled under the batch


async def hangs(batch: Sequence[Submission[Any]]) -> Sequence[Outcome]:
    await asyncio.Event().wait()
    raise AssertionError("never set")


async def too_few(batch: Sequence[Submission[Any]]) -> Sequence[Outcome]:
    return [Accepted("ref")] * (len(batch) - 1)


async def submit_all(batcher: Batcher, count: int) -> list[Outcome | BaseException]:
    calls = (batcher.submit(submission(n)) for n in range(count))
    gathered = asyncio.gather(*calls, return_exceptions=True)
    results = await asyncio.wait_for(gathered, TIMEOUT)
    await asyncio.wait_for(batcher.close(), TIMEOUT)
    return results


async def test_an_exception_of_submit_reaches_every_caller_of_the_batch() -> None:
    results = await submit_all(Batcher(fail, size=3, linger=60), 3)
    assert all(isinstance(r, RuntimeError) and str(r) == "worker bug" for r in results)


async def test_an_exception_of_submit_reaches_the_caller_with_size_1() -> None:
    with pytest.raises(RuntimeError, match="worker bug"):
        await asyncio.wait_for(Batcher(fail, size=1, linger=60).submit(submission(0)), TIMEOUT)


async def test_a_cancelled_batch_call_cancels_every_callers_wait() -> None:
    results = await submit_all(Batcher(cancelled, size=3, linger=60), 3)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)


@pytest.mark.parametrize("started", [False, True])
async def test_a_batch_call_cancelled_before_or_while_it_runs_cancels_its_callers_waits(
    started: bool,
) -> None:
    batcher = Batcher(hangs, size=2, linger=60)
    callers = [asyncio.ensure_future(batcher.submit(submission(n))) for n in range(2)]
    await asyncio.sleep(0)  # the batch is full: its call is made
    if started:
        await asyncio.sleep(0.01)  # and is in flight
    (task,) = batcher._tasks
    task.cancel()  # the event loop shutting down, say
    results = await asyncio.wait_for(asyncio.gather(*callers, return_exceptions=True), TIMEOUT)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)


async def test_a_batch_returns_its_outcomes_in_order() -> None:
    results = await submit_all(Batcher(accept, size=3, linger=60), 3)
    assert results == [Accepted("ref-0"), Accepted("ref-1"), Accepted("ref-2")]


async def test_a_batch_flushed_by_linger_returns_its_outcomes() -> None:
    results = await submit_all(Batcher(accept, size=3, linger=0.01), 2)
    assert results == [Accepted("ref-0"), Accepted("ref-1")]


async def test_an_outcome_count_mismatch_fails_every_submission() -> None:
    results = await submit_all(Batcher(too_few, size=3, linger=60), 3)
    assert all(isinstance(r, DeliveryError) for r in results)
    assert [r.error_class for r in results if isinstance(r, DeliveryError)] == [
        "worker_outcome_mismatch"
    ] * 3


async def test_permits_never_let_more_events_out_than_the_limit_and_every_taker_goes() -> None:
    permits, out, most = Permits(10), [0], [0]

    async def call(count: int) -> None:
        taken = await permits.acquire(count)
        out[0] += taken
        most[0] = max(most[0], out[0])
        await asyncio.sleep(0.001 * (count % 3))
        out[0] -= taken
        permits.release(taken)

    counts = [1, 7, 3, 10, 1, 1, 6, 15, 4, 9, 2, 1] * 5  # 15: more than the limit, goes alone
    await asyncio.wait_for(asyncio.gather(*(call(count) for count in counts)), TIMEOUT)
    assert most[0] == 10  # filled, never passed
    assert out[0] == 0


@pytest.mark.parametrize("count", [1, 4])
async def test_a_cancelled_wait_for_permits_gives_back_what_it_had_taken(count: int) -> None:
    permits = Permits(5)
    holder_in, holder_out = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        taken = await permits.acquire(3)
        holder_in.set()
        await holder_out.wait()
        permits.release(taken)

    held = asyncio.ensure_future(holder())
    await holder_in.wait()
    waiting = asyncio.ensure_future(_take(permits, count + 2))  # 2 free: it waits holding them
    await asyncio.sleep(0.01)
    waiting.cancel()
    holder_out.set()
    await asyncio.wait_for(held, TIMEOUT)
    # Then all five are free again: a call of five goes at once
    await asyncio.wait_for(_take(permits, 5), TIMEOUT)


async def _take(permits: Permits, count: int) -> None:
    permits.release(await permits.acquire(count))


async def test_a_wait_cancelled_as_permits_come_free_neither_keeps_them_nor_blocks_the_line() -> (
    None
):
    permits = Permits(4)
    first = await permits.acquire(4)
    cancelled = asyncio.ensure_future(permits.acquire(3))
    behind = asyncio.ensure_future(permits.acquire(2))
    await asyncio.sleep(0)  # both wait, in line
    cancelled.cancel()  # its wait is cancelled before it runs again …
    permits.release(first)  # … and the permits come free in between
    assert await asyncio.wait_for(behind, TIMEOUT) == 2
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    # Then the other two are free: a call of two goes at once, one of three waits
    assert await asyncio.wait_for(permits.acquire(2), TIMEOUT) == 2
    assert not asyncio.ensure_future(permits.acquire(3)).done()


async def test_a_call_granted_then_cancelled_gives_its_permits_back() -> None:
    permits = Permits(2)
    first = await permits.acquire(2)
    granted = asyncio.ensure_future(permits.acquire(2))
    await asyncio.sleep(0)
    permits.release(first)
    await asyncio.sleep(0)  # granted …
    granted.cancel()  # … and cancelled before it went on
    with pytest.raises(asyncio.CancelledError):
        await granted
    assert await asyncio.wait_for(permits.acquire(2), TIMEOUT) == 2


async def test_an_older_chunks_call_goes_before_a_later_chunks_that_asked_first() -> None:
    # Given every permit taken, and calls of a later chunk (rank 1) waiting for them
    permits = Permits(2)
    held = await permits.acquire(2, rank=0)
    order: list[str] = []

    async def call(name: str, rank: int) -> None:
        permits.release(await permits.acquire(1, rank))
        order.append(name)

    later = [asyncio.ensure_future(call(f"later{n}", 1)) for n in range(2)]
    await asyncio.sleep(0)
    # When calls of the older chunk (rank 0) ask after them, and the permits come free
    older = [asyncio.ensure_future(call(f"older{n}", 0)) for n in range(2)]
    await asyncio.sleep(0)
    permits.release(held)
    await asyncio.wait_for(asyncio.gather(*later, *older), TIMEOUT)
    # Then the older chunk's calls go first; within a chunk, in the order they asked
    assert order == ["older0", "older1", "later0", "later1"]


async def test_an_older_chunks_call_takes_free_permits_at_once_past_a_later_ones_waiting() -> None:
    # Given a later chunk's call of 3 waiting, with 2 of 3 permits free
    permits = Permits(3)
    one = await permits.acquire(1, rank=0)
    waiting = asyncio.ensure_future(permits.acquire(3, rank=5))
    await asyncio.sleep(0)
    # Then an older chunk's call of 2 goes at once, and the waiting one when all come free
    assert await asyncio.wait_for(permits.acquire(2, rank=4), TIMEOUT) == 2
    assert not waiting.done()
    permits.release(one)
    permits.release(2)
    assert await asyncio.wait_for(waiting, TIMEOUT) == 3
