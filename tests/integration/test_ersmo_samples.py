"""Every ERSMO sample record: converted, through real Kafka and the GVR worker (runtime, catalog
checks) to the GVR sandbox over mutual TLS; each ends accepted or dead-lettered for GVR's reason."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from typer.testing import CliRunner

from services.gvr.cli import gvr_app
from services.gvr.client import GvrClient
from services.gvr.ersmo import convert
from services.gvr.mapping import GvrPaths
from services.gvr.worker import GvrWorker
from services.sandboxes.gvr import GvrSandbox
from services.sandboxes.hsa import HsaSandbox
from shared.catalog.models import KombikaAssignment, KombikaMapping
from shared.catalog.view import CatalogView
from shared.delivery import headers as h
from shared.delivery.ledger import Ledger
from shared.settings import KafkaSettings, TopicSettings
from shared.topics import TopicSpec, dlq_topic, ensure_topics, results_topic
from tests.support.catalog import imported_catalog
from tests.support.ersmo_samples import FIXTURES, SAMPLE_KOMBIKAS, expected
from tests.support.runtime_harness import create_topics, publish, read_topic, running_runtime

pytestmark = pytest.mark.integration


def oldest_open_unit(hsa: HsaSandbox) -> str:
    """An HSA unit open (no end date) since before the samples' earliest date (2010-10-01)."""
    units = [u for u in hsa.directory.iter_units() if not u.get("hsaEndDate")]
    oldest = min(units, key=lambda u: u["hsaStartDate"])
    assert oldest["hsaStartDate"] <= "20100101", oldest["hsaStartDate"]
    return str(oldest["hsaIdentity"])


