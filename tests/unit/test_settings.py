"""Settings: one base, a prefix per worker, sections nested, Kafka shared, secrets never printed."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.catalog.settings import CatalogSettings
from services.gvr.settings import GvrSettings
from services.nvr.settings import NvrRuntime, NvrSettings
from shared.settings import CommonSettings, KafkaSettings, TopicSettings


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
    monkeypatch.setenv("REGBRIDGE_GVR_INPUT_TOPIC", "acme.contacts.v1")
    monkeypatch.setenv("REGBRIDGE_TOPICS_RETRY_DELAYS", '["10s", "2m"]')

    assert GvrSettings().input_topic == "acme.contacts.v1"
    assert NvrSettings().input_topic == "care.vaccinations.v1"
    assert CommonSettings().topics.retry_delays == ["10s", "2m"]
    assert GvrSettings().topics.retry_delays == ["10s", "2m"]


def test_runtime_options_are_one_nested_section_and_keep_the_worker_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REGBRIDGE_NVR_RUNTIME__CHUNK_SIZE", "200")
    monkeypatch.setenv("REGBRIDGE_GVR_RUNTIME__MAX_IN_FLIGHT", "32")

    nvr, gvr = NvrSettings(), GvrSettings()

    assert (nvr.runtime.chunk_size, nvr.runtime.batch_size, nvr.runtime.max_in_flight) == (
        200,
        100,  # NVR's bundles, kept when another option is set
        500,
    )
    assert (gvr.runtime.max_in_flight, gvr.runtime.batch_size) == (32, 1)
    with pytest.raises(ValidationError, match="batch_size"):
        NvrRuntime(batch_size=101)  # NVR takes bundles of 100 at most


def test_a_register_profile_is_a_nested_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGBRIDGE_NVR_PROFILE__HSA_ID_SYSTEM", "urn:oid:1.2.752.129.2.1.4.1")
    monkeypatch.setenv("REGBRIDGE_GVR_PATHS__AVAILABILITY", "/gvr/tillganglighet")

    assert NvrSettings().profile.hsa_id_system == "urn:oid:1.2.752.129.2.1.4.1"
    assert NvrSettings().profile.fhir_path == "/fhir"
    assert GvrSettings().paths.availability == "/gvr/tillganglighet"
    assert GvrSettings().paths.outpatient_visit == "/vardhandelse/besok"


@pytest.mark.parametrize("delays", [["5m", "30s"], ["30x"], ["0s"]])
def test_retry_tiers_must_parse_and_grow(delays: list[str]) -> None:
    with pytest.raises(ValueError, match="retry delay"):
        TopicSettings(retry_delays=delays)
