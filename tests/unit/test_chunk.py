"""A chunk's fates, decided once, with a scripted worker and a real (SQLite) ledger; no Kafka."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from shared.delivery import headers as h
from shared.delivery.bookkeeping import Bookkeeper
from shared.delivery.chunk import SLICE, ChunkRunner
from shared.delivery.clock import ManualClock
from shared.delivery.errors import (
    ConfigurationError,
    DeliveryError,
    NothingToSendError,
    NotOursError,
    RegisterRejectedError,
    RegisterUnavailableError,
    ThrottledError,
)
from shared.delivery.fates import (
    BLOCKED,
    TAIL,
    Applied,
    DeadLettered,
    Fate,
    HandedBack,
    Retrying,
    Skipped,
)
from shared.delivery.guards import Guards
from shared.delivery.ledger import Ledger
from shared.delivery.metrics import Metrics
from shared.delivery.options import RuntimeOptions
from shared.delivery.outgoing import Inbound, Outgoing, Writer
from shared.delivery.retry import RetryPolicy
from shared.delivery.runtime import DeliveryRuntime
from shared.delivery.worker import Accepted, EventIdentity, Submission
from shared.settings import KafkaSettings
from shared.topics import WorkerTopics


class ScriptedWorker:
    """Answers from a script: event_id → error; anything else is accepted."""

    name = "scripted"
    version = "test"

    def __init__(self) -> None:
        self.script: dict[str, DeliveryError] = {}
        self.not_ours: set[str] = set()  # event ids map() says are another register's
        self.nothing: dict[str, str] = {}  # event id → why map() finds nothing to send
        self.references: list[str | None] = []  # what map() was given, in order
        self.sent: list[str] = []
        self.calls: list[list[str]] = []  # the event ids of each call, in the order made
        self.out = self.most_out = 0  # events at the register now, and the most at once
        self.delay = 0.0  # seconds each call takes

    def parse(self, raw: bytes) -> tuple[EventIdentity, object]:
        data = json.loads(raw)
        return EventIdentity(data["id"], data["record"], data["version"], data["op"]), data

    def map(self, event: object, reference: str | None) -> object:
        assert isinstance(event, dict)
        self.references.append(reference)
        if event["id"] in self.not_ours:
            raise NotOursError(f"{event['id']} is another register's")
        if event["id"] in self.nothing:
            raise NothingToSendError("nothing yet", reason=self.nothing[event["id"]])
        return event

    async def submit(self, batch: Sequence[Submission[Any]]) -> list[Accepted | DeliveryError]:
        self.sent.extend(s.identity.event_id for s in batch)
        self.calls.append([s.identity.event_id for s in batch])
        self.out += len(batch)
        self.most_out = max(self.most_out, self.out)
        await asyncio.sleep(self.delay)
        self.out -= len(batch)
        return [self.script.get(s.identity.event_id) or Accepted("REF") for s in batch]

    async def lookup(self, submission: Submission[Any]) -> Accepted | None:
        return None


def inbound(
    event_id: str, record: str, version: int = 1, offset: int = 0, partition: int = 0, **kw: Any
) -> Inbound:
    body = {"id": event_id, "record": record, "version": version, "op": "create"}
    return Inbound(
        topic="in",
        partition=partition,
        offset=offset,
        key=record.encode(),
        value=json.dumps(body).encode(),
        headers=kw.pop("headers", ()),
        timestamp=0,
        **kw,
    )


@dataclass
class Pipeline:
    """A chunk runner over the scripted worker, a SQLite ledger and a list as the broker."""

    worker: ScriptedWorker
    ledger: Ledger
    clock: ManualClock
    runner: ChunkRunner
    published: list[Outgoing] = field(default_factory=list)


@dataclass(frozen=True)
class Result:
    fates: list[Fate]
    outgoing: list[Outgoing]


@pytest.fixture
async def pipeline(tmp_path: Path) -> AsyncIterator[Pipeline]:
    ledger = Ledger.from_url(f"sqlite+aiosqlite:///{tmp_path / 'l.db'}")
    await ledger.create_schema()
    worker, clock = ScriptedWorker(), ManualClock()
    retry = RetryPolicy.from_names(["30s", "5m"])
    topics = WorkerTopics(worker.name, "in", ("30s", "5m"))
    published: list[Outgoing] = []

    async def publish(messages: Sequence[Outgoing]) -> None:
        published.extend(messages)

    runner = ChunkRunner(
        worker=worker,
        books=Bookkeeper(ledger, worker.name),
        guards=Guards(),
        writer=Writer(topics, retry, worker.version),
        retry=retry,
        options=RuntimeOptions(),
        clock=clock,
        metrics=Metrics(),
        publish=publish,
    )
    yield Pipeline(worker, ledger, clock, runner, published)
    await ledger.close()


async def run(pipeline: Pipeline, *chunk: Inbound) -> Result:
    """One chunk through: its fates, and the messages it published (settled in the ledger)."""
    pipeline.published.clear()
    result = await pipeline.runner.run(chunk)
    return Result([fate for _, fate in result.fates], list(pipeline.published))


def fates(result: Result) -> list[str]:
    return [fate.name for fate in result.fates]


async def test_a_dead_letter_redelivered_by_kafka_is_not_sent_again_but_a_replay_is(
    pipeline: Pipeline,
) -> None:
    worker = pipeline.worker
    worker.script["a"] = RegisterRejectedError("no", register_status=400)
    assert fates(await run(pipeline, inbound("a", "r"))) == ["dead_letter"]

    redelivered = await run(pipeline, inbound("a", "r"))
    worker.script.clear()
    replayed = await run(pipeline, inbound("a", "r", headers=((h.REPLAYED_FROM, b"dlq/0/0"),)))

    assert fates(redelivered) == ["redelivered"]
    assert redelivered.outgoing == []
    assert fates(replayed) == ["accepted"]
    assert worker.sent == ["a", "a"]


async def test_a_correction_follows_its_failed_create_into_the_same_tier(
    pipeline: Pipeline,
) -> None:
    worker = pipeline.worker
    worker.script["c1"] = RegisterUnavailableError("down")

    result = await run(pipeline, inbound("c1", "r", 1, 0), inbound("c2", "r", 2, 1))

    assert result.fates == [
        Retrying("30s", "register_unavailable", "down", worker.script["c1"]),
        Retrying("30s", BLOCKED, "follows event c1", worker.script["c1"], follows=True),
    ]
    assert [m.topic for m in result.outgoing] == ["scripted.retry.30s", "scripted.retry.30s"]
    assert worker.sent == ["c1"]  # the correction never went to the register


async def test_each_dead_letter_is_logged_once_with_its_class_reason_and_ids(
    pipeline: Pipeline,
) -> None:
    pipeline.worker.script["d1"] = RegisterRejectedError("no such unit", register_status=400)

    with capture_logs() as logs:
        await run(pipeline, inbound("d1", "r-191212121212", 1), inbound("ok", "s", 1, offset=1))

    (line,) = [entry for entry in logs if entry["event"] == "dead_lettered"]
    assert line["log_level"] == "warning"
    assert (line["error_class"], line["reason"]) == ("register_rejected", "no such unit")
    assert (line["event_id"], line["record_id"]) == ("d1", "r-191212121212")
    assert (line["topic"], line["partition"], line["offset"]) == ("in", 0, 0)


async def test_a_later_event_follows_a_dead_lettered_one(pipeline: Pipeline) -> None:
    worker = pipeline.worker
    worker.script["d1"] = RegisterRejectedError("no", register_status=400)
    await run(pipeline, inbound("d1", "r", 1))

    result = await run(pipeline, inbound("d2", "r", 2, 1))

    assert [(f.name, f.error_class) for f in result.fates if isinstance(f, DeadLettered)] == [
        ("dead_letter", BLOCKED)
    ]
    assert worker.sent == ["d1"]


async def test_duplicates_and_stale_versions_are_skipped_with_a_result(pipeline: Pipeline) -> None:
    await run(pipeline, inbound("v2", "r", 2))

    result = await run(pipeline, inbound("v2", "r", 2), inbound("v1", "r", 1, 1))

    assert result.fates == [Skipped("duplicate"), Skipped("stale")]
    statuses = [json.loads(m.value)["status"] for m in result.outgoing]
    assert statuses == ["skipped", "skipped"]


async def test_another_registers_event_is_skipped_not_sent_and_holds_nothing_back(
    pipeline: Pipeline,
) -> None:
    pipeline.worker.not_ours.add("theirs")

    result = await run(pipeline, inbound("theirs", "r"), inbound("ours", "r", 2, 1))

    assert result.fates == [Skipped("not_ours"), Applied("REF")]
    assert pipeline.worker.sent == ["ours"]
    bodies = [json.loads(m.value) for m in result.outgoing]
    assert [(b["status"], b.get("reason")) for b in bodies] == [
        ("skipped", "not_ours"),
        ("accepted", None),
    ]


async def test_an_event_with_nothing_to_send_is_skipped_with_the_workers_reason(
    pipeline: Pipeline,
) -> None:
    # Given a record whose first version asks nothing of the register (no booking yet, say)
    pipeline.worker.nothing["v1"] = "no_booking"

    result = await run(pipeline, inbound("v1", "r"), inbound("v2", "r", 2, 1))

    # Then it is skipped with that reason, and the next version is sent as the record's first
    assert result.fates == [Skipped("no_booking"), Applied("REF")]
    assert pipeline.worker.sent == ["v2"]
    assert pipeline.worker.references == [None, None]
    bodies = [json.loads(m.value) for m in result.outgoing]
    assert [(b["status"], b.get("reason")) for b in bodies] == [
        ("skipped", "no_booking"),
        ("accepted", None),
    ]
    metrics = pipeline.runner.metrics
    assert metrics.events.labels("scripted", "skipped_no_booking")._value.get() == 1


async def test_retries_end_in_a_dead_letter_after_the_last_tier(pipeline: Pipeline) -> None:
    worker = pipeline.worker
    worker.script["x"] = RegisterUnavailableError("down")
    story = ((h.ATTEMPTS, b"2"), (h.FIRST_FAILURE_AT, b"2026-01-01T00:00:00+00:00"))

    result = await run(pipeline, inbound("x", "r", from_retry=True, headers=story))

    assert [(f.name, f.error_class) for f in result.fates if isinstance(f, DeadLettered)] == [
        ("dead_letter", "retries_exhausted")
    ]
    assert h.to_dict(result.outgoing[0].headers)[h.ATTEMPTS] == "3"


async def test_a_submission_left_in_flight_by_a_crash_is_looked_up_not_resent(
    pipeline: Pipeline,
) -> None:
    # Given a crash after the ledger noted the submission (nothing settled, nothing committed)
    worker = pipeline.worker
    identity = EventIdentity("f1", "r", 1, "create")
    await pipeline.ledger.begin_many("scripted", [identity], pipeline.clock.now())
    found_at_register: list[str] = []

    async def lookup(submission: Submission[Any]) -> Accepted | None:
        found_at_register.append(submission.identity.event_id)
        return Accepted("REF-found")

    worker.lookup = lookup  # type: ignore[method-assign]

    # When Kafka delivers the event again
    result = await run(pipeline, inbound("f1", "r"))

    # Then it is reconciled through the lookup, accepted, and never sent a second time
    assert found_at_register == ["f1"]
    assert worker.sent == []
    assert result.fates == [Applied("REF-found")]
    decision = await pipeline.ledger.decide("scripted", EventIdentity("f1", "r", 1, "create"))
    assert decision.kind == "duplicate"


async def test_a_chain_left_in_flight_is_found_at_its_last_version_and_nothing_is_resent(
    pipeline: Pipeline,
) -> None:
    # Given a crash after a chunk sent a record's create and both corrections (the ledger noted
    # the last one in flight; nothing settled, nothing committed), so the register holds v3
    worker = pipeline.worker
    last = EventIdentity("c3", "r", 3, "correct")
    await pipeline.ledger.begin_many("scripted", [last], pipeline.clock.now())

    async def lookup(submission: Submission[Any]) -> Accepted | None:
        version = submission.identity.record_version
        return (
            Accepted("REF-r") if version in (1, 3) else None
        )  # v2's content is gone: v3's is there

    worker.lookup = lookup  # type: ignore[method-assign]

    # When Kafka delivers the three events again
    result = await run(
        pipeline,
        inbound("c1", "r", 1, offset=0),
        inbound("c2", "r", 2, offset=1),
        inbound("c3", "r", 3, offset=2),
    )

    # Then all three are accepted as already applied, and the register is sent nothing again
    assert worker.sent == []
    assert result.fates == [Applied("REF-r")] * 3


async def test_a_chain_applied_up_to_the_version_before_the_one_in_flight_sends_only_that_one(
    pipeline: Pipeline,
) -> None:
    # Given a crash after a chunk sent v1..v3 of a record but not yet v4 (noted in flight)
    worker = pipeline.worker
    last = EventIdentity("d4", "r", 4, "cancel")
    await pipeline.ledger.begin_many("scripted", [last], pipeline.clock.now())
    looked_up: list[int] = []

    async def lookup(submission: Submission[Any]) -> Accepted | None:
        version = submission.identity.record_version
        looked_up.append(version)
        return Accepted("REF-r") if version in (1, 3) else None  # the register holds v3

    worker.lookup = lookup  # type: ignore[method-assign]

    # When Kafka delivers the four events again
    chunk = [inbound(f"d{v}", "r", v, offset=v) for v in (1, 2, 3, 4)]
    result = await run(pipeline, *chunk)

    # Then v1..v3 are found (newest first, after v1 gave the reference), only v4 is sent
    assert worker.sent == ["d4"]
    assert fates(result) == ["accepted"] * 4
    assert looked_up[:3] == [1, 4, 3]


async def test_an_answer_lost_to_a_timeout_is_looked_up_before_the_retry_sends_it_again(
    pipeline: Pipeline,
) -> None:
    # Given a register that applied a correction but whose answer timed out
    worker = pipeline.worker
    worker.script["t2"] = RegisterUnavailableError("timed out", error_class="register_timeout")
    worker.script["u1"] = ThrottledError("busy", error_class="throttled", retry_after=1)

    # When the chunk goes to the retry tier
    result = await run(pipeline, inbound("t2", "r", 2), inbound("u1", "u", 1, offset=1))

    # Then the timed-out one stays in flight (its retry looks it up first), the refused one not
    assert fates(result) == ["retry", "retry"]
    timed_out = await pipeline.ledger.decide("scripted", EventIdentity("t2", "r", 2, "create"))
    refused = await pipeline.ledger.decide("scripted", EventIdentity("u1", "u", 1, "create"))
    assert (timed_out.kind, refused.kind) == ("in_flight", "new")


async def test_a_hand_back_takes_the_rest_of_its_partition_and_every_event_has_one_result(
    pipeline: Pipeline,
) -> None:
    # Given a register that refuses our credentials for one event (the worker pauses for it),
    # with later events of its partition taken meanwhile, and another partition untouched
    worker = pipeline.worker
    worker.script["a1"] = ConfigurationError("certificate refused", error_class="tls_handshake")
    found: list[str] = []

    async def lookup(submission: Submission[Any]) -> Accepted | None:
        found.append(submission.identity.event_id)
        return Accepted("REF-b") if submission.identity.record_id == "b" else None

    worker.lookup = lookup  # type: ignore[method-assign]
    chunk = [
        inbound("a1", "a", offset=0),
        inbound("b1", "b", offset=1),  # taken by the register after a1 failed
        inbound("c1", "c", offset=0, partition=1),
    ]

    # When the chunk runs, and then (the register fixed) the partition is read again from a1
    first = await run(pipeline, *chunk)
    worker.script.clear()
    second = await run(pipeline, chunk[0], chunk[1])

    # Then b1 is handed back with a1 (no result yet), looked up rather than sent again when read
    # again, and every event ends with exactly one result
    assert fates(first) == ["handed_back", "handed_back", "accepted"]
    assert first.fates[1] == HandedBack(TAIL, reference="REF")
    assert fates(second) == ["accepted", "accepted"]
    assert worker.sent == ["a1", "b1", "c1", "a1"]
    assert found == ["b1"]
    results = [json.loads(m.value) for m in first.outgoing + second.outgoing]
    assert sorted((r["event_id"], r["status"]) for r in results) == [
        ("a1", "accepted"),
        ("b1", "accepted"),
        ("c1", "accepted"),
    ]


async def test_an_earlier_chunks_hand_back_is_known_before_sending_nothing_there_is_sent(
    pipeline: Pipeline,
) -> None:
    # Given an earlier chunk that handed partition 0 back from offset 3
    job = pipeline.runner.job([inbound("a", "r", 1, offset=5), inbound("b", "s", 1, 6, 1)])
    job.floor[("in", 0)] = 3
    # When this chunk runs
    await job.deliver()
    job.decide()
    result = await job.finish()
    # Then its event there is handed back unsent; partition 1 goes on
    assert [fate.name for _, fate in result.fates] == ["handed_back", "accepted"]
    assert pipeline.worker.sent == ["b"]
    assert job.handed_back() == {("in", 0): 5}


async def test_a_hand_back_learnt_after_sending_keeps_the_register_answer_to_look_up(
    pipeline: Pipeline,
) -> None:
    # Given a chunk whose event the register took before an earlier chunk handed its partition
    # back
    job = pipeline.runner.job([inbound("a", "r", 1, offset=5)])
    await job.deliver()
    job.floor[("in", 0)] = 3
    job.decide()
    result = await job.finish()
    # Then it is handed back with the register's reference: read again, it is looked up first
    assert result.fates[0][1] == HandedBack(TAIL, reference="REF")
    (book,) = (await pipeline.runner.books.open(list(job.items), pipeline.clock.now())).values()
    assert book.decisions["a"].kind == "in_flight"


async def test_a_stopping_worker_sends_nothing_more_and_hands_the_rest_back(
    pipeline: Pipeline,
) -> None:
    # Given a worker told to stop while a chunk is in hand
    chunk = (inbound("a", "r", 1, 0), inbound("b", "r", 2, 1), inbound("c", "s", 1, 0, 1))
    pipeline.runner.halted = lambda: "the worker is stopping"
    # When the chunk runs, nothing is sent: all of it is left in Kafka, without a result
    stopped = await run(pipeline, *chunk)
    assert fates(stopped) == ["handed_back"] * 3
    assert (pipeline.worker.sent, stopped.outgoing) == ([], [])
    # Then read again by a running worker, each is sent once, as new (nothing to look up)
    pipeline.runner.halted = lambda: None
    again = await run(pipeline, *chunk)
    assert fates(again) == ["accepted"] * 3
    assert sorted(pipeline.worker.sent) == ["a", "b", "c"]  # records go concurrently
    assert pipeline.worker.sent.index("a") < pipeline.worker.sent.index("b")  # r in order


def with_options(pipeline: Pipeline, **options: Any) -> Pipeline:
    runner = dataclasses.replace(pipeline.runner, options=RuntimeOptions(**options))
    return dataclasses.replace(pipeline, runner=runner)


async def test_records_of_one_event_share_calls_of_the_batch_size_and_a_longer_record_walks(
    pipeline: Pipeline,
) -> None:
    # Given bundles of up to 3 and a chunk of five one-event records and one of two events
    pipeline = with_options(pipeline, batch_size=3, max_in_flight=10, batch_linger=0.01)
    chunk = [inbound(f"e{n}", f"r{n}", 1, n) for n in range(5)]
    chunk[2:2] = [inbound("a1", "long", 1, 10), inbound("a2", "long", 2, 11)]
    # When it runs
    result = await run(pipeline, *chunk)
    # Then the five go in calls of three and two; the record of two goes one event after the
    # other, each its own call (after the linger: nothing else waits to share it)
    assert fates(result) == ["accepted"] * 7
    calls = pipeline.worker.calls
    assert sorted(map(sorted, calls)) == [["a1"], ["a2"], ["e0", "e1", "e2"], ["e3", "e4"]]
    assert calls.index(["a1"]) < calls.index(["a2"])


async def test_calls_of_several_keep_to_the_limit_of_events_in_flight(pipeline: Pipeline) -> None:
    # Given bundles of 4, at most 6 events at the register, and calls that take a while
    pipeline = with_options(pipeline, batch_size=4, max_in_flight=6)
    pipeline.worker.delay = 0.01
    chunk = [inbound(f"e{n}", f"r{n}", 1, n) for n in range(20)]
    chunk += [inbound(f"x{v}", "long", v, 100 + v) for v in range(1, 6)]  # walked, one by one
    # When it runs
    result = await run(pipeline, *chunk)
    # Then every event is accepted, never more than 6 out at once
    assert fates(result) == ["accepted"] * 25
    assert pipeline.worker.most_out <= 6
    assert max(len(call) for call in pipeline.worker.calls) == 4


async def test_overlapping_chunks_send_the_older_ones_events_first(pipeline: Pipeline) -> None:
    # Given a chunk sending, at most 2 events at the register, calls that take a while
    pipeline = with_options(pipeline, max_in_flight=2)
    pipeline.worker.delay = 0.005
    first = pipeline.runner.job([inbound(f"a{n}", f"ra{n}", 1, n) for n in range(6)])
    second = pipeline.runner.job([inbound(f"b{n}", f"rb{n}", 1, 10 + n) for n in range(6)])
    sending = asyncio.ensure_future(first.deliver())
    await asyncio.wait_for(_until(lambda: pipeline.worker.out == 2), 5)
    # When the next chunk delivers beside it
    await asyncio.wait_for(asyncio.gather(sending, second.deliver()), 5)
    # Then the first chunk's events all go before the second's (whose calls fill the permits
    # the first no longer needs): the first finishes its calls early, and can settle and make
    # room for the next chunk while the second keeps the register busy
    assert pipeline.worker.sent == [f"a{n}" for n in range(6)] + [f"b{n}" for n in range(6)]
    assert pipeline.worker.most_out == 2


async def test_a_retry_chunks_events_go_before_an_input_chunk_fetched_earlier(
    pipeline: Pipeline,
) -> None:
    # Given an input chunk sending, at most 2 events at the register, calls that take long
    # enough for the retries to be read, parsed and opened meanwhile
    pipeline = with_options(pipeline, max_in_flight=2)
    pipeline.worker.delay = 0.05
    first = pipeline.runner.job([inbound(f"a{n}", f"ra{n}", 1, n) for n in range(6)])
    retries = pipeline.runner.job(
        [inbound(f"r{n}", f"rr{n}", 1, n, from_retry=True) for n in range(2)]
    )
    sending = asyncio.ensure_future(first.deliver())
    await asyncio.wait_for(_until(lambda: pipeline.worker.out == 2), 5)
    # When a chunk of retries, due, is delivered beside it
    await asyncio.wait_for(asyncio.gather(sending, retries.deliver()), 5)
    # Then the retries go as soon as permits come free: their events are the older ones
    assert pipeline.worker.sent[2:4] == ["r0", "r1"]


async def test_the_events_at_the_register_are_exported_when_scraped(pipeline: Pipeline) -> None:
    runtime = DeliveryRuntime(
        pipeline.worker,
        pipeline.ledger,
        KafkaSettings(bootstrap_servers="unused:9092"),
        WorkerTopics(pipeline.worker.name, "in", ("30s",)),
        RuntimeOptions(max_in_flight=5),
    )
    labels = {"worker": pipeline.worker.name}
    in_flight = "regbridge_register_in_flight"
    assert runtime.metrics.registry.get_sample_value(in_flight, labels) == 0
    taken = await runtime.chunks.limit.acquire(3)
    assert runtime.metrics.registry.get_sample_value(in_flight, labels) == 3
    runtime.chunks.limit.release(taken)
    assert runtime.metrics.registry.get_sample_value(in_flight, labels) == 0


async def test_a_long_parse_lets_the_answers_to_calls_out_be_read(pipeline: Pipeline) -> None:
    # Given a call out at the register, whose answer comes as another chunk starts parsing
    seen: list[str] = []
    worker, parse, answer = pipeline.worker, pipeline.worker.parse, asyncio.Event()

    def parsing(raw: bytes) -> tuple[EventIdentity, object]:
        seen.append("parsed")
        return parse(raw)

    async def submit(batch: Sequence[Submission[Any]]) -> list[Accepted | DeliveryError]:
        await answer.wait()
        seen.append("answered")  # the answer read
        return [Accepted("REF") for _ in batch]

    worker.parse, worker.submit = parsing, submit  # type: ignore[method-assign]
    out = pipeline.runner.job([inbound("a", "ra", 1, 0)])
    sending = asyncio.ensure_future(out.deliver())
    await asyncio.wait_for(_until(lambda: pipeline.runner.limit.out == 1), 5)
    seen.clear()
    answer.set()
    # When another chunk of 200 events is parsed
    await pipeline.runner.job([inbound(f"b{n}", f"rb{n}", 1, n) for n in range(200)]).parse()
    await asyncio.wait_for(sending, 5)
    # Then the answer was read after the first slice, not once all 200 were parsed
    assert seen.index("answered") == SLICE


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():  # noqa: ASYNC110 (polling what has no event to wait on)
        await asyncio.sleep(0.001)


async def test_one_event_records_still_skip_what_is_done_and_fail_alone(
    pipeline: Pipeline,
) -> None:
    # Given a record already applied at version 2, a rejected event and one of another register
    pipeline = with_options(pipeline, batch_size=10)
    await run(pipeline, inbound("old", "done", 2, 0))
    pipeline.worker.script["bad"] = RegisterRejectedError("no such unit")
    pipeline.worker.not_ours.add("theirs")
    # When a chunk of one-event records holds a stale one, the rejected one, the other
    # register's and two good ones
    result = await run(
        pipeline,
        inbound("stale", "done", 1, 1),
        inbound("bad", "b", 1, 2),
        inbound("theirs", "t", 1, 3),
        inbound("good1", "g1", 1, 4),
        inbound("good2", "g2", 1, 5),
    )
    # Then each has its own fate; only the rejected and the good ones were sent, in one call
    assert fates(result) == ["skipped", "dead_letter", "skipped", "accepted", "accepted"]
    assert pipeline.worker.calls[-1] == ["bad", "good1", "good2"]


async def test_a_chunk_leaves_no_garbage_in_cycles(pipeline: Pipeline) -> None:
    """What a chunk makes is freed by reference counts alone, so a worker can collect garbage
    seldom (`shared.heap.freeze_heap`): one-event records sent straight, a record whose
    events walk, a retry and a dead letter, with the cyclic collector off."""
    worker = pipeline.worker
    worker.script["e4"] = RegisterUnavailableError("down")
    worker.script["e5"] = RegisterRejectedError("no", register_status=400)
    chunk = [inbound(f"e{n}", f"r{n}", 1, n) for n in range(6)]
    chunk += [inbound("w1", "walker", 1, 6), inbound("w2", "walker", 2, 7)]
    await run(pipeline, *chunk[:1])  # the ledger's statements prepared, its caches warm
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        result = await run(pipeline, *chunk[1:])
        names = fates(result)
        del result
        gc.collect()
        garbage = [type(o).__module__ + "." + type(o).__qualname__ for o in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert garbage == []
    assert names == ["accepted"] * 3 + ["retry", "dead_letter", "accepted", "accepted"]