async def publish_kombikas(bootstrap: str, topic: str, hsa_id: str) -> None:
    """The code server's word that each sample kombika denotes `hsa_id` in its period (the
    assignment's `valid_to` is exclusive: the day after the last open day)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for code, (first, last) in SAMPLE_KOMBIKAS.items():
            valid_to = last + timedelta(days=1) if last is not None else None
            assignment = KombikaAssignment(hsa_id=hsa_id, valid_from=first, valid_to=valid_to)
            mapping = KombikaMapping(kombika=code, assignments=(assignment,))
            value = mapping.model_dump_json(exclude_none=True).encode()
            await producer.send_and_wait(topic, value, key=code.encode())
    finally:
        await producer.stop()


@pytest.fixture
async def catalog(
    hsa_sandbox: HsaSandbox, kafka_bootstrap: str, tmp_path: Path
) -> AsyncIterator[CatalogView]:
    name = uuid.uuid4().hex[:12]
    topics = TopicSettings(
        care_units=f"test.units.{name}",
        vaccines=f"test.vaccines.{name}",
        kombikas=f"test.kombikas.{name}",
    )
    compacted = [
        TopicSpec(t, "test", compacted=True)
        for t in (topics.care_units, topics.vaccines, topics.kombikas)
    ]
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    await ensure_topics(kafka, compacted, partitions=3, replication_factor=1)
    await publish_kombikas(kafka_bootstrap, topics.kombikas, oldest_open_unit(hsa_sandbox))
    async with imported_catalog(
        kafka_bootstrap, hsa_sandbox.base_url, tmp_path / "c.db", topics=topics
    ) as view:
        yield view


def outcome_of(result: dict[str, Any], letter: dict[str, str] | None) -> str:
    if result["status"] == "accepted":
        return "accepted"
    text = result.get("reason", "")
    if letter is not None:
        text += " " + letter.get(h.ERROR_MESSAGE, "") + " " + letter.get(h.REGISTER_RESPONSE, "")
    return f"{result.get('error_class')}: {text}"


def meets(found: str, wanted: str) -> bool:
    """`wanted` is "accepted" or "<error class> <words the reason must name>"."""
    if wanted == "accepted":
        return found == "accepted"
    error_class, *words = wanted.split()
    return found.startswith(f"{error_class}:") and all(word in found for word in words)


async def test_every_sample_record_is_accepted_or_dead_lettered_for_gvrs_reason(
    kafka_bootstrap: str,
    unique_name: str,
    gvr_sandbox: GvrSandbox,
    catalog: CatalogView,
    ledger: Ledger,
) -> None:
    # Given the GVR worker against the sandbox, and every sample fixture converted (record ids
    # prefixed by the fixture: the samples reuse ids across files)
    client = GvrClient(gvr_sandbox.base_url, ssl_context=gvr_sandbox.certs.client_ssl_context())
    worker = GvrWorker(client, catalog, GvrPaths())
    worker.name = f"gvr{unique_name}"
    topic = f"test.ersmo.{unique_name}"
    await create_topics(kafka_bootstrap, worker.name, topic, ["30s"])
    now = datetime.now(UTC)
    wanted: dict[str, str] = {}  # event id → the outcome GVR's answer must match
    refused: list[str] = []
    published = 0
    try:
        # GVR's key cannot tell apart two date-only contacts of one patient, unit and day (444
        # and 888): which one GVR takes depends on their order, so one file's events keep it
        # (one partition, one call at a time). The dead-letter limit is off: most samples are
        # meant to be refused.
        async with running_runtime(
            kafka_bootstrap,
            worker,
            ledger,
            topic,
            tiers=("30s",),
            max_in_flight=1,
            dlq_min_events=10_000,
        ):
            for path in sorted(FIXTURES.glob("*.xml")):
                # When each file's events go through (GVR's records cleared between files: the
                # samples are one patient at one unit on overlapping days, file after file)
                gvr_sandbox.reset()
                for code, (first, last) in SAMPLE_KOMBIKAS.items():
                    gvr_sandbox.add_kombika(code, first, last)
                conversion = convert(
                    path.read_bytes(),
                    source_system="ersmo",
                    now=now,
                    record_prefix=f"{path.stem}/",
                )
                refused += [
                    f"{path.name}/{n.record_id}"
                    for n in conversion.refusals
                    if expected(path.name, n.record_id) == "refused"
                ]
                failed: set[str] = set()
                for event in conversion.events:
                    ersmo_id = event["record_id"].removeprefix(f"{path.stem}/")
                    first = expected(path.name, ersmo_id)
                    later = first if first == "accepted" else "blocked_by_earlier"
                    wanted[event["event_id"]] = later if ersmo_id in failed else first
                    if first != "accepted":
                        failed.add(ersmo_id)
                await publish(
                    kafka_bootstrap, topic, conversion.events, key=lambda _: path.name.encode()
                )
                published += len(conversion.events)
                await read_topic(
                    kafka_bootstrap, results_topic(worker.name), at_least=published, timeout=90
                )
    finally:
        await client.aclose()

    # Then every event has its result, and each is the one GVR (or the contract) gives
    results = [
        json.loads(r.value)
        for r in await read_topic(kafka_bootstrap, results_topic(worker.name), timeout=5)
    ]
    letters = {
        story.get(h.EVENT_ID, ""): story
        for story in (
            h.to_dict(d.headers)
            for d in await read_topic(kafka_bootstrap, dlq_topic(worker.name), timeout=5)
        )
    }
    # an event the contract refused has no event id of its own (the worker could not read
    # it): it is the one event meant to be invalid
    unreadable = [event_id for event_id, want in wanted.items() if want.startswith("invalid")]
    found: dict[str, str] = {}
    for result in results:
        event_id = result["event_id"] or unreadable.pop()
        found[event_id] = outcome_of(result, letters.get(result["event_id"] or ""))
    assert set(found) == set(wanted)
    assert len(results) == len(wanted)  # one result per event: no event id was shared
    wrong = {
        event_id: (wanted[event_id], found[event_id])
        for event_id in wanted
        if not meets(found[event_id], wanted[event_id])
    }
    assert wrong == {}
    assert refused == ["ersmo-2014-09-04.xml/Duplicerade_OrdnNr"]
    assert sum(outcome == "accepted" for outcome in found.values()) == 7
    assert all("191212121244" not in outcome for outcome in found.values())


def test_the_command_publishes_a_files_events_keyed_by_record_id(
    kafka_bootstrap: str, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a fixture and a topic
    topic = f"test.ersmo-publish.{unique_name}"
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    asyncio.run(
        ensure_topics(kafka, [TopicSpec(topic, "test")], partitions=1, replication_factor=1)
    )
    monkeypatch.setenv("REGBRIDGE_KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    # When the command publishes it
    fixture = FIXTURES / "ersmo-2014-07-15-a.xml"
    result = CliRunner().invoke(gvr_app, ["import", "ersmo", str(fixture), "--publish", topic])
    # Then the five events are on the topic, keyed by their record ids, and nothing on stdout
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    records = asyncio.run(read_topic(kafka_bootstrap, topic, at_least=5, timeout=30))
    assert sorted(r.key for r in records) == [b"111", b"444", b"777", b"888", b"999"]
    assert {json.loads(r.value)["event_type"] for r in records} == {"care.contact"}
