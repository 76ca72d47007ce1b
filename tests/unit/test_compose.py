"""docker-compose.yml cannot run here (no Docker engine); this keeps it consistent with the code."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from services import devstack

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_kafka_and_postgres_with_health_checks() -> None:
    services = _compose()["services"]

    assert {"kafka", "postgres"} <= set(services)
    for name in ("kafka", "postgres"):
        assert services[name]["healthcheck"]["test"]
    assert "9092:9092" in services["kafka"]["ports"]
    env = services["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "EXTERNAL://localhost:9092" in env["KAFKA_ADVERTISED_LISTENERS"]


def test_one_kafka_version_everywhere() -> None:
    pom = (ROOT / "deploy" / "kafka" / "pom.xml").read_text()
    jar_version = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert jar_version is not None
    source = Path(devstack.__file__).read_text()

    assert _compose()["services"]["kafka"]["image"] == f"apache/kafka:{jar_version.group(1)}"
    assert f'KafkaContainer("apache/kafka:{jar_version.group(1)}")' in source
