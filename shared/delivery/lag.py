"""Input lag and retry-tier depth from the brokers' end offsets, also while consumption pauses."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError

from shared.delivery.metrics import Metrics
from shared.logging import get_logger

log = get_logger(__name__)
REFRESH_SECONDS = 15.0  # how often the runtime refreshes the gauges
_TIMEOUT = 10.0  # one refresh never holds up a shutdown for long


async def partition_lags(consumer: AIOKafkaConsumer) -> dict[TopicPartition, int]:
    """End offset minus position for each assigned partition whose position is known."""
    partitions = sorted(consumer.assignment())
    if not partitions:
        return {}
    ends = await consumer.end_offsets(partitions)
    lags = {}
    for tp in partitions:
        try:
            position = await asyncio.wait_for(consumer.position(tp), timeout=1.0)
        except (IllegalStateError, TimeoutError):
            continue  # revoked meanwhile, or its position not fetched yet: next round
        lags[tp] = max(0, ends[tp] - position)
    return lags


class LagGauges:
    """`regbridge_consumer_lag` (input) and `regbridge_retry_depth` (per tier) from the brokers.

    The runtime also sets the input lag after each chunk, from the fetch's high watermark; that
    stops while the input is paused (circuit open, dead-letter limit), and retry partitions wait
    paused until their head is due, so these periodic reads are what keep both gauges true."""

    def __init__(self, metrics: Metrics, worker: str, tier_topics: Mapping[str, str]) -> None:
        self._metrics = metrics
        self._worker = worker
        self._tier_topics = dict(tier_topics)  # retry topic → tier name
        self._labelled: set[TopicPartition] = set()

    async def refresh(self, input_consumer: AIOKafkaConsumer, retry: AIOKafkaConsumer) -> None:
        try:
            inputs = await asyncio.wait_for(partition_lags(input_consumer), _TIMEOUT)
            retries = await asyncio.wait_for(partition_lags(retry), _TIMEOUT)
        except (KafkaError, TimeoutError) as exc:
            log.warning("lag_refresh_failed", worker=self._worker, error=repr(exc))
            return
        for tp, lag in inputs.items():
            self._metrics.lag.labels(self._worker, tp.topic, str(tp.partition)).set(lag)
        for tp in self._labelled - set(input_consumer.assignment()):
            # Another replica owns it now and reports it: a frozen value here would double it.
            self._metrics.lag.remove(self._worker, tp.topic, str(tp.partition))
        self._labelled = (self._labelled | set(inputs)) & set(input_consumer.assignment())
        depth = dict.fromkeys(self._tier_topics.values(), 0)
        for tp, lag in retries.items():
            if tp.topic in self._tier_topics:
                depth[self._tier_topics[tp.topic]] += lag
        for tier, waiting in depth.items():
            self._metrics.retry_depth.labels(self._worker, tier).set(waiting)
