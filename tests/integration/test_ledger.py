"""The submission ledger keeps replays harmless, on a SQLite file and on a real PostgreSQL alike."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event
from sqlalchemy.exc import StatementError

from shared.delivery.ledger import (
    Decision,
    InFlight,
    Ledger,
    Parked,
    ReplayAuditEntry,
    Settlement,
)
from shared.delivery.worker import EventIdentity

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
STOCKHOLM = ZoneInfo("Europe/Stockholm")


def identity(
    record_id: str = "visit-1", version: int = 1, operation: str = "create"
) -> EventIdentity:
    return EventIdentity(str(uuid.uuid4()), record_id, version, operation)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[Ledger]:
    ledger = Ledger.from_url(database_url)
    await ledger.create_schema()
    try:
        yield ledger
    finally:
        await ledger.close()


@pytest.fixture
def register(unique_name: str) -> str:
    """A register namespace of this test's own, so tests never meet in the shared database."""
    return f"gvr-{unique_name}"


@contextmanager
def counted_statements(ledger: Ledger) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(ledger.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(ledger.engine.sync_engine, "before_cursor_execute", count)


async def test_schema_creation_is_idempotent(database_url: str, register: str) -> None:
    # Given a ledger whose schema already exists
    ledger = Ledger.from_url(database_url)
    try:
        await ledger.create_schema()
        await ledger.accept(register, identity(), "REF-1", T0)
        # When a second replica starts and creates the schema again
        await ledger.create_schema()
        # Then nothing is lost
        assert await ledger.reference_of(register, "visit-1") == "REF-1"
    finally:
        await ledger.close()


async def test_accepted_event_seen_again_is_a_duplicate(ledger: Ledger, register: str) -> None:
    # Given a new event
    create = identity()
    assert await ledger.decide(register, create) == Decision("new", None, None, None)
    # When the register accepts it
    await ledger.accept(register, create, "GVR-123", T0)
    # Then the same event again is a duplicate, and the record's reference is known
    assert await ledger.decide(register, create) == Decision("duplicate", "GVR-123", 1, None)
    assert await ledger.reference_of(register, create.record_id) == "GVR-123"
    assert await ledger.reference_of(register, "never-seen") is None


async def test_newer_version_is_new_and_carries_the_reference(
    ledger: Ledger, register: str
) -> None:
    # Given an accepted create
    await ledger.accept(register, identity(version=1), "GVR-123", T0)
    # When its correction arrives
    decision = await ledger.decide(register, identity(version=2, operation="correct"))
    # Then it is new, with the reference the correction needs
    assert decision == Decision("new", "GVR-123", 1, None)


async def test_older_version_is_stale(ledger: Ledger, register: str) -> None:
    # Given version 3 of a record is applied
    await ledger.accept(register, identity(version=3), "GVR-1", T0)
    # When version 2 arrives late
    decision = await ledger.decide(register, identity(version=2, operation="correct"))
    # Then it is stale
    assert decision == Decision("stale", "GVR-1", 3, None)


async def test_equal_version_from_another_event_is_stale(ledger: Ledger, register: str) -> None:
    # Given version 2 of a record applied by one event
    await ledger.accept(register, identity(version=2), "GVR-1", T0)
    # When a different event claims the same version
    decision = await ledger.decide(register, identity(version=2))
    # Then it is stale
    assert decision.kind == "stale"


async def test_skipped_event_is_a_duplicate_and_never_hides_an_accept(
    ledger: Ledger, register: str
) -> None:
    # Given one event skipped, and one accepted (and overtaken by version 2 of its record)
    skipped, accepted = identity("visit-1", 1), identity("visit-2", 1)
    await ledger.skip(register, skipped, T0)
    await ledger.accept(register, accepted, "GVR-2", T0)
    await ledger.accept(register, identity("visit-2", 2), "GVR-2", T0)
    # When the accepted one is (wrongly) reported skipped, then dead-lettered
    await ledger.dead_lettered(register, accepted, T0 + timedelta(seconds=1))
    await ledger.skip(register, accepted, T0 + timedelta(seconds=2))
    await ledger.dead_lettered(register, accepted, T0 + timedelta(seconds=3))
    # Then both are duplicates: a replay of either is skipped, never sent again
    assert (await ledger.decide(register, skipped)).kind == "duplicate"
    assert await ledger.decide(register, accepted) == Decision("duplicate", "GVR-2", 2, None)


async def test_dead_lettered_event_is_processed_again_when_replayed(
    ledger: Ledger, register: str
) -> None:
    # Given an event that was dead-lettered while in flight
    event_ = identity()
    await ledger.begin(register, event_, T0)
    await ledger.dead_lettered(register, event_, T0)
    # When an operator replays it
    decision = await ledger.decide(register, event_)
    # Then it is new again (not a duplicate), and its in-flight row is gone
    assert decision == Decision("new", None, None, None)
    # And once accepted on replay, it is a duplicate from then on
    await ledger.accept(register, event_, "GVR-9", T0 + timedelta(hours=1))
    assert (await ledger.decide(register, event_)).kind == "duplicate"


async def test_crash_after_begin_leaves_the_submission_in_flight(
    ledger: Ledger, register: str
) -> None:
    # Given a submission begun (the clock in Stockholm time) and a crash before its outcome
    create = identity()
    started = datetime(2025, 6, 1, 9, 30, tzinfo=STOCKHOLM)
    await ledger.begin(register, create, started)
    # When the event is consumed again after the restart
    decision = await ledger.decide(register, create)
    # Then the caller is told to reconcile, with the in-flight row (the same instant, in UTC)
    assert decision == Decision(
        "in_flight", None, None, InFlight(create.event_id, 1, "create", started)
    )
    assert decision.inflight is not None
    assert decision.inflight.started_at.tzinfo is not None
    # And a later event of the same record waits for that reconciliation too
    assert (await ledger.decide(register, identity(version=2))).kind == "in_flight"
    # And accepting the submission clears it
    await ledger.accept(register, create, "GVR-1", started)
    assert (await ledger.decide(register, identity(version=2))).kind == "new"


async def test_abandon_clears_only_its_own_in_flight_row(ledger: Ledger, register: str) -> None:
    # Given one event of a record in flight
    first, other = identity(version=1), identity(version=2)
    await ledger.begin(register, first, T0)
    # When another event of the record is abandoned
    await ledger.abandon(register, other)
    # Then the first is still in flight
    assert (await ledger.decide(register, first)).kind == "in_flight"
    # When the first is abandoned (a definite failure at the register)
    await ledger.abandon(register, first)
    # Then the record is free again
    assert await ledger.decide(register, first) == Decision("new", None, None, None)


async def test_begin_replaces_the_records_in_flight_row(ledger: Ledger, register: str) -> None:
    # Given a replica that began one event of a record
    first, second = identity(version=1), identity(version=2, operation="correct")
    await ledger.begin(register, first, T0)
    # When another replica, after a rebalance, begins the next event of the record
    await ledger.begin(register, second, T0 + timedelta(seconds=5))
    # Then the in-flight row is the second one's
    inflight = (await ledger.decide(register, first)).inflight
    assert inflight == InFlight(second.event_id, 2, "correct", T0 + timedelta(seconds=5))


async def test_naive_datetimes_are_refused(ledger: Ledger, register: str) -> None:
    with pytest.raises(StatementError, match="timezone-aware"):
        await ledger.begin(register, identity(), datetime(2025, 1, 1, 12, 0))


async def test_moving_a_parked_event_keeps_its_place(ledger: Ledger, register: str) -> None:
    # Given a create parked in the first retry tier and its correction parked behind it
    create, correct = identity(version=1), identity(version=2, operation="correct")
    await ledger.park(register, create, "retry:30s", T0)
    await ledger.park(register, correct, "retry:30s", T0 + timedelta(seconds=1))
    before = await ledger.parked(register, "visit-1")
    # When the create moves on to the next tier
    await ledger.park(register, create, "retry:5m", T0 + timedelta(seconds=31))
    # Then it keeps its seq and parked_at, changes location, and is still first in line
    after = await ledger.parked(register, "visit-1")
    assert [p.event_id for p in after] == [create.event_id, correct.event_id]
    assert [p.location for p in after] == ["retry:5m", "retry:30s"]
    assert [p.seq for p in after] == [p.seq for p in before]
    assert after[0].parked_at == T0


async def test_parked_events_keep_their_order_across_records(ledger: Ledger, register: str) -> None:
    # Given events of two records parked interleaved
    a = [identity("visit-a", v) for v in (1, 2, 3)]
    b = [identity("visit-b", v) for v in (1, 2)]
    for n, event_ in enumerate([a[0], b[0], a[1], b[1], a[2]]):
        await ledger.park(register, event_, "dlq" if n == 0 else "retry:30s", T0)
    # When the middle event of one record is unparked
    await ledger.unpark(register, "visit-a", a[1].event_id)
    # Then each record lists its remaining events in parking order
    parked_a = await ledger.parked(register, "visit-a")
    assert [p.event_id for p in parked_a] == [a[0].event_id, a[2].event_id]
    assert parked_a[0].seq < parked_a[1].seq
    assert [p.event_id for p in await ledger.parked(register, "visit-b")] == [e.event_id for e in b]
    # And a new event parked after an unpark still goes to the end of the line
    late = identity("visit-a", 4)
    await ledger.park(register, late, "retry:30s", T0)
    assert (await ledger.parked(register, "visit-a"))[-1].event_id == late.event_id


async def test_parked_records_equals_parked_one_by_one(ledger: Ledger, register: str) -> None:
    # Given parked events of some records
    for record_id in ("visit-1", "visit-2"):
        for version in (1, 2):
            await ledger.park(register, identity(record_id, version), "retry:30s", T0)
    asked = ["visit-1", "visit-2", "visit-free"]
    # When asked for all records at once
    batch = await ledger.parked_records(register, asked)
    # Then the answer equals the single form for each, [] where nothing waits
    assert batch == {record_id: await ledger.parked(register, record_id) for record_id in asked}
    assert batch["visit-free"] == []


async def test_replays_are_audited(ledger: Ledger, register: str) -> None:
    # Given two dead letters replayed, one of them twice (the second time forced)
    dlq = f"{register}.dlq.v1"
    batch = str(uuid.uuid4())
    entries = [
        ReplayAuditEntry(dlq, 0, 17, "e-17", "visit-1", "care.contacts.v1", "anna", T0, batch),
        ReplayAuditEntry(dlq, 2, 5, None, None, "care.contacts.v1", "anna", T0, batch),
        ReplayAuditEntry(
            dlq,
            0,
            17,
            "e-17",
            "visit-1",
            "care.contacts.v1",
            "bo",
            T0 + timedelta(days=1),
            "b2",
            forced=True,
        ),
    ]
    await ledger.audit_replay(entries[:2])
    await ledger.audit_replay(entries[2:])
    await ledger.audit_replay([])
    # Then each dead letter's replays are listed oldest first
    assert await ledger.replays_of(dlq, 0, 17) == [entries[0], entries[2]]
    assert await ledger.replays_of(dlq, 2, 5) == [entries[1]]
    assert await ledger.replays_of(dlq, 1, 17) == []
    # And the replayed set names each dead letter once, per topic
    assert await ledger.replayed_set(dlq) == {(0, 17), (2, 5)}
    assert await ledger.replayed_set(f"{register}.other.dlq.v1") == set()


async def test_applied_version_never_decreases_under_concurrent_accepts(
    database_url: str, ledger: Ledger, register: str
) -> None:
    # Given two replicas and forty versions of one record, accepted in shuffled order at once
    replica = Ledger.from_url(database_url)
    events = [identity(version=v, operation="correct") for v in range(1, 41)]
    shuffled = random.sample(events, len(events))
    try:
        await asyncio.gather(
            *(
                (ledger if n % 2 else replica).accept(register, e, f"GVR-v{e.record_version}", T0)
                for n, e in enumerate(shuffled)
            )
        )
    finally:
        await replica.close()
    # Then the highest version is applied, with its own event and reference
    newest = events[-1]
    assert await ledger.decide(register, newest) == Decision("duplicate", "GVR-v40", 40, None)
    assert (await ledger.decide(register, identity(version=40))).kind == "stale"
    assert (await ledger.decide(register, identity(version=39))).kind == "stale"
    assert (await ledger.decide(register, identity(version=41))).kind == "new"
    # And every one of the events is recorded as accepted
    assert {d.kind for d in await ledger.decide_many(register, events)} == {"duplicate"}


async def test_batch_forms_equal_single_forms(ledger: Ledger, register: str) -> None:
    # Given the same history written one by one under one register and in batches under another
    single, batch = f"{register}-single", f"{register}-batch"
    accepted = [(identity(f"visit-{n}", 2), f"GVR-{n}") for n in range(5)]
    # (two versions of one record in one batch, the older last: the newer must stay applied)
    accepted += [(identity("visit-x", 3), "GVR-x3"), (identity("visit-x", 2), "GVR-x2")]
    begun = [identity(f"visit-{n}", 3) for n in range(3)] + [identity("visit-y", 1)]
    for e, reference in accepted:
        await ledger.accept(single, e, reference, T0)
    for e in begun:
        await ledger.begin(single, e, T0)
    await ledger.accept_many(batch, accepted, T0)
    await ledger.begin_many(batch, begun, T0)
    await ledger.accept_many(batch, [], T0)
    await ledger.begin_many(batch, [], T0)
    # When both are asked about old, new, stale and in-flight events
    asked = [e for e, _ in accepted] + begun + [identity(f"visit-{n}", 1) for n in range(5)]
    asked += [identity("visit-new", 1), identity("visit-x", 4)]
    # Then the batch answers equal the single ones, which are what the history says
    singles = [await ledger.decide(single, e) for e in asked]
    assert await ledger.decide_many(batch, asked) == singles
    assert await ledger.decide_many(single, asked) == singles
    assert await ledger.decide_many(batch, []) == []
    assert [d.kind for d in singles] == (
        ["duplicate"] * 7 + ["in_flight"] * 4 + ["in_flight"] * 3 + ["stale"] * 2 + ["new"] * 2
    )
    assert (singles[6].applied_version, singles[6].reference) == (3, "GVR-x3")


async def test_deciding_any_number_of_events_takes_one_query(ledger: Ledger, register: str) -> None:
    # Given 1200 events, a third of them already accepted
    events = [identity(f"visit-{n}", 1) for n in range(1200)]
    await ledger.accept_many(register, [(e, f"GVR-{n}") for n, e in enumerate(events[::3])], T0)
    # When 500 of them are decided at once
    with counted_statements(ledger) as statements:
        decisions = await ledger.decide_many(register, events[:500])
    # Then it took one query (events, records and in flight at once), and the answers are right
    assert len(statements) == 1
    assert [d.kind for d in decisions] == ["duplicate" if n % 3 == 0 else "new" for n in range(500)]
    # And 1200 take one as well (the events are one parameter, not one each)
    with counted_statements(ledger) as statements:
        decisions = await ledger.decide_many(register, events)
    assert len(statements) == 1
    assert sum(d.kind == "duplicate" for d in decisions) == 400


async def test_open_equals_deciding_reading_parked_and_beginning(
    ledger: Ledger, register: str
) -> None:
    # Given the same history under two registers: accepted, in flight, parked records
    whole, parts = f"{register}-open", f"{register}-parts"
    done = [identity(f"visit-{n}", 2) for n in range(4)]
    flying, waiting = identity("visit-0", 3), [identity("visit-1", 3), identity("visit-1", 4)]
    for name in (whole, parts):
        await ledger.accept_many(name, [(e, f"GVR-{e.record_id}") for e in done], T0)
        await ledger.begin(name, flying, T0)
        await ledger.park(name, waiting[0], "retry:30s", T0)
        await ledger.park(name, waiting[1], "dlq", T0 + timedelta(seconds=1))
    # When a chunk (two events of one record, a duplicate, stale, in-flight and new ones) opens
    chunk = [done[2], identity("visit-3", 1), identity("visit-0", 4), identity("visit-1", 5)]
    chunk += [identity("visit-new", 1), identity("visit-new", 2, "correct")]
    later = T0 + timedelta(minutes=1)
    with counted_statements(ledger) as statements:
        decisions, parked = await ledger.open(whole, chunk, later)
    # Then it is what deciding, reading parked events and then beginning gives
    assert decisions == await ledger.decide_many(parts, chunk)
    records = list(dict.fromkeys(e.record_id for e in chunk))
    expected = await ledger.parked_records(parts, records)
    assert _places(parked) == _places(expected)
    assert [p.location for p in parked["visit-1"]] == ["retry:30s", "dlq"]
    await ledger.begin_many(parts, chunk, later)
    assert await ledger.decide_many(whole, chunk) == await ledger.decide_many(parts, chunk)
    # And each record's last event is the one in flight now
    flight = (await ledger.decide(whole, identity("visit-new", 3))).inflight
    assert flight == InFlight(chunk[-1].event_id, 2, "correct", later)
    # And it took one statement on PostgreSQL, a read and an upsert on SQLite
    assert len(statements) == (1 if ledger.engine.dialect.name == "postgresql" else 2)


def _places(parked: dict[str, list[Parked]]) -> dict[str, list[tuple[str, str, datetime]]]:
    """Parked events without their seq (a sequence shared by every register)."""
    return {
        record_id: [(p.event_id, p.location, p.parked_at) for p in waiting]
        for record_id, waiting in parked.items()
    }


async def test_settle_equals_its_items_one_by_one(ledger: Ledger, register: str) -> None:
    # Given a settlement in which events meet themselves: accepted twice and skipped, skipped
    # and dead-lettered, two versions of a record with the older last, an event parked twice
    # (moved) and one parked and released in the same chunk, beside ordinary ones
    whole, single = f"{register}-whole", f"{register}-single"
    a1, a2 = identity("visit-a", 1), identity("visit-a", 2, "correct")
    s1, d1, d2 = identity("visit-s", 1), identity("visit-d", 1), identity("visit-d", 2)
    p1, p2, p3 = identity("visit-p", 1), identity("visit-p", 2), identity("visit-q", 1)
    for name in (whole, single):  # (dead-lettered before: a dead letter again keeps it so)
        await ledger.dead_lettered(name, d1, T0)
        await ledger.park(name, p3, "retry:30s", T0)
    now = T0 + timedelta(minutes=1)
    s = Settlement(
        accepted=[(a2, "GVR-a2"), (a1, "GVR-a1"), (a2, "GVR-a2")],
        skipped=[a1, s1, d2],
        dead_lettered=[s1, d1, d2],
        park=[(p1, "retry:30s"), (p2, "retry:30s"), (p1, "retry:5m"), (p3, "dlq")],
        unpark=[p3],
        settled_records=["visit-a", "visit-a"],
    )
    # When one ledger settles it whole and the other takes its items one by one, in order
    with counted_statements(ledger) as statements:
        await ledger.settle(whole, s, now)
    for e, reference in s.accepted:
        await ledger.accept(single, e, reference, now)
    for e in s.skipped:
        await ledger.skip(single, e, now)
    for e in s.dead_lettered:
        await ledger.dead_lettered(single, e, now)
    for e, location in s.park:
        await ledger.park(single, e, location, now)
    for e in s.unpark:
        await ledger.unpark(single, e.record_id, e.event_id)
    # Then both ledgers know the same
    asked = [a1, a2, s1, d1, d2, p1, p2, p3, identity("visit-a", 3), identity("visit-d", 3)]
    assert await ledger.decide_many(whole, asked) == await ledger.decide_many(single, asked)
    kinds = [d.kind for d in await ledger.decide_many(whole, asked)]
    assert kinds == ["duplicate"] * 3 + ["new", "duplicate"] + ["new"] * 5
    records = ["visit-p", "visit-q"]
    parked = await ledger.parked_records(whole, records)
    assert _places(parked) == _places(await ledger.parked_records(single, records))
    assert [(p.event_id, p.location) for p in parked["visit-p"]] == [
        (p1.event_id, "retry:5m"),
        (p2.event_id, "retry:30s"),
    ]
    assert parked["visit-q"] == []
    # And it took one statement on PostgreSQL, one per table touched on SQLite
    assert len(statements) == (1 if ledger.engine.dialect.name == "postgresql" else 5)
