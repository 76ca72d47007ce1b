"""The HSA sandbox over real HTTP (and a real Kafka topic for its notifications)."""

from __future__ import annotations

import asyncio
import json
import re
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from services.sandboxes.hsa import HsaDirectory, HsaSandbox
from services.sandboxes.hsa.cuts import ExportCuts
from shared.contracts import HsaUnitNotificationEvent, parse_event
from shared.identifiers import (
    InvalidIdentifierError,
    parse_kombika,
    validate_hsa_id,
    validate_organisationsnummer,
)
from shared.settings import KafkaSettings
from shared.topics import TopicSpec, ensure_topics

pytestmark = pytest.mark.integration

UNITS = 20_000
SEED = 1
FIXED_NOW = datetime(2025, 3, 14, 9, 2, 17, tzinfo=UTC)  # 10:02:17 in Stockholm (CET)
YYYYMMDD = re.compile(r"(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])")


@pytest.fixture(scope="module")
def server() -> Iterator[HsaSandbox]:
    with HsaSandbox(units=UNITS, seed=SEED, clock=lambda: FIXED_NOW) as sandbox:
        yield sandbox


@pytest.fixture
def hsa(server: HsaSandbox) -> HsaSandbox:
    server.reset()
    return server


@pytest.fixture
def http(hsa: HsaSandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hsa.base_url, timeout=30) as client:
        yield client


def read_export(http: httpx.Client) -> list[Any]:
    response = http.get("/export")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines()]


# lookups


def test_a_known_unit_answers_its_attributes(hsa: HsaSandbox, http: httpx.Client) -> None:
    hsa_id = hsa.directory.hsa_id_of(0)

    unit = http.get(f"/units/{hsa_id}").json()

    assert unit["hsaIdentity"] == hsa_id
    assert unit == hsa.directory.get(hsa_id)
    for attribute in ("name", "careGiver", "careGiverOrgNo", "municipalityCode", "countyCode"):
        assert unit[attribute]


def test_an_unknown_unit_answers_an_empty_object_not_an_error(http: httpx.Client) -> None:
    beyond = HsaDirectory(UNITS + 100, seed=SEED).hsa_id_of(UNITS + 50)  # same seed, not served

    for hsa_id in (beyond, "SE2321000016-ZZZZZ", "not-an-hsa-id"):
        response = http.get(f"/units/{hsa_id}")
        assert (response.status_code, response.json()) == (200, {})


# the export


def test_the_export_has_a_header_every_unit_and_a_trailer_with_the_count(
    hsa: HsaSandbox, http: httpx.Client
) -> None:
    header, *units, trailer = read_export(http)

    # as of 10:00, the cut 1.5 hours before the 11:30 import (HSA's own lead), generated now
    as_of = "20250314100000"
    assert header == {"export": {"generatedAt": "20250314100217", "asOf": as_of, "count": UNITS}}
    assert [u["hsaIdentity"] for u in units] == [hsa.directory.hsa_id_of(i) for i in range(UNITS)]
    assert trailer == {"end": {"count": UNITS}}


def test_the_export_holds_the_directory_as_of_its_last_cut(
    hsa: HsaSandbox, http: httpx.Client
) -> None:
    # Given a unit renamed and one removed after the export's cut
    renamed, removed = hsa.directory.hsa_id_of(7), hsa.directory.hsa_id_of(8)
    hsa.directory.upsert({"hsaIdentity": renamed, "name": "Vårdcentral Efter Snittet"})
    hsa.directory.remove(removed)
    # When the export is read, then cut again and read
    before = {u["hsaIdentity"]: u for u in read_export(http)[1:-1]}
    cut = http.post("/admin/export/cut")
    header, *units, _ = read_export(http)
    after = {u["hsaIdentity"]: u for u in units}
    # Then the lookups show the changes at once, the export only after its next cut
    assert http.get(f"/units/{renamed}").json()["name"] == "Vårdcentral Efter Snittet"
    assert before[renamed]["name"] != "Vårdcentral Efter Snittet"
    assert removed in before
    assert after[renamed]["name"] == "Vårdcentral Efter Snittet"
    assert removed not in after
    assert cut.json() == {"as_of": "2025-03-14T09:02:17Z", "count": UNITS - 1}
    assert header["export"]["asOf"] == "20250314100217"


