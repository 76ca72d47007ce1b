"""The delivery runtime on a real broker, a real database and the register double over HTTP."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.delivery import headers as h
from shared.delivery.clock import ManualClock
from shared.delivery.dlq_read import read_dead_letters
from shared.delivery.dlq_replay import replay
from shared.delivery.fates import BLOCKED
from shared.delivery.guards import CircuitBreaker
from shared.delivery.health import health_app
from shared.delivery.ledger import Ledger
from shared.delivery.worker import Outcome, Submission
from shared.settings import KafkaSettings
from shared.topics import dlq_topic, results_topic
from tests.support.double_register.worker import DoubleWorker
from tests.support.register_double import RegisterDouble
from tests.support.runtime_harness import (
    create_topics,
    event,
    publish,
    read_topic,
    running_runtime,
    wait_for,
)

pytestmark = pytest.mark.integration
TIERS = ("30s", "5m")


@pytest.fixture
def ledger(any_ledger: Ledger) -> Ledger:
    """Every runtime test on SQLite and on PostgreSQL."""
    return any_ledger


@pytest.fixture
async def setup(
    kafka_bootstrap: str, unique_name: str, double: RegisterDouble
) -> AsyncIterator[tuple[DoubleWorker, str]]:
    worker = DoubleWorker(double.base_url)
    worker.name = f"w{unique_name}"
    input_topic = f"test.input.{unique_name}"
    await create_topics(kafka_bootstrap, worker.name, input_topic, TIERS)
    yield worker, input_topic
    await worker.aclose()


def accepted_ids(double: RegisterDouble) -> list[str]:
    return [a.event_id for a in double.accepted()]


async def test_events_are_delivered_once_in_order_with_a_result_each(
    kafka_bootstrap: str, double: RegisterDouble, ledger: Ledger, setup: tuple[DoubleWorker, str]
) -> None:
    # Given 40 records, each created, corrected and cancelled
    worker, topic = setup
    events = [
        event(f"r{i}", version, op)
        for i in range(40)
        for version, op in ((1, "create"), (2, "correct"), (3, "cancel"))
    ]
    # When they flow through the runtime
    async with running_runtime(kafka_bootstrap, worker, ledger, topic, tiers=TIERS):
        await publish(kafka_bootstrap, topic, events)
        await wait_for(lambda: len(double.accepted()) >= len(events), 60, "all accepted")
        results = await read_topic(kafka_bootstrap, results_topic(worker.name), at_least=120)
    # Then the register saw each event once, each record in order, and each event has a result
    assert sorted(accepted_ids(double)) == sorted(e["event_id"] for e in events)
    for i in range(40):
        ops = [a.operation for a in double.accepted() if a.record_id == f"r{i}"]
        assert ops == ["create", "correct", "cancel"]
    statuses = [json.loads(r.value)["status"] for r in results]
    assert statuses.count("accepted") == 120


async def test_permanent_rejection_is_dead_lettered_at_once_with_its_story(
    kafka_bootstrap: str, double: RegisterDouble, ledger: Ledger, setup: tuple[DoubleWorker, str]
) -> None:
    worker, topic = setup
    double.set_faults(reject_record_ids=["bad-1"])
    bad, good = event("bad-1"), event("good-1")
    traceparent = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    async with running_runtime(kafka_bootstrap, worker, ledger, topic, tiers=TIERS):
        await publish(kafka_bootstrap, topic, [bad], headers=[("traceparent", traceparent)])
        await publish(kafka_bootstrap, topic, [good])
        dead = await read_topic(kafka_bootstrap, dlq_topic(worker.name), at_least=1)
        await wait_for(lambda: "good-1" in [a.record_id for a in double.accepted()], 30)

    assert len(dead) == 1
    letter = dead[0]
    story = h.to_dict(letter.headers)
    assert letter.value == json.dumps(bad).encode()  # the original bytes, untouched
    assert letter.key == b"bad-1"
    assert story[h.ERROR_CLASS] == "register_rejected"
    assert story[h.REGISTER_STATUS] == "400"
    assert "errors" in story[h.REGISTER_RESPONSE]  # the register's own error text
    assert story[h.ORIGIN_TOPIC] == topic
    assert {h.ORIGIN_PARTITION, h.ORIGIN_OFFSET, h.ORIGIN_TIMESTAMP} <= story.keys()
    assert story[h.CONSUMER_GROUP] == f"regbridge-{worker.name}"
    assert story[h.ATTEMPTS] == "1"
    assert story[h.FIRST_FAILURE_AT] == story[h.LAST_FAILURE_AT]  # one failure so far
    assert story[h.WORKER_VERSION] == worker.version
    assert story[h.TRACE_ID] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert story["traceparent"] == traceparent.decode()
    assert story[h.EVENT_ID] == bad["event_id"]
    assert story[h.RECORD_ID] == "bad-1"


async def test_malformed_event_is_dead_lettered_and_the_partition_moves_on(
    kafka_bootstrap: str, double: RegisterDouble, ledger: Ledger, setup: tuple[DoubleWorker, str]
) -> None:
    worker, topic = setup
    after = event("after-1")
    async with running_runtime(kafka_bootstrap, worker, ledger, topic, tiers=TIERS):
        await publish(kafka_bootstrap, topic, [b"{not json", after], key=lambda _e: b"same-key")
        dead = await read_topic(kafka_bootstrap, dlq_topic(worker.name), at_least=1)
        await wait_for(lambda: "after-1" in [a.record_id for a in double.accepted()], 30)

    story = h.to_dict(dead[0].headers)
    assert dead[0].value == b"{not json"
    assert story[h.ERROR_CLASS] == "invalid_event"
    assert "JSON" in story[h.ERROR_MESSAGE]


async def test_transient_failure_is_retried_after_its_delay_never_before(
    kafka_bootstrap: str, double: RegisterDouble, ledger: Ledger, setup: tuple[DoubleWorker, str]
) -> None:
    worker, topic = setup
    clock = ManualClock()
    double.set_faults(fail_next=1)
    create = event("slow-1")
    async with running_runtime(kafka_bootstrap, worker, ledger, topic, tiers=TIERS, clock=clock):
        await publish(kafka_bootstrap, topic, [create])
        await wait_for(lambda: double.requests_received >= 1, 30, "first attempt")
        await asyncio.sleep(3)  # real time passes; the retry's 30 s have not
        assert accepted_ids(double) == []
        clock.advance(29)
        await asyncio.sleep(2)
        assert accepted_ids(double) == []
        clock.advance(1.5)
        await wait_for(lambda: accepted_ids(double) == [create["event_id"]], 30, "retry")


async def test_correction_follows_its_create_through_retry(
    kafka_bootstrap: str, double: RegisterDouble, ledger: Ledger, setup: tuple[DoubleWorker, str]
) -> None:
    worker, topic = setup
    clock = ManualClock()
    double.set_faults(fail_next=1)
    create, correct = event("rec-1", 1, "create"), event("rec-1", 2, "correct")
    async with running_runtime(kafka_bootstrap, worker, ledger, topic, tiers=TIERS, clock=clock):
        await publish(kafka_bootstrap, topic, [create])
        await wait_for(lambda: double.requests_received >= 1, 30, "create attempted")
        await publish(kafka_bootstrap, topic, [correct])
        await asyncio.sleep(2)
        assert accepted_ids(double) == []  # the correction did not overtake
        clock.advance(31)
        await wait_for(lambda: len(double.accepted()) == 2, 30, "both delivered")

    assert [a.operation for a in double.accepted()] == ["create", "correct"]


async def test_register_down_for_a_minute_dead_letters_nothing(
    kafka_bootstrap: str, double: RegisterDouble, ledger: Ledger, setup: tuple[DoubleWorker, str]
) -> None:
    # Given a register that is down, and a clock the test moves by a minute
    worker, topic = setup
    clock = ManualClock()
    circuit = CircuitBreaker(min_calls=5, consecutive_failures=3)
    double.set_faults(down=True)
    events = [event(f"down-{i}") for i in range(60)]
    async with running_runtime(
        kafka_bootstrap, worker, ledger, topic, tiers=TIERS, clock=clock, circuit=circuit
    ) as runtime:
        await publish(kafka_bootstrap, topic, events)
        await wait_for(lambda: runtime.status.paused_reason == "circuit_open", 30, "circuit open")
        for _ in range(12):  # a minute of failed probes
            clock.advance(5)
            await asyncio.sleep(0.3)
        assert runtime.status.paused_reason == "circuit_open"
        # When the register comes back
        double.clear_faults()
        for _ in range(40):
            clock.advance(31)
            await asyncio.sleep(0.3)
            if len(double.accepted()) >= len(events):
                break
        await wait_for(lambda: len(double.accepted()) >= len(events), 30, "drained")
        # Then everything is delivered once, and nothing was dead-lettered
        dead = await read_topic(kafka_bootstrap, dlq_topic(worker.name), timeout=2)

    assert dead == []
    assert sorted(accepted_ids(double)) == sorted(e["event_id"] for e in events)
    assert runtime.status.paused_reason is None


async def test_a_circuit_hand_back_gives_every_event_exactly_one_result(
    kafka_bootstrap: str, double: RegisterDouble, ledger: Ledger, setup: tuple[DoubleWorker, str]
) -> None:
    # Given a register failing half its calls, so that the circuit opens in the middle of chunks
    # whose other events it took
    worker, topic = setup
    clock = ManualClock()
    circuit = CircuitBreaker(min_calls=5, consecutive_failures=3)
    double.set_faults(transient_rate=0.5)
    events = [event(f"flap-{i}") for i in range(300)]
    async with running_runtime(
        kafka_bootstrap, worker, ledger, topic, tiers=TIERS, clock=clock, circuit=circuit
    ) as runtime:
        await publish(kafka_bootstrap, topic, events)
        await wait_for(lambda: runtime.status.paused_reason == "circuit_open", 30, "circuit open")
        # When it recovers, and probes, retries and the handed-back events run again
        double.clear_faults()
        for _ in range(60):
            clock.advance(31)
            await asyncio.sleep(0.3)
            if len(double.accepted()) >= len(events):
                break
        await wait_for(lambda: len(double.accepted()) >= len(events), 30, "drained")
        results = await read_topic(
            kafka_bootstrap, results_topic(worker.name), at_least=len(events), timeout=10
        )
        handed_back = runtime.metrics.registry.get_sample_value(
            "regbridge_handed_back_total", {"worker": worker.name}
        )

    # Then the register took each event once, and each event has one result: accepted
    assert handed_back, "the circuit never handed an event back: the test proves nothing"
    assert sorted(accepted_ids(double)) == sorted(e["event_id"] for e in events)
    per_event = Counter(
        (json.loads(r.value)["event_id"], json.loads(r.value)["status"]) for r in results
    )
    assert set(per_event) == {(e["event_id"], "accepted") for e in events}
    assert set(per_event.values()) == {1}


async def test_dead_letter_limit_stops_a_bad_deploy(
    kafka_bootstrap: str, double: RegisterDouble, ledger: Ledger, setup: tuple[DoubleWorker, str]
) -> None:
    worker, topic = setup
    events = [event(f"bad-{i}") for i in range(200)]
    double.set_faults(reject_record_ids=[e["record_id"] for e in events])
    async with running_runtime(
        kafka_bootstrap,
        worker,
        ledger,
        topic,
        tiers=TIERS,
        dlq_window=50,
        dlq_min_events=20,
        chunk_size=10,
    ) as runtime:
        await publish(kafka_bootstrap, topic, events)
        await wait_for(lambda: runtime.status.paused_reason == "dlq_limit", 30, "dlq limit")
        await asyncio.sleep(1)
        dead = await read_topic(kafka_bootstrap, dlq_topic(worker.name), timeout=2)

    assert 0 < len(dead) <= 20  # stopped at the limit, long before 200
    assert not runtime.status.ready
    assert "dead-letter limit" in runtime.status.alarms[-1]


async def test_replay_after_a_fix_delivers_once_and_in_order(
    kafka_bootstrap: str, double: RegisterDouble, ledger: Ledger, setup: tuple[DoubleWorker, str]
) -> None:
    # Given a create the register rejects, and its correction that must follow it
    worker, topic = setup
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    double.set_faults(reject_record_ids=["fix-1"])
    create, correct = event("fix-1", 1, "create"), event("fix-1", 2, "correct")
    async with running_runtime(kafka_bootstrap, worker, ledger, topic, tiers=TIERS):
        await publish(kafka_bootstrap, topic, [create, correct])
        await read_topic(kafka_bootstrap, dlq_topic(worker.name), at_least=2)
        letters = await read_dead_letters(kafka, dlq_topic(worker.name))
        assert [dl.error_class for dl in letters] == ["register_rejected", BLOCKED]
        # When the operator fixes the cause and replays both
        double.clear_faults()
        first = await replay(kafka, ledger, letters, operator="test")
        await wait_for(lambda: len(double.accepted()) == 2, 30, "replayed events delivered")
        # And replays them again by mistake
        second = await replay(kafka, ledger, letters, operator="test")
        await asyncio.sleep(2)

    # Then the register has each once, in order, and the second replay was refused
    assert [a.operation for a in double.accepted()] == ["create", "correct"]
    assert len(first.replayed) == 2
    assert second.replayed == []
    assert len(second.refused) == 2


async def test_a_refused_credential_pauses_the_worker_instead_of_dead_lettering(
    kafka_bootstrap: str, double: RegisterDouble, ledger: Ledger, setup: tuple[DoubleWorker, str]
) -> None:
    worker, topic = setup
    clock = ManualClock()
    double.set_faults(unauthorized=True)
    events = [event(f"auth-{i}") for i in range(20)]
    async with running_runtime(
        kafka_bootstrap, worker, ledger, topic, tiers=TIERS, clock=clock
    ) as runtime:
        await publish(kafka_bootstrap, topic, events)
        await wait_for(lambda: runtime.status.paused_reason == "configuration", 30, "paused")
        assert "configuration error" in runtime.status.alarms[-1]
        double.clear_faults()  # the certificate or secret is fixed
        clock.advance(61)  # the next probe
        await wait_for(lambda: len(double.accepted()) == len(events), 30, "resumed")
        dead = await read_topic(kafka_bootstrap, dlq_topic(worker.name), timeout=2)

    assert dead == []
    assert sorted(accepted_ids(double)) == sorted(e["event_id"] for e in events)


async def test_batches_go_to_the_register_in_groups(
    kafka_bootstrap: str, double: RegisterDouble, ledger: Ledger, setup: tuple[DoubleWorker, str]
) -> None:
    worker, topic = setup
    batching = DoubleWorker(double.base_url, batch=True)
    batching.name = worker.name
    events = [event(f"b{i}") for i in range(300)]
    await publish(kafka_bootstrap, topic, events)
    async with running_runtime(
        kafka_bootstrap, batching, ledger, topic, tiers=TIERS, batch_size=100
    ):
        await wait_for(lambda: len(double.accepted()) == len(events), 60, "all accepted")
    await batching.aclose()

    assert sorted(accepted_ids(double)) == sorted(e["event_id"] for e in events)
    assert double.requests_received < len(events) / 5  # bundles, not one call per event


async def test_stopping_mid_stream_then_restarting_loses_and_doubles_nothing(
    kafka_bootstrap: str, double: RegisterDouble, ledger: Ledger, setup: tuple[DoubleWorker, str]
) -> None:
    worker, topic = setup
    double.set_faults(latency_ms=20)
    events = [
        event(f"s{i}", v, op) for v, op in ((1, "create"), (2, "correct")) for i in range(150)
    ]
    await publish(kafka_bootstrap, topic, events)
    async with running_runtime(kafka_bootstrap, worker, ledger, topic, tiers=TIERS, chunk_size=50):
        await wait_for(lambda: len(double.accepted()) >= 40, 60, "some delivered")
    stopped_at = len(double.accepted())
    async with running_runtime(kafka_bootstrap, worker, ledger, topic, tiers=TIERS):
        await wait_for(lambda: len(double.accepted()) >= len(events), 60, "the rest delivered")
        await asyncio.sleep(1)

    ids = accepted_ids(double)
    assert stopped_at < len(events)
    assert len(ids) == len(set(ids)) == len(events)


async def test_health_endpoints_report_readiness_and_metrics(
    kafka_bootstrap: str, double: RegisterDouble, ledger: Ledger, setup: tuple[DoubleWorker, str]
) -> None:
    worker, topic = setup
    async with running_runtime(kafka_bootstrap, worker, ledger, topic, tiers=TIERS) as runtime:
        await publish(kafka_bootstrap, topic, [event("h-1")])
        await wait_for(lambda: len(double.accepted()) == 1, 30, "accepted")
        labels = {"worker": worker.name, "outcome": "accepted"}
        registry = runtime.metrics.registry
        await wait_for(  # the counter moves when the chunk settles, after the register answered
            lambda: registry.get_sample_value("regbridge_events_total", labels) == 1.0,
            30,
            "the chunk settled",
        )
        transport = httpx.ASGITransport(app=health_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
            ready = await client.get("/health/ready")
            status = (await client.get("/status")).json()
            metrics = (await client.get("/metrics")).text

    assert ready.status_code == 200
    assert status["circuit"] == "closed"
    assert f'regbridge_events_total{{outcome="accepted",worker="{worker.name}"}} 1.0' in metrics


class HoldingWorker(DoubleWorker):
    """Holds the register call of one record until an event of the next chunk has been sent
    (or `patience` runs out): only chunks that overlap can release it."""

    def __init__(self, base_url: str, held: str, later: set[str], patience: float) -> None:
        super().__init__(base_url)
        self.held, self.later, self.patience = held, later, patience
        self.later_sent = asyncio.Event()
        self.overlapped = False

    async def submit(self, batch: Sequence[Submission[Any]]) -> Sequence[Outcome]:
        records = {s.identity.record_id for s in batch}
        if records & self.later:
            self.later_sent.set()
        if self.held in records:
            try:
                await asyncio.wait_for(self.later_sent.wait(), self.patience)
                self.overlapped = True
            except TimeoutError:
                pass
        return await super().submit(batch)


async def two_chunks_held(
    bootstrap: str, double: RegisterDouble, unique_name: str, patience: float
) -> tuple[HoldingWorker, str, list[dict[str, Any]]]:
    """20 events on one partition (chunks of 10): r0's call held until r10 to r19's are out."""
    worker = HoldingWorker(double.base_url, "r0", {f"r{i}" for i in range(10, 20)}, patience)
    worker.name = f"w{unique_name}"
    topic = f"test.input.{unique_name}"
    await create_topics(bootstrap, worker.name, topic, TIERS, partitions=1)
    events = [event(f"r{i}") for i in range(20)]
    await publish(bootstrap, topic, events)
    return worker, topic, events


@pytest.mark.parametrize("chunks_in_hand", [1, 2])
async def test_the_next_chunk_is_sent_while_a_chunks_last_call_is_out(
    kafka_bootstrap: str,
    double: RegisterDouble,
    ledger: Ledger,
    unique_name: str,
    chunks_in_hand: int,
) -> None:
    # Given one partition's 20 events in chunks of 10, the first chunk's first call held open
    # until an event of the second chunk reaches the register
    worker, topic, events = await two_chunks_held(kafka_bootstrap, double, unique_name, 3)
    # When the runtime drains them, with one chunk or two in hand
    async with running_runtime(
        kafka_bootstrap,
        worker,
        ledger,
        topic,
        tiers=TIERS,
        chunk_size=10,
        chunks_in_hand=chunks_in_hand,
    ) as runtime:
        await wait_for(lambda: len(double.accepted()) >= 20, 30, "all accepted")
        consumer, tp = runtime.consumers["input"], TopicPartition(topic, 0)
        for _ in range(100):
            if await consumer.committed(tp) == 20:
                break
            await asyncio.sleep(0.1)
        committed = await consumer.committed(tp)
    await worker.aclose()
    # Then only overlapping chunks release the held call, and either way every event is
    # accepted once and the partition's offset is committed past the last
    assert worker.overlapped is (chunks_in_hand > 1)
    assert committed == 20
    assert sorted(accepted_ids(double)) == sorted(e["event_id"] for e in events)


async def test_a_records_events_stay_in_order_across_overlapping_chunks(
    kafka_bootstrap: str, double: RegisterDouble, ledger: Ledger, setup: tuple[DoubleWorker, str]
) -> None:
    # Given 30 records created, corrected and cancelled, the first 4 register calls failing
    # (through retry), consumed in chunks of 7 that overlap, so that a record's events fall in
    # different chunks of the input and of the retry tier at once
    worker, topic = setup
    double.set_faults(fail_next=4)
    events = [
        event(f"r{i}", version, op)
        for i in range(30)
        for version, op in ((1, "create"), (2, "correct"), (3, "cancel"))
    ]
    clock = ManualClock()
    async with running_runtime(
        kafka_bootstrap, worker, ledger, topic, tiers=TIERS, clock=clock, chunk_size=7
    ):
        await publish(kafka_bootstrap, topic, events)
        await wait_for(lambda: len(double.accepted()) >= 78, 60, "the records not failing")
        for _ in range(60):
            if len(double.accepted()) >= 90:
                break
            clock.advance(31)  # the 30s tier's retries come due
            await asyncio.sleep(0.5)
    # Then each record's events reached the register once each, in order
    assert sorted(accepted_ids(double)) == sorted(e["event_id"] for e in events)
    for i in range(30):
        ops = [a.operation for a in double.accepted() if a.record_id == f"r{i}"]
        assert ops == ["create", "correct", "cancel"], f"r{i}: {ops}"


async def test_a_bug_in_one_chunk_stops_the_worker_before_a_later_chunk_commits_past_it(
    kafka_bootstrap: str,
    double: RegisterDouble,
    ledger: Ledger,
    unique_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given one partition's 20 events in chunks of 10 that overlap, and a bug in settling the
    # first chunk that strikes once the second has settled and waits to commit after it
    worker, topic, _ = await two_chunks_held(kafka_bootstrap, double, unique_name, 10)
    settle, second_settled = ledger.settle, asyncio.Event()

    async def buggy_settle(register: str, settlement: Any, now: Any) -> None:
        records = {identity.record_id for identity, _ in settlement.accepted}
        if "r0" in records:
            await asyncio.wait_for(second_settled.wait(), 20)
            raise RuntimeError("a bug in settling")
        await settle(register, settlement, now)
        if records & worker.later:
            second_settled.set()

    monkeypatch.setattr(ledger, "settle", buggy_settle)
    # When the worker runs into it
    with pytest.raises(RuntimeError, match="a bug in settling"):
        async with running_runtime(
            kafka_bootstrap, worker, ledger, topic, tiers=TIERS, chunk_size=10
        ) as runtime:
            await wait_for(lambda: not runtime.status.started, 30, "the worker stops")
    await worker.aclose()
    # Then it stopped, the second chunk finished but not committed past the first one's events
    assert worker.overlapped
    assert second_settled.is_set()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=f"regbridge-{worker.name}"
    )
    await consumer.start()
    try:
        assert await consumer.committed(TopicPartition(topic, 0)) in (None, 0)
    finally:
        await consumer.stop()
