"""The console over real HTTP (uvicorn), Kafka and PostgreSQL: reveal, replay, roles, CSRF."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from services.console.audit import ConsoleAudit, console_audit
from shared.delivery.ledger_schema import replay_audit
from shared.topics import results_topic
from tests.support.console import PASSWORDS, PATIENT, ConsoleStack, console_stack
from tests.support.register_double import RegisterDouble
from tests.support.runtime_harness import read_topic

pytestmark = pytest.mark.integration
MASKED = "19121212****"


@pytest.fixture
async def stack(
    kafka_bootstrap: str,
    postgres_url: str,
    double: RegisterDouble,
    unique_name: str,
    tmp_path: Path,
) -> AsyncIterator[ConsoleStack]:
    async with console_stack(kafka_bootstrap, postgres_url, double, unique_name, tmp_path) as s:
        yield s


def _csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


@asynccontextmanager
async def _signed_in(
    stack: ConsoleStack, name: str
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with httpx.AsyncClient(base_url=stack.url, follow_redirects=True, timeout=60) as client:
        token = _csrf(await client.get("/login"))
        form = {"name": name, "password": PASSWORDS[name], "csrf_token": token}
        page = await client.post("/login", data=form)
        assert page.status_code == 200, page.text
        assert f"{name} (" in page.text
        yield client, _csrf(page)


async def _audit_rows(stack: ConsoleStack, target: str) -> list[tuple[str, str, str]]:
    audit = ConsoleAudit.from_url(stack.audit_url)
    try:
        async with audit.engine.connect() as conn:
            query = select(console_audit).where(console_audit.c.target == target)
            rows = (await conn.execute(query)).all()
    finally:
        await audit.close()
    return [(r.actor, r.action, r.reason) for r in rows]


async def _replays(stack: ConsoleStack) -> list[str]:
    async with stack.ledger.engine.connect() as conn:
        query = select(replay_audit.c.replayed_by).where(replay_audit.c.dlq_topic == stack.dlq)
        return [row.replayed_by for row in await conn.execute(query)]


async def test_an_operator_sees_reveals_dry_runs_and_replays_a_dead_letter(
    stack: ConsoleStack, kafka_bootstrap: str
) -> None:
    async with _signed_in(stack, "olle") as (client, token):
        overview = await client.get("/")
        assert f'id="worker-{stack.worker}"' in overview.text
        assert ">ready<" in overview.text

        listed = await client.get("/dead-letters", params={"worker": stack.worker})
        assert "1 dead letters match" in listed.text
        assert stack.record_id in listed.text
        link = re.search(rf'href="(/dead-letters/{stack.worker}/(\d+)/(\d+))"', listed.text)
        assert link is not None
        path, position = link.group(1), f"{stack.worker}:{link.group(2)}:{link.group(3)}"
        target = f"{stack.dlq}/{link.group(2)}/{link.group(3)}"

        page = await client.get(path)
        assert "register_rejected" in page.text
        assert "regbridge-register-status" in page.text  # the story headers
        assert MASKED in page.text
        assert PATIENT not in page.text

        revealed = await client.post(
            path + "/reveal", data={"csrf_token": token, "number": "1", "reason": "INC-7 check"}
        )
        assert revealed.status_code == 200
        assert PATIENT in revealed.text
        assert await _audit_rows(stack, target) == [("olle", "reveal", "INC-7 check")]

        plan = await client.post("/replay/plan", data={"csrf_token": token, "position": position})
        assert f"would replay {target} → {stack.input_topic}" in plan.text
        assert await _replays(stack) == []  # a dry run writes nothing

        done = await client.post(
            "/replay/run",
            data={"csrf_token": token, "position": position, "reason": "register fixed"},
        )
        assert "replayed 1, refused 0" in done.text
        assert await _replays(stack) == ["console:olle"]  # the CLI's audit row, the same code
        assert ("olle", "replay", "register fixed") in await _audit_rows(stack, target)

        results = await read_topic(kafka_bootstrap, results_topic(stack.worker), at_least=2)
        statuses = [r.value for r in results if r.key == stack.record_id.encode()]
        assert any(b'"accepted"' in (value or b"") for value in statuses)
        trace = await client.get("/trace", params={"record_id": stack.record_id})
        assert "accepted" in trace.text
        assert "dead_lettered" in trace.text
        assert "console:olle" in trace.text

        again = await client.post("/replay/plan", data={"csrf_token": token, "position": position})
        assert f"refused {target}: already replayed" in again.text
        assert "0 would be replayed" in again.text


async def test_a_viewer_reads_masked_and_may_not_replay_or_reveal(stack: ConsoleStack) -> None:
    async with _signed_in(stack, "vera") as (client, token):
        listed = await client.get("/dead-letters", params={"worker": stack.worker})
        link = re.search(rf'href="(/dead-letters/{stack.worker}/(\d+)/(\d+))"', listed.text)
        assert link is not None
        assert 'name="position"' not in listed.text  # no selection for a replay
        page = await client.get(link.group(1))
        assert MASKED in page.text
        assert PATIENT not in page.text
        assert "/reveal" not in page.text
        position = f"{stack.worker}:{link.group(2)}:{link.group(3)}"
        form = {"csrf_token": token, "position": position, "reason": "curious", "number": "1"}
        for endpoint in [link.group(1) + "/reveal", "/replay/plan", "/replay/run"]:
            refused = await client.post(endpoint, data=form)
            assert refused.status_code == 403, endpoint
            assert PATIENT not in refused.text
    assert await _replays(stack) == []
    target = f"{stack.dlq}/{link.group(2)}/{link.group(3)}"
    assert await _audit_rows(stack, target) == []


async def test_a_post_without_its_csrf_token_is_refused(stack: ConsoleStack) -> None:
    async with _signed_in(stack, "olle") as (client, _token):
        position = f"{stack.worker}:0:0"
        for endpoint in ["/replay/plan", "/replay/run", "/logout"]:
            answer = await client.post(endpoint, data={"position": position, "reason": "x"})
            assert answer.status_code == 403, endpoint
        assert "olle (operator)" in (await client.get("/")).text
    await asyncio.sleep(0)
    assert await _replays(stack) == []
