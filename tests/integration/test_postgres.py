"""The ledger's production database is reachable the way the runtime will reach it."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

pytestmark = pytest.mark.integration


async def test_postgres_answers_through_sqlalchemy_asyncpg(postgres_url: str) -> None:
    engine = create_async_engine(postgres_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TEMP TABLE probe (id int primary key)"))
            await conn.execute(text("INSERT INTO probe VALUES (1) ON CONFLICT DO NOTHING"))
            await conn.execute(text("INSERT INTO probe VALUES (1) ON CONFLICT DO NOTHING"))
            count = (await conn.execute(text("SELECT count(*) FROM probe"))).scalar_one()
            version = (await conn.execute(text("SHOW server_version"))).scalar_one()
    finally:
        await engine.dispose()

    assert count == 1
    assert int(str(version).split(".")[0]) >= 13
