"""The catalog never goes back in time: HSA's export is older than its notifications (cut 1.5 h
before the import), and a full import must not undo what a notification did after the cut."""

# ruff: noqa: F811 - the catalog's pytest fixtures, imported from test_catalog_sync, are parameters

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.catalog.settings import CatalogSettings
from services.catalog.snapshot import Entry, Listed, publish_snapshot
from services.catalog.spec import SPEC as CATALOG
from services.catalog.topic_state import NOTIFICATION, TopicState, read_state, stamp
from services.catalog.writer import CatalogWriter
from services.sandboxes.hsa import HsaSandbox
from shared.catalog.view import CatalogView
from shared.delivery.app import run_worker
from shared.delivery.clock import ManualClock
from shared.kafka import read_to_end
from tests.integration.test_catalog_sync import (  # noqa: F401 - fixtures
    base_settings,
    full_import,
    hsa,
    settings,
    topics,
    view,
)
from tests.support.runtime_harness import wait_for

pytestmark = pytest.mark.integration


async def test_what_a_notification_did_after_the_export_survives_the_import(
    settings: CatalogSettings, hsa: HsaSandbox, view: CatalogView
) -> None:
    # Given a catalog in step with HSA, its worker following notifications
    await full_import(settings)
    await view.start()
    await view.wait_ready(30)
    worker = asyncio.create_task(run_worker(CATALOG, settings, clock=ManualClock()))
    renamed, removed = hsa.directory.hsa_id_of(40), hsa.directory.hsa_id_of(41)
    created = "SE2321000016-NEW01"
    try:
        # When HSA cuts its export, and then a unit is renamed, one created and one removed
        as_of = hsa.cut_export()
        unit = hsa.directory.get(renamed)
        assert unit is not None
        async with httpx.AsyncClient(base_url=hsa.base_url) as client:
            body = {**unit, "name": "Vårdcentral Efter Exporten"}
            (await client.post("/admin/units", json=body)).raise_for_status()
            body = {**unit, "hsaIdentity": created, "name": "Ny Vårdcentral"}
            (await client.post("/admin/units", json=body)).raise_for_status()
            (await client.delete(f"/admin/units/{removed}")).raise_for_status()
        await wait_for(
            lambda: (
                (u := view.unit(renamed)) is not None
                and u.name == "Vårdcentral Efter Exporten"
                and view.unit(created) is not None
                and view.unit(removed) is None
            ),
            30,
            "the notifications published",
        )
        # and the scheduled import runs on the export cut before them
        report = await full_import(settings)
    finally:
        worker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await worker

    # Then the import left all three alone: the catalog still shows what HSA shows now
    assert report.as_of is not None
    assert abs(report.as_of - as_of) < timedelta(seconds=1)
    assert (report.newer_kept, report.published, report.removed) == (3, 0, 0)
    async with CatalogView.following(settings.kafka, settings.topics) as after:
        await after.wait_ready(30)
        kept = after.unit(renamed)
        assert kept is not None
        assert kept.name == "Vårdcentral Efter Exporten"
        assert after.unit(created) is not None
        assert after.unit(removed) is None


async def test_an_export_cut_after_the_changes_brings_them_as_usual(
    settings: CatalogSettings, hsa: HsaSandbox, view: CatalogView
) -> None:
    # Given a first import, then changes in HSA that nobody notified (a missed notification)
    await full_import(settings)
    target = hsa.directory.hsa_id_of(50)
    hsa.directory.upsert({"hsaIdentity": target, "name": "Vårdcentral Omdöpt"})
    hsa.directory.remove(hsa.directory.hsa_id_of(51))
    # When the next export is cut after them
    before = await full_import(settings)
    hsa.cut_export()
    after = await full_import(settings)
    # Then the export cut before them changes nothing; the one after brings both
    assert (before.published, before.removed) == (0, 0)
    assert (after.published, after.removed, after.newer_kept) == (1, 1, 0)
    await view.start()
    await view.wait_ready(30)
    unit = view.unit(target)
    assert unit is not None
    assert unit.name == "Vårdcentral Omdöpt"


class _ExportWithNotificationsDuring:
    """An export as of `as_of` during whose reading notifications are published (as the
    catalog worker does while a long import runs)."""

    def __init__(
        self,
        as_of: datetime,
        entries: list[Entry],
        during: list[tuple[str, bytes | None]],
        writer: CatalogWriter,
        topic: str,
    ) -> None:
        self.as_of: datetime | None = as_of
        self._entries, self._during = entries, during
        self._writer, self._topic = writer, topic

    async def __aiter__(self) -> AsyncIterator[Entry]:
        for key, value in self._during:
            later = stamp(NOTIFICATION, datetime.now(UTC))
            await self._writer.publish(self._topic, key, value, later)
        for entry in self._entries:
            yield entry


