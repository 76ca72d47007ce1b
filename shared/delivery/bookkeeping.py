"""A chunk's ledger work in one owner: what is known of its records, then what it settles."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from shared.database import out_of_reach
from shared.delivery.fates import Applied, DeadLettered, Fate, Skipped, maybe_applied, parks
from shared.delivery.ledger import (
    Decision,
    InFlight,
    Ledger,
    LedgerUnavailableError,
    Parked,
    Settlement,
)
from shared.delivery.worker import EventIdentity

if TYPE_CHECKING:
    from shared.delivery.record import Item


@dataclass(frozen=True)
class RecordBook:
    """What the ledger knows of one record before its events in this chunk are delivered."""

    decisions: Mapping[str, Decision]  # event id → new, duplicate, stale or in flight
    parked: Sequence[Parked]  # its events waiting in retry or dead-lettered, oldest first
    first: Decision  # every decision of a record shares the record's row

    @property
    def applied_version(self) -> int | None:
        return self.first.applied_version

    @property
    def reference(self) -> str | None:
        return self.first.reference

    @property
    def inflight(self) -> InFlight | None:
        return self.first.inflight


class Bookkeeper:
    """One worker's namespace in the ledger, as a chunk uses it: `open` before anything is sent,
    `settle` after the chunk's messages are durable and before its offsets are committed. A
    database out of reach is a `LedgerUnavailableError` (the worker pauses), not a crash."""

    def __init__(self, ledger: Ledger, register: str) -> None:
        self.ledger = ledger
        self.register = register

    async def open(self, items: Sequence[Item], now: datetime) -> dict[str, RecordBook]:
        """Decide every parsed event, read each record's parked events, and note each record's
        submission before anything leaves: after a crash the ledger then knows to look the
        record up at the register before sending again."""
        async with _reaching():
            return await self._open(items, now)

    async def settle(
        self,
        chunk: Sequence[tuple[Item, Fate]],
        books: Mapping[str, RecordBook],
        now: datetime,
    ) -> None:
        """The chunk's outcomes in one transaction."""
        async with _reaching():
            await self.ledger.settle(self.register, settlement(chunk, books), now)

    async def ping(self) -> None:
        """Is the ledger's database back? (`LedgerUnavailableError` while it is not.)"""
        async with _reaching():
            await self.ledger.ping()

    async def _open(self, items: Sequence[Item], now: datetime) -> dict[str, RecordBook]:
        identities = [item.identity for item in items if item.identity is not None]
        if not identities:
            return {}
        decisions, parked = await self.ledger.open(self.register, identities, now)
        decided = dict(zip((i.event_id for i in identities), decisions, strict=True))
        of_record: dict[str, dict[str, Decision]] = {}
        for identity in identities:
            of_record.setdefault(identity.record_id, {})[identity.event_id] = decided[
                identity.event_id
            ]
        return {
            record_id: RecordBook(mine, parked[record_id], next(iter(mine.values())))
            for record_id, mine in of_record.items()
        }


@asynccontextmanager
async def _reaching() -> AsyncIterator[None]:
    try:
        yield
    except Exception as exc:
        if out_of_reach(exc):
            raise LedgerUnavailableError(f"{type(exc).__name__}: {exc}") from exc
        raise


def settlement(chunk: Sequence[tuple[Item, Fate]], books: Mapping[str, RecordBook]) -> Settlement:
    """What the ledger must remember of a chunk: applied versions, skipped and dead-lettered
    events, where events are parked, which parked ones are released, and which records' in-flight
    rows are done (all but those whose answer was lost: the next attempt looks them up first)."""
    result = Settlement()
    maybe = {
        item.identity.record_id for item, fate in chunk if item.identity and maybe_applied(fate)
    }
    result.settled_records.extend(record for record in books if record not in maybe)
    waiting = {(record, p.event_id) for record, book in books.items() for p in book.parked}
    for item, fate in chunk:
        identity: EventIdentity | None = item.identity
        if identity is None:
            continue
        was_parked = bool(waiting) and (identity.record_id, identity.event_id) in waiting
        if isinstance(fate, Applied):
            result.accepted.append((identity, fate.reference))
        elif isinstance(fate, Skipped):
            result.skipped.append(identity)
        elif isinstance(fate, DeadLettered):
            result.dead_lettered.append(identity)
        if isinstance(fate, Applied | Skipped) and was_parked:
            result.unpark.append(identity)
        if (location := parks(fate)) is not None:
            result.park.append((identity, location))
    return result
