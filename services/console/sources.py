"""What the console reads and does per worker, through the code the CLI uses: Kafka, the ledger."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from services.console.settings import ConsoleSettings
from shared.delivery.dlq_read import (
    DeadLetter,
    DlqFilter,
    TopicNotFoundError,
    read_dead_letter,
    read_dead_letters,
)
from shared.delivery.dlq_replay import ReplayReport, earlier_replays, replay
from shared.delivery.ledger import Ledger, ReplayAuditEntry
from shared.delivery.ledger_schema import replay_audit
from shared.settings import RegbridgeSettings
from shared.spec import Registry
from shared.topics import WorkerTopics


class NoLedgerError(LookupError):
    """The worker's ledger does not exist here (a SQLite file never created: it never ran)."""


@dataclass(frozen=True)
class WorkerSource:
    """One worker as the console reaches it: its settings (its ledger), topics and health URL."""

    name: str
    settings: RegbridgeSettings
    topics: WorkerTopics
    health_url: str

    async def open_ledger(self) -> Ledger:
        """The worker's ledger, as `regbridge dlq replay` opens it (a SQLite file must exist)."""
        url = self.settings.ledger_url()
        parsed = make_url(url)
        file = parsed.database if parsed.get_backend_name() == "sqlite" else None
        if file not in (None, "", ":memory:") and not await asyncio.to_thread(
            Path(str(file)).exists
        ):
            raise NoLedgerError(f"{self.name}: no ledger yet")
        return Ledger.from_url(url, pool_size=2)

    @asynccontextmanager
    async def ledger(self) -> AsyncIterator[Ledger]:
        """The worker's ledger for one use, closed after it."""
        ledger = await self.open_ledger()
        try:
            yield ledger
        finally:
            await ledger.close()

    async def dead_letters(self, filters: DlqFilter) -> list[DeadLetter]:
        try:
            return await read_dead_letters(self.settings.kafka, self.topics.dlq, filters=filters)
        except TopicNotFoundError:
            return []

    async def dead_letter(self, partition: int, offset: int) -> DeadLetter | None:
        return await read_dead_letter(self.settings.kafka, self.topics.dlq, partition, offset)

    async def replays_of(self, dl: DeadLetter) -> list[ReplayAuditEntry]:
        try:
            async with self.ledger() as ledger:
                return await earlier_replays(ledger, dl)
        except NoLedgerError:
            return []

    async def replayed(self) -> set[tuple[int, int]]:
        """(partition, offset) of each of its dead letters replayed so far."""
        try:
            async with self.ledger() as ledger:
                async with ledger.engine.connect() as conn:
                    audited = await conn.run_sync(lambda c: inspect(c).has_table(replay_audit.name))
                return await ledger.replayed_set(self.topics.dlq) if audited else set()
        except NoLedgerError:
            return set()

    async def replay(
        self, letters: list[DeadLetter], *, dry_run: bool, operator: str
    ) -> ReplayReport:
        """`regbridge dlq replay`'s code: the same refusal of a second replay, the same audit."""
        async with self.ledger() as ledger:
            return await replay(
                self.settings.kafka, ledger, letters, dry_run=dry_run, operator=operator
            )


def worker_sources(registry: Registry, settings: ConsoleSettings) -> dict[str, WorkerSource]:
    """Every worker of the registry with its own settings (its ledger URL, its topics)."""
    sources = {}
    for spec in registry:
        worker_settings: RegbridgeSettings = spec.load_settings()
        health = settings.health_url(spec.name, spec.health_port)
        sources[spec.name] = WorkerSource(
            spec.name, worker_settings, spec.topics(worker_settings), health
        )
    return sources
