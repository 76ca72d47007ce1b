"""OpenTelemetry tracing: configured once per process, W3C trace context over Kafka headers.

`configure_tracing` installs an SDK TracerProvider exporting over OTLP/HTTP only when an endpoint
is configured (``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``);
otherwise the API's no-op provider stays and tracing costs (nearly) nothing: the runtime then
starts no spans at all and the register clients are not instrumented. The standard ``OTEL_*``
variables are honoured (service name, resource attributes, sampler, batch processor, exporter
headers, timeout and compression, ``OTEL_PROPAGATORS`` for HTTP calls; ``OTEL_SDK_DISABLED=true``
and ``OTEL_TRACES_EXPORTER=none`` switch it off).

Trace context travels in the W3C ``traceparent`` / ``tracestate`` Kafka headers: `extract` reads
them from a consumed record's headers, `inject` writes a span's into outgoing ones.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, MutableSequence
from typing import Any

import httpx
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.trace import Span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from shared.identifiers import mask_personal_ids
from shared.logging import get_logger

log = get_logger(__name__)

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
TRACE_HEADERS = ("traceparent", "tracestate")

KafkaHeaders = Iterable[tuple[str, bytes]]

_PROPAGATOR = TraceContextTextMapPropagator()


def tracing_wanted(environ: dict[str, str] | None = None) -> bool:
    """Is an OTLP endpoint configured (and tracing not switched off)?"""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return any(env.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def sdk_provider(
    explicit: trace.TracerProvider | None = None,
) -> trace.TracerProvider | None:
    """`explicit`, else the global provider when it is a real (SDK) one; None for the no-op."""
    if explicit is not None:
        return explicit
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    return provider


def configure_tracing(service_name: str) -> trace.TracerProvider | None:
    """Install the SDK provider with a batching OTLP/HTTP exporter, once, when configured.

    Returns the provider (shut it down at exit to flush), or None when tracing stays off.
    Idempotent: a second call returns the provider already installed."""
    existing = sdk_provider()
    if existing is not None:
        return existing
    if not tracing_wanted():
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the default name.
    resource = Resource.create().merge(
        Resource({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or service_name})
    )
    provider = TracerProvider(resource=resource)  # sampler: OTEL_TRACES_SAMPLER(_ARG)
    # Queue and batch sizes: OTEL_BSP_*; URL, headers, timeout, compression: OTEL_EXPORTER_OTLP_*.
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    log.info("tracing_configured", service=service_name, exporter="otlp/http")
    return provider


def shutdown_tracing(provider: trace.TracerProvider | None) -> None:
    """Flush and stop the exporter (what is still queued is sent, within its timeout)."""
    shutdown = getattr(provider, "shutdown", None)
    if callable(shutdown):
        shutdown()


# -- Kafka headers ---------------------------------------------------------------------------
class _HeaderGetter(Getter[KafkaHeaders]):
    def get(self, carrier: KafkaHeaders, key: str) -> list[str] | None:
        values = [v.decode("latin-1") for name, v in carrier if name.lower() == key]
        return values or None

    def keys(self, carrier: KafkaHeaders) -> list[str]:
        return [name for name, _ in carrier]


class _HeaderSetter(Setter[MutableSequence[tuple[str, bytes]]]):
    def set(self, carrier: MutableSequence[tuple[str, bytes]], key: str, value: str) -> None:
        carrier[:] = [(name, v) for name, v in carrier if name.lower() != key]
        carrier.append((key, value.encode("latin-1")))


_GETTER = _HeaderGetter()
_SETTER = _HeaderSetter()


def extract(headers: KafkaHeaders) -> Context:
    """The trace context in a record's ``traceparent`` header (an empty context without one)."""
    return _PROPAGATOR.extract(list(headers), getter=_GETTER)


def inject(span: Span, headers: MutableSequence[tuple[str, bytes]]) -> None:
    """Write `span`'s ``traceparent`` (and ``tracestate``) into `headers`, replacing any there."""
    _PROPAGATOR.inject(headers, context=trace.set_span_in_context(span), setter=_SETTER)


def trace_headers(headers: KafkaHeaders) -> list[tuple[str, bytes]]:
    """The ``traceparent``/``tracestate`` headers among `headers`, unchanged."""
    return [(name, value) for name, value in headers if name.lower() in TRACE_HEADERS]


# -- HTTP clients ----------------------------------------------------------------------------
async def _mask_url(span: Span, request: Any) -> None:
    """Query strings may carry a personnummer (look-ups by key): keep only its birth date."""
    if not span.is_recording():
        return
    attributes = getattr(span, "attributes", None) or {}
    for key in ("url.full", "http.url"):
        value = attributes.get(key)
        if isinstance(value, str):
            span.set_attribute(key, mask_personal_ids(value))


def instrument_http_client(
    client: httpx.AsyncClient, tracer_provider: trace.TracerProvider | None = None
) -> bool:
    """CLIENT spans (and a ``traceparent`` on the request) for every call `client` makes.

    Wraps the client's own transport (`RegisterTransport`: aiohttp underneath), so the spans
    see the real request and the remapped exception. Skipped, costing nothing per request,
    when tracing is off (no OTLP endpoint, no SDK provider, no explicit provider)."""
    if tracer_provider is None and not tracing_wanted() and sdk_provider() is None:
        return False
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(
        client, tracer_provider=tracer_provider, request_hook=_mask_url
    )
    return True