def test_export_cuts_come_the_lead_before_each_slot() -> None:
    cuts = ExportCuts(HsaDirectory(0), lead=timedelta(hours=1, minutes=30))
    stockholm = ZoneInfo("Europe/Stockholm")
    at = datetime(2025, 3, 14, 10, 2, 17, tzinfo=stockholm)
    assert cuts.last_cut(at) == datetime(2025, 3, 14, 10, 0, tzinfo=stockholm)
    assert cuts.next_cut(at) == datetime(2025, 3, 14, 14, 0, tzinfo=stockholm)
    early = datetime(2025, 3, 14, 8, 0, tzinfo=stockholm)  # before the day's first cut
    assert cuts.last_cut(early) == datetime(2025, 3, 13, 21, 0, tzinfo=stockholm)
    assert cuts.next_cut(datetime(2025, 3, 14, 21, 0, tzinfo=stockholm)) == datetime(
        2025, 3, 15, 10, 0, tzinfo=stockholm
    )
    with pytest.raises(ValueError, match="negative"):
        ExportCuts(HsaDirectory(0), lead=timedelta(minutes=-1))


def test_a_truncated_export_breaks_off_without_its_trailer(
    hsa: HsaSandbox, http: httpx.Client
) -> None:
    hsa.set_faults(export_truncate_after=1234)
    lines: list[str] = []

    with pytest.raises(httpx.RemoteProtocolError), http.stream("GET", "/export") as response:
        lines.extend(response.iter_lines())

    assert len(lines) == 1 + 1234  # the header and 1,234 units: no trailer
    assert not any('"end"' in line for line in lines)
    assert json.loads(lines[-1])["hsaIdentity"] == hsa.directory.hsa_id_of(1233)


def test_the_export_answers_the_status_it_is_told_to(http: httpx.Client) -> None:
    http.post("/admin/faults", json={"export_status": 503}).raise_for_status()

    assert http.get("/export").status_code == 503
    assert http.get("/admin/faults").json()["export_status"] == 503
    assert http.post("/admin/reset").status_code == 204
    assert http.get("/export").status_code == 200


def test_spoilt_rows_are_bad_in_the_export_only(hsa: HsaSandbox, http: httpx.Client) -> None:
    ids = [hsa.directory.hsa_id_of(i) for i in (3, 4, 5)]
    for hsa_id, kind in zip(ids, ("bad_kombika", "bad_org", "not_json"), strict=True):
        hsa.directory.inject_invalid(hsa_id, kind)
    http.post("/admin/export/cut").raise_for_status()

    lines = http.get("/export").text.splitlines()

    bad_kombika, bad_org, not_json = lines[4:7]
    with pytest.raises(InvalidIdentifierError):
        parse_kombika(json.loads(bad_kombika)["kombika"][0]["code"])
    with pytest.raises(InvalidIdentifierError):
        validate_organisationsnummer(json.loads(bad_org)["careGiverOrgNo"])
    with pytest.raises(ValueError, match="Expecting"):
        json.loads(not_json)
    assert json.loads(lines[-1]) == {"end": {"count": UNITS}}
    assert validate_organisationsnummer(http.get(f"/units/{ids[1]}").json()["careGiverOrgNo"])


# generated data


