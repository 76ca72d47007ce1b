"""The register double over real HTTP: record semantics, batches, faults, and the DoubleWorker."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest

from shared.delivery.errors import (
    InvalidEventError,
    NotYetAppliedError,
    PermanentError,
    RegisterRejectedError,
    RegisterUnavailableError,
)
from shared.delivery.worker import Accepted, RegisterWorker, Submission
from tests.support.double_register.worker import DoubleWorker, Request
from tests.support.register_double import RegisterDouble

integration = pytest.mark.integration  # a real local HTTP server; no Kafka needed


def event(
    record_id: str, operation: str = "create", version: int = 1, event_id: str | None = None
) -> dict[str, Any]:
    return {
        "event_id": event_id or f"{record_id}-{operation}-{version}",
        "record_id": record_id,
        "record_version": version,
        "operation": operation,
        "payload": {"note": f"{operation} of {record_id}"},
    }


def submission(worker: DoubleWorker, body: dict[str, Any]) -> Submission[Request]:
    identity, parsed = worker.parse(json.dumps(body).encode())
    return Submission(identity, worker.map(parsed, None), None)


def map_event(worker: DoubleWorker, body: dict[str, Any]) -> Request:
    return submission(worker, body).request


async def eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def submit_one(worker: DoubleWorker, body: dict[str, Any]) -> Accepted | Exception:
    [outcome] = await worker.submit([submission(worker, body)])
    return outcome


@pytest.fixture(scope="module")
def server() -> Iterator[RegisterDouble]:
    with RegisterDouble(seed=7) as double:
        yield double


@pytest.fixture
def double(server: RegisterDouble) -> RegisterDouble:
    server.reset()
    return server


@pytest.fixture
async def worker(double: RegisterDouble) -> AsyncIterator[DoubleWorker]:
    async with DoubleWorker(double.base_url) as client:
        yield client


@pytest.fixture
async def http(double: RegisterDouble) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=double.base_url) as client:
        yield client


# --- records ------------------------------------------------------------------------------------


@integration
async def test_create_is_accepted_with_a_new_reference_and_logged(
    double: RegisterDouble, worker: DoubleWorker
) -> None:
    outcome = await submit_one(worker, event("r1"))

    assert outcome == Accepted("REF-1")
    [entry] = double.accepted()
    assert (entry.record_id, entry.event_id, entry.record_version) == ("r1", "r1-create-1", 1)
    assert (entry.operation, entry.reference) == ("create", "REF-1")
    assert double.requests_received == 1


@integration
async def test_correct_and_cancel_keep_the_reference_and_are_logged_in_order(
    double: RegisterDouble, worker: DoubleWorker, http: httpx.AsyncClient
) -> None:
    await submit_one(worker, event("r1"))

    corrected = await http.post("/records", json=map_event(worker, event("r1", "correct", 2)))
    cancelled = await submit_one(worker, event("r1", "cancel", 3))

    assert (corrected.status_code, corrected.json()) == (200, {"reference": "REF-1"})
    assert cancelled == Accepted("REF-1")
    log = [(e.operation, e.record_version, e.reference) for e in double.accepted()]
    assert log == [("create", 1, "REF-1"), ("correct", 2, "REF-1"), ("cancel", 3, "REF-1")]
    assert (await http.get("/records/r1")).json() == {
        "reference": "REF-1",
        "record_version": 3,
        "operation": "cancel",
    }


@integration
async def test_second_create_of_a_record_is_a_409_duplicate(
    double: RegisterDouble, worker: DoubleWorker, http: httpx.AsyncClient
) -> None:
    await submit_one(worker, event("r1"))

    raw = await http.post("/records", json=map_event(worker, event("r1", event_id="again")))
    outcome = await submit_one(worker, event("r1", event_id="again-2"))

    assert raw.status_code == 409
    assert raw.json()["reference"] == "REF-1"
    assert isinstance(outcome, RegisterRejectedError)
    assert (outcome.register_status, outcome.error_class) == (409, "register_duplicate")
    assert [e.event_id for e in double.accepted()] == ["r1-create-1"]


@integration
async def test_correction_of_an_unknown_record_is_a_404_not_yet_applied(
    double: RegisterDouble, worker: DoubleWorker, http: httpx.AsyncClient
) -> None:
    raw = await http.post("/records", json=map_event(worker, event("ghost", "correct", 2)))
    outcome = await submit_one(worker, event("ghost", "cancel", 2))

    assert raw.status_code == 404
    assert isinstance(outcome, NotYetAppliedError)
    assert outcome.register_status == 404
    assert double.accepted() == []


@integration
async def test_invalid_request_is_a_400_naming_the_fields(http: httpx.AsyncClient) -> None:
    answer = await http.post("/records", json={"record_id": "r1", "operation": "delete"})

    assert answer.status_code == 400
    fields = {error["field"] for error in answer.json()["errors"]}
    assert fields == {"event_id", "record_version", "operation", "payload"}


@integration
async def test_concurrent_creates_are_each_accepted_exactly_once(
    double: RegisterDouble, worker: DoubleWorker
) -> None:
    batch = [submission(worker, event(f"r{i}")) for i in range(50)]

    outcomes = await worker.submit(batch)

    assert all(isinstance(o, Accepted) for o in outcomes)
    references = [o.reference for o in outcomes if isinstance(o, Accepted)]
    assert len(set(references)) == 50
    assert sorted(e.record_id for e in double.accepted()) == sorted(f"r{i}" for i in range(50))


@integration
async def test_keep_alive_answers_are_not_held_back(http: httpx.AsyncClient) -> None:
    started = time.monotonic()
    for i in range(20):
        await http.get(f"/records/r{i}")

    assert time.monotonic() - started < 0.5  # Nagle + delayed ACK would cost ~40 ms a request


# --- batches ------------------------------------------------------------------------------------


@integration
async def test_batch_answers_every_entry_in_order(
    double: RegisterDouble, worker: DoubleWorker, http: httpx.AsyncClient
) -> None:
    await submit_one(worker, event("old"))
    double.set_faults(reject_record_ids=["bad"])
    entries = [
        map_event(worker, event("new")),
        map_event(worker, event("old", event_id="dup")),
        map_event(worker, event("ghost", "correct", 2)),
        map_event(worker, event("bad")),
        map_event(worker, event("new", "correct", 2)),
        {"record_id": "broken"},
    ]

    answer = await http.post("/records/batch", json={"entries": entries})

    assert answer.status_code == 200
    results = answer.json()["entries"]
    assert [r["status"] for r in results] == [201, 409, 404, 400, 200, 400]
    assert results[0]["reference"] == results[4]["reference"] == "REF-2"
    assert "already exists" in results[1]["error"]
    assert results[3]["errors"][0]["field"] == "record_id"
    log = [(e.record_id, e.operation) for e in double.accepted()]
    assert log == [("old", "create"), ("new", "create"), ("new", "correct")]


@integration
async def test_batch_worker_turns_each_entry_into_an_outcome(double: RegisterDouble) -> None:
    double.set_faults(reject_record_ids=["bad"])
    async with DoubleWorker(double.base_url, batch=True) as worker:
        outcomes = await worker.submit(
            [
                submission(worker, event("a")),
                submission(worker, event("a", event_id="dup")),
                submission(worker, event("ghost", "correct", 2)),
                submission(worker, event("bad")),
                submission(worker, event("a", "cancel", 2)),
            ]
        )

    assert outcomes[0] == outcomes[4] == Accepted("REF-1")
    assert isinstance(outcomes[1], RegisterRejectedError)
    assert outcomes[1].register_status == 409
    assert isinstance(outcomes[2], NotYetAppliedError)
    assert isinstance(outcomes[3], RegisterRejectedError)
    assert "failed its business rules" in (outcomes[3].register_response or "")
    assert double.requests_received == 1


@integration
async def test_batch_worker_splits_into_calls_of_at_most_100(double: RegisterDouble) -> None:
    async with DoubleWorker(double.base_url, batch=True) as worker:
        outcomes = await worker.submit([submission(worker, event(f"r{i}")) for i in range(150)])

    assert all(isinstance(o, Accepted) for o in outcomes)
    assert double.requests_received == 2
    assert len(double.accepted()) == 150


@integration
async def test_batch_call_that_fails_fails_every_entry(double: RegisterDouble) -> None:
    double.set_faults(fail_next=1)
    async with DoubleWorker(double.base_url, batch=True) as worker:
        outcomes = await worker.submit([submission(worker, event(f"r{i}")) for i in range(3)])

    assert [type(o) for o in outcomes] == [RegisterUnavailableError] * 3
    assert len({id(o) for o in outcomes}) == 3  # one error object per submission
    assert double.accepted() == []


@integration
async def test_batch_of_more_than_100_entries_is_refused(
    worker: DoubleWorker, http: httpx.AsyncClient
) -> None:
    entries = [map_event(worker, event(f"r{i}")) for i in range(101)]

    answer = await http.post("/records/batch", json={"entries": entries})

    assert answer.status_code == 400
    assert answer.json()["errors"][0]["field"] == "entries"


# --- faults -------------------------------------------------------------------------------------


@integration
async def test_down_register_is_unavailable_but_admin_still_answers(
    double: RegisterDouble, worker: DoubleWorker, http: httpx.AsyncClient
) -> None:
    double.set_faults(down=True)

    outcome = await submit_one(worker, event("r1"))

    assert isinstance(outcome, RegisterUnavailableError)
    assert outcome.register_status == 503
    assert (await http.get("/records/r1")).status_code == 503
    assert (await http.get("/admin/log")).json() == {"entries": [], "requests_received": 2}


@integration
async def test_rejected_record_carries_the_registers_text(
    double: RegisterDouble, worker: DoubleWorker
) -> None:
    double.set_faults(reject_record_ids=["r-bad"])

    outcome = await submit_one(worker, event("r-bad"))
    other = await submit_one(worker, event("r-good"))

    assert isinstance(outcome, RegisterRejectedError)
    assert isinstance(outcome, PermanentError)
    assert outcome.register_status == 400
    response = json.loads(outcome.register_response or "")
    assert response["errors"][0]["field"] == "record_id"
    assert "failed its business rules" in response["errors"][0]["message"]
    assert isinstance(other, Accepted)


@integration
async def test_latency_is_awaited_so_concurrent_requests_overlap(
    double: RegisterDouble, worker: DoubleWorker
) -> None:
    double.set_faults(latency_ms=300)
    batch = [submission(worker, event(f"r{i}")) for i in range(20)]

    started = time.monotonic()
    outcomes = await worker.submit(batch)
    elapsed = time.monotonic() - started

    assert all(isinstance(o, Accepted) for o in outcomes)
    assert 0.3 <= elapsed < 2.0  # one after another would take 6 s


@integration
async def test_timeout_is_unavailable_though_the_register_may_still_apply_it(
    double: RegisterDouble,
) -> None:
    double.set_faults(latency_ms=300)
    async with DoubleWorker(double.base_url, timeout=0.1) as worker:
        create = submission(worker, event("r1"))
        [outcome] = await worker.submit([create])
        await eventually(lambda: len(double.accepted()) == 1)  # applied after the client left
        double.set_faults(latency_ms=0)
        found = await worker.lookup(create)

    assert isinstance(outcome, RegisterUnavailableError)
    assert outcome.error_class == "register_timeout"
    assert found == Accepted("REF-1")  # what lookup is for: reconciliation after the unknown


@integration
async def test_reset_discards_requests_still_waiting_out_their_latency(
    double: RegisterDouble, http: httpx.AsyncClient, worker: DoubleWorker
) -> None:
    double.set_faults(latency_ms=200)
    late = asyncio.create_task(http.post("/records", json=map_event(worker, event("r1"))))
    await eventually(lambda: double.requests_received == 1)

    double.reset()

    assert (await late).status_code == 503
    assert double.accepted() == []


@integration
async def test_fail_next_fails_exactly_the_next_requests(
    double: RegisterDouble, worker: DoubleWorker
) -> None:
    double.set_faults(fail_next=2)

    outcomes = [await submit_one(worker, event(f"r{i}")) for i in range(3)]

    assert [type(o) for o in outcomes] == [
        RegisterUnavailableError,
        RegisterUnavailableError,
        Accepted,
    ]
    assert [e.record_id for e in double.accepted()] == ["r2"]
    assert double.faults.fail_next == 0


@integration
async def test_transient_rate_is_random_but_repeatable_by_seed(
    double: RegisterDouble, http: httpx.AsyncClient
) -> None:
    async def statuses() -> list[int]:
        return [(await http.get(f"/records/r{i}")).status_code for i in range(40)]

    double.set_faults(transient_rate=0.5, seed=11)
    first = await statuses()
    double.set_faults(seed=11)
    second = await statuses()

    assert first == second
    assert set(first) == {404, 503}


@integration
async def test_dropped_connection_is_unavailable_and_the_pool_recovers(
    double: RegisterDouble, worker: DoubleWorker
) -> None:
    await submit_one(worker, event("warm-up"))  # a pooled keep-alive connection exists
    double.set_faults(drop_connections=True)

    outcome = await submit_one(worker, event("r1"))
    double.set_faults(drop_connections=False)
    after = await submit_one(worker, event("r2"))

    assert isinstance(outcome, RegisterUnavailableError)
    assert outcome.register_status is None  # no answer at all
    assert isinstance(after, Accepted)
    assert [e.record_id for e in double.accepted()] == ["warm-up", "r2"]
    assert double.requests_received == 3


@integration
async def test_faults_log_and_reset_over_admin_http(
    double: RegisterDouble, worker: DoubleWorker, http: httpx.AsyncClient
) -> None:
    set_down = await http.post("/admin/faults", json={"down": True, "latency_ms": 5})
    unknown = await http.post("/admin/faults", json={"explode": True})
    assert set_down.json()["down"] is True
    assert double.faults.latency_ms == 5
    assert unknown.status_code == 400
    await http.post("/admin/faults", json={"down": False})
    await submit_one(worker, event("r1"))

    [entry] = (await http.get("/admin/log")).json()["entries"]
    reset = await http.post("/admin/reset")

    assert (entry["record_id"], entry["reference"]) == ("r1", "REF-1")
    assert entry["received_at"].endswith("+00:00")
    assert reset.status_code == 204
    assert double.accepted() == []
    assert double.requests_received == 0
    assert double.faults.latency_ms == 0


# --- lookup -------------------------------------------------------------------------------------


@integration
async def test_lookup_finds_what_the_register_holds(worker: DoubleWorker) -> None:
    create = submission(worker, event("r1"))
    await worker.submit([create])

    assert await worker.lookup(create) == Accepted("REF-1")
    assert await worker.lookup(submission(worker, event("r1", "correct", 2))) is None
    assert await worker.lookup(submission(worker, event("unknown"))) is None


@integration
async def test_lookup_raises_when_the_register_cannot_say(
    double: RegisterDouble, worker: DoubleWorker
) -> None:
    double.set_faults(down=True)

    with pytest.raises(RegisterUnavailableError):
        await worker.lookup(submission(worker, event("r1")))


# --- DoubleWorker without a server --------------------------------------------------------------


@pytest.fixture
def offline() -> Iterator[DoubleWorker]:
    worker = DoubleWorker("http://127.0.0.1:9")  # never contacted
    yield worker
    asyncio.run(worker.aclose())


def test_double_worker_is_a_register_worker(offline: DoubleWorker) -> None:
    worker: RegisterWorker[Request] = offline
    identity, parsed = worker.parse(json.dumps(event("r1", "correct", 2)).encode())

    assert (identity.record_id, identity.record_version, identity.operation) == ("r1", 2, "correct")
    assert worker.map(parsed, "REF-9") == {
        "record_id": "r1",
        "record_version": 2,
        "event_id": "r1-correct-2",
        "operation": "correct",
        "payload": {"note": "correct of r1"},
    }


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "event is not JSON"),
        (b"\xff\xfe", "event is not JSON"),
        (b"[1, 2]", "must be a JSON object, got list"),
        (json.dumps({k: v for k, v in event("r1").items() if k != "record_id"}), "no 'record_id'"),
        (json.dumps({**event("r1"), "event_id": ""}), "'event_id' must be a non-empty string"),
        (json.dumps({**event("r1"), "record_version": "2"}), "'record_version' must be an integ"),
        (json.dumps({**event("r1"), "record_version": True}), "'record_version' must be an integ"),
        (json.dumps({**event("r1"), "record_version": 0}), "'record_version' must be an integer"),
        (json.dumps({**event("r1"), "operation": "delete"}), "'operation' must be one of"),
        (json.dumps({**event("r1"), "payload": [1]}), "'payload' must be a JSON object, got list"),
    ],
)
def test_parse_names_what_is_wrong(offline: DoubleWorker, raw: bytes | str, reason: str) -> None:
    data = raw.encode() if isinstance(raw, str) else raw

    with pytest.raises(InvalidEventError, match=reason):
        offline.parse(data)


def test_map_refuses_what_it_did_not_parse(offline: DoubleWorker) -> None:
    with pytest.raises(PermanentError, match="not a DoubleEvent"):
        offline.map({"record_id": "r1"}, None)
