"""The topics of the architecture, and `ensure_topics` that creates them idempotently."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared.kafka import kafka_client_options

if TYPE_CHECKING:
    from shared.settings import KafkaSettings, TopicSettings

WORKERS = ("gvr", "nvr", "catalog")
RESULTS_WORKERS = ("gvr", "nvr")
_TOPIC_ALREADY_EXISTS = 36  # Kafka protocol error code
_DELAY = re.compile(r"^(\d+)(s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_delay(text: str) -> int:
    """'30s' → 30, '5m' → 300, '1h' → 3600, '6h' → 21600, '1d' → 86400 seconds."""
    match = _DELAY.match(text)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"retry delay {text!r}: expected a positive number and s, m, h or d")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def retry_topic(worker: str, delay: str) -> str:
    return f"{worker}.retry.{delay}"


def dlq_topic(worker: str) -> str:
    return f"{worker}.dlq.v1"


def results_topic(worker: str) -> str:
    return f"{worker}.results.v1"


@dataclass(frozen=True)
class TopicSpec:
    """One topic as regbridge wants it to exist."""

    name: str
    purpose: str
    compacted: bool = False
    configs: dict[str, str] = field(default_factory=dict)

    def kafka_configs(self) -> dict[str, str]:
        base = {"cleanup.policy": "compact"} if self.compacted else {}
        return base | self.configs


def architecture_topics(topics: TopicSettings) -> list[TopicSpec]:
    """Every topic of the architecture, with names from settings."""
    dlq_retention = {"retention.ms": str(topics.dlq_retention_ms)}
    specs = [
        TopicSpec(topics.care_contacts, "care contacts from journal systems → GVR worker"),
        TopicSpec(topics.vaccinations, "vaccinations from journal systems → NVR worker"),
        TopicSpec(topics.hsa_notifications, "HSA unit notifications → catalog sync"),
        TopicSpec(topics.care_units, "care units by HSA-id (catalog)", compacted=True),
        TopicSpec(topics.vaccines, "vaccines and batches by NPL-id (catalog)", compacted=True),
    ]
    for worker in RESULTS_WORKERS:
        specs.append(TopicSpec(results_topic(worker), f"one result per {worker} event"))
    for worker in WORKERS:
        for delay in topics.retry_delays:
            specs.append(TopicSpec(retry_topic(worker, delay), f"{worker} retries after {delay}"))
        specs.append(TopicSpec(dlq_topic(worker), f"{worker} dead letters", configs=dlq_retention))
    return specs


@dataclass
class EnsureReport:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


async def ensure_topics(
    kafka: KafkaSettings,
    specs: list[TopicSpec],
    *,
    partitions: int,
    replication_factor: int,
    on_progress: Callable[[str], None] = lambda _line: None,
) -> EnsureReport:
    """Create missing topics; report existing ones whose compaction differs. Safe to rerun."""
    admin = AIOKafkaAdminClient(**kafka_client_options(kafka))
    await admin.start()
    report = EnsureReport()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        spec.name,
                        partitions,
                        replication_factor,
                        topic_configs=spec.kafka_configs(),
                    )
                    for spec in missing
                ]
            )
            for name, code, *rest in response.topic_errors:
                if code == _TOPIC_ALREADY_EXISTS:  # created meanwhile (another replica, a race)
                    existing.add(name)
                elif code != 0:
                    message = rest[0] if rest and rest[0] else f"error code {code}"
                    report.problems.append(f"{name}: could not be created: {message}")
            for spec in missing:
                if spec.name not in existing and not any(
                    p.startswith(f"{spec.name}:") for p in report.problems
                ):
                    report.created.append(spec.name)
                    on_progress(f"created {spec.name}")
        if report.created:
            await _await_leaders(admin, report.created)
        present = [spec for spec in specs if spec.name in existing]
        if present:
            described = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, spec.name) for spec in present]
            )
            policies = _cleanup_policies(described)
            for spec in present:
                report.existing.append(spec.name)
                want = "compact" if spec.compacted else "delete"
                have = policies.get(spec.name, "delete")
                if want not in have.split(","):
                    report.problems.append(f"{spec.name}: cleanup.policy is {have}, want {want}")
                on_progress(f"exists  {spec.name}")
    finally:
        await admin.close()
    return report


async def _await_leaders(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    """New topics are usable once every partition has a leader: wait for that (≤ 30 s)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(30):
            while True:
                described = await admin.describe_topics(names)
                partitions = [p for t in described for p in t["partitions"]]
                if partitions and all(p["leader"] >= 0 for p in partitions):
                    return
                await asyncio.sleep(0.1)


def _cleanup_policies(responses: list[Any]) -> dict[str, str]:
    policies: dict[str, str] = {}
    for response in responses:
        for resource in response.resources:
            _error_code, _error_message, _type, name, entries = resource[:5]
            for entry in entries:
                if entry[0] == "cleanup.policy":
                    policies[name] = entry[1]
    return policies


async def ensure_architecture_topics(
    kafka: KafkaSettings,
    topics: TopicSettings,
    on_progress: Callable[[str], None] = lambda _line: None,
) -> EnsureReport:
    """`ensure_topics` for every topic of the architecture, shaped by the topic settings."""
    return await ensure_topics(
        kafka,
        architecture_topics(topics),
        partitions=topics.partitions,
        replication_factor=topics.replication_factor,
        on_progress=on_progress,
    )
