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


def test_a_worker_may_consume_more_topics_than_its_input() -> None:
    from dataclasses import replace

    from shared.contracts import CareWaitEvent
    from shared.settings import TopicSettings
    from shared.spec import Input, Registry
    from tests.support.double_register.settings import DoubleSettings
    from tests.support.double_register.spec import double_spec

    # Given a worker that reads waits beside its input, and one more topic left unset (empty)
    spec = replace(
        double_spec(),
        more_inputs=lambda settings: [
            Input("test.waits.v1", (CareWaitEvent,), "waiting-list entries"),
            Input("", (CareWaitEvent,), "not read"),
        ],
    )
    settings = DoubleSettings()

    topics = spec.topics(settings)
    purposes = {t.name: t.purpose for t in spec.topic_specs(settings)}

    # Then its one input consumer subscribes to both, its input first; the empty one is left out
    assert topics.inputs == ("test.double.v1", "test.waits.v1")
    assert [i.topic for i in spec.inputs(settings)] == ["test.double.v1", "test.waits.v1"]
    assert purposes["test.double.v1"] == "test events → double worker"
    assert purposes["test.waits.v1"] == "waiting-list entries → double worker"
    assert "" not in purposes
    assert Registry([spec]).input_topics()["care.wait"] == "test.waits.v1"
    # and a worker's input read twice is subscribed to once
    same = replace(topics, more_inputs=("test.double.v1",))
    assert same.inputs == ("test.double.v1",)
    assert [t.name for t in same.specs(TopicSettings(), "x")].count("test.double.v1") == 1
