"""Prometheus metrics of the delivery runtime, one registry per process."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.delivery.fates import Applied, DeadLettered, Fate, HandedBack, Retrying, Skipped


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._latency_of: dict[str, Any] = {}  # each worker's latency series
        r = self.registry
        self.events = Counter(
            "regbridge_events_total", "Events by outcome", ["worker", "outcome"], registry=r
        )
        self.latency = Histogram(
            "regbridge_register_call_seconds",
            "Time from submission to the register's answer",
            ["worker"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.retries = Counter(
            "regbridge_retries_total", "Events sent to a retry tier", ["worker", "tier"], registry=r
        )
        self.dead_letters = Counter(
            "regbridge_dead_letters_total",
            "Dead letters by error class",
            ["worker", "error_class"],
            registry=r,
        )
        self.reconciled = Counter(
            "regbridge_reconciled_total",
            "In-flight submissions found at the register after a crash",
            ["worker"],
            registry=r,
        )
        self.credential_expiry = Gauge(
            "regbridge_credential_expiry_timestamp_seconds",
            "When the register credential (client secret or certificate) expires, Unix time",
            ["worker"],
            registry=r,
        )
        self.circuit_open = Gauge(
            "regbridge_circuit_open",
            "1 while the register's circuit is open or half-open",
            ["worker"],
            registry=r,
        )
        self.paused = Gauge(
            "regbridge_paused",
            "1 while consumption is paused, by reason",
            ["worker", "reason"],
            registry=r,
        )
        self.lag = Gauge(
            "regbridge_consumer_lag",
            "Records behind the end of the partition",
            ["worker", "topic", "partition"],
            registry=r,
        )
        self.handed_back = Counter(
            "regbridge_handed_back_total",
            "Events left in Kafka to be processed again (register down)",
            ["worker"],
            registry=r,
        )
        self.retry_depth = Gauge(
            "regbridge_retry_depth",
            "Records waiting in a retry tier (end offset - position of the retry consumer)",
            ["worker", "tier"],
            registry=r,
        )
        self.in_flight = Gauge(
            "regbridge_register_in_flight",
            "Events at the register now (of RUNTIME__MAX_IN_FLIGHT), read when scraped",
            ["worker"],
            registry=r,
        )
        self.dlq_limit_tripped = Gauge(
            "regbridge_dlq_limit_tripped",
            "1 once the dead-letter limit tripped (consumption stopped until restart)",
            ["worker"],
            registry=r,
        )

    def announce(self, worker: str, tiers: Iterable[str]) -> None:
        """Export a starting worker's series at zero: panels show 0, not 'no data', and
        `increase()` counts the first accepted or dead-lettered event too."""
        for outcome in ("accepted", "dead_lettered"):
            self.events.labels(worker, outcome)
        for tier in tiers:
            self.retries.labels(worker, tier)
            self.retry_depth.labels(worker, tier).set(0)
        self.handed_back.labels(worker)
        self.circuit_open.labels(worker).set(0)
        self.dlq_limit_tripped.labels(worker).set(0)

    def watch_in_flight(self, worker: str, read: Callable[[], float]) -> None:
        """`regbridge_register_in_flight` is `read()` at each scrape (nothing per event)."""
        self.in_flight.labels(worker).set_function(read)

    def observe_latency(self, worker: str, elapsed: timedelta, events: int = 1) -> None:
        """One call's time, once for each event it carried."""
        child = self._latency_of.get(worker)  # labels() costs more than the observation
        if child is None:
            child = self._latency_of[worker] = self.latency.labels(worker)
        seconds = elapsed.total_seconds()
        for _ in range(events):
            child.observe(seconds)

    def count(self, worker: str, fates: Iterable[Fate]) -> None:
        """A settled chunk's fates: events by outcome, retries by tier, dead letters by class
        (tallied first: one increment per series, not per event)."""
        tally: Tally[tuple[Any, tuple[str, ...]]] = Tally()
        for fate in fates:
            if isinstance(fate, Applied):
                tally[self.events, (worker, "accepted")] += 1
            elif isinstance(fate, Skipped):
                tally[self.events, (worker, f"skipped_{fate.reason}")] += 1
            elif isinstance(fate, Retrying):
                tally[self.retries, (worker, fate.tier)] += 1
            elif isinstance(fate, DeadLettered):
                tally[self.dead_letters, (worker, fate.error_class)] += 1
                tally[self.events, (worker, "dead_lettered")] += 1
            elif isinstance(fate, HandedBack):
                tally[self.handed_back, (worker,)] += 1
        for (metric, labels), n in tally.items():
            metric.labels(*labels).inc(n)
