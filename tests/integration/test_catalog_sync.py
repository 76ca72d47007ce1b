"""The catalog sync against the HSA sandbox over HTTP and a real broker, read by CatalogView."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import SecretStr

from services.catalog.app import catalog_jobs
from services.catalog.directory_client import TruncatedExportError
from services.catalog.settings import CatalogSettings
from services.catalog.spec import SPEC as CATALOG
from services.sandboxes.hsa import HsaSandbox
from services.sandboxes.nvr import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, NvrSandbox
from shared.catalog.view import CatalogView
from shared.delivery import headers as h
from shared.delivery.app import run_worker
from shared.delivery.clock import ManualClock
from shared.delivery.errors import ConfigurationError
from shared.delivery.ledger import Ledger
from shared.delivery.options import RuntimeOptions
from shared.schedule import DailySlots, SlotClaims, parse_times, run_schedule
from shared.settings import KafkaSettings, TopicSettings
from shared.topics import TopicSpec, dlq_topic, ensure_topics, retry_topic
from tests.support.runtime_harness import read_topic, wait_for

pytestmark = pytest.mark.integration
UNITS = 400


@pytest.fixture
def base_settings(kafka_bootstrap: str, unique_name: str, tmp_path: Path) -> CatalogSettings:
    topics = TopicSettings(
        care_units=f"catalog.care-units.{unique_name}",
        vaccines=f"catalog.vaccines.{unique_name}",
        kombikas=f"catalog.kombikas.{unique_name}",
        retry_delays=["30s"],
    )
    return CatalogSettings(
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap),
        topics=topics,
        input_topic=f"catalog.hsa-notifications.{unique_name}",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}",
        health_port=0,
        runtime=RuntimeOptions(dlq_min_events=1000),
    )


@pytest.fixture
async def topics(base_settings: CatalogSettings) -> None:
    settings = base_settings
    t = settings.topics
    specs = [TopicSpec(n, "", compacted=True) for n in (t.care_units, t.vaccines, t.kombikas)]
    specs += [TopicSpec(n, "") for n in (settings.input_topic, dlq_topic("catalog"))]
    specs += [TopicSpec(retry_topic("catalog", "30s"), "")]
    await ensure_topics(settings.kafka, specs, partitions=3, replication_factor=1)


@pytest.fixture
def hsa(base_settings: CatalogSettings, kafka_bootstrap: str) -> Iterator[HsaSandbox]:
    topic = base_settings.input_topic
    with HsaSandbox(UNITS, seed=7, kafka_bootstrap=kafka_bootstrap, topic=topic) as sandbox:
        yield sandbox


@pytest.fixture
def settings(base_settings: CatalogSettings, hsa: HsaSandbox) -> CatalogSettings:
    return base_settings.model_copy(update={"hsa_url": hsa.base_url})


@pytest.fixture
async def view(base_settings: CatalogSettings, topics: None) -> AsyncIterator[CatalogView]:
    settings = base_settings
    catalog = CatalogView.following(settings.kafka, settings.topics)
    yield catalog
    await catalog.stop()


async def full_import(settings: CatalogSettings):  # type: ignore[no-untyped-def]
    async with catalog_jobs(settings) as jobs:
        return await jobs.import_units()


async def test_full_import_publishes_everything_once_then_only_changes_and_removals(
    settings: CatalogSettings, hsa: HsaSandbox, view: CatalogView
) -> None:
    # Given a first import
    first = await full_import(settings)
    again = await full_import(settings)
    # When 2 % of the units change and three disappear from HSA
    changed = hsa.directory.change_random(0.02, random.Random(3))
    gone = [hsa.directory.hsa_id_of(i) for i in (5, 6, 7)]
    for hsa_id in gone:
        hsa.directory.remove(hsa_id)
    hsa.cut_export()  # HSA's next export holds them
    third = await full_import(settings)
    await view.start()
    await view.wait_ready(30)

    # Then the first published every unit, the second nothing, the third only the difference
    assert (first.published, first.removed) == (UNITS, 0)
    assert (again.published, again.removed, again.unchanged) == (0, 0, UNITS)
    assert third.published == len(set(changed) - set(gone))
    assert third.removed == 3
    assert view.stats().units == UNITS - 3
    assert all(view.unit(hsa_id) is None for hsa_id in gone)
    some = hsa.directory.hsa_id_of(10)
    assert view.unit(some) is not None
    assert view.care_giver_of(some) is not None


async def test_a_truncated_export_tombstones_nothing(
    settings: CatalogSettings, hsa: HsaSandbox, view: CatalogView
) -> None:
    await full_import(settings)
    for i in range(300, 320):
        hsa.directory.remove(hsa.directory.hsa_id_of(i))
    hsa.cut_export()
    hsa.set_faults(export_truncate_after=150)

    with pytest.raises(TruncatedExportError):
        await full_import(settings)
    await view.start()
    await view.wait_ready(30)

    assert view.stats().units == UNITS  # the 20 removed units were not tombstoned on a partial read


async def test_invalid_rows_are_skipped_with_a_reason_and_never_tombstoned(
    settings: CatalogSettings, hsa: HsaSandbox, view: CatalogView
) -> None:
    await full_import(settings)
    bad, unreadable = hsa.directory.hsa_id_of(20), hsa.directory.hsa_id_of(21)
    hsa.directory.inject_invalid(bad, "bad_kombika")
    hsa.cut_export()
    first = await full_import(settings)
    hsa.directory.inject_invalid(unreadable, "not_json")
    hsa.directory.remove(hsa.directory.hsa_id_of(22))
    hsa.cut_export()
    second = await full_import(settings)
    await view.start()
    await view.wait_ready(30)

    assert sum(first.skipped.values()) == 1
    assert any("kombika" in reason for reason in first.skipped)
    assert view.unit(bad) is not None
    assert view.unit(unreadable) is not None
    assert second.removed == 0  # a row that could be any unit: removals are withheld
    assert second.removals_withheld is not None


async def test_notifications_update_and_remove_units_within_seconds(
    settings: CatalogSettings, hsa: HsaSandbox, view: CatalogView, kafka_bootstrap: str
) -> None:
    await full_import(settings)
    await view.start()
    await view.wait_ready(30)
    worker = asyncio.create_task(run_worker(CATALOG, settings, clock=ManualClock()))
    try:
        target, removed = hsa.directory.hsa_id_of(30), hsa.directory.hsa_id_of(31)
        unit = hsa.directory.get(target)
        assert unit is not None
        async with httpx.AsyncClient(base_url=hsa.base_url) as client:
            changed = {**dict(unit), "name": "Vårdcentral Nyköping Ny"}
            (await client.post("/admin/units", json=changed)).raise_for_status()
            (await client.delete(f"/admin/units/{removed}")).raise_for_status()
            stranger = {**dict(unit), "hsaIdentity": "SE2321000016-ZZZZ9"}
            (await client.post("/admin/units", json=stranger)).raise_for_status()
        await wait_for(
            lambda: (
                view.unit(target) is not None
                and view.unit(target).name == "Vårdcentral Nyköping Ny"
            ),
            30,
            "update",
        )
        await wait_for(lambda: view.unit(removed) is None, 30, "removal")
        await wait_for(lambda: view.unit("SE2321000016-ZZZZ9") is not None, 30, "new unit")
    finally:
        worker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await worker


async def test_a_notification_for_a_unit_hsa_does_not_know_is_dead_lettered(
    settings: CatalogSettings, hsa: HsaSandbox, topics: None, kafka_bootstrap: str
) -> None:
    from tests.support.runtime_harness import publish

    event = {
        "event_id": "7d3c2a8e-1b4f-4c5d-9e6f-0a1b2c3d4e5f",
        "event_type": "hsa.unit-notification",
        "schema_version": 1,
        "occurred_at": "2026-11-22T10:00:00+01:00",
        "source_system": "hsa",
        "record_id": "SE2321000016-NOPE1",
        "record_version": 1,
        "operation": "correct",
        "payload": {
            "hsa_id": "SE2321000016-NOPE1",
            "change_kind": "updated",
            "notified_at": "2026-11-22T10:00:00+01:00",
        },
    }
    worker = asyncio.create_task(run_worker(CATALOG, settings, clock=ManualClock()))
    try:
        await publish(kafka_bootstrap, settings.input_topic, [event])
        dead = await read_topic(kafka_bootstrap, dlq_topic("catalog"), at_least=1, timeout=30)
    finally:
        worker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await worker

    mine = [d for d in dead if h.to_dict(d.headers).get(h.RECORD_ID) == "SE2321000016-NOPE1"]
    assert h.to_dict(mine[0].headers)[h.ERROR_CLASS] == "unknown_unit"


async def test_two_replicas_run_a_missed_slot_at_start_and_each_slot_once(
    postgres_url: str, unique_name: str
) -> None:
    # Given two replicas starting at 11:29:50 in Stockholm, when no replica ran yesterday's 11:30
    ledger = Ledger.from_url(postgres_url)
    claims = SlotClaims(ledger.engine)
    await claims.create_schema()
    clock = ManualClock(datetime(2026, 11, 22, 10, 29, 50, tzinfo=UTC))
    runs: list[tuple[str, datetime]] = []

    def replica(name: str):  # type: ignore[no-untyped-def]
        async def job() -> str:
            runs.append((name, clock.now()))
            return "ok"

        return run_schedule(
            DailySlots(parse_times(["11:30"]), ZoneInfo("Europe/Stockholm")),
            kind=f"test-{unique_name}",
            clock=clock,
            claims=claims,
            owner=name,
            job=job,
        )

    tasks = [asyncio.create_task(replica(name)) for name in ("a", "b")]
    await wait_for(lambda: len(runs) >= 1, 10, "the missed slot caught up")
    await asyncio.sleep(0.5)
    caught_up = list(runs)
    clock.advance(15)
    await wait_for(lambda: len(runs) >= 2, 10, "the slot ran")
    await asyncio.sleep(0.5)
    # When both replicas start again (a restart after the slot): nothing is missed, nothing runs
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    tasks = [asyncio.create_task(replica(name)) for name in ("a", "b")]
    await asyncio.sleep(1.0)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    recent = await claims.recent(f"test-{unique_name}")
    await ledger.close()

    # Then yesterday's slot ran once, at start; today's once, on time; each by one replica
    assert len(caught_up) == 1
    assert caught_up[0][1] == datetime(2026, 11, 22, 10, 29, 50, tzinfo=UTC)
    assert len(runs) == 2
    assert [run.slot_at.isoformat() for run in recent] == [
        "2026-11-22T11:30:00+01:00",
        "2026-11-21T11:30:00+01:00",
    ]
    assert all(run.succeeded for run in recent)


async def test_the_vaccine_list_is_published_and_answers_batch_questions(
    base_settings: CatalogSettings, view: CatalogView
) -> None:
    # Given NVR (its sandbox) giving the vaccine list to OAuth2 clients only
    with NvrSandbox(units=10) as nvr:
        settings = base_settings.model_copy(
            update={
                "vaccines_url": nvr.base_url,
                "nvr_client_id": DEFAULT_CLIENT_ID,
                "nvr_client_secret": SecretStr(DEFAULT_CLIENT_SECRET),
            }
        )
        without_token = base_settings.model_copy(update={"vaccines_url": nvr.base_url})
        # When the catalog reads it twice with a token, and once without
        async with catalog_jobs(settings) as jobs:
            first = await jobs.import_vaccines()
            again = await jobs.import_vaccines()
        async with catalog_jobs(without_token) as jobs:
            with pytest.raises(ConfigurationError) as refused:
                await jobs.import_vaccines()
    # Then the first read publishes the list, the second nothing, the tokenless one is refused
    assert refused.value.register_status == 401
    await view.start()
    await view.wait_ready(30)
    today = date(2026, 11, 22)

    assert (first.published, again.published) == (4, 0)
    assert view.is_current_batch("20201214100018", "FN1234", today)
    assert not view.is_current_batch("20201214100018", "GH5678", today)  # expired
    assert not view.is_current_batch("20201214100018", "NOPE", today)
    assert view.vaccine("20090917100028") is not None


async def test_a_worker_is_not_ready_until_its_catalog_view_has_caught_up(
    settings: CatalogSettings, view: CatalogView, tmp_path: Path
) -> None:
    from shared.delivery.health import health_app
    from shared.delivery.runtime import DeliveryRuntime
    from shared.topics import WorkerTopics
    from tests.support.double_register.worker import DoubleWorker

    await full_import(settings)
    ledger = Ledger.from_url(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    worker = DoubleWorker("http://127.0.0.1:9")
    runtime = DeliveryRuntime(
        worker, ledger, settings.kafka, WorkerTopics("g", "t", ()), RuntimeOptions()
    )
    runtime.status.started = True  # as if consuming: only the view is missing
    app = health_app(runtime, {"catalog": view})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
        before = (await client.get("/health/ready")).status_code
        await view.start()
        await view.wait_ready(30)
        after = (await client.get("/health/ready")).status_code
        status = (await client.get("/status")).json()
    await worker.aclose()
    await ledger.close()

    assert (before, after) == (503, 200)
    assert status["components"]["catalog"]["units"] == UNITS
    assert status["components"]["catalog"]["ready"] is True
