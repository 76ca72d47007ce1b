"""The file-delivery runtime end to end: real Kafka → the VGPV intake (the delivery runtime, a
PostgreSQL ledger and state) → files built and uploaded to the VGPV sandbox over mutual TLS →
receipts, results and refused rows as dead letters. A month with corrections and cancellations
before and after delivery ends as exactly the rows the register holds; a crash during delivery
does not deliver twice; a file not accepted alarms."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from services.sandboxes.kiv import KivDirectory
from services.sandboxes.vgpv import VgpvSandbox
from services.vgpv.client import VgpvClient, build_ssl_context
from services.vgpv.settings import VgpvSettings
from services.vgpv.worker import VgpvRegister, rules_from
from shared.catalog.index import CatalogIndex
from shared.delivery import headers as h
from shared.delivery.clock import SystemClock
from shared.delivery.ledger import Ledger
from shared.delivery.runtime import DeliveryRuntime
from shared.files.delivery import FileMetrics
from shared.files.intake import FileIntake
from shared.files.register import FileHeader, Receipt
from shared.files.state import FileState, file_records
from shared.files.wiring import FileParts, file_parts, file_topics
from shared.schedule import Period
from shared.settings import KafkaSettings
from tests.support.runtime_harness import create_topics, publish, read_topic, wait_for
from tests.support.vgpv import kiv_catalog, vardval_unit, vgr_visit

pytestmark = pytest.mark.integration

HSA_UNITS, SEED = 2000, 1
STOCKHOLM = ZoneInfo("Europe/Stockholm")
JANUARY, FEBRUARY = Period(2027, 1), Period(2027, 2)
IN_JANUARYS_WINDOW = datetime(2027, 2, 2, 10, 0, tzinfo=STOCKHOLM)
IN_FEBRUARYS_WINDOW = datetime(2027, 3, 2, 10, 0, tzinfo=STOCKHOLM)
GVR_KOMBIKA = "12345678901"


@pytest.fixture(scope="module")
def kiv() -> KivDirectory:
    return KivDirectory(HSA_UNITS, SEED)


@pytest.fixture(scope="module")
def catalog() -> CatalogIndex:
    return kiv_catalog(HSA_UNITS, SEED)


@pytest.fixture(scope="module")
def sandbox(kiv: KivDirectory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VgpvSandbox]:
    certs = tmp_path_factory.mktemp("vgpv-certs")
    with VgpvSandbox(HSA_UNITS, SEED, kiv=kiv, certs_dir=certs) as server:
        yield server


@pytest.fixture
def vgpv(sandbox: VgpvSandbox) -> VgpvSandbox:
    sandbox.reset()
    sandbox.set_clock(IN_JANUARYS_WINDOW)
    return sandbox


@pytest.fixture
async def pg_ledger(postgres_url: str) -> AsyncIterator[Ledger]:
    ledger = Ledger.from_url(postgres_url)
    await ledger.create_schema()
    yield ledger
    await ledger.close()


class Crashing:
    """The register, but the process dies right after (or right before) the upload."""

    def __init__(self, inner: VgpvRegister, *, after_upload: bool) -> None:
        self.inner, self.after_upload = inner, after_upload
        self.name, self.version = inner.name, inner.version

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def deliver(self, header: FileHeader, content: AsyncIterator[bytes]) -> Receipt:
        if not self.after_upload:
            raise RuntimeError("killed before the upload")
        await self.inner.deliver(header, content)
        raise RuntimeError("killed after the upload, before the receipt was stored")


@asynccontextmanager
async def running(
    kafka_bootstrap: str,
    vgpv: VgpvSandbox,
    catalog: CatalogIndex,
    ledger: Ledger,
    name: str,
    topic: str,
) -> AsyncIterator[tuple[VgpvRegister, FileState, FileParts, VgpvSettings]]:
    settings = VgpvSettings(
        kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap),
        input_topic=topic,
        instance_id=f"test-{name}",
    )
    context = build_ssl_context(
        ca_bundle=str(vgpv.certs.ca_cert),
        client_cert=str(vgpv.certs.client_cert),
        client_key=str(vgpv.certs.client_key),
    )
    register = VgpvRegister(
        VgpvClient(vgpv.base_url, ssl_context=context), catalog, rules_from(settings)
    )
    register.name = name  # topics, ledger and state go by the worker's name
    state = FileState(ledger.engine, name)
    clock = SystemClock()
    metrics = FileMetrics(CollectorRegistry())
    async with file_parts(register, settings, state, clock, metrics) as parts:
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
            yield register, state, parts, settings
        finally:
            runtime.stop()
            await asyncio.wait_for(task, 30)
            await register.aclose()


async def stored(state: FileState, record_versions: dict[str, int]) -> None:
    """Wait until the intake holds each record at its version."""

    async def check() -> bool:
        async with state.engine.connect() as conn:
            c = file_records.c
            rows = await conn.execute(
                select(c.record_id, c.record_version).where(c.register == state.register)
            )
            found = {row.record_id: row.record_version for row in rows}
        return all(found.get(rid) == v for rid, v in record_versions.items())

    for _ in range(150):
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"the intake did not store {record_versions}")


def held_rows(vgpv: VgpvSandbox, unit: str, period: Period) -> dict[str, str]:
    """The register's holding for the unit's month: row key → the visit's diagnoses."""
    rows: dict[str, str] = {}
    for month in vgpv.holding():
        if month["enhet"] == unit and month["period"] == str(period):
            rows.update({row["radnyckel"]: ",".join(row["diagnoser"]) for row in month["rader"]})
    return rows