def test_generated_units_are_valid_and_realistic(hsa: HsaSandbox, http: httpx.Client) -> None:
    units = read_export(http)[1:2001]
    ids = {u["hsaIdentity"] for u in units}

    for unit in units:
        validate_hsa_id(unit["hsaIdentity"])
        validate_hsa_id(unit["careGiver"])
        validate_organisationsnummer(unit["careGiverOrgNo"])
        assert unit["careGiver"].startswith(f"SE{unit['careGiverOrgNo']}-")
        if unit["parentHsaIdentity"] is not None:
            assert unit["parentHsaIdentity"] in ids
        for kombika in unit["kombika"]:
            parse_kombika(kombika["code"])
            assert YYYYMMDD.fullmatch(kombika["validFrom"])
        assert re.fullmatch(r"[0-9]{4}", unit["municipalityCode"])
        assert re.fullmatch(r"[0-9]{2}", unit["countyCode"])
        assert unit["municipalityCode"].startswith(unit["countyCode"])
        assert re.fullmatch(r"[0-9]{5}", unit["postalCode"])
        assert "$" in unit["postalAddress"]
        assert 55 <= unit["geographicalCoordinates"]["lat"] <= 69
        assert 11 <= unit["geographicalCoordinates"]["lon"] <= 24
        assert unit["businessType"][0] in ("01", "02", "03")
        assert YYYYMMDD.fullmatch(unit["hsaStartDate"])
        assert unit["hsaEndDate"] is None or unit["hsaStartDate"] < unit["hsaEndDate"] < "2025"
        assert re.fullmatch(r"20[0-9]{12}", unit["modifyTimestamp"])
    ended = sum(u["hsaEndDate"] is not None for u in units)
    assert 20 <= ended <= 120  # about 3 %
    assert any(len(u["kombika"]) == 2 for u in units)
    assert {u["careGiverOrgNo"] for u in units} >= {"2321000016", "2321000131", "2321000255"}
    assert any(u["careGiverOrgNo"].startswith("55") for u in units)
    kombikas = [k["code"] for u in units for k in u["kombika"]]
    assert len(kombikas) == len(set(kombikas))


def test_the_same_seed_gives_the_same_directory(http: httpx.Client) -> None:
    same, other = HsaDirectory(UNITS, seed=SEED), HsaDirectory(UNITS, seed=SEED + 1)

    served = [http.get(f"/units/{same.hsa_id_of(i)}").json() for i in (0, 7, 19_999)]

    assert served == [same.get(same.hsa_id_of(i)) for i in (0, 7, 19_999)]
    assert list(same.iter_units())[:500] == list(HsaDirectory(500, seed=SEED).iter_units())
    assert {same.hsa_id_of(i) for i in range(100)}.isdisjoint(
        {other.hsa_id_of(i) for i in range(100)}
    )


def test_300000_units_cost_nothing_until_read() -> None:
    tracemalloc.start()
    try:
        started = time.perf_counter()
        with (
            HsaSandbox(units=300_000, seed=SEED) as big,
            httpx.Client(base_url=big.base_url) as http,
        ):
            last = big.directory.hsa_id_of(299_999)
            unit = http.get(f"/units/{last}").json()
            with http.stream("GET", "/export") as response:
                header = json.loads(next(response.iter_lines()))
            _, peak = tracemalloc.get_traced_memory()
            elapsed = time.perf_counter() - started
    finally:
        tracemalloc.stop()

    assert big.directory.count == 300_000
    assert unit["hsaIdentity"] == last
    assert header["export"]["count"] == 300_000
    assert peak < 50_000_000  # materialised, 300,000 units would take hundreds of MB
    assert elapsed < 10  # start, a lookup and an export header: no full generation


# admin


