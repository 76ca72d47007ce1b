"""Topic names and shapes, a worker's topics, and `ensure_topics` that creates them idempotently."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared.kafka import kafka_client_options

if TYPE_CHECKING:
    from shared.settings import KafkaSettings, TopicSettings

_TOPIC_ALREADY_EXISTS = 36  # Kafka protocol error code


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


@dataclass(frozen=True)
class WorkerTopics:
    """The topics one worker consumes and writes, and its consumer groups."""

    worker: str
    input: str  # its main input (the settings' input_topic)
    retry_tiers: tuple[str, ...]  # delays, shortest first: each is <worker>.retry.<delay>
    results: bool = True  # one result per event on <worker>.results.v1
    more_inputs: tuple[str, ...] = ()  # topics it consumes besides `input`, in the same group

    @property
    def inputs(self) -> tuple[str, ...]:
        """Every topic its input consumer subscribes to: `input` first, each once."""
        return tuple(dict.fromkeys((self.input, *self.more_inputs)))

    @property
    def consumer_group(self) -> str:
        return f"regbridge-{self.worker}"

    @property
    def retry_group(self) -> str:
        return f"{self.consumer_group}-retry"

    @property
    def retry(self) -> dict[str, str]:
        """Tier name → its topic, shortest first."""
        return {tier: retry_topic(self.worker, tier) for tier in self.retry_tiers}

    @property
    def dlq(self) -> str:
        return dlq_topic(self.worker)

    @property
    def results_topic(self) -> str | None:
        return results_topic(self.worker) if self.results else None

    def specs(
        self,
        topics: TopicSettings,
        input_purpose: str,
        more_purposes: Mapping[str, str] | None = None,
    ) -> list[TopicSpec]:
        """Every topic of this worker as regbridge wants it to exist; `more_purposes` says what
        each of `more_inputs` carries (default: `input_purpose`)."""
        name = self.worker
        purposes = {self.input: input_purpose} | dict(more_purposes or {})
        specs = [TopicSpec(t, purposes.get(t, input_purpose)) for t in self.inputs]
        if self.results_topic is not None:
            specs.append(TopicSpec(self.results_topic, f"one result per {name} event"))
        specs += [TopicSpec(t, f"{name} retries after {d}") for d, t in self.retry.items()]
        retention = {"retention.ms": str(topics.dlq_retention_ms)}
        specs.append(TopicSpec(self.dlq, f"{name} dead letters", configs=retention))
        return specs


def unique(specs: Iterable[TopicSpec]) -> list[TopicSpec]:
    """Each topic once (two workers may read one input), in first-seen order."""
    seen: dict[str, TopicSpec] = {}
    for spec in specs:
        seen.setdefault(spec.name, spec)
    return list(seen.values())


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
