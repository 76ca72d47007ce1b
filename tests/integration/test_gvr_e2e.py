"""Real Kafka → GVR worker (catalog checks) → GVR sandbox over mutual TLS; waits' bookings too."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.cvr.mapping import values as cvr_values
from services.gvr.client import GvrClient, build_ssl_context
from services.gvr.mapping import GvrPaths
from services.gvr.worker import GvrWorker
from services.sandboxes.gvr import GvrSandbox
from services.sandboxes.hsa import HsaSandbox
from shared.catalog.view import CatalogView
from shared.contracts import CareWaitEvent, parse_event
from shared.delivery import headers as h
from shared.delivery.clock import ManualClock
from shared.delivery.errors import ConfigurationError
from shared.delivery.guards import CircuitBreaker
from shared.delivery.ledger import Ledger
from shared.delivery.probe import RegisterProbe
from shared.topics import dlq_topic, results_topic
from tests.support.catalog import imported_catalog
from tests.support.gvr_events import kombikas, visit, wait_entry
from tests.support.runtime_harness import (
    create_topics,
    publish,
    read_topic,
    running_runtime,
    wait_for,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def hsa(hsa_sandbox: HsaSandbox) -> HsaSandbox:
    return hsa_sandbox


@pytest.fixture(scope="module")
def gvr(gvr_sandbox: GvrSandbox) -> GvrSandbox:
    return gvr_sandbox


@pytest.fixture
async def catalog(
    hsa: HsaSandbox, kafka_bootstrap: str, tmp_path: Path
) -> AsyncIterator[CatalogView]:
    async with imported_catalog(kafka_bootstrap, hsa.base_url, tmp_path / "c.db") as view:
        yield view


@pytest.fixture
async def worker(
    gvr: GvrSandbox, catalog: CatalogView, unique_name: str
) -> AsyncIterator[GvrWorker]:
    gvr.reset()
    gvr.set_faults(maintenance=False)
    context = build_ssl_context(
        client_cert=str(gvr.certs.client_cert),
        client_key=str(gvr.certs.client_key),
        ca_bundle=str(gvr.certs.ca_cert),
    )
    client = GvrClient(gvr.base_url, ssl_context=context)
    instance = GvrWorker(client, catalog, GvrPaths())
    instance.name = f"gvr{unique_name}"
    yield instance
    await client.aclose()


async def test_create_correct_cancel_arrive_in_order_even_when_the_create_is_retried(
    kafka_bootstrap: str,
    unique_name: str,
    hsa: HsaSandbox,
    gvr: GvrSandbox,
    worker: GvrWorker,
    ledger: Ledger,
) -> None:
    open_code, _ = kombikas(hsa)
    topic = f"test.contacts.{unique_name}"
    await create_topics(kafka_bootstrap, worker.name, topic, ["30s"])
    clock = ManualClock()
    record = f"besok-{unique_name}"
    events = [
        visit(record, open_code),
        visit(record, open_code, 2, "correct", diagnoses=["J069"]),
        visit(record, open_code, 3, "cancel"),
    ]
    gvr.set_faults(maintenance=True)
    async with running_runtime(kafka_bootstrap, worker, ledger, topic, tiers=("30s",), clock=clock):
        await publish(kafka_bootstrap, topic, events[:1])
        await asyncio.sleep(3)  # the create meets the maintenance window and goes to retry
        await publish(kafka_bootstrap, topic, events[1:])
        await asyncio.sleep(2)
        gvr.set_faults(maintenance=False)
        assert gvr.log() == []  # nothing overtook the failed create
        clock.advance(31)
        await wait_for(lambda: len(gvr.log()) >= 3, 30, "all three applied")

    assert [entry["op"] for entry in gvr.log()] == ["create", "correct", "cancel"]


async def test_bad_input_ends_as_dead_letters_with_precise_reasons(
    kafka_bootstrap: str,
    unique_name: str,
    hsa: HsaSandbox,
    gvr: GvrSandbox,
    worker: GvrWorker,
    ledger: Ledger,
) -> None:
    open_code, closed_code = kombikas(hsa)
    topic = f"test.contacts.{unique_name}"
    await create_topics(kafka_bootstrap, worker.name, topic, ["30s"])
    r = lambda n: f"bad-{unique_name}-{n}"  # noqa: E731
    twin = visit(r("twin-a"), open_code)
    cases: dict[str, tuple[dict[str, Any] | bytes, str, str]] = {
        "check digit": (
            visit(r(1), open_code, patient={"id_type": "PNR", "id": "191212121213"}),
            "invalid_event",
            "check digit",
        ),
        "separator": (
            visit(r(2), open_code, patient={"id_type": "PNR", "id": "19121212-1212"}),
            "invalid_event",
            "payload.patient.id",
        ),
        "samordningsnummer day": (
            visit(r(3), open_code, patient={"id_type": "SNR", "id": "197010032391"}),
            "invalid_event",
            "samordningsnummer",
        ),
        "reserve check digit": (
            visit(r(4), open_code, patient={"id_type": "RESERVE_SLL", "id": "991981000011"}),
            "invalid_event",
            "payload.patient.id",
        ),
        "closed referrer": (
            visit(r(5), open_code, referring_kombika=closed_code),
            "closed_unit",
            "payload.referring_kombika",
        ),
        "kombika pattern": (visit(r(6), "302163110022A"), "invalid_event", "kombika"),
        "diagnosis with dot": (
            visit(r(7), open_code, diagnoses=["j06.9"]),
            "invalid_event",
            "diagnoses",
        ),
        "unknown diagnosis": (
            visit(r(71), open_code, diagnoses=["A000"]),
            "register_rejected",
            "A000",
        ),
        "kva structure": (
            visit(
                r(8),
                open_code,
                procedures=[{"code": "AQ14", "diagnosis_index": 0, "performed_on": "2025-03-14"}],
            ),
            "invalid_event",
            "procedures",
        ),
        "akut Y": (visit(r(9), open_code, akut="Y"), "invalid_event", "akut"),
        "expired tariff": (
            visit(r(10), open_code, tariff="T2018", visited_at="2019-03-14T09:30:00+01:00"),
            "register_rejected",
            "T2018",
        ),
        "second create of the same key": (
            dict(twin, record_id=r("twin-b"), event_id=str(uuid.uuid4())),
            "register_duplicate",
            "409",
        ),
        "not JSON": (b"{not json", "invalid_event", "JSON"),
        "oversized (~0.5 MB)": (
            visit(r(12), open_code, diagnoses=["J069"] * 60_000),
            "invalid_event",
            "bytes; the contract allows at most",
        ),
    }
    async with running_runtime(kafka_bootstrap, worker, ledger, topic, tiers=("30s",)):
        await publish(kafka_bootstrap, topic, [twin])
        await wait_for(lambda: len(gvr.log()) == 1, 30, "the first twin")
        await publish(kafka_bootstrap, topic, [case[0] for case in cases.values()])
        dead = await read_topic(
            kafka_bootstrap, dlq_topic(worker.name), at_least=len(cases), timeout=60
        )

    stories = {h.to_dict(d.headers).get(h.RECORD_ID, ""): h.to_dict(d.headers) for d in dead}
    for label, (event, error_class, reason) in cases.items():
        key = "raw" if isinstance(event, bytes) else event["record_id"]
        story = stories.get(key)
        assert story is not None, f"{label}: no dead letter"
        assert story[h.ERROR_CLASS] == error_class, f"{label}: {story[h.ERROR_CLASS]}"
        text = (
            story[h.ERROR_MESSAGE]
            + story.get(h.REGISTER_RESPONSE, "")
            + story.get(h.REGISTER_STATUS, "")
        )
        assert reason in text, f"{label}: {text}"
        assert "191212121213" not in story[h.ERROR_MESSAGE]


async def test_a_maintenance_window_is_drained_without_dead_letters(
    kafka_bootstrap: str,
    unique_name: str,
    hsa: HsaSandbox,
    gvr: GvrSandbox,
    worker: GvrWorker,
    ledger: Ledger,
) -> None:
    open_code, _ = kombikas(hsa)
    topic = f"test.contacts.{unique_name}"
    await create_topics(kafka_bootstrap, worker.name, topic, ["30s"])
    clock = ManualClock()
    events = [
        visit(
            f"mw-{unique_name}-{i}",
            open_code,
            visited_at=f"2025-03-14T{8 + i // 60:02d}:{i % 60:02d}:00+01:00",
        )
        for i in range(40)
    ]
    gvr.set_faults(maintenance=True)
    circuit = CircuitBreaker(min_calls=5, consecutive_failures=3)
    async with running_runtime(
        kafka_bootstrap, worker, ledger, topic, tiers=("30s",), clock=clock, circuit=circuit
    ) as runtime:
        await publish(kafka_bootstrap, topic, events)
        await wait_for(lambda: runtime.status.paused_reason == "circuit_open", 30, "circuit open")
        gvr.set_faults(maintenance=False)
        for _ in range(30):
            clock.advance(31)
            await asyncio.sleep(0.3)
            if len(gvr.log()) >= len(events):
                break
        await wait_for(lambda: len(gvr.log()) >= len(events), 30, "drained")
        dead = await read_topic(kafka_bootstrap, dlq_topic(worker.name), timeout=2)

    assert dead == []
    assert sorted(e["kallId"] for e in gvr.log()) == sorted(e["record_id"] for e in events)


async def test_a_client_certificate_from_another_ca_pauses_the_worker_with_an_alarm(
    kafka_bootstrap: str,
    unique_name: str,
    hsa: HsaSandbox,
    gvr: GvrSandbox,
    catalog: CatalogView,
    ledger: Ledger,
    tmp_path: Path,
) -> None:
    # Given a worker presenting a test certificate from another CA (as against production)
    gvr.reset()
    open_code, _ = kombikas(hsa)
    foreign = gvr.certs.foreign_client(tmp_path / "foreign")
    context = build_ssl_context(
        client_cert=str(foreign.cert), client_key=str(foreign.key), ca_bundle=str(gvr.certs.ca_cert)
    )
    client = GvrClient(gvr.base_url, ssl_context=context)
    worker = GvrWorker(client, catalog, GvrPaths())
    worker.name = f"gvr{unique_name}"
    topic = f"test.contacts.{unique_name}"
    await create_topics(kafka_bootstrap, worker.name, topic, ["30s"])
    events = [
        visit(f"cert-{unique_name}-{i}", open_code, visited_at=f"2025-03-14T09:{i:02d}:00+01:00")
        for i in range(10)
    ]
    # When events flow
    async with running_runtime(
        kafka_bootstrap, worker, ledger, topic, tiers=("30s",), clock=ManualClock()
    ) as runtime:
        await publish(kafka_bootstrap, topic, events)
        await wait_for(lambda: runtime.status.paused_reason == "configuration", 30, "paused")
        dead = await read_topic(kafka_bootstrap, dlq_topic(worker.name), timeout=2)
    await client.aclose()

    # Then the worker stops with an alarm naming the TLS handshake, and nothing is dead-lettered
    assert dead == []
    assert gvr.log() == []
    assert "TLS" in runtime.status.alarms[-1] or "certificate" in runtime.status.alarms[-1]


async def test_the_start_up_probe_tells_a_refused_certificate_before_any_event(
    gvr: GvrSandbox, tmp_path: Path
) -> None:
    # Given the worker's probe against GVR, once with the right certificate, once with a foreign one
    right = GvrClient(gvr.base_url, ssl_context=gvr.certs.client_ssl_context())
    foreign = gvr.certs.foreign_client(tmp_path / "foreign")
    wrong = GvrClient(
        gvr.base_url,
        ssl_context=build_ssl_context(
            client_cert=str(foreign.cert),
            client_key=str(foreign.key),
            ca_bundle=str(gvr.certs.ca_cert),
        ),
    )
    accepted = RegisterProbe("GVR", lambda: right.probe(GvrPaths().outpatient_visit))
    refused = RegisterProbe("GVR", lambda: wrong.probe(GvrPaths().outpatient_visit))
    try:
        # When each asks once
        assert await accepted.check_once() is None
        error = await refused.check_once()
    finally:
        await right.aclose()
        await wrong.aclose()
    # Then only the foreign certificate makes the worker not ready, naming the handshake
    assert accepted.ready
    assert isinstance(error, ConfigurationError)
    assert not refused.ready
    assert refused.describe()["error_class"] == "tls_handshake"


# -- waiting-list entries: their bookings in GVR's availability service --------------------

P1, P2, P3 = "191212121212", "201501010191", "196508313159"


@pytest.fixture
async def postgres_ledger(postgres_url: str) -> AsyncIterator[Ledger]:
    """The ledger on PostgreSQL, as in production (its tables are shared: names are unique)."""
    instance = Ledger.from_url(postgres_url)
    await instance.create_schema()
    yield instance
    await instance.close()


def _held(gvr: GvrSandbox, patient: str, kombika: str, day: str) -> list[dict[str, Any]]:
    """GVR's booking records of a patient at a unit on a day, read over its API (mutual TLS)."""
    query = {
        "patientId": patient,
        "enhet.inr": kombika[:5],
        "enhet.klin": kombika[5:8],
        "enhet.avd": kombika[8:],
        "bokningsdatum": day,
    }
    context = gvr.certs.client_ssl_context()
    with httpx.Client(base_url=gvr.base_url, verify=context, timeout=10) as http:
        answer = http.get("/tillganglighet", params=query)
    answer.raise_for_status()
    hits: list[dict[str, Any]] = answer.json()["traffar"]
    return hits