async def _values(settings: CatalogSettings, topic: str) -> dict[str, bytes]:
    values: dict[str, bytes] = {}

    def keep(record) -> None:  # type: ignore[no-untyped-def]
        if record.value is None:
            values.pop(record.key.decode(), None)
        else:
            values[record.key.decode()] = record.value

    await read_to_end(settings.kafka, [topic], keep)
    return values


async def test_a_notification_overwritten_while_the_import_runs_is_written_again(
    settings: CatalogSettings, topics: None
) -> None:
    topic = settings.topics.care_units
    old = datetime(2025, 1, 1, tzinfo=UTC)
    writer = CatalogWriter(settings.kafka)
    await writer.start()
    try:
        # Given a topic with three keys, from an earlier import
        first = [Entry(k, b"v1", changed_at=old) for k in ("a", "b", "c")]
        await publish_snapshot(settings.kafka, writer, topic, Listed(_aiter(first)))
        # When, while an export as of an hour ago is read, notifications change a and c and
        # create d; the export has a's old value (different from v1) and lacks c and d
        export = _ExportWithNotificationsDuring(
            datetime.now(UTC) - timedelta(hours=1),
            [Entry("a", b"export", changed_at=old), Entry("b", b"v1", changed_at=old)],
            [("a", b"notified"), ("c", b"notified"), ("d", b"notified")],
            writer,
            topic,
        )
        report = await publish_snapshot(settings.kafka, writer, topic, export)
    finally:
        await writer.stop()

    # Then a's notification is written again after the import's record, c and d are kept
    assert report.restored == 1
    assert report.removed == 0
    assert await _values(settings, topic) == {
        "a": b"notified",
        "b": b"v1",
        "c": b"notified",
        "d": b"notified",
    }
    state = await read_state(settings.kafka, topic)
    assert state.changed_since("a", (datetime.now(UTC) - timedelta(minutes=5)).timestamp())


async def _aiter(entries: list[Entry]) -> AsyncIterator[Entry]:
    for entry in entries:
        yield entry


class _BreaksOff:
    """A snapshot that yields its entries, then fails (an export that broke off)."""

    as_of: datetime | None = None

    def __init__(self, entries: list[Entry]) -> None:
        self._entries = entries

    async def __aiter__(self) -> AsyncIterator[Entry]:
        for entry in self._entries:
            yield entry
        raise ConnectionError("the export broke off")


@pytest.fixture
def slow_topic_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """The topic's state arrives 0.3 s after it is read, so entries come in before it does."""
    from services.catalog import snapshot

    async def slow(*args: Any, **kwargs: Any) -> TopicState:
        state = await read_state(*args, **kwargs)
        await asyncio.sleep(0.3)
        return state

    monkeypatch.setattr(snapshot, "read_state", slow)
    monkeypatch.setattr(snapshot, "EARLY_ENTRIES", 3)


async def test_entries_that_arrive_before_the_topic_is_read_are_compared_once_it_is(
    settings: CatalogSettings, topics: None, slow_topic_read: None
) -> None:
    topic = settings.topics.care_units
    old = datetime(2025, 1, 1, tzinfo=UTC)
    writer = CatalogWriter(settings.kafka)
    await writer.start()
    try:
        # Given a topic with ten keys
        first = [Entry(f"k{i}", b"v1", changed_at=old) for i in range(10)]
        await publish_snapshot(settings.kafka, writer, topic, Listed(_aiter(first)))
        # When a snapshot (faster than the topic's reading) changes k1 and k7 and lacks k9
        later = [Entry(f"k{i}", b"v2" if i in (1, 7) else b"v1", changed_at=old) for i in range(9)]
        report = await publish_snapshot(
            settings.kafka, writer, topic, Listed(_aiter(later)), max_removal_share=0.5
        )
        # And then a snapshot that breaks off after changing k2
        with pytest.raises(ConnectionError):
            await publish_snapshot(
                settings.kafka, writer, topic, _BreaksOff([Entry("k2", b"v3", changed_at=old)])
            )
    finally:
        await writer.stop()

    # Then only the changes and the removal were written, each entry compared with the topic
    assert (report.published, report.unchanged, report.removed) == (2, 7, 1)
    # and what the broken snapshot changed before it broke off is published, nothing removed
    values = await _values(settings, topic)
    assert values == {f"k{i}": b"v1" for i in range(9)} | {"k1": b"v2", "k7": b"v2", "k2": b"v3"}
