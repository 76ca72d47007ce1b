"""`regbridge topics ensure` creates every worker's topics once, with compaction where due."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from services.registry import REGISTRY
from shared.settings import KafkaSettings
from shared.topics import TopicSpec, ensure_topics

pytestmark = pytest.mark.integration


async def test_ensure_creates_missing_topics_once_and_compacts_catalogs(
    kafka_bootstrap: str, unique_name: str
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    specs = [
        TopicSpec(f"test.plain.{unique_name}", "plain"),
        TopicSpec(f"test.catalog.{unique_name}", "catalog", compacted=True),
    ]

    first = await ensure_topics(kafka, specs, partitions=3, replication_factor=1)
    second = await ensure_topics(kafka, specs, partitions=3, replication_factor=1)

    assert sorted(first.created) == sorted(s.name for s in specs)
    assert second.created == []
    assert sorted(second.existing) == sorted(s.name for s in specs)
    assert second.problems == []
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([specs[1].name])
        assert len(described[0]["partitions"]) == 3
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, specs[1].name)]
        )
        entries = {e[0]: e[1] for e in configs[0].resources[0][4]}
        assert entries["cleanup.policy"] == "compact"
    finally:
        await admin.close()


async def test_ensure_reports_a_topic_whose_compaction_differs(
    kafka_bootstrap: str, unique_name: str
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    name = f"test.drift.{unique_name}"
    await ensure_topics(kafka, [TopicSpec(name, "plain")], partitions=1, replication_factor=1)

    report = await ensure_topics(
        kafka,
        [TopicSpec(name, "now compacted", compacted=True)],
        partitions=1,
        replication_factor=1,
    )

    assert report.problems == [f"{name}: cleanup.policy is delete, want compact"]


def test_cli_topics_ensure_is_idempotent(
    kafka_bootstrap: str, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    changes = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "REGBRIDGE_TOPICS_PARTITIONS": "2",
        "REGBRIDGE_GVR_INPUT_TOPIC": f"care.contacts.{unique_name}",
    }
    env = os.environ | changes
    command = [sys.executable, "-m", "services.cli", "topics", "ensure"]
    for name, value in changes.items():  # the settings the command reads, here too
        monkeypatch.setenv(name, value)
    expected = len(REGISTRY.topic_specs())  # every worker's topics, each once

    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    assert first.returncode == 0, first.stderr
    assert f"created care.contacts.{unique_name}" in first.stdout
    assert second.returncode == 0, second.stderr
    assert f"0 created, {expected} already there" in second.stdout