def _as_cvr_sees_it(event: dict[str, Any], kombika: str) -> dict[str, Any]:
    """The booking fields of CVR's row for the same event (services/cvr's own mapping)."""
    parsed = parse_event(json.dumps(event).encode())
    assert isinstance(parsed, CareWaitEvent)
    return cvr_values(parsed.payload, kombika)


def _agrees(held: dict[str, Any], cvr: dict[str, Any]) -> None:
    """GVR's booking record says what CVR's row says of the booking."""
    assert held["patientId"] == cvr["personid"]
    assert "".join(held["enhet"].values()) == cvr["enhet"]
    assert ("J" if held["vardgaranti"] else "N") == cvr["vardgaranti"]
    for field in ("bokningsdatum", "remissdatum", "beslutsdatum"):
        assert held.get(field) == cvr[field], field


async def test_waiting_list_bookings_reach_gvr_as_cvr_sees_them_and_two_of_a_day_both_land(
    kafka_bootstrap: str,
    unique_name: str,
    hsa: HsaSandbox,
    gvr: GvrSandbox,
    worker: GvrWorker,
    postgres_ledger: Ledger,
) -> None:
    code, _ = kombikas(hsa)
    contacts, waits = f"test.contacts.{unique_name}", f"test.waits.{unique_name}"
    await create_topics(kafka_bootstrap, worker.name, contacts, ["30s"])
    await create_topics(kafka_bootstrap, worker.name, waits, ["30s"])
    w = lambda n: f"vl-{unique_name}-{n}"  # noqa: E731
    p1, p2, p3 = ({"id_type": "PNR", "id": p} for p in (P1, P2, P3))
    booked = {"booked_on": "2025-03-10", "booked_for": "2025-04-01", "decided_on": "2025-03-05"}
    rebooked = booked | {"booked_on": "2025-03-12", "booked_for": "2025-04-08"}
    chosen = {"kind": "patient_chosen", "start": "2025-03-15"}
    life = [  # referral → booked → rebooked → a patient-chosen wait → completed
        wait_entry(w(1), code, 1, "create", patient=p1),
        wait_entry(w(1), code, 2, "correct", patient=p1, **booked),
        wait_entry(w(1), code, 3, "correct", patient=p1, **rebooked),
        wait_entry(w(1), code, 4, "correct", patient=p1, **rebooked, exceptions=[chosen]),
        wait_entry(
            w(1),
            code,
            5,
            "correct",
            patient=p1,
            **rebooked,
            exceptions=[chosen | {"end": "2025-03-20"}],
            completed_on="2025-04-08",
        ),
    ]
    removed = [  # booked, then removed from the list
        wait_entry(w(2), code, 1, "create", patient=p2, booked_on="2025-03-11"),
        wait_entry(
            w(2),
            code,
            2,
            "correct",
            patient=p2,
            booked_on="2025-03-11",
            removed_on="2025-03-20",
            removed_reason="declined",
        ),
    ]
    twins = [  # two entries of one patient, booked at one unit on one day
        wait_entry(w(3), code, patient=p3, booked_on="2025-03-13", cvr_code="F101"),
        wait_entry(w(4), code, patient=p3, booked_on="2025-03-13", cvr_code="B220"),
    ]
    namesake = visit(w(1), code)  # a care contact with the first entry's id: another record

    async with running_runtime(
        kafka_bootstrap, worker, postgres_ledger, contacts, tiers=("30s",), more_inputs=[waits]
    ):
        await publish(kafka_bootstrap, contacts, [namesake])
        await publish(kafka_bootstrap, waits, [*life, *removed, *twins])
        await wait_for(lambda: len(gvr.log()) >= 9, 60, "nine calls at GVR")
        results = await read_topic(kafka_bootstrap, results_topic(worker.name), at_least=10)

    # Then each entry's life is one booking record at GVR, in order; the namesake is a visit
    calls: dict[tuple[str, str], list[str]] = {}
    for entry in gvr.log():
        calls.setdefault((entry["resource"], entry["kallId"]), []).append(entry["op"])
    assert calls == {
        ("tillganglighet", w(1)): ["create", "correct", "correct", "correct"],
        ("tillganglighet", w(2)): ["create", "cancel"],
        ("tillganglighet", w(3)): ["create"],
        ("tillganglighet", w(4)): ["create"],
        ("besok", w(1)): ["create"],
    }
    # the rebooking moved the record; the completed entry keeps it, with the exception's code
    assert _held(gvr, P1, code, "2025-03-10") == []
    (first,) = _held(gvr, P1, code, "2025-03-12")
    assert (first["status"], first["undantagskod"]) == ("RATTAD", "PVV")
    (gone,) = _held(gvr, P2, code, "2025-03-11")
    assert gone["status"] == "MAKULERAD"
    both = _held(gvr, P3, code, "2025-03-13")
    assert sorted((hit["kallId"], hit["status"]) for hit in both) == [
        (w(3), "REGISTRERAD"),
        (w(4), "REGISTRERAD"),
    ]
    # and GVR holds of each booking what CVR's row for the same event says
    _agrees(first, _as_cvr_sees_it(life[-1], code))
    for hit, event in zip(sorted(both, key=lambda h: h["kallId"]), twins, strict=True):
        _agrees(hit, _as_cvr_sees_it(event, code))
    cvr_removed = _as_cvr_sees_it(removed[-1], code)
    assert (cvr_removed["avford"], gone["bokningsdatum"]) == ("2025-03-20", "2025-03-11")
    # every event has its result: the referral skipped (no booking), the entries named apart
    outcome = {
        (r["record_id"], r["record_version"]): (r["status"], r.get("reason"), r.get("reference"))
        for r in (json.loads(m.value) for m in results)
    }
    assert outcome[(f"care.wait:{w(1)}", 1)] == ("skipped", "no_booking", None)
    assert outcome[(f"care.wait:{w(1)}", 5)] == ("accepted", None, first["id"])
    assert outcome[(f"care.wait:{w(2)}", 2)] == ("accepted", None, f"makulerad:{gone['id']}")
    assert outcome[(w(1), 1)][0] == "accepted"  # the care contact, a record of its own
    assert len(outcome) == 10
