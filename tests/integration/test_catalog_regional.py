"""KIV beside HSA, and the code server's kombikas, on real Kafka and over real HTTP: a Västra
Götaland unit in both directories is one merged unit; a kombika that reaches the code server's
file an hour after its first visit is delivered to GVR, not dead-lettered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from services.catalog.app import catalog_jobs
from services.catalog.codeserver import import_kombikas
from services.catalog.directory_client import DirectoryClient
from services.catalog.notifications import CatalogNotificationWorker, UnitChange
from services.catalog.settings import CatalogSettings
from services.catalog.writer import CatalogWriter
from services.gvr.client import GvrClient, build_ssl_context
from services.gvr.mapping import GvrPaths
from services.gvr.worker import GvrWorker
from services.sandboxes.codeserver import CodeServerSandbox
from services.sandboxes.gvr import GvrSandbox
from services.sandboxes.hsa import HsaSandbox
from services.sandboxes.kiv import KivSandbox
from shared.catalog.models import CareUnit
from shared.catalog.view import CatalogView
from shared.delivery import headers as h
from shared.delivery.clock import ManualClock
from shared.delivery.ledger import Ledger
from shared.delivery.worker import Accepted, EventIdentity, Submission
from shared.settings import KafkaSettings, TopicSettings
from shared.topics import TopicSpec, dlq_topic, ensure_topics
from tests.support.catalog import SEED, UNITS
from tests.support.gvr_events import VISIT_DAY, kombikas, visit
from tests.support.runtime_harness import (
    create_topics,
    publish,
    read_topic,
    running_runtime,
    wait_for,
)

pytestmark = pytest.mark.integration

GRACE = timedelta(hours=2)
NEW_KOMBIKA = "99999099Z1"  # no unit of the generated directories carries these
NEVER_KOMBIKA = "99999099Z2"


@pytest.fixture(scope="module")
def kiv() -> Iterator[KivSandbox]:
    with KivSandbox(UNITS, seed=SEED) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def codeserver() -> Iterator[CodeServerSandbox]:
    with CodeServerSandbox(UNITS, seed=SEED) as sandbox:
        yield sandbox


@pytest.fixture
async def topics(kafka_bootstrap: str, unique_name: str) -> TopicSettings:
    topics = TopicSettings(
        care_units=f"test.units.{unique_name}",
        vaccines=f"test.vaccines.{unique_name}",
        kombikas=f"test.kombikas.{unique_name}",
    )
    names = (topics.care_units, topics.vaccines, topics.kombikas)
    await ensure_topics(
        KafkaSettings(bootstrap_servers=kafka_bootstrap),
        [TopicSpec(n, "test", compacted=True) for n in names],
        partitions=3,
        replication_factor=1,
    )
    return topics


def settings_for(
    kafka_bootstrap: str, topics: TopicSettings, tmp_path: Path, **urls: str
) -> CatalogSettings:
    return CatalogSettings(
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap),
        topics=topics,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'catalog.db'}",
        **urls,
    )


async def read_units(kafka_bootstrap: str, topics: TopicSettings) -> dict[str, CareUnit]:
    view = CatalogView.following(KafkaSettings(bootstrap_servers=kafka_bootstrap), topics)
    async with view:
        await view.wait_ready(60)
    records = await read_topic(kafka_bootstrap, topics.care_units, timeout=5)
    latest: dict[str, CareUnit] = {}
    for record in records:
        if record.key is not None and record.value is not None:
            latest[record.key.decode()] = CareUnit.model_validate_json(record.value)
    return latest


async def test_a_kiv_unit_and_an_hsa_unit_merge_by_hsa_id(
    kafka_bootstrap: str,
    hsa_sandbox: HsaSandbox,
    kiv: KivSandbox,
    topics: TopicSettings,
    tmp_path: Path,
) -> None:
    # Given a Västra Götaland unit in both directories, KIV closing it and naming it its own way
    kiv.reset()
    hsa_id = kiv.directory.hsa_id_of(0)
    kiv.upsert(
        {
            "hsaIdentity": hsa_id,
            "ou": "KIV's own name for it",
            "vgrAnsvarsnummer": "81234",
            "vgrVardVal": True,
            "hsaEndDate": "20271231",
        }
    )
    hsa_unit = hsa_sandbox.directory.get(hsa_id)
    assert hsa_unit is not None
    assert hsa_unit["countyCode"] == "14"
    settings = settings_for(
        kafka_bootstrap, topics, tmp_path, hsa_url=hsa_sandbox.base_url, kiv_url=kiv.base_url
    )

    # When the full import reads both
    async with catalog_jobs(settings) as jobs:
        report = await jobs.import_units()
    units = await read_units(kafka_bootstrap, topics)

    # Then the unit is one, each attribute from its owner, both sources recorded
    assert report.published == hsa_sandbox.directory.count
    merged = units[hsa_id]
    assert merged.sources == ("hsa", "kiv")
    assert merged.name == hsa_unit["name"]  # HSA owns the name
    assert merged.end_date == date(2027, 12, 31)  # KIV owns the end date
    assert merged.regional is not None
    assert merged.regional.unit_code == "81234"
    assert merged.regional.vardval is True
    # every KIV unit is merged; a unit outside Västra Götaland is HSA's alone
    kiv_ids = {unit["hsaIdentity"] for unit in kiv.directory.iter_units()}
    assert kiv_ids
    assert {k for k, u in units.items() if u.sources == ("hsa", "kiv")} == kiv_ids
    outside = next(u for k, u in units.items() if k not in kiv_ids)
    assert outside.sources == ("hsa",)
    assert outside.regional is None

    # And a notification publishes the merged unit too, with KIV's latest word
    kiv.upsert({"hsaIdentity": hsa_id, "vgrAnsvarsnummer": "89999"})
    hsa = DirectoryClient(hsa_sandbox.base_url)
    regional = DirectoryClient(kiv.base_url, name="KIV")
    writer = CatalogWriter(settings.kafka)
    await writer.start()
    try:
        worker = CatalogNotificationWorker(hsa, writer, topics.care_units, kiv=regional)
        change = UnitChange(hsa_id, "updated", datetime.now(UTC))
        identity = EventIdentity("e1", hsa_id, 2, "update")
        [outcome] = await worker.submit([Submission(identity, change, None)])
    finally:
        await writer.stop()
        await hsa.aclose()
        await regional.aclose()
    assert isinstance(outcome, Accepted)
    notified = (await read_units(kafka_bootstrap, topics))[hsa_id]
    assert notified.sources == ("hsa", "kiv")
    assert notified.regional is not None
    assert notified.regional.unit_code == "89999"


@pytest.fixture
async def gvr_worker(
    gvr_sandbox: GvrSandbox, kafka_bootstrap: str, topics: TopicSettings, unique_name: str
) -> AsyncIterator[tuple[GvrWorker, CatalogView]]:
    gvr_sandbox.reset()
    context = build_ssl_context(
        client_cert=str(gvr_sandbox.certs.client_cert),
        client_key=str(gvr_sandbox.certs.client_key),
        ca_bundle=str(gvr_sandbox.certs.ca_cert),
    )
    client = GvrClient(gvr_sandbox.base_url, ssl_context=context)
    view = CatalogView.following(KafkaSettings(bootstrap_servers=kafka_bootstrap), topics)
    async with view:
        worker = GvrWorker(client, view, GvrPaths(), unknown_unit_grace=GRACE)
        worker.name = f"gvr{unique_name}"
        yield worker, view
    await client.aclose()


async def test_a_kombika_that_reaches_the_code_file_an_hour_late_is_delivered(
    kafka_bootstrap: str,
    hsa_sandbox: HsaSandbox,
    gvr_sandbox: GvrSandbox,
    codeserver: CodeServerSandbox,
    topics: TopicSettings,
    gvr_worker: tuple[GvrWorker, CatalogView],
    ledger: Ledger,
    unique_name: str,
    tmp_path: Path,
) -> None:
    worker, view = gvr_worker
    # Given the catalog: HSA's units and the code server's file, which does not list the new
    # kombika yet (GVR itself knows it, for the unit HSA already has)
    codeserver.reset()
    settings = settings_for(kafka_bootstrap, topics, tmp_path, hsa_url=hsa_sandbox.base_url)
    async with catalog_jobs(settings) as jobs:
        await jobs.import_units()
    writer = CatalogWriter(settings.kafka)
    await writer.start()
    try:
        first = await import_kombikas(settings.kafka, writer, codeserver.base_url, topics.kombikas)
        assert first.published > 0
        await view.wait_ready(60)
        open_code, _ = kombikas(hsa_sandbox)
        unit = view.unit_by_kombika(open_code, VISIT_DAY)
        assert unit is not None
        for code in (NEW_KOMBIKA, NEVER_KOMBIKA):
            gvr_sandbox.add_kombika(code, date(2025, 1, 1))
            assert view.unit_by_kombika(code, VISIT_DAY) is None

        topic = f"test.contacts.{unique_name}"
        await create_topics(kafka_bootstrap, worker.name, topic, ["30s", "1h"])
        clock = ManualClock()
        late = visit(f"late-{unique_name}", NEW_KOMBIKA, referring_kombika=open_code)
        never = visit(f"never-{unique_name}", NEVER_KOMBIKA, referring_kombika=open_code)
        async with running_runtime(
            kafka_bootstrap, worker, ledger, topic, tiers=("30s", "1h"), clock=clock
        ):
            # When both visits arrive before the file lists their kombikas
            await publish(kafka_bootstrap, topic, [late, never])
            await asyncio.sleep(3)
            clock.advance(31)  # the first retry: still unknown
            await asyncio.sleep(3)
            assert gvr_sandbox.log() == []

            # and the file lists one of them an hour later
            codeserver.add(NEW_KOMBIKA, unit.hsa_id, date(2025, 1, 1))
            second = await import_kombikas(
                settings.kafka, writer, codeserver.base_url, topics.kombikas
            )
            assert second.published == 1
            await wait_for(
                lambda: view.unit_by_kombika(NEW_KOMBIKA, VISIT_DAY) is not None,
                30,
                "the new kombika in the view",
            )
            clock.advance(3600)

            # Then the late one is delivered, the other is an unknown_unit dead letter
            await wait_for(lambda: len(gvr_sandbox.log()) >= 1, 30, "the late visit delivered")
            dead = await read_topic(kafka_bootstrap, dlq_topic(worker.name), at_least=1)
    finally:
        await writer.stop()

    assert [entry["op"] for entry in gvr_sandbox.log()] == ["create"]
    [letter] = dead
    story = h.to_dict(letter.headers)
    assert story[h.RECORD_ID] == never["record_id"]
    assert story[h.ERROR_CLASS] == "unknown_unit"
    assert NEVER_KOMBIKA in story[h.ERROR_MESSAGE]


async def test_the_code_servers_file_through_its_http_api(codeserver: CodeServerSandbox) -> None:
    """The catalog reads the sandbox's file as it reads the region's: the same parser."""
    from services.catalog.codeserver import read_mek

    codeserver.reset()
    async with httpx.AsyncClient(base_url=codeserver.base_url) as client:
        response = await client.get("/mek.xml")
    _exported, rows = read_mek(response.content)
    assert rows
    assert all(row.problem is None for row in rows)