def test_admin_creates_updates_and_removes_units(hsa: HsaSandbox, http: httpx.Client) -> None:
    existing = hsa.directory.hsa_id_of(10)
    new = {"hsaIdentity": "SE2321000016-NY001", "name": "Vårdcentral Nytorget"}

    created = http.post("/admin/units", json=new)
    updated = http.post("/admin/units", json={"hsaIdentity": existing, "name": "Vårdcentral X"})
    removed = http.delete(f"/admin/units/{existing}")

    assert created.status_code == 201
    assert created.json()["unit"] == new | {"modifyTimestamp": "20250314100217"}
    assert updated.status_code == 200
    assert updated.json()["changed_attributes"] == ["name"]
    assert (removed.status_code, removed.json()["record_version"]) == (200, 2)
    assert http.get(f"/units/{existing}").json() == {}
    assert http.delete(f"/admin/units/{existing}").status_code == 404
    http.post("/admin/export/cut").raise_for_status()  # the export holds them from its next cut
    header, *units, trailer = read_export(http)
    assert header["export"]["count"] == trailer["end"]["count"] == UNITS
    assert units[-1]["hsaIdentity"] == new["hsaIdentity"]
    assert existing not in {u["hsaIdentity"] for u in units}
    assert http.post("/admin/units", json={"hsaIdentity": "SE123-A"}).status_code == 422


def test_admin_changes_a_share_of_units(hsa: HsaSandbox, http: httpx.Client) -> None:
    answer = http.post("/admin/changes", json={"share": 0.01}).json()

    assert answer["changed"] == len(answer["hsa_ids"]) == UNITS // 100
    for hsa_id in answer["hsa_ids"][:50]:
        assert http.get(f"/units/{hsa_id}").json()["modifyTimestamp"] == "20250314100217"


def test_lookup_faults_answer_500(http: httpx.Client) -> None:
    http.post("/admin/faults", json={"error_rate": 1.0, "latency_ms": 20}).raise_for_status()

    assert http.get("/units/SE2321000016-ZZZZZ").status_code == 500


# notifications on a real Kafka topic


async def test_admin_changes_are_notified_per_the_public_contract(
    kafka_bootstrap: str, unique_name: str
) -> None:
    topic = f"test.hsa-notifications.{unique_name}"
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    await ensure_topics(kafka, [TopicSpec(topic, "test")], partitions=1, replication_factor=1)
    with HsaSandbox(units=100, seed=SEED, kafka=kafka, topic=topic) as hsa:
        hsa_id = hsa.directory.hsa_id_of(1)
        async with httpx.AsyncClient(base_url=hsa.base_url) as http:
            changed = {"hsaIdentity": hsa_id, "publicName": "Vårdcentral Ny"}
            (await http.post("/admin/units", json=changed)).raise_for_status()
            (await http.delete(f"/admin/units/{hsa_id}")).raise_for_status()
            (await http.post("/admin/units", json={"hsaIdentity": hsa_id})).raise_for_status()
            bulk = await http.post("/admin/changes", json={"share": 0.1, "notify": True})

    records = await consume(kafka_bootstrap, topic, count=3 + 10)

    events = [parse_event(record.value) for record in records]
    assert all(isinstance(e, HsaUnitNotificationEvent) for e in events)
    assert [r.key for r in records[:3]] == [hsa_id.encode()] * 3
    assert sorted(r.key.decode() for r in records[3:]) == sorted(bulk.json()["hsa_ids"])
    assert [(e.operation.value, e.record_version) for e in events[:3]] == [
        ("correct", 1),
        ("cancel", 2),
        ("create", 3),
    ]
    first = events[0]
    assert isinstance(first, HsaUnitNotificationEvent)
    assert first.source_system == "hsa-sandbox"
    assert first.record_id == first.payload.hsa_id == hsa_id
    assert first.payload.change_kind == "updated"
    assert first.payload.changed_attributes == ("publicName",)
    assert first.occurred_at.utcoffset() is not None


async def consume(bootstrap: str, topic: str, *, count: int) -> list[Any]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    try:
        records: list[Any] = []
        async with asyncio.timeout(30):
            while len(records) < count:
                batch = await consumer.getmany(timeout_ms=500)
                records.extend(r for part in batch.values() for r in part)
        return records
    finally:
        await consumer.stop()
