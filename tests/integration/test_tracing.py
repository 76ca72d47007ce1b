"""Tracing end to end: journal traceparent → consumer span → register HTTP call → result header.

A real broker, the runtime, and a register over real HTTP (the GVR sandbox with mutual TLS through
GvrClient's aiohttp transport; the register double for bundles and dead letters). Spans go to an
in-memory exporter on a TracerProvider of the test's own (the global provider is left alone).
"""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from services.gvr.client import GvrClient, build_ssl_context
from services.gvr.mapping import GvrPaths
from services.gvr.worker import GvrWorker
from services.sandboxes.gvr import GvrSandbox
from shared.contracts import CARE_CONTACT_EXAMPLES
from shared.delivery import headers as h
from shared.delivery.ledger import Ledger
from shared.delivery.options import RuntimeOptions
from shared.delivery.runtime import DeliveryRuntime
from shared.delivery.worker import RegisterWorker
from shared.settings import KafkaSettings
from shared.topics import WorkerTopics, dlq_topic, results_topic
from shared.tracing import instrument_http_client
from tests.support.double_register.worker import DoubleWorker
from tests.support.register_double import RegisterDouble
from tests.support.runtime_harness import create_topics, event, publish, read_topic, wait_for

pytestmark = pytest.mark.integration
TIERS = ("30s", "5m")
VISIT_DAY = date(2025, 3, 14)


def journal_traceparent() -> tuple[str, str, bytes]:
    """A journal system's span: (trace id, span id, traceparent header value)."""
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01".encode()


def hex_ids(span: ReadableSpan) -> tuple[str, str]:
    context = span.get_span_context()
    assert context is not None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def parent_id(span: ReadableSpan) -> str | None:
    return f"{span.parent.span_id:016x}" if span.parent is not None else None


def traceparent_of(record: ConsumerRecord[bytes, bytes]) -> tuple[str, str]:
    """(trace id, parent span id) from a consumed record's traceparent header."""
    value = h.to_dict(record.headers)[h.TRACEPARENT]
    version, trace_id, span_id, flags = value.split("-")
    assert version == "00"
    assert int(flags, 16) & 1  # sampled (a new root may add the "random" flag too)
    return trace_id, span_id


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


@asynccontextmanager
async def traced_runtime(
    bootstrap: str,
    worker: RegisterWorker[Any],
    ledger: Ledger,
    input_topic: str,
    provider: TracerProvider,
    **options: Any,
) -> AsyncIterator[DeliveryRuntime]:
    runtime = DeliveryRuntime(
        worker,
        ledger,
        KafkaSettings(bootstrap_servers=bootstrap),
        WorkerTopics(worker.name, input_topic, TIERS),
        RuntimeOptions(**options),
        tracer_provider=provider,
    )
    task = asyncio.create_task(runtime.run())
    try:
        await wait_for(lambda: runtime.status.assigned or task.done(), 30, "partition assignment")
        if task.done():
            task.result()
        yield runtime
    finally:
        runtime.stop()
        await asyncio.wait_for(task, 30)


def consumer_spans(exporter: InMemorySpanExporter, topic: str) -> list[ReadableSpan]:
    return [
        s
        for s in exporter.get_finished_spans()
        if s.kind is SpanKind.CONSUMER and s.name == f"{topic} process"
    ]


def http_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]


