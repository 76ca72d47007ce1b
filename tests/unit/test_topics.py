"""Every worker's topics follow from its spec; delays parse to seconds."""

from __future__ import annotations

import pytest

from services.registry import REGISTRY
from shared.durations import parse_delay


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), ("6h", 21600), ("1d", 86400)]
)
def test_parse_delay(text: str, seconds: int) -> None:
    assert parse_delay(text) == seconds


def test_the_registry_topics_by_default() -> None:
    specs = {spec.name: spec for spec in REGISTRY.topic_specs()}

    assert {name for name, spec in specs.items() if spec.compacted} == {
        "catalog.care-units.v1",
        "catalog.vaccines.v1",
        "catalog.kombikas.v1",
    }
    for name in (
        "care.contacts.v1",
        "care.vaccinations.v1",
        "catalog.hsa-notifications.v1",
        "gvr.results.v1",
        "nvr.results.v1",
        "gvr.dlq.v1",
        "nvr.dlq.v1",
        "catalog.dlq.v1",
        "gvr.retry.30s",
        "gvr.retry.5m",
        "gvr.retry.1h",
        "gvr.retry.6h",
        "nvr.retry.6h",
    ):
        assert name in specs
    assert "catalog.results.v1" not in specs  # the catalog publishes no results
    assert specs["gvr.dlq.v1"].kafka_configs()["retention.ms"] == str(90 * 24 * 3600 * 1000)
    assert len(specs) == len(REGISTRY.topic_specs())  # each once
