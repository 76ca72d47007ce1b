"""Run one worker from its spec: settings → ledger → build → runtime → health, until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from pydantic import ValidationError

from shared.database import out_of_reach
from shared.delivery.clock import Clock, SystemClock
from shared.delivery.health import serve_health
from shared.delivery.ledger import Ledger, LedgerOfAnotherClusterError
from shared.delivery.metrics import Metrics
from shared.delivery.runtime import DeliveryRuntime
from shared.heap import freeze_heap
from shared.kafka import cluster_id, kafka_out_of_reach
from shared.logging import configure_logging, get_logger
from shared.outage import Outage, until_available
from shared.settings import KafkaSettings
from shared.spec import WorkerContext, WorkerSpec
from shared.tracing import configure_tracing, shutdown_tracing

log = get_logger(__name__)


async def run_worker(
    spec: WorkerSpec[Any], settings: Any | None = None, *, clock: Clock | None = None
) -> None:
    """Serve until SIGTERM/SIGINT; then finish the chunk in hand, commit it and stop.

    The worker's `build` prepares what it needs (a catalog view, its register client) and hands
    back the worker, the jobs that run beside the runtime (cancelled when it stops) and the
    components that must be ready too before the worker reports ready."""
    settings = settings if settings is not None else spec.load_settings()
    configure_logging(settings.log_level, settings.log_format)
    tracer_provider = configure_tracing(f"regbridge-{spec.name}")  # OTEL_* variables
    ledger = Ledger.from_url(settings.ledger_url())
    context = WorkerContext(clock or SystemClock(), Metrics(), ledger)
    try:
        await _open_ledger(spec.name, ledger, settings.kafka, context.clock)
        async with spec.build(settings, context) as wiring:
            if wiring.worker.name != spec.name:  # topics, ledger and metrics go by one name
                raise ValueError(f"worker {wiring.worker.name!r} built for spec {spec.name!r}")
            runtime = DeliveryRuntime(
                wiring.worker,
                ledger,
                settings.kafka,
                spec.topics(settings),
                settings.runtime,
                clock=context.clock,
                metrics=context.metrics,
                results_on_accept=wiring.results_on_accept,
            )
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, runtime.stop)
            health = serve_health(runtime, settings.health_port, components=wiring.components)
            tasks = [asyncio.create_task(health)]
            tasks += [asyncio.create_task(job()) for job in wiring.background]
            freeze_heap()
            try:
                await runtime.run()
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
    finally:
        await ledger.close()
        shutdown_tracing(tracer_provider)  # flush what is still queued
        log.info("worker_exited", worker=spec.name)


async def _open_ledger(worker: str, ledger: Ledger, kafka: KafkaSettings, clock: Clock) -> None:
    """Wait for the ledger's database and the brokers like any dependency (no crash loop), then
    make sure the ledger follows this Kafka cluster: LedgerOfAnotherClusterError if not."""
    fields = {"worker": worker}
    database, brokers = Outage("ledger", fields), Outage("kafka", fields)
    await until_available(ledger.create_schema, database, out_of_reach, clock.sleep)
    cluster = await until_available(
        lambda: cluster_id(kafka), brokers, kafka_out_of_reach, clock.sleep
    )
    await until_available(
        lambda: ledger.bind_cluster(worker, cluster, clock.now()),
        database,
        out_of_reach,
        clock.sleep,
    )


def main(spec: WorkerSpec[Any]) -> None:
    """`regbridge run <worker>`: settings that do not parse, and an exit on error, are logged as
    structured errors with their cause (and the process exits non-zero)."""
    try:
        settings = spec.load_settings()
    except ValidationError as exc:
        configure_logging()
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        log.error("settings_invalid", worker=spec.name, error=problems)
        raise SystemExit(2) from None
    try:
        asyncio.run(run_worker(spec, settings))
    except LedgerOfAnotherClusterError as exc:
        log.error("ledger_of_another_cluster", worker=spec.name, error=str(exc))
        raise SystemExit(2) from None
    except Exception as exc:
        log.exception("worker_failed", worker=spec.name, error=f"{type(exc).__name__}: {exc}")
        raise SystemExit(1) from None