def results_by_event(records: list[Any]) -> dict[str, dict[str, Any]]:
    return {json.loads(r.value)["event_id"]: json.loads(r.value) for r in records}


async def test_a_month_with_corrections_and_cancellations_ends_as_the_rows_the_register_holds(
    kafka_bootstrap: str,
    unique_name: str,
    vgpv: VgpvSandbox,
    kiv: KivDirectory,
    catalog: CatalogIndex,
    pg_ledger: Ledger,
    tmp_path: Path,
) -> None:
    name = f"vgpv{unique_name}"
    topic = f"test.visits.{unique_name}"
    await create_topics(kafka_bootstrap, name, topic, ["30s", "5m", "30m", "2h", "12h"])
    a = vardval_unit(kiv, "primarvard")["hsaIdentity"]
    b = vardval_unit(kiv, "primarvard", 1)["hsaIdentity"]
    r = lambda n: f"{unique_name}-{n}"  # noqa: E731
    before = [
        vgr_visit(r("a1"), a, "2027-01-10"),
        vgr_visit(r("a2"), a, "2027-01-11"),
        vgr_visit(r("a2"), a, "2027-01-11", 2, "correct", diagnoses=["I109"]),
        vgr_visit(r("a3"), a, "2027-01-12"),
        vgr_visit(r("a3"), a, "2027-01-12", 2, "cancel"),
        vgr_visit(r("b1"), b, "2027-01-13"),
        vgr_visit(r("b2"), b, "2027-01-14", professions=["XX"]),  # the register refuses it
        vgr_visit(r("gvr"), None, "2027-01-15", kombika=GVR_KOMBIKA),
        vgr_visit(r("bad"), a, "2027-01-16", professions=[]),  # no profession: invalid
    ]
    async with running(kafka_bootstrap, vgpv, catalog, pg_ledger, name, topic) as (
        _register,
        state,
        parts,
        _settings,
    ):
        await publish(kafka_bootstrap, topic, before)
        await stored(state, {r("a1"): 1, r("a2"): 2, r("a3"): 2, r("b1"): 1, r("b2"): 1})
        assert "2 owners' files not accepted" in await parts.delivery.alarm(JANUARY)

        summary = await parts.delivery.run(JANUARY)

        assert "2 built, 2 delivered" in summary
        assert held_rows(vgpv, a, JANUARY) == {r("a1"): "J069", r("a2"): "I109"}
        assert held_rows(vgpv, b, JANUARY) == {r("b1"): "J069"}
        assert "every file accepted" in await parts.delivery.alarm(JANUARY)
        assert await parts.delivery.run(JANUARY) == f"{JANUARY}: 0 built, 0 delivered"

        # Within the window: a correction → a declared replacement of A's file.
        await publish(
            kafka_bootstrap,
            topic,
            [vgr_visit(r("a1"), a, "2027-01-10", 2, "correct", diagnoses=["E119"])],
        )
        await stored(state, {r("a1"): 2})
        assert "1 built, 1 delivered" in await parts.delivery.run(JANUARY)
        assert held_rows(vgpv, a, JANUARY) == {r("a1"): "E119", r("a2"): "I109"}
        january_files = {f.name: f for f in await state.files_of(JANUARY)}
        replacement = [f for f in january_files.values() if f.key.owner == a and f.sequence == 2]
        assert replacement
        assert replacement[0].replaces in january_files

        # After the close: a correction, a cancellation and a late visit of January go into
        # February's file beside February's own visit.
        vgpv.set_clock(IN_FEBRUARYS_WINDOW)
        after = [
            vgr_visit(r("a2"), a, "2027-01-11", 3, "correct", diagnoses=["M545"]),
            vgr_visit(r("a1"), a, "2027-01-10", 3, "cancel"),
            vgr_visit(r("a4"), a, "2027-01-20"),  # late: never delivered
            vgr_visit(r("a5"), a, "2027-02-03"),
        ]
        await publish(kafka_bootstrap, topic, after)
        await stored(state, {r("a2"): 3, r("a1"): 3, r("a4"): 1, r("a5"): 1})
        assert "1 built, 1 delivered" in await parts.delivery.run(FEBRUARY)

        assert held_rows(vgpv, a, JANUARY) == {r("a2"): "M545", r("a4"): "J069"}
        assert held_rows(vgpv, a, FEBRUARY) == {r("a5"): "J069"}
        assert held_rows(vgpv, b, JANUARY) == {r("b1"): "J069"}
        assert all(count == 1 for count in vgpv.uploads().values())  # nothing delivered twice

    results = results_by_event(await read_topic(kafka_bootstrap, f"{name}.results.v1", at_least=12))
    by_id = {e["event_id"]: e for e in before + after}
    status = {
        (by_id[eid]["record_id"], by_id[eid]["record_version"]): res["status"]
        for eid, res in results.items()
        if eid in by_id
    }
    assert status[(r("a1"), 1)] == "accepted"
    assert status[(r("a2"), 2)] == "accepted"
    assert status[(r("a3"), 2)] == "accepted"  # cancelled before delivery
    assert status[(r("b2"), 1)] == "dead_lettered"
    assert status[(r("gvr"), 1)] == "skipped"  # another register's
    assert status[(r("bad"), 1)] == "dead_lettered"
    assert status[(r("a1"), 3)] == "accepted"  # the cancellation row
    assert status[(r("a4"), 1)] == "accepted"  # the late row
    a2 = [
        res
        for res in results.values()
        if res["record_id"] == r("a2") and res["record_version"] == 3
    ]
    assert a2[0]["kind"] == "correction"
    assert a2[0]["file"].endswith("_202702_001.txt")

    letters = await read_topic(kafka_bootstrap, f"{name}.dlq.v1", at_least=2)
    reasons = {
        h.to_dict(letter.headers)[h.RECORD_ID]: h.to_dict(letter.headers) for letter in letters
    }
    assert reasons[r("b2")][h.ERROR_CLASS] == "register_rejected"
    assert "YRKE" in reasons[r("b2")][h.ERROR_MESSAGE]
    assert reasons[r("b2")][h.ORIGIN_TOPIC] == topic  # a replay goes back to the input
    assert reasons[r("bad")][h.ERROR_CLASS] == "invalid_event"


