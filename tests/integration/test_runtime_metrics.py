"""The runtime's gauges on a real broker: retry-tier depth, lag while paused, the DLQ limit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from shared.delivery.clock import ManualClock
from shared.delivery.ledger import Ledger
from shared.delivery.runtime import DeliveryRuntime
from shared.topics import dlq_topic
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
async def setup(
    kafka_bootstrap: str, unique_name: str, double: RegisterDouble
) -> AsyncIterator[tuple[DoubleWorker, str]]:
    worker = DoubleWorker(double.base_url)
    worker.name = f"w{unique_name}"
    input_topic = f"test.input.{unique_name}"
    await create_topics(kafka_bootstrap, worker.name, input_topic, TIERS)
    yield worker, input_topic
    await worker.aclose()


def sample(runtime: DeliveryRuntime, name: str, **labels: str) -> float | None:
    return runtime.metrics.registry.get_sample_value(
        name, {"worker": runtime.worker.name, **labels}
    )


async def refreshed(runtime: DeliveryRuntime, predicate: object, what: str) -> None:
    """Refresh the lag gauges now (the runtime does it every 15 s) until `predicate` holds."""
    check = predicate if callable(predicate) else (lambda: False)
    for _ in range(100):
        await runtime.lag_gauges.refresh(runtime.consumers["input"], runtime.consumers["retry"])
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never: {what}")


async def test_retry_tier_depth_counts_what_waits_and_drops_when_it_is_delivered(
    kafka_bootstrap: str, double: RegisterDouble, ledger: Ledger, setup: tuple[DoubleWorker, str]
) -> None:
    # Given a register that fails the first three calls, and a clock the test moves
    worker, topic = setup
    clock = ManualClock()
    double.set_faults(fail_next=3)
    events = [event(f"depth-{i}") for i in range(3)]
    async with running_runtime(
        kafka_bootstrap, worker, ledger, topic, tiers=TIERS, clock=clock
    ) as runtime:
        # Then the tiers are exported at zero from the start
        assert sample(runtime, "regbridge_retry_depth", tier="30s") == 0
        assert sample(runtime, "regbridge_dlq_limit_tripped") == 0
        assert sample(runtime, "regbridge_events_total", outcome="dead_lettered") == 0
        # When three events fail and wait in the 30 s tier
        await publish(kafka_bootstrap, topic, events)
        await wait_for(lambda: double.requests_received >= 3, 30, "three attempts")
        # Then the 30 s tier holds three, the 5 m tier none
        await refreshed(
            runtime, lambda: sample(runtime, "regbridge_retry_depth", tier="30s") == 3, "depth 3"
        )
        assert sample(runtime, "regbridge_retry_depth", tier="5m") == 0
        # When their time comes and they are delivered
        clock.advance(31)
        await wait_for(lambda: len(double.accepted()) == 3, 30, "retried")
        # Then the tier is empty again
        await refreshed(
            runtime, lambda: sample(runtime, "regbridge_retry_depth", tier="30s") == 0, "depth 0"
        )


async def test_a_tripped_dead_letter_limit_is_exported_and_lag_still_counts(
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
        dead = await read_topic(kafka_bootstrap, dlq_topic(worker.name), timeout=2)

        def lag() -> float:
            return sum(
                sample(runtime, "regbridge_consumer_lag", topic=topic, partition=str(p)) or 0
                for p in range(3)
            )

        # Then what was not dead-lettered is still lag, though the input is paused
        await refreshed(runtime, lambda: lag() == len(events) - len(dead), "lag of the rest")

    assert sample(runtime, "regbridge_dlq_limit_tripped") == 1
    assert sample(runtime, "regbridge_paused", reason="dlq_limit") == 1
