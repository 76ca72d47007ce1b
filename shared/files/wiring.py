"""A file register as the runtime runs it: the intake under the delivery runtime, and beside it the
delivery runs and the alarm on their schedules (each slot run by one replica)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from aiokafka import AIOKafkaProducer

from shared.delivery.clock import Clock
from shared.delivery.outgoing import Outgoing
from shared.delivery.worker import Component
from shared.files.delivery import FileDelivery, FileMetrics
from shared.files.intake import FileIntake
from shared.files.register import FileRegister
from shared.files.settings import FileWorkerSettings
from shared.files.state import FileState
from shared.kafka import kafka_client_options
from shared.logging import get_logger
from shared.schedule import (
    DailySlots,
    Schedule,
    ScheduleMetrics,
    SlotClaims,
    parse_times,
    run_schedule,
)
from shared.spec import Wiring, WorkerContext
from shared.topics import WorkerTopics

log = get_logger(__name__)


def run_kinds(name: str) -> tuple[str, str]:
    """The scheduled jobs of file register `name` (`regbridge status` lists their slots)."""
    return f"{name}-deliver", f"{name}-alarm"


def file_topics(name: str, settings: FileWorkerSettings) -> WorkerTopics:
    return WorkerTopics(name, settings.input_topic, tuple(settings.topics.retry_delays))


@dataclass
class FileParts:
    """The runtime's parts of a file register, for the worker and the operator's commands."""

    state: FileState
    delivery: FileDelivery


@asynccontextmanager
async def file_parts(
    register: FileRegister,
    settings: FileWorkerSettings,
    state: FileState,
    clock: Clock,
    metrics: FileMetrics,
) -> AsyncIterator[FileParts]:
    """The state (its tables created) and the delivery, with a producer for results and dead
    letters (acks from every replica, idempotent), stopped on the way out."""
    await state.create_schema()
    producer = AIOKafkaProducer(
        **kafka_client_options(settings.kafka), acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()

    async def publish(messages: Sequence[Outgoing]) -> None:
        sends = [
            await producer.send(m.topic, m.value, key=m.key, headers=m.headers) for m in messages
        ]
        if sends:
            await asyncio.gather(*sends)

    try:
        delivery = FileDelivery(
            register,
            state,
            settings.window(),
            file_topics(register.name, settings),
            publish,
            clock,
            metrics,
            f"{settings.instance_id}/{uuid.uuid4().hex[:8]}",  # this process: a lease of its own
        )
        yield FileParts(state, delivery)
    finally:
        await producer.stop()


@asynccontextmanager
async def file_wiring(
    register: FileRegister,
    settings: FileWorkerSettings,
    context: WorkerContext,
    components: Mapping[str, Component] | None = None,
) -> AsyncIterator[Wiring]:
    """The intake (stores each event; its result comes with its file's receipt) and the two
    schedules: delivery runs at `settings.deliver_times`, the alarm at the window's alarm day."""
    state = FileState(context.ledger.engine, register.name)
    metrics = FileMetrics(context.metrics.registry)
    async with file_parts(register, settings, state, context.clock, metrics) as parts:
        paused = context.metrics.paused.labels(register.name, "configuration")

        def alarm(message: str | None) -> None:
            """Deliveries stopped for our configuration: `regbridge_paused{reason=
            "configuration"}` (the alert RegbridgeRegisterRefusesCredentials) until a run ends
            without it; the intake goes on storing events."""
            if message is not None:
                log.error("file_delivery_paused", worker=register.name, alarm=message)
            paused.set(0 if message is None else 1)

        parts.delivery.on_alarm = alarm
        claims = SlotClaims(context.ledger.engine)
        slot_metrics = ScheduleMetrics(context.metrics.registry)
        deliver_kind, alarm_kind = run_kinds(register.name)
        zone = ZoneInfo(settings.zone)

        def scheduled(
            kind: str, schedule: Schedule, job: Callable[[], Awaitable[str]]
        ) -> Callable[[], Coroutine[Any, Any, None]]:
            async def loop() -> None:
                await run_schedule(
                    schedule,
                    kind=kind,
                    clock=context.clock,
                    claims=claims,
                    owner=settings.instance_id,
                    job=job,
                    metrics=slot_metrics,
                )

            return loop

        background = [
            scheduled(
                deliver_kind,
                DailySlots(parse_times(settings.deliver_times), zone),
                parts.delivery.scheduled,
            ),
            scheduled(alarm_kind, settings.window().alarms, parts.delivery.alarm),
        ]
        yield Wiring(
            FileIntake(register, state, context.clock),
            background=background,
            components=dict(components or {}),
            results_on_accept=False,
        )