@pytest.mark.parametrize("after_upload", [True, False], ids=["after-upload", "before-upload"])
async def test_a_crash_during_delivery_does_not_deliver_twice(
    kafka_bootstrap: str,
    unique_name: str,
    vgpv: VgpvSandbox,
    kiv: KivDirectory,
    catalog: CatalogIndex,
    pg_ledger: Ledger,
    after_upload: bool,
) -> None:
    name = f"vgpv{unique_name}"
    topic = f"test.visits.{unique_name}"
    await create_topics(kafka_bootstrap, name, topic, ["30s", "5m", "30m", "2h", "12h"])
    a = vardval_unit(kiv, "primarvard", 2)["hsaIdentity"]
    visits = [vgr_visit(f"{unique_name}-{n}", a, f"2027-01-{10 + n}") for n in range(5)]
    async with running(kafka_bootstrap, vgpv, catalog, pg_ledger, name, topic) as (
        register,
        state,
        parts,
        _settings,
    ):
        await publish(kafka_bootstrap, topic, visits)
        await stored(state, {v["record_id"]: 1 for v in visits})
        parts.delivery.register = Crashing(register, after_upload=after_upload)  # type: ignore[assignment]
        with pytest.raises(RuntimeError, match="killed"):
            await parts.delivery.run(JANUARY)
        (file,) = await state.files_of(JANUARY)
        assert file.status == "delivering"
        assert vgpv.uploads() == ({file.name: 1} if after_upload else {})

        parts.delivery.register = register  # the worker restarts
        summary = await parts.delivery.run(JANUARY)

        assert "1 delivered" in summary
        assert vgpv.uploads() == {file.name: 1}
        assert set(held_rows(vgpv, a, JANUARY)) == {v["record_id"] for v in visits}
        assert (await state.file(file.name)).status == "done"  # type: ignore[union-attr]
    results = await read_topic(kafka_bootstrap, f"{name}.results.v1", at_least=5)
    assert {json.loads(m.value)["status"] for m in results} == {"accepted"}


