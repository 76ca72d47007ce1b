"""The console's audit trail: each reveal and replay: who, when, why."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import BigInteger, Column, Integer, MetaData, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.delivery.ledger import Ledger
from shared.delivery.ledger_schema import UtcDateTime

metadata = MetaData()

console_audit = Table(
    "regbridge_console_audit",
    metadata,
    Column(
        "id",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", Text, nullable=False),  # the account or OIDC subject's name
    Column("role", Text, nullable=False),
    Column("action", Text, nullable=False),  # reveal, replay, replay_refused
    Column("target", Text, nullable=False),  # a dead letter's position (never a personal number)
    Column("reason", Text, nullable=False),
    Column("detail", Text),  # the replay's batch and target topic; which value was revealed (#n)
    sqlite_autoincrement=True,
)


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    role: str
    action: str
    target: str
    reason: str
    detail: str | None = None


class ConsoleAudit:
    """The audit table in the console's database (the ledger's, in production)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    def from_url(cls, url: str) -> ConsoleAudit:
        return cls(Ledger.from_url(url, pool_size=5).engine)  # SQLite gets the ledger's pragmas

    async def create_schema(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def write(self, entries: list[AuditEntry]) -> None:
        """Written before the page answers: an audit that fails fails the request."""
        if entries:
            async with self.engine.begin() as conn:
                await conn.execute(console_audit.insert(), [asdict(e) for e in entries])

    async def latest(self, limit: int = 100) -> list[AuditEntry]:
        query = select(console_audit).order_by(console_audit.c.id.desc()).limit(limit)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [AuditEntry(**{k: v for k, v in r._mapping.items() if k != "id"}) for r in rows]

    async def close(self) -> None:
        await self.engine.dispose()
