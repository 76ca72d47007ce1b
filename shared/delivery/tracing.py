"""Consumer spans for the delivery runtime, by hand (the runtime drives aiokafka directly).

One CONSUMER span ``<topic> process`` per consumed record, following OpenTelemetry's messaging
conventions; its parent is the record's ``traceparent`` (the journal system's, or on a retry
tier the previous attempt's), a new root without one. The register call runs inside it, so the
HTTP client span (from the httpx instrumentation on the register client) is its child. A call
that carries several events (a bundle) runs in an INTERNAL ``<worker> submit`` span: child
of the first event's span, linked to the others, and each other event's span links back to it.
Retry records, dead letters and results carry the event span's ``traceparent``.

Nothing here runs when tracing is off: the chunk runner holds no `EventTracing` then.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

from shared import tracing
from shared.delivery.fates import DeadLettered, HandedBack, Retrying, Skipped
from shared.delivery.outgoing import Outgoing
from shared.delivery.worker import Outcome, Submission
from shared.identifiers import mask_personal_ids

if TYPE_CHECKING:
    from shared.delivery.fates import Fate
    from shared.delivery.record import Item

SubmitFn = Callable[[Sequence[Submission[Any]]], Awaitable[Sequence[Outcome]]]

_NOTHING: AbstractContextManager[Any] = contextlib.nullcontext()
_MESSAGE_LIMIT = 500  # characters of an error message kept on a span


def activate(span: Span | None) -> AbstractContextManager[Any]:
    """Make `span` the current span for a block (the register call's parent); never ends it."""
    if span is None:
        return _NOTHING
    return trace.use_span(
        span, end_on_exit=False, record_exception=False, set_status_on_exception=False
    )


def pass_on_trace(inbound_headers: Iterable[tuple[str, bytes]], message: Outgoing) -> None:
    """Tracing off: a result still carries the journal system's own ``traceparent``."""
    if not any(name in tracing.TRACE_HEADERS for name, _ in message.headers):
        message.headers.extend(tracing.trace_headers(inbound_headers))


class EventTracing:
    """Starts, links and ends the spans of the events of a chunk."""

    def __init__(self, provider: trace.TracerProvider, worker: str, consumer_group: str) -> None:
        self._tracer = provider.get_tracer("regbridge.delivery")
        self._worker = worker
        self._group = consumer_group

    @classmethod
    def create(
        cls, provider: trace.TracerProvider | None, worker: str, consumer_group: str
    ) -> EventTracing | None:
        """None (no spans, no cost) unless a provider is given or an SDK one is installed."""
        found = tracing.sdk_provider(provider)
        return cls(found, worker, consumer_group) if found is not None else None

    def start(self, items: Iterable[Item]) -> None:
        for item in items:
            inbound = item.inbound
            item.span = self._tracer.start_span(
                f"{inbound.topic} process",
                context=tracing.extract(inbound.headers),
                kind=SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "process",
                    "messaging.operation.name": "process",
                    "messaging.destination.name": inbound.topic,
                    "messaging.consumer.group.name": self._group,
                    "messaging.destination.partition.id": str(inbound.partition),
                    "messaging.kafka.offset": inbound.offset,
                    "messaging.message.body.size": len(inbound.value),
                    "regbridge.worker": self._worker,
                    "regbridge.from_retry": inbound.from_retry,
                },
            )

    def finish(self, chunk: Iterable[tuple[Item, Fate]]) -> None:
        """Every event's outcome on its span; error status for dead letters; end them all."""
        for item, fate in chunk:
            span = item.span
            if span is None:
                continue
            if span.is_recording():
                _describe(span, item, fate)
            span.end()

    def abort(self, items: Iterable[Item], exc: BaseException) -> None:
        """The chunk failed as a whole (the ledger, a bug, shutdown): end every span, as errors."""
        for item in items:
            span = item.span
            if span is None:
                continue
            if span.is_recording():
                span.set_attribute("regbridge.outcome", "aborted")
                _exception_event(span, exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))
            span.end()

    def trace_messages(self, item: Item, messages: Iterable[Outgoing]) -> None:
        """The event span's ``traceparent`` on its retry record, dead letter and result."""
        span = item.span
        if span is None or not span.get_span_context().is_valid:
            for message in messages:
                pass_on_trace(item.inbound.headers, message)
            return
        for message in messages:
            tracing.inject(span, message.headers)

    def traced_submit(self, submit: SubmitFn, items: Iterable[Item]) -> SubmitFn:
        """`submit` inside the event's span, or for several events inside a linked bundle span."""
        spans: dict[str, Span] = {}
        for item in items:
            if item.identity is not None and item.span is not None:
                spans.setdefault(item.identity.event_id, item.span)

        async def call(batch: Sequence[Submission[Any]]) -> Sequence[Outcome]:
            own = [spans[s.identity.event_id] for s in batch if s.identity.event_id in spans]
            if len(own) <= 1:
                with activate(own[0] if own else None):
                    return await submit(batch)
            head, rest = own[0], own[1:]
            bundle = self._tracer.start_span(
                f"{self._worker} submit",
                context=trace.set_span_in_context(head),
                kind=SpanKind.INTERNAL,
                links=[Link(s.get_span_context()) for s in rest],
                attributes={
                    "messaging.batch.message_count": len(batch),
                    "regbridge.worker": self._worker,
                },
            )
            for span in rest:
                span.add_link(bundle.get_span_context(), {"regbridge.link": "register_call"})
            with trace.use_span(
                bundle, end_on_exit=True, record_exception=False, set_status_on_exception=False
            ):
                try:
                    return await submit(batch)
                except BaseException as exc:  # a worker bug, or shutdown: still ends, as an error
                    _exception_event(bundle, exc)
                    bundle.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))
                    raise

        return call


def _describe(span: Span, item: Item, fate: Fate) -> None:
    identity = item.identity
    if identity is not None:
        span.set_attributes(
            {
                "regbridge.event_id": identity.event_id,
                "regbridge.record_id": mask_personal_ids(identity.record_id),
                "regbridge.record_version": identity.record_version,
                "regbridge.operation": identity.operation,
            }
        )
    span.set_attribute("regbridge.outcome", fate.name)
    reason = getattr(fate, "reason", "")
    if reason and isinstance(fate, Skipped | HandedBack):
        span.set_attribute("regbridge.reason", _masked(reason))
    if isinstance(fate, Retrying):
        span.set_attribute("regbridge.retry_tier", fate.tier)
    error = getattr(fate, "error", None)
    if error is not None and error.register_status is not None:
        span.set_attribute("regbridge.register_status", error.register_status)
    error_class = getattr(fate, "error_class", "") or (error.error_class if error else "")
    if error_class:
        span.set_attribute("error.type", error_class)
    if error is not None and not getattr(fate, "follows", False):
        _exception_event(span, error)
    if isinstance(fate, DeadLettered):
        span.set_status(Status(StatusCode.ERROR, f"{error_class}: {_masked(fate.reason)}"))


def _exception_event(span: Span, exc: BaseException) -> None:
    """Like `record_exception`, without the stack and with identity numbers masked."""
    span.add_event(
        "exception",
        {
            "exception.type": type(exc).__qualname__,
            "exception.message": _masked(str(exc)),
        },
    )


def _masked(text: str) -> str:
    return mask_personal_ids(text)[:_MESSAGE_LIMIT]