async def test_a_file_refused_as_late_alarms_and_its_rows_are_dead_letters(
    kafka_bootstrap: str,
    unique_name: str,
    vgpv: VgpvSandbox,
    kiv: KivDirectory,
    catalog: CatalogIndex,
    pg_ledger: Ledger,
) -> None:
    name = f"vgpv{unique_name}"
    topic = f"test.visits.{unique_name}"
    await create_topics(kafka_bootstrap, name, topic, ["30s", "5m", "30m", "2h", "12h"])
    a = vardval_unit(kiv, "primarvard", 3)["hsaIdentity"]
    visits = [vgr_visit(f"{unique_name}-{n}", a, f"2027-01-{10 + n}") for n in range(3)]
    vgpv.set_clock(datetime(2027, 2, 3, 15, 0, tzinfo=STOCKHOLM))  # the window has just closed
    async with running(kafka_bootstrap, vgpv, catalog, pg_ledger, name, topic) as (
        _register,
        state,
        parts,
        _settings,
    ):
        await publish(kafka_bootstrap, topic, visits)
        await stored(state, {v["record_id"]: 1 for v in visits})

        summary = await parts.delivery.run(JANUARY)
        alarm = await parts.delivery.alarm(JANUARY)

        assert "3 rows refused" in summary
        (file,) = await state.files_of(JANUARY)
        assert file.receipt_status == "refused"
        assert (file.receipt_reason or "").startswith("SEN")
        assert "1 owners' files not accepted" in alarm
        gauge = parts.delivery.metrics.not_accepted.labels(name, str(JANUARY))
        assert gauge._value.get() == 1
    letters = await read_topic(kafka_bootstrap, f"{name}.dlq.v1", at_least=3)
    assert {h.to_dict(m.headers)[h.ERROR_CLASS] for m in letters} == {"register_rejected"}
    assert all("SEN" in h.to_dict(m.headers)[h.ERROR_MESSAGE] for m in letters)
