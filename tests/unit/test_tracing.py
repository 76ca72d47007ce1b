"""Tracing off by default (no-op, nothing exported, no measurable cost); W3C context in headers."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from shared import tracing
from shared.delivery.outgoing import Inbound, Outgoing
from shared.delivery.record import Item
from shared.delivery.tracing import EventTracing, activate, pass_on_trace

TRACEPARENT = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
OTEL_VARIABLES = (*tracing.ENDPOINT_VARIABLES, "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER")


class _Collector(BaseHTTPRequestHandler):
    posts: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        type(self).posts.append(self.path)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def collector() -> Iterator[tuple[str, list[str]]]:
    """An OTLP/HTTP endpoint that only counts what it is sent."""
    _Collector.posts = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Collector.posts
    server.shutdown()


# A worker process in miniature: configure, one consumer span, one instrumented client, exit.
_PROCESS = """
import httpx
from opentelemetry import trace
from shared.delivery.tracing import EventTracing
from shared.tracing import configure_tracing, instrument_http_client, shutdown_tracing
provider = configure_tracing("regbridge-test")
tracing = EventTracing.create(None, "test", "group")
client = httpx.AsyncClient()
instrumented = instrument_http_client(client)
with trace.get_tracer("t").start_as_current_span("work") as span:
    recording = span.is_recording()
shutdown_tracing(provider)
print(provider is not None, tracing is not None, instrumented, recording)
"""


def run_process(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", _PROCESS],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]  # after any log line


def test_without_an_endpoint_tracing_stays_off_and_nothing_is_exported(
    collector: tuple[str, list[str]],
) -> None:
    url, posts = collector
    assert run_process() == "False False False False"  # no provider, no spans, no wrapping
    # An endpoint, but switched off: still nothing
    assert run_process(OTEL_EXPORTER_OTLP_ENDPOINT=url, OTEL_SDK_DISABLED="true").startswith(
        "False"
    )
    assert run_process(OTEL_EXPORTER_OTLP_ENDPOINT=url, OTEL_TRACES_EXPORTER="none").startswith(
        "False"
    )
    assert posts == []


def test_with_an_endpoint_spans_are_exported_over_otlp_http(
    collector: tuple[str, list[str]],
) -> None:
    url, posts = collector
    assert run_process(OTEL_EXPORTER_OTLP_ENDPOINT=url) == "True True True True"
    assert posts == ["/v1/traces"], posts
    run_process(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{url}/custom/traces")
    assert posts[-1] == "/custom/traces"


def test_the_off_path_starts_nothing_and_still_passes_the_journal_trace_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert tracing.configure_tracing("regbridge-test") is None
    assert EventTracing.create(None, "w", "g") is None  # the chunk runner starts no spans at all
    assert not tracing.instrument_http_client(httpx.AsyncClient())
    # What a chunk still does per event without tracing: enter `activate(None)` around the
    # register call (no span), and pass the journal's traceparent on to the result.
    inbound = Inbound("in", 0, 0, b"k", b"{}", (("traceparent", TRACEPARENT),), 0)
    with activate(None):
        assert not trace.get_current_span().get_span_context().is_valid
    result = Outgoing("results", b"k", b"{}", [])
    pass_on_trace(inbound.headers, result)
    pass_on_trace(inbound.headers, result)  # never twice
    assert result.headers == [("traceparent", TRACEPARENT)]


def test_context_comes_from_kafka_headers_and_goes_into_outgoing_ones() -> None:
    provider = TracerProvider()
    tracer = provider.get_tracer("t")
    parent = tracing.extract([("key", b"x"), ("traceparent", TRACEPARENT)])
    span = tracer.start_span("in process", context=parent)
    context = span.get_span_context()
    assert f"{context.trace_id:032x}" == "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = [("traceparent", TRACEPARENT), ("regbridge-attempts", b"1")]
    tracing.inject(span, headers)
    assert headers[0] == ("regbridge-attempts", b"1")  # replaced, not repeated
    assert headers[1] == (
        "traceparent",
        f"00-4bf92f3577b34da6a3ce929d0e0e4736-{context.span_id:016x}-01".encode(),
    )
    root = tracer.start_span("no header", context=tracing.extract([("key", b"x")]))
    assert not trace.get_current_span(tracing.extract([])).get_span_context().is_valid
    assert root.parent is None  # type: ignore[attr-defined]


def test_spans_end_and_say_why_when_a_chunk_fails() -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    event_tracing = EventTracing(provider, "w", "g")
    items = [Item(n, Inbound("in", 0, n, b"k", b"{}", (), 0)) for n in range(3)]
    event_tracing.start(items)
    event_tracing.abort(items, RuntimeError("ledger down for 19121212-1212"))
    finished = exporter.get_finished_spans()
    assert len(finished) == 3
    assert all(s.status.status_code is trace.StatusCode.ERROR for s in finished)
    message = finished[0].events[0].attributes["exception.message"]  # type: ignore[index]
    assert message == "ledger down for 19121212-****"
