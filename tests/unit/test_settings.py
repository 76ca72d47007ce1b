"""Settings: one base, a prefix per worker, Kafka shared, secrets never printed."""

from __future__ import annotations

import pytest

from shared.settings import (
    CatalogSettings,
    GvrSettings,
    KafkaSettings,
    NvrSettings,
    RegbridgeSettings,
    TopicSettings,
)


def test_each_worker_reads_its_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGBRIDGE_GVR_HEALTH_PORT", "9101")
    monkeypatch.setenv("REGBRIDGE_NVR_HEALTH_PORT", "9102")
    monkeypatch.setenv("REGBRIDGE_GVR_DATABASE_URL", "postgresql+asyncpg://u:pw-4711@db/gvr")

    gvr, nvr, catalog = GvrSettings(), NvrSettings(), CatalogSettings()

    assert (gvr.health_port, nvr.health_port, catalog.health_port) == (9101, 9102, 8083)
    assert "pw-4711" not in repr(gvr)
    assert gvr.database_url.get_secret_value().endswith("/gvr")
    assert nvr.database_url.get_secret_value().startswith("sqlite+aiosqlite")


def test_kafka_is_shared_and_accepts_the_plain_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k1:9092, k2:9092")

    assert GvrSettings().kafka.bootstrap_list == ["k1:9092", "k2:9092"]
    monkeypatch.setenv("REGBRIDGE_KAFKA_BOOTSTRAP_SERVERS", "k3:9092")
    assert KafkaSettings().bootstrap_list == ["k3:9092"]


def test_topic_names_and_tiers_are_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGBRIDGE_TOPICS_CARE_CONTACTS", "acme.contacts.v1")
    monkeypatch.setenv("REGBRIDGE_TOPICS_RETRY_DELAYS", '["10s", "2m"]')

    topics = RegbridgeSettings().topics

    assert topics.care_contacts == "acme.contacts.v1"
    assert topics.retry_delays == ["10s", "2m"]


@pytest.mark.parametrize("delays", [["5m", "30s"], ["30x"], ["0s"]])
def test_retry_tiers_must_parse_and_grow(delays: list[str]) -> None:
    with pytest.raises(ValueError, match="retry delay"):
        TopicSettings(retry_delays=delays)
