"""CVR end to end: real Kafka → the CVR intake (the delivery runtime, a PostgreSQL ledger and
state) → monthly reports built and sent over real SFTP to the CVR sandbox → receipts, results.
The waits in the files are recomputed here, day by day, independently of the worker's arithmetic;
a connection dropped mid-upload leaves no half file counted; a wrong host key stops delivery with
an alarm."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from services.cvr.mapping import MappingRules
from services.cvr.worker import CvrRegister
from services.sandboxes.cvr import CvrSandbox
from services.sandboxes.cvr.keys import foreign_key_pair
from services.sandboxes.hsa.directory import HsaDirectory
from shared.catalog.index import CatalogIndex
from shared.delivery.clock import SystemClock
from shared.delivery.errors import ConfigurationError
from shared.delivery.ledger import Ledger
from shared.delivery.runtime import DeliveryRuntime
from shared.files.delivery import FileMetrics
from shared.files.intake import FileIntake
from shared.files.settings import FileWorkerSettings
from shared.files.state import FileState, file_records
from shared.files.wiring import FileParts, file_parts, file_topics
from shared.schedule import Period
from shared.settings import KafkaSettings
from tests.support.runtime_harness import create_topics, publish, read_topic, wait_for
from tests.support.vgpv import kiv_catalog

pytestmark = pytest.mark.integration

HSA_UNITS, SEED = 2000, 1
JANUARY, FEBRUARY = Period(2027, 1), Period(2027, 2)
TIERS = ["30s", "5m", "30m", "2h", "12h"]


@pytest.fixture(scope="module")
def catalog() -> CatalogIndex:
    return kiv_catalog(HSA_UNITS, SEED)


@pytest.fixture(scope="module")
def unit() -> str:
    for raw in HsaDirectory(HSA_UNITS, SEED).iter_units():
        if raw.get("countyCode") == "01" and not raw.get("hsaEndDate"):
            return str(raw["hsaIdentity"])
    raise AssertionError("no open Stockholm unit")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CvrSandbox]:
    with CvrSandbox(certs_dir=tmp_path_factory.mktemp("cvr-keys")) as sandbox:
        yield sandbox


@pytest.fixture
def cvr(server: CvrSandbox) -> CvrSandbox:
    server.reset()
    return server


@pytest.fixture
async def pg_ledger(postgres_url: str) -> AsyncIterator[Ledger]:
    ledger = Ledger.from_url(postgres_url)
    await ledger.create_schema()
    yield ledger
    await ledger.close()


def wait_event(
    record_id: str, unit: str, occurred: str, version: int = 1, **payload: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "patient": {"id_type": "PNR", "id": "191212121212"},
        "unit_hsa_id": unit,
        "cvr_code": "F101",
        "wait_kind": "first_visit",
        "guarantee_applies": True,
        "referral_received": "2026-11-10",
    }
    body.update(payload)
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "care.wait",
        "schema_version": 1,
        "occurred_at": f"{occurred}T10:00:00+01:00",
        "source_system": "test-journal",
        "record_id": record_id,
        "record_version": version,
        "operation": "create" if version == 1 else "correct",
        "payload": {k: v for k, v in body.items() if v is not None},
    }


@asynccontextmanager
async def running(
    kafka_bootstrap: str,
    cvr: CvrSandbox,
    catalog: CatalogIndex,
    ledger: Ledger,
    name: str,
    topic: str,
    rules: MappingRules | None = None,
    **transfer: Any,
) -> AsyncIterator[tuple[FileState, FileParts]]:
    settings = FileWorkerSettings(
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap),
        input_topic=topic,
        instance_id=f"test-{name}",
    )
    register = CvrRegister(cvr.transfer(**transfer), catalog, rules)
    register.name = name
    state = FileState(ledger.engine, name)
    clock = SystemClock()
    async with file_parts(
        register, settings, state, clock, FileMetrics(CollectorRegistry())
    ) as parts:
        runtime = DeliveryRuntime(
            FileIntake(register, state, clock),
            ledger,
            settings.kafka,
            file_topics(name, settings),
            settings.runtime,
            clock=clock,
            results_on_accept=False,
        )
        task = asyncio.create_task(runtime.run())
        try:
            await wait_for(lambda: runtime.status.assigned or task.done(), 30, "assignment")
            yield state, parts
        finally:
            runtime.stop()
            await asyncio.wait_for(task, 30)


async def stored(state: FileState, versions: dict[str, int]) -> None:
    c = file_records.c
    for _ in range(150):
        async with state.engine.connect() as conn:
            rows = await conn.execute(
                select(c.record_id, c.record_version).where(c.register == state.register)
            )
            found = {row.record_id: row.record_version for row in rows}
        if all(found.get(rid) == v for rid, v in versions.items()):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"the intake did not store {versions}")


def days_waited(start: date, end: date, patient_chosen: list[tuple[date, date]]) -> int:
    """Counted one day at a time: each day after the start up to the end, unless the patient
    chose to wait that day."""
    total, day = 0, start + timedelta(days=1)
    while day <= end:
        if not any(first <= day <= last for first, last in patient_chosen):
            total += 1
        day += timedelta(days=1)
    return total


def report(cvr: CvrSandbox, unit: str, period: Period) -> dict[str, dict[str, Any]]:
    (held,) = cvr.holding(unit, period)
    return {row["radnyckel"]: row for row in held["rader"]}


async def test_a_waiting_list_month_by_month_with_figures_recomputed_independently(
    kafka_bootstrap: str,
    unique_name: str,
    cvr: CvrSandbox,
    catalog: CatalogIndex,
    unit: str,
    pg_ledger: Ledger,
) -> None:
    name, topic = f"cvr{unique_name}", f"test.waits.{unique_name}"
    await create_topics(kafka_bootstrap, name, topic, TIERS)
    r = lambda n: f"{unique_name}-{n}"  # noqa: E731
    pvv = {"kind": "patient_chosen", "start": "2026-12-01", "end": "2026-12-20"}
    mov = {"kind": "medically_caused", "start": "2026-12-10", "end": None}
    january = [
        wait_event(r("waiting"), unit, "2027-01-05"),
        wait_event(r("pvv"), unit, "2027-01-05", exceptions=[pvv]),
        wait_event(
            r("done"),
            unit,
            "2027-01-20",
            wait_kind="treatment",
            decided_on="2026-11-20",
            completed_on="2027-01-19",
        ),
        wait_event(
            r("gone"), unit, "2027-01-21", removed_on="2027-01-21", removed_reason="declined"
        ),
        wait_event(r("mov"), unit, "2027-01-06", wait_kind="operation", exceptions=[mov]),
        wait_event(r("late"), unit, "2027-01-03", completed_on="2026-12-28"),  # December's
    ]
    async with running(kafka_bootstrap, cvr, catalog, pg_ledger, name, topic) as (state, parts):
        await publish(kafka_bootstrap, topic, january)
        await stored(state, {e["record_id"]: 1 for e in january})
        assert "1 built, 1 delivered" in await parts.delivery.run(JANUARY)

        rows = report(cvr, unit, JANUARY)
        referral, cut_off = date(2026, 11, 10), date(2027, 1, 31)
        pvv_days = [(date(2026, 12, 1), date(2026, 12, 20))]
        assert {k: v["status"] for k, v in rows.items()} == {
            r("waiting"): "V",
            r("pvv"): "V",
            r("done"): "G",
            r("gone"): "A",
            r("mov"): "V",
            r("late"): "G",  # completed in December, recorded in January: not lost
        }
        assert int(rows[r("waiting")]["vantedagar"]) == days_waited(referral, cut_off, [])
        assert int(rows[r("pvv")]["vantedagar"]) == days_waited(referral, cut_off, pvv_days)
        assert int(rows[r("pvv")]["pvv_dagar"]) == 20
        decided = date(2026, 11, 20)  # a treatment counts from the decision
        assert int(rows[r("done")]["vantedagar"]) == days_waited(decided, date(2027, 1, 19), [])
        assert rows[r("done")]["garanti_start"] == "2026-11-20"
        assert int(rows[r("gone")]["vantedagar"]) == days_waited(referral, date(2027, 1, 21), [])
        assert rows[r("mov")]["mov"] == "J"
        assert rows[r("waiting")]["mov"] == "N"

        # February: one completed, a new referral; the rest still waiting are carried
        february = [
            wait_event(r("waiting"), unit, "2027-02-10", 2, completed_on="2027-02-09"),
            wait_event(r("new"), unit, "2027-02-11", referral_received="2027-02-11"),
        ]
        await publish(kafka_bootstrap, topic, february)
        await stored(state, {r("waiting"): 2, r("new"): 1})
        assert "1 built, 1 delivered" in await parts.delivery.run(FEBRUARY)

        rows = report(cvr, unit, FEBRUARY)
        assert {k: v["status"] for k, v in rows.items()} == {
            r("waiting"): "G",
            r("pvv"): "V",
            r("mov"): "V",
            r("new"): "V",
        }
        end = date(2027, 2, 28)
        assert int(rows[r("pvv")]["vantedagar"]) == days_waited(referral, end, pvv_days)
        assert int(rows[r("new")]["vantedagar"]) == days_waited(date(2027, 2, 11), end, [])
        assert all(count == 1 for count in cvr.deliveries().values())

    results = await read_topic(kafka_bootstrap, f"{name}.results.v1", at_least=8)
    assert {json.loads(m.value)["status"] for m in results} == {"accepted"}


async def test_daily_reports_carry_the_waiting_from_day_to_day(
    kafka_bootstrap: str,
    unique_name: str,
    cvr: CvrSandbox,
    catalog: CatalogIndex,
    unit: str,
    pg_ledger: Ledger,
) -> None:
    """With REGBRIDGE_CVR_PERIODS=daily: a report per day, each still-waiting entry in every
    day's report, its wait counted to that day; a completion in its day's report only."""
    name, topic = f"cvr{unique_name}", f"test.waits.{unique_name}"
    await create_topics(kafka_bootstrap, name, topic, TIERS)
    r = lambda n: f"{unique_name}-{n}"  # noqa: E731
    day_1, day_2 = Period(2027, 1, 11), Period(2027, 1, 12)
    daily = MappingRules(grace=timedelta(0), cadence="daily")
    async with running(kafka_bootstrap, cvr, catalog, pg_ledger, name, topic, daily) as (
        state,
        parts,
    ):
        first = [wait_event(r("a"), unit, "2027-01-11"), wait_event(r("b"), unit, "2027-01-11")]
        await publish(kafka_bootstrap, topic, first)
        await stored(state, {r("a"): 1, r("b"): 1})
        assert "1 built, 1 delivered" in await parts.delivery.run(day_1)
        (held,) = cvr.holding(unit, day_1)
        assert held["fil"].endswith("_20270111_001.txt")
        rows = report(cvr, unit, day_1)
        assert {k: v["status"] for k, v in rows.items()} == {r("a"): "V", r("b"): "V"}
        referral = date(2026, 11, 10)
        assert int(rows[r("a")]["vantedagar"]) == days_waited(referral, date(2027, 1, 11), [])

        await publish(
            kafka_bootstrap,
            topic,
            [wait_event(r("b"), unit, "2027-01-12", 2, completed_on="2027-01-12")],
        )
        await stored(state, {r("b"): 2})
        assert "1 built, 1 delivered" in await parts.delivery.run(day_2)
        rows = report(cvr, unit, day_2)
        assert {k: v["status"] for k, v in rows.items()} == {r("a"): "V", r("b"): "G"}
        assert int(rows[r("a")]["vantedagar"]) == days_waited(referral, date(2027, 1, 12), [])
        assert int(rows[r("b")]["vantedagar"]) == days_waited(referral, date(2027, 1, 12), [])
        # the first day's report stands as it was sent
        assert {k: v["status"] for k, v in report(cvr, unit, day_1).items()}[r("b")] == "V"


async def test_a_connection_dropped_mid_upload_leaves_no_half_file(
    kafka_bootstrap: str,
    unique_name: str,
    cvr: CvrSandbox,
    catalog: CatalogIndex,
    unit: str,
    pg_ledger: Ledger,
) -> None:
    name, topic = f"cvr{unique_name}", f"test.waits.{unique_name}"
    await create_topics(kafka_bootstrap, name, topic, TIERS)
    entries = [wait_event(f"{unique_name}-{n}", unit, "2027-01-05") for n in range(200)]
    async with running(kafka_bootstrap, cvr, catalog, pg_ledger, name, topic) as (state, parts):
        await publish(kafka_bootstrap, topic, entries)
        await stored(state, {e["record_id"]: 1 for e in entries})
        cvr.set_faults(drop_after_bytes=4096, drop_uploads=1)

        first = await parts.delivery.run(JANUARY)

        assert "1 not delivered" in first
        assert cvr.deliveries() == {}  # the half file was never renamed into the inbox
        (file,) = await state.files_of(JANUARY)
        assert file.status == "delivering"
        assert "1 delivered" in await parts.delivery.run(JANUARY)
        assert cvr.deliveries() == {file.name: 1}
        assert len(report(cvr, unit, JANUARY)) == 200


async def test_a_wrong_host_key_stops_delivery_with_an_alarm(
    kafka_bootstrap: str,
    unique_name: str,
    cvr: CvrSandbox,
    catalog: CatalogIndex,
    unit: str,
    pg_ledger: Ledger,
    tmp_path: Path,
) -> None:
    name, topic = f"cvr{unique_name}", f"test.waits.{unique_name}"
    await create_topics(kafka_bootstrap, name, topic, TIERS)
    _foreign_key, foreign_public = foreign_key_pair(tmp_path)
    alarms: list[str | None] = []
    async with running(
        kafka_bootstrap, cvr, catalog, pg_ledger, name, topic, known_hosts=foreign_public
    ) as (state, parts):
        parts.delivery.on_alarm = alarms.append
        await publish(kafka_bootstrap, topic, [wait_event(f"{unique_name}-1", unit, "2027-01-05")])
        await stored(state, {f"{unique_name}-1": 1})

        with pytest.raises(ConfigurationError) as refused:
            await parts.delivery.run(JANUARY)

        assert refused.value.error_class == "host_key_unknown"
        assert alarms
        assert alarms[-1] is not None
        assert "host_key_unknown" in alarms[-1]
        assert cvr.deliveries() == {}
