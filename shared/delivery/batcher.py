"""Register calls: concurrent submissions grouped into calls of up to `size` (bundles of ≤ 100,
say), and the events in flight across a worker's chunks held to a limit."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from shared.delivery.errors import DeliveryError, RegisterUnavailableError
from shared.delivery.worker import Accepted, Submission

Outcome = Accepted | DeliveryError
SubmitFn = Callable[[Sequence[Submission[Any]]], Awaitable[Sequence[Outcome]]]


class Batcher:
    """`await submit(s)` returns s's outcome; calls are flushed when full or after `linger` s."""

    def __init__(self, submit: SubmitFn, size: int, linger: float) -> None:
        self._submit = submit
        self._size = max(1, size)
        self._linger = linger
        self._pending: list[tuple[Submission[Any], asyncio.Future[Outcome]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, submission: Submission[Any]) -> Outcome:
        if self._size == 1:
            return (await self.call([submission]))[0]
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._pending.append((submission, future))
        if len(self._pending) >= self._size:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._linger, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(lambda _task: _cancel_waiting(batch))

    async def _run(self, batch: list[tuple[Submission[Any], asyncio.Future[Outcome]]]) -> None:
        try:
            outcomes = await self.call([s for s, _ in batch])
        except Exception as error:  # as with size 1, every caller of the batch gets it
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)

    async def call(self, batch: Sequence[Submission[Any]]) -> Sequence[Outcome]:
        """One register call, now: exactly one outcome per submission."""
        outcomes = await self._submit(batch)
        if len(outcomes) != len(batch):  # a worker bug must not lose or misattribute events
            error = RegisterUnavailableError(
                f"worker returned {len(outcomes)} outcomes for {len(batch)} submissions",
                error_class="worker_outcome_mismatch",
            )
            return [error] * len(batch)
        return outcomes

    async def close(self) -> None:
        self._flush()
        if self._tasks:
            await asyncio.gather(*self._tasks)


class Permits:
    """Events in flight at the register, across a worker's chunks: at most `size` at a time.

    A call takes a permit per event it carries (a call larger than the limit goes alone). Calls
    wait in order of their `rank` (a chunk's place in fetch order: the older chunk first), then of
    asking: none overtakes an older chunk's call, nor a larger one of its own chunk waiting, so
    none waits forever (an older chunk's calls are finite). Serving the oldest chunk first keeps
    the chunks in hand staggered: the next one's calls fill the permits as the oldest runs out
    of calls to make, instead of every chunk in hand finishing its calls at the same moment and
    the register waiting while they settle and the next ones are fetched.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._free = size
        self._waiting: list[tuple[int, int, int, asyncio.Future[None]]] = []  # a heap
        self._asked = itertools.count()  # the order of asking, within a rank
        self._waking = False  # a `_wake` is due (after a release)

    @property
    def out(self) -> int:
        """Events in flight now."""
        return self.size - self._free

    async def acquire(self, count: int, rank: int = 0) -> int:
        """Wait for the permits of a call of `count` events; how many were taken, for `release`.
        Cancelled while waiting, it keeps none."""
        count = min(max(1, count), self.size)
        waiting = self._waiting
        if self._free >= count and (not waiting or rank < waiting[0][0]):
            self._free -= count
            return count
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(waiting, (rank, next(self._asked), count, future))
        try:
            await future
        except BaseException:
            if future.cancelled():  # not granted: out of the line (`_wake` drops it)
                self._wake()
            else:  # granted, then cancelled before it could go on
                self.release(count)
            raise
        return count

    def release(self, taken: int) -> None:
        """Give permits back; the waiting calls are served once the releasing caller has had the
        chance to ask again, so that an older chunk's caller taking its next call goes first."""
        self._free += taken
        if self._waiting and not self._waking:
            self._waking = True
            asyncio.get_running_loop().call_soon(self._wake)

    def _wake(self) -> None:
        self._waking = False
        waiting = self._waiting
        while waiting:
            _, _, count, future = waiting[0]
            if future.cancelled():  # a cancelled wait takes nothing
                heapq.heappop(waiting)
            elif self._free >= count:
                heapq.heappop(waiting)
                self._free -= count
                future.set_result(None)
            else:
                return


def _cancel_waiting(batch: list[tuple[Submission[Any], asyncio.Future[Outcome]]]) -> None:
    """A batch's call ended without an outcome for some callers (it was cancelled, before or
    while it ran): their waits are cancelled too, never left hanging."""
    for _, future in batch:
        future.cancel()  # a no-op for a future already done
