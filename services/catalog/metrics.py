"""The catalog's own Prometheus metrics: each import's counts and time, and notification lag."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Gauge, Histogram

from services.catalog.snapshot import SnapshotReport

OUTCOMES = ("published", "unchanged", "removed", "newer_kept", "restored", "skipped")


class CatalogMetrics:
    """Per source (``hsa``, ``vaccines`` …): the last import's counts, when an import last
    succeeded and as of when its snapshot held the source; the lag of notifications."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.last_success = Gauge(
            "regbridge_catalog_import_last_success_timestamp_seconds",
            "When an import of the source last finished well, Unix time",
            ["source"],
            registry=registry,
        )
        self.as_of = Gauge(
            "regbridge_catalog_import_as_of_timestamp_seconds",
            "As of when the last imported snapshot held the source, Unix time",
            ["source"],
            registry=registry,
        )
        self.units = Gauge(
            "regbridge_catalog_import_entries",
            "The last import's entries by outcome (newer_kept: a notification is newer)",
            ["source", "outcome"],
            registry=registry,
        )
        self.withheld = Gauge(
            "regbridge_catalog_import_removals_withheld",
            "1 when the last import withheld its removals (too many, or unidentified entries)",
            ["source"],
            registry=registry,
        )
        self.notification_lag = Histogram(
            "regbridge_catalog_notification_lag_seconds",
            "From HSA's notification to the unit published on the catalog topic",
            buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
            registry=registry,
        )

    def imported(self, source: str, report: SnapshotReport, finished_at: datetime) -> None:
        counts = {
            "published": report.published,
            "unchanged": report.unchanged,
            "removed": report.removed,
            "newer_kept": report.newer_kept,
            "restored": report.restored,
            "skipped": sum(report.skipped.values()),
        }
        for outcome in OUTCOMES:
            self.units.labels(source, outcome).set(counts[outcome])
        self.withheld.labels(source).set(1 if report.removals_withheld else 0)
        if report.as_of is not None:
            self.as_of.labels(source).set(report.as_of.timestamp())
        self.last_success.labels(source).set(finished_at.timestamp())

    def notified(self, notified_at: datetime, published_at: datetime) -> None:
        self.notification_lag.observe(max(0.0, (published_at - notified_at).total_seconds()))
