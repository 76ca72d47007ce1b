"""The file runtime's state on SQLite: which rows a file holds, replacements, corrections and
cancellations after the close, refused rows, the lease."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.vgpv.format import file_name, render
from shared.delivery.ledger import Ledger
from shared.delivery.worker import EventIdentity
from shared.files.register import FileKey, FileRow, Placement, Receipt, RowVerdict
from shared.files.state import FileInfo, FileState, Intake
from shared.schedule import Period

JAN, FEB = Period(2027, 1), Period(2027, 2)
A, B = "SE2321000131-E000000000101", "SE2321000131-E000000000102"
T0 = datetime(2027, 2, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    ledger = Ledger.from_url(f"sqlite+aiosqlite:///{tmp_path / 'state.db'}")
    await ledger.create_schema()
    yield ledger
    await ledger.close()


@pytest.fixture
async def state(ledger: Ledger) -> FileState:
    files = FileState(ledger.engine, "t")
    await files.create_schema()
    return files


def intake(
    record: str,
    version: int = 1,
    *,
    period: Period = JAN,
    owner: str = A,
    cancelled: bool = False,
    **values: Any,
) -> Intake:
    identity = EventIdentity(
        str(uuid.uuid4()), record, version, "cancel" if cancelled else "create"
    )
    placement = Placement(FileKey(period, owner), {"diagnoser": ["J069"], **values})
    return Intake(identity, placement, cancelled, f"raw {record} v{version}".encode())


async def rows(state: FileState, info: FileInfo) -> list[FileRow]:
    found: list[FileRow] = []
    async for page in state.rows(info.name):
        found += page
    return found


def shape(found: list[FileRow]) -> list[tuple[str, int, str, str | None]]:
    return [
        (r.record_id, r.record_version, r.kind, None if r.corrects is None else str(r.corrects))
        for r in found
    ]


def accepted(info: FileInfo, *refused: tuple[int, str]) -> Receipt:
    verdicts = tuple(RowVerdict(n, False, code, f"why {code}") for n, code in refused)
    return Receipt(
        info.name,
        f"k-{info.name}",
        T0,
        "partly_accepted" if refused else "accepted",
        None,
        verdicts,
        "{}",
    )


async def build(state: FileState, period: Period, owner: str = A, at: datetime = T0) -> FileInfo:
    info = await state.build(FileKey(period, owner), at, file_name)
    assert info is not None
    return info


async def deliver(state: FileState, info: FileInfo, *refused: tuple[int, str]) -> None:
    """As a delivery run does: the receipt, then each result published (marked)."""
    await state.receive(info, accepted(info, *refused), T0)
    async for page in state.results(info.name):
        await state.reported({row.record_id: row.event_id for row in page})
    await state.mark(info.name, "done", T0)


async def test_a_file_holds_the_latest_version_of_each_visit_in_row_key_order(
    state: FileState,
) -> None:
    await state.store([intake("b"), intake("a"), intake("c")], T0)
    await state.store([intake("b", 2), intake("c", 2, cancelled=True)], T0)
    await state.store([intake("x", period=FEB)], T0)  # next month: not in January's file

    info = await build(state, JAN)

    assert shape(await rows(state, info)) == [("a", 1, "row", None), ("b", 2, "row", None)]
    assert (info.sequence, info.replaces, info.row_count) == (1, None, 2)
    assert await state.owners_to_build(JAN) == []  # the changes are consumed


async def test_building_again_gives_the_same_bytes_and_no_new_file(state: FileState) -> None:
    await state.store([intake(f"r{n}") for n in range(5)], T0)
    info = await build(state, JAN)
    first = b"".join(render(info.header, await rows(state, info)))
    second = b"".join(render(info.header, await rows(state, info)))
    await deliver(state, info)
    await state.store([intake("r1", 2, diagnoser=["J069"])], T0)  # same row values, new version

    again = await state.build(FileKey(JAN, A), T0 + timedelta(hours=1), file_name)

    assert first == second
    assert again is not None
    assert again.sequence == 2  # a new version is a changed row
    await deliver(state, again)
    assert await state.build(FileKey(JAN, A), T0 + timedelta(hours=2), file_name) is None


async def test_a_correction_in_the_window_is_a_replacement_with_every_row(
    state: FileState,
) -> None:
    await state.store([intake("a"), intake("b")], T0)
    first = await build(state, JAN)
    await deliver(state, first)
    await state.store([intake("b", 2, diagnoser=["I109"])], T0)

    second = await build(state, JAN, at=T0 + timedelta(hours=1))

    assert (second.sequence, second.replaces) == (2, first.name)
    assert shape(await rows(state, second)) == [("a", 1, "row", None), ("b", 2, "row", None)]


async def test_after_the_close_changes_are_correction_and_cancellation_rows_next_month(
    state: FileState,
) -> None:
    await state.store([intake("a"), intake("b"), intake("c")], T0)
    await deliver(state, await build(state, JAN))
    await state.store(
        [
            intake("a", 2, diagnoser=["I109"]),
            intake("b", 2, cancelled=True),
            intake("late"),  # January, never delivered
            intake("f", period=FEB),
            intake("gone"),
        ],
        T0,
    )
    await state.store([intake("gone", 2, cancelled=True)], T0)  # never delivered: nothing to send

    info = await build(state, FEB, at=T0 + timedelta(days=28))

    assert shape(await rows(state, info)) == [
        ("f", 1, "row", None),
        ("a", 2, "correction", "2027-01"),
        ("late", 1, "correction", "2027-01"),
        ("b", 2, "cancellation", "2027-01"),
    ]
    withdrawn = await state.withdrawn(A, FEB)
    assert [(w.record_id, w.held_file) for w in withdrawn] == [("gone", None)]


async def test_a_record_the_register_holds_cannot_move_to_another_units_file(
    state: FileState,
) -> None:
    await state.store([intake("a")], T0)
    await deliver(state, await build(state, JAN))

    moved = intake("a", 2, owner=B)
    refused = await state.store([moved], T0)

    assert "moved_after_delivery" in refused[moved.identity.event_id]
    assert await state.build(FileKey(JAN, B), T0, file_name) is None


async def test_a_refused_row_is_not_sent_again_until_it_is_replayed(
    state: FileState, ledger: Ledger
) -> None:
    good, bad = intake("a"), intake("b", professions=["XX"])
    await state.store([good, bad], T0)
    await ledger.accept_many("t", [(good.identity, "x"), (bad.identity, "x")], T0)
    first = await build(state, JAN)
    await deliver(state, first, (2, "YRKE"))

    assert (await ledger.decide("t", bad.identity)).kind == "new"  # a replay is taken again
    assert (await ledger.decide("t", good.identity)).kind == "duplicate"
    assert [r.number for r in await state.refused_rows(first.name)] == [2]
    await state.store([intake("c")], T0)
    second = await build(state, JAN, at=T0 + timedelta(hours=1))
    assert [r.record_id for r in await rows(state, second)] == ["a", "c"]  # not b again

    await state.store([bad], T0)  # the operator replays its dead letter
    await deliver(state, second)
    third = await build(state, JAN, at=T0 + timedelta(hours=2))
    assert [r.record_id for r in await rows(state, third)] == ["a", "b", "c"]


async def test_a_whole_file_refused_leaves_what_the_register_held(state: FileState) -> None:
    await state.store([intake("a")], T0)
    first = await build(state, JAN)
    await deliver(state, first)
    await state.store([intake("b")], T0)
    second = await build(state, JAN, at=T0 + timedelta(hours=1))
    late = Receipt(second.name, "k2", T0, "refused", "SEN: the window has closed", (), "{}")

    await state.receive(second, late, T0)

    results = [r async for page in state.results(second.name) for r in page]
    assert [(r.record_id, r.verdict) for r in results] == [("b", "refused")]  # a was reported
    assert await state.owners_not_accepted(JAN) == []  # the register still holds the first


async def test_one_delivery_run_at_a_time(state: FileState) -> None:
    assert await state.lease("one", T0, T0 + timedelta(minutes=10))
    assert not await state.lease("two", T0 + timedelta(minutes=5), T0 + timedelta(minutes=15))
    assert await state.lease("one", T0 + timedelta(minutes=5), T0 + timedelta(minutes=15))
    assert await state.lease("two", T0 + timedelta(minutes=16), T0 + timedelta(minutes=26))
    await state.release("two")
    assert await state.lease("one", T0 + timedelta(minutes=17), T0 + timedelta(minutes=27))


async def test_after_a_file_refused_whole_a_replay_builds_it_again(
    state: FileState, ledger: Ledger
) -> None:
    visit = intake("a")
    await state.store([visit], T0)
    first = await build(state, JAN)
    refused = Receipt(first.name, "k1", T0, "refused", "ENHET: not a Vårdval unit", (), "{}")
    await state.receive(first, refused, T0)
    await state.mark(first.name, "done", T0)
    assert await state.build(FileKey(JAN, A), T0, file_name) is None  # nothing changed

    await state.store([visit], T0)  # KIV fixed; the operator replays the dead letter

    second = await build(state, JAN, at=T0 + timedelta(hours=1))
    assert (second.sequence, second.replaces) == (2, first.name)
    assert [r.record_id for r in await rows(state, second)] == ["a"]


async def test_a_cancellation_withdraws_the_record_where_the_register_holds_it(
    state: FileState,
) -> None:
    await state.store([intake("a")], T0)
    await deliver(state, await build(state, JAN))

    cancel = intake("a", 2, period=FEB, owner=B, cancelled=True)  # its payload says elsewhere
    assert await state.store([cancel], T0) == {}

    info = await build(state, FEB, at=T0 + timedelta(days=28))
    assert shape(await rows(state, info)) == [("a", 2, "cancellation", "2027-01")]


async def test_a_carried_row_is_in_every_later_file_until_a_version_places_it_otherwise(
    state: FileState,
) -> None:
    mar = Period(2027, 3)

    def waiting(record: str, version: int = 1, period: Period = JAN) -> Intake:
        item = intake(record, version, period=period)
        assert item.placement is not None
        placement = Placement(item.placement.key, item.placement.values, carried=True)
        return Intake(item.identity, placement, False, item.raw)

    await state.store([waiting("w"), intake("done-in-jan")], T0)
    await deliver(state, await build(state, JAN))
    assert await state.owners_to_build(FEB) == [A]  # nothing changed, but "w" is still waiting

    february = await build(state, FEB, at=T0 + timedelta(days=28))
    assert shape(await rows(state, february)) == [("w", 1, "row", None)]
    await deliver(state, february)
    # completed in March: a new version moves it to March's file, no longer carried
    assert await state.store([intake("w", 2, period=mar)], T0) == {}
    await state.store([intake("done-in-jan", 2, diagnoser=["I109"])], T0)  # after the close

    march = await state.build(
        FileKey(mar, A), T0 + timedelta(days=56), file_name, corrections=False
    )

    assert march is not None
    assert shape(await rows(state, march)) == [("w", 2, "row", None)]  # no correction rows
