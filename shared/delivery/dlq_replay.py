"""Replaying dead letters to their topics, every acknowledged replay audited in the ledger."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from sqlalchemy import inspect

from shared.delivery import headers as h
from shared.delivery.clock import Clock, SystemClock
from shared.delivery.dlq_read import DeadLetter, Progress
from shared.delivery.ledger import Ledger, ReplayAuditEntry
from shared.delivery.ledger_schema import replay_audit
from shared.kafka import kafka_client_options
from shared.settings import KafkaSettings

WINDOW = 100  # replays in flight before their acks are awaited and their audit rows written


class ReplayFailedError(RuntimeError):
    """Kafka failed mid-replay; `report` holds what was replayed (and audited) before that."""

    def __init__(self, report: ReplayReport, cause: Exception) -> None:
        super().__init__(f"replay stopped after {len(report.replayed)}: {cause}")
        self.report = report


@dataclass(frozen=True)
class Refusal:
    dead_letter: DeadLetter
    reason: str


@dataclass
class ReplayReport:
    """What a replay did (or, in a dry run, would do)."""

    batch_id: str
    dry_run: bool
    replayed: list[tuple[DeadLetter, str]] = field(default_factory=list)  # (dead letter, target)
    refused: list[Refusal] = field(default_factory=list)


def replay_headers(dl: DeadLetter) -> list[tuple[str, bytes]]:
    """The journal system's headers as they came, plus where this replay comes from."""
    return [*dl.foreign_headers(), (h.REPLAYED_FROM, dl.position.encode())]


async def _has_audit(ledger: Ledger) -> bool:
    async with ledger.engine.connect() as conn:
        return await conn.run_sync(lambda c: inspect(c).has_table(replay_audit.name))


async def earlier_replays(ledger: Ledger, dl: DeadLetter) -> list[ReplayAuditEntry]:
    """Every replay of `dl` so far, oldest first ([] on a ledger that never replayed anything)."""
    if not await _has_audit(ledger):
        return []
    return await ledger.replays_of(dl.topic, dl.partition, dl.offset)


async def _replayed_before(ledger: Ledger, topic: str, *, dry_run: bool) -> set[tuple[int, int]]:
    if dry_run:  # a dry run does not even create the audit table
        if not await _has_audit(ledger):
            return set()
    else:
        await ledger.create_schema()
    return await ledger.replayed_set(topic)


async def _refusal(ledger: Ledger, dl: DeadLetter) -> Refusal:
    earlier = await ledger.replays_of(dl.topic, dl.partition, dl.offset)
    when = ", ".join(f"{e.replayed_at:%Y-%m-%d %H:%M} UTC by {e.replayed_by}" for e in earlier)
    return Refusal(dl, f"already replayed ({when}); use --force to replay again")


async def replay(
    kafka: KafkaSettings,
    ledger: Ledger,
    dead_letters: Sequence[DeadLetter],
    *,
    to: str | None = None,
    dry_run: bool = False,
    rate: float | None = None,
    force: bool = False,
    operator: str,
    clock: Clock | None = None,
    progress: Progress | None = None,
) -> ReplayReport:
    """Re-publish each dead letter's original key and value, in (partition, offset) order."""
    if rate is not None and rate <= 0:
        raise ValueError("rate must be positive (messages per second)")
    clock = clock or SystemClock()
    report = ReplayReport(batch_id=str(uuid.uuid4()), dry_run=dry_run)
    done: set[tuple[str, int, int]] = set()
    for topic in sorted({dl.topic for dl in dead_letters}):
        before = await _replayed_before(ledger, topic, dry_run=dry_run)
        done |= {(topic, partition, offset) for partition, offset in before}
    plan: list[tuple[DeadLetter, str]] = []
    for dl in sorted(dead_letters, key=lambda d: (d.topic, d.partition, d.offset)):
        target = to or dl.origin_topic
        if target is None:
            report.refused.append(Refusal(dl, f"no {h.ORIGIN_TOPIC} header; give a target topic"))
        elif (dl.topic, dl.partition, dl.offset) in done and not force:
            report.refused.append(await _refusal(ledger, dl))
        else:
            plan.append((dl, target))
    if dry_run:
        report.replayed = plan
        return report
    producer = AIOKafkaProducer(**kafka_client_options(kafka), acks="all", enable_idempotence=True)
    await producer.start()
    pending: list[tuple[DeadLetter, str, Any]] = []
    audit = partial(_settle, ledger, report, operator=operator, force=force, clock=clock)
    try:
        started = clock.now()
        for index, (dl, target) in enumerate(plan):
            if rate is not None and index:
                elapsed = (clock.now() - started).total_seconds()
                await clock.sleep(index / rate - elapsed)
            sent = await producer.send(target, dl.value, dl.key, headers=replay_headers(dl))
            pending.append((dl, target, sent))
            if len(pending) >= (1 if rate is not None else WINDOW):
                await audit(pending)
                if progress is not None:
                    progress(len(report.replayed), len(plan))
        await audit(pending)
    except KafkaError as exc:
        raise ReplayFailedError(report, exc) from exc
    finally:
        await producer.stop()
    if progress is not None:
        progress(len(report.replayed), len(plan))
    return report


async def _settle(
    ledger: Ledger,
    report: ReplayReport,
    pending: list[tuple[DeadLetter, str, Any]],
    *,
    operator: str,
    force: bool,
    clock: Clock,
) -> None:
    """Await the broker's acks (acks=all); audit each acknowledged replay, even if one failed."""
    acked: list[tuple[DeadLetter, str]] = []
    try:
        for dl, target, sent in pending:
            await sent
            acked.append((dl, target))
    finally:
        pending.clear()
        await ledger.audit_replay(
            [
                ReplayAuditEntry(
                    dlq_topic=dl.topic,
                    dlq_partition=dl.partition,
                    dlq_offset=dl.offset,
                    event_id=dl.event_id,
                    record_id=dl.record_id,
                    target_topic=target,
                    replayed_by=operator,
                    replayed_at=clock.now(),
                    batch_id=report.batch_id,
                    forced=force,
                )
                for dl, target in acked
            ]
        )
        report.replayed.extend(acked)