# -- GVR: the whole chain through the real client ---------------------------------------------
async def test_the_journal_trace_runs_through_the_consumer_span_the_register_call_and_the_result(
    kafka_bootstrap: str,
    unique_name: str,
    gvr_sandbox: GvrSandbox,
    ledger: Ledger,
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    context = build_ssl_context(
        client_cert=str(gvr_sandbox.certs.client_cert),
        client_key=str(gvr_sandbox.certs.client_key),
        ca_bundle=str(gvr_sandbox.certs.ca_cert),
    )
    client = GvrClient(gvr_sandbox.base_url, ssl_context=context, tracer_provider=provider)
    worker = GvrWorker(client, None, GvrPaths())
    worker.name = f"gvr{unique_name}"
    topic = f"trace.contacts.{unique_name}"
    await create_topics(kafka_bootstrap, worker.name, topic, TIERS)
    visit = copy.deepcopy(CARE_CONTACT_EXAMPLES["outpatient_visit"])
    kombika = gvr_sandbox.open_kombikas(VISIT_DAY, 1)[0].code
    visit.update(event_id=str(uuid.uuid4()), record_id=f"besok-{unique_name}")
    visit["payload"].update(kombika=kombika, referring_kombika=kombika)
    visit["payload"].pop("care_period_code", None)
    journal_trace, journal_span, traceparent = journal_traceparent()

    try:
        async with traced_runtime(kafka_bootstrap, worker, ledger, topic, provider):
            await publish(kafka_bootstrap, topic, [visit], headers=[("traceparent", traceparent)])
            results = await read_topic(kafka_bootstrap, results_topic(worker.name), at_least=1)
    finally:
        await client.aclose()

    # The consumer span continues the journal system's trace, as its child
    [consumer] = consumer_spans(exporter, topic)
    trace_id, consumer_id = hex_ids(consumer)
    assert trace_id == journal_trace
    assert parent_id(consumer) == journal_span
    assert consumer.parent is not None
    assert consumer.parent.is_remote
    attributes = dict(consumer.attributes or {})
    assert attributes["messaging.system"] == "kafka"
    assert attributes["messaging.destination.name"] == topic
    assert str(attributes["messaging.destination.partition.id"]).isdigit()
    assert isinstance(attributes["messaging.kafka.offset"], int)
    assert attributes["regbridge.event_id"] == visit["event_id"]
    assert attributes["regbridge.record_id"] == visit["record_id"]
    assert attributes["regbridge.outcome"] == "accepted"
    patient = visit["payload"]["patient"]["id"]
    assert patient[:8] not in json.dumps(attributes)  # nothing of the patient's personnummer
    # The register call (through the aiohttp transport, mutual TLS) is its child
    [call] = http_spans(exporter)
    assert hex_ids(call)[0] == journal_trace
    assert parent_id(call) == consumer_id
    assert dict(call.attributes or {})["http.status_code"] in (200, 201)
    # The result tells the journal system where to follow: same trace, the consumer span
    [result] = results
    assert json.loads(result.value)["status"] == "accepted"
    assert traceparent_of(result) == (journal_trace, consumer_id)


# -- the register double: bundles, dead letters, no traceparent ---------------------------------
@pytest.fixture
async def double_worker(
    kafka_bootstrap: str,
    unique_name: str,
    double: RegisterDouble,
    spans: tuple[TracerProvider, InMemorySpanExporter],
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[DoubleWorker, str]]:
    worker = DoubleWorker(double.base_url, batch=getattr(request, "param", False))
    assert instrument_http_client(worker._client, spans[0])
    worker.name = f"t{unique_name}"
    topic = f"trace.input.{unique_name}"
    await create_topics(kafka_bootstrap, worker.name, topic, TIERS)
    yield worker, topic
    await worker.aclose()


async def publish_traced(
    bootstrap: str, topic: str, events: Sequence[dict[str, Any]]
) -> dict[str, tuple[str, str]]:
    """Each event with a traceparent of its own: event_id → (journal trace id, span id)."""
    journal: dict[str, tuple[str, str]] = {}
    for e in events:
        trace_id, span_id, traceparent = journal_traceparent()
        journal[e["event_id"]] = (trace_id, span_id)
        await publish(bootstrap, topic, [e], headers=[("traceparent", traceparent)])
    return journal


@pytest.mark.parametrize("double_worker", [True], indirect=True)
async def test_a_bundle_is_one_call_in_a_span_linked_to_every_event_it_carries(
    kafka_bootstrap: str,
    ledger: Ledger,
    double_worker: tuple[DoubleWorker, str],
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    worker, topic = double_worker
    provider, exporter = spans
    events = [event(f"b{i}") for i in range(5)]
    journal = await publish_traced(kafka_bootstrap, topic, events)

    async with traced_runtime(
        kafka_bootstrap, worker, ledger, topic, provider, batch_size=100, batch_linger=0.3
    ):
        results = await read_topic(kafka_bootstrap, results_topic(worker.name), at_least=5)

    assert len(results) == 5
    event_spans = {
        dict(s.attributes or {})["regbridge.event_id"]: s for s in consumer_spans(exporter, topic)
    }
    assert event_spans.keys() == journal.keys()
    for event_id, span in event_spans.items():  # every event continues its own journal trace
        assert hex_ids(span)[0] == journal[event_id][0]
        assert parent_id(span) == journal[event_id][1]
    [bundle] = [s for s in exporter.get_finished_spans() if s.name == f"{worker.name} submit"]
    [call] = http_spans(exporter)
    assert parent_id(call) == hex_ids(bundle)[1]  # one HTTP call, in the bundle span
    [head] = [s for s in event_spans.values() if hex_ids(s)[1] == parent_id(bundle)]
    linked = {f"{link.context.span_id:016x}" for link in bundle.links}
    others = {hex_ids(s)[1] for s in event_spans.values() if s is not head}
    assert linked == others  # linked to every other event it carried
    assert len(others) == 4
    bundle_id = hex_ids(bundle)[1]
    for span in event_spans.values():
        if span is not head:  # and each of those events links back to it
            assert [f"{link.context.span_id:016x}" for link in span.links] == [bundle_id]
    for result in results:  # each result follows its own event's span
        event_id = json.loads(result.value)["event_id"]
        assert traceparent_of(result) == hex_ids(event_spans[event_id])


async def test_a_dead_letter_ends_its_span_as_an_error_and_carries_its_traceparent(
    kafka_bootstrap: str,
    ledger: Ledger,
    double: RegisterDouble,
    double_worker: tuple[DoubleWorker, str],
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    worker, topic = double_worker
    provider, exporter = spans
    double.set_faults(reject_record_ids=["bad-1"])
    bad, untraced = event("bad-1"), event("plain-1")
    journal = await publish_traced(kafka_bootstrap, topic, [bad])
    await publish(kafka_bootstrap, topic, [untraced])  # no traceparent: a trace of its own

    async with traced_runtime(kafka_bootstrap, worker, ledger, topic, provider):
        [dead] = await read_topic(kafka_bootstrap, dlq_topic(worker.name), at_least=1)
        results = await read_topic(kafka_bootstrap, results_topic(worker.name), at_least=2)

    by_event = {
        dict(s.attributes or {})["regbridge.event_id"]: s for s in consumer_spans(exporter, topic)
    }
    failed, plain = by_event[bad["event_id"]], by_event[untraced["event_id"]]
    assert failed.status.status_code is StatusCode.ERROR
    assert dict(failed.attributes or {})["regbridge.outcome"] == "dead_letter"
    assert dict(failed.attributes or {})["error.type"] == "register_rejected"
    assert [e.name for e in failed.events] == ["exception"]
    assert hex_ids(failed)[0] == journal[bad["event_id"]][0]
    assert traceparent_of(dead) == hex_ids(failed)  # the dead letter follows the event's span
    assert h.to_dict(dead.headers)[h.TRACE_ID] == journal[bad["event_id"]][0]
    assert plain.parent is None  # no traceparent: a new root
    assert plain.status.status_code is StatusCode.UNSET
    [call] = [s for s in http_spans(exporter) if parent_id(s) == hex_ids(plain)[1]]
    assert hex_ids(call)[0] == hex_ids(plain)[0]
    by_result = {json.loads(r.value)["event_id"]: r for r in results}
    assert traceparent_of(by_result[bad["event_id"]]) == hex_ids(failed)
    assert traceparent_of(by_result[untraced["event_id"]]) == hex_ids(plain)
