"""Run one worker on the delivery runtime: settings → ledger → runtime → health, until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from shared.delivery.clock import Clock
from shared.delivery.health import Component, serve_health
from shared.delivery.ledger import Ledger
from shared.delivery.metrics import Metrics
from shared.delivery.runtime import DeliveryRuntime, RuntimeOptions
from shared.delivery.worker import RegisterWorker
from shared.logging import configure_logging, get_logger
from shared.settings import RegbridgeSettings
from shared.tracing import configure_tracing, shutdown_tracing

log = get_logger(__name__)


def runtime_options(
    settings: RegbridgeSettings, worker: str, input_topic: str, *, publish_results: bool = True
) -> RuntimeOptions:
    return RuntimeOptions(
        publish_results=publish_results,
        input_topic=input_topic,
        consumer_group=f"regbridge-{worker}",
        retry_tiers=tuple(settings.topics.retry_delays),
        retry_horizon=settings.retry_horizon,
        chunk_size=settings.chunk_size,
        batch_size=settings.batch_size,
        batch_linger=settings.batch_linger,
        max_in_flight=settings.max_in_flight,
        dlq_max_share=settings.dlq_max_share,
        dlq_window=settings.dlq_window,
        dlq_min_events=settings.dlq_min_events,
    )


async def run_worker(
    worker: RegisterWorker[Any],
    settings: RegbridgeSettings,
    input_topic: str,
    *,
    clock: Clock | None = None,
    publish_results: bool = True,
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
    components: Mapping[str, Component] | None = None,
    metrics: Metrics | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT; then finish the chunk in hand, commit it and stop.

    `background` jobs (schedules) run beside the runtime and are cancelled when it stops;
    `components` (a CatalogView …) must be ready too before the worker reports ready."""
    configure_logging(settings.log_level, settings.log_format)
    tracer_provider = configure_tracing(f"regbridge-{worker.name}")  # OTEL_* variables
    ledger = Ledger.from_url(settings.ledger_url())
    await ledger.create_schema()
    runtime = DeliveryRuntime(
        worker,
        ledger,
        settings.kafka,
        runtime_options(settings, worker.name, input_topic, publish_results=publish_results),
        clock=clock,
        metrics=metrics,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runtime.stop)
    tasks = [
        asyncio.create_task(serve_health(runtime, settings.health_port, components=components))
    ]
    tasks += [asyncio.create_task(job()) for job in background]
    try:
        await runtime.run()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await ledger.close()
        shutdown_tracing(tracer_provider)  # flush what is still queued
        log.info("worker_exited", worker=worker.name)
