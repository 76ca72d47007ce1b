"""The console over real HTTP (uvicorn), Kafka and PostgreSQL: reveal, replay, roles, CSRF."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from services.catalog.settings import CatalogSettings
from services.catalog.snapshot import Entry, Listed, publish_snapshot
from services.catalog.spec import HSA_IMPORT
from services.catalog.spec import SPEC as CATALOG
from services.catalog.topic_state import NOTIFICATION, stamp
from services.catalog.writer import CatalogWriter
from services.console.accounts import Account, hash_password, parse_accounts
from services.console.app import create_app
from services.console.audit import ConsoleAudit, console_audit
from services.console.settings import ConsoleSettings
from services.console.sources import WorkerSource
from services.vgpv.format import file_name as vgpv_file_name
from services.vgpv.settings import VgpvSettings
from services.vgpv.spec import SPEC as VGPV
from shared.catalog.models import CareUnit
from shared.delivery.ledger import Ledger
from shared.delivery.ledger_schema import replay_audit
from shared.delivery.worker import EventIdentity
from shared.files.register import FileKey, Placement, Receipt, RowVerdict
from shared.files.state import FileState, Intake
from shared.schedule import Period, SlotClaims
from shared.schedule.slots import slot_id
from shared.settings import KafkaSettings, TopicSettings
from shared.topics import TopicSpec, ensure_topics, results_topic
from tests.support.catalog_values import care_unit, hsa, vaccine
from tests.support.console import PASSWORDS, PATIENT, ConsoleStack, console_stack, serving
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
    async with _signed_in_to(stack.url, name) as signed:
        yield signed


@asynccontextmanager
async def _signed_in_to(url: str, name: str) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with httpx.AsyncClient(base_url=url, follow_redirects=True, timeout=60) as client:
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


# --- the catalog and file-delivery pages --------------------------------------------------------


@dataclass(frozen=True)
class RegistersStack:
    url: str
    catalog: CatalogSettings
    files_worker: str  # a file register (VGPV's settings) whose file state the test filled
    slot_owner: str  # who ran the catalog's scheduled import


def _accounts() -> dict[str, Account]:
    return parse_accounts(
        "\n".join(
            [
                f"olle operator {hash_password(PASSWORDS['olle'])}",
                f"vera viewer {hash_password(PASSWORDS['vera'])}",
            ]
        )
    )


@pytest.fixture
async def registers(
    kafka_bootstrap: str, postgres_url: str, unique_name: str
) -> AsyncIterator[RegistersStack]:
    """A console over a catalog sync (its topics, its ledger's import slots) and a file register
    (its file state), both on the real Kafka and PostgreSQL; nothing in them yet."""
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    topics = TopicSettings(
        care_units=f"catalog.care-units.{unique_name}",
        vaccines=f"catalog.vaccines.{unique_name}",
        kombikas=f"catalog.kombikas.{unique_name}",
    )
    specs = [TopicSpec(t, "", compacted=True) for t in (topics.care_units, topics.vaccines)]
    specs.append(TopicSpec(topics.kombikas, "", compacted=True))
    await ensure_topics(kafka, specs, partitions=3, replication_factor=1)
    catalog = CatalogSettings(
        kafka=kafka,
        topics=topics,
        database_url=postgres_url,  # type: ignore[arg-type]
        input_topic=f"catalog.hsa-notifications.{unique_name}",
    )
    worker = f"files{unique_name}".replace("-", "")[:40]
    vgpv = VgpvSettings(kafka=kafka, database_url=postgres_url)  # type: ignore[arg-type]
    sources = {
        "catalog": WorkerSource("catalog", catalog, CATALOG.topics(catalog), "http://127.0.0.1:9"),
        worker: WorkerSource(worker, vgpv, VGPV.topics(vgpv), "http://127.0.0.1:9"),
    }
    console = ConsoleSettings(
        session_secret="x" * 40,  # type: ignore[arg-type]
        secure_cookies=False,
        database_url=postgres_url,  # type: ignore[arg-type]
    )
    with serving(create_app(console, sources, _accounts())) as url:
        yield RegistersStack(url, catalog, worker, f"catalog-{unique_name}")


async def _catalog_filled(stack: RegistersStack) -> tuple[str, str, str]:
    """Two imports (the second removes a unit), then a notification and a value no worker can
    read; a vaccine; the first import's slot finished in the ledger. The HSA-ids of a unit kept,
    one removed and one unreadable."""
    settings = stack.catalog
    topics = settings.topics
    units = [care_unit(n, name=f"Vårdcentralen Konsol {n}") for n in range(1, 5)]
    kept, removed, unreadable = units[0].hsa_id, units[3].hsa_id, hsa(99)

    def entries(values: list[CareUnit]) -> Listed:
        async def each() -> AsyncIterator[Entry]:
            for unit in values:
                yield Entry(unit.hsa_id, unit.model_dump_json(exclude_none=True).encode())

        return Listed(each())

    writer = CatalogWriter(settings.kafka)
    await writer.start()
    ledger = Ledger.from_url(settings.ledger_url())
    try:
        first = await publish_snapshot(settings.kafka, writer, topics.care_units, entries(units))
        claims = SlotClaims(ledger.engine)
        await claims.create_schema()
        now = datetime.now(UTC)
        slot = slot_id(HSA_IMPORT, now.replace(second=0, microsecond=0) - timedelta(minutes=7))
        assert await claims.claim(slot, stack.slot_owner, now)
        await claims.finish(slot, first.summary(), now)
        await publish_snapshot(
            settings.kafka, writer, topics.care_units, entries(units[:3]), max_removal_share=1
        )
        renamed = units[1].model_copy(update={"name": "Vårdcentralen Omdöpt"})
        value = renamed.model_dump_json(exclude_none=True).encode()
        await writer.send(topics.care_units, renamed.hsa_id, value, stamp(NOTIFICATION, now))
        await writer.send(topics.care_units, unreadable, b'{"hsa_id": "not a unit"}', [])
        shot = vaccine("20010101000001", ("AB12", date(2030, 1, 1)))
        listed = [Entry(shot.npl_id, shot.model_dump_json(exclude_none=True).encode())]

        async def vaccines() -> AsyncIterator[Entry]:
            for entry in listed:
                yield entry

        await publish_snapshot(settings.kafka, writer, topics.vaccines, Listed(vaccines()))
        await writer.flush()
    finally:
        await writer.stop()
        await ledger.close()
    return kept, removed, unreadable


def _cell(page: str, row_id: str, css: str) -> str:
    within = r"(?:(?!</tr>).)*?"  # in that row
    cell = rf'<tr id="{re.escape(row_id)}">{within}<td class="{css}[^"]*">([^<]*)<'
    found = re.search(cell, page, re.DOTALL)
    assert found is not None, row_id
    return found.group(1).strip()


async def test_the_catalog_page_shows_counts_imports_and_one_unit_as_the_workers_see_it(
    registers: RegistersStack,
) -> None:
    kept, removed, unreadable = await _catalog_filled(registers)
    topics = registers.catalog.topics

    async with _signed_in_to(registers.url, "vera") as (client, _token):  # a viewer may read it
        page = (await client.get("/catalog")).text
        assert 'href="/catalog"' in page  # in the navigation
        # 5 keys written to the unit topic, one removed since: 4 present (one unreadable)
        assert _cell(page, f"topic-{topics.care_units}", "present") == "4"
        assert _cell(page, f"topic-{topics.vaccines}", "present") == "1"
        assert _cell(page, f"topic-{topics.kombikas}", "present") == "0"
        # the scheduled import from the ledger: who, and its summary (source, counts)
        assert registers.slot_owner in page
        assert f"{topics.care_units}: 4 seen, 4 published" in page
        # the writers on the topic: two imports (one removal), one notification, one unstamped
        section = page[page.index('id="writers"') :]
        writers = section[section.index(f"<caption>{topics.care_units}</caption>") :]
        writers = writers[: writers.index("</table>")]
        assert len(re.findall(r"<td>import:[0-9a-f]+</td>", writers)) == 2
        assert re.search(r"<td>import:[0-9a-f]+</td><td>1</td><td>1</td>", writers)  # removal
        assert "<td>notification</td><td>1</td><td>0</td>" in writers
        assert "<td>-</td><td>1</td><td>0</td>" in writers  # written without the headers

        shown = (await client.get("/catalog", params={"hsa_id": kept})).text
        assert f"{kept} Vårdcentralen Konsol 1" in shown
        assert '<span id="unit-active">active</span>' in shown
        assert "Region Stockholm" in shown
        renamed = (await client.get("/catalog", params={"hsa_id": hsa(2)})).text
        assert "Vårdcentralen Omdöpt" in renamed  # the notification is what workers read
        assert "written by notification" in renamed
        gone = (await client.get("/catalog", params={"hsa_id": removed})).text
        assert 'id="unit-removed"' in gone
        bad = (await client.get("/catalog", params={"hsa_id": unreadable})).text
        assert 'id="unit-skipped"' in bad
        absent = (await client.get("/catalog", params={"hsa_id": hsa(12345)})).text
        assert 'id="unit-absent"' in absent


async def _files_filled(stack: RegistersStack, period: Period) -> tuple[str, str]:
    """Two owners' files for `period`: one delivered and partly accepted (one row refused, its
    reason quoting the patient), one built and not delivered. Their names."""
    ledger = Ledger.from_url(stack.catalog.ledger_url())
    try:
        await ledger.create_schema()
        state = FileState(ledger.engine, stack.files_worker)
        await state.create_schema()
        at = datetime.now(UTC)
        items = [
            _intake(f"{stack.files_worker}-r{n}", period, owner)
            for n, owner in enumerate([OWNER_A, OWNER_A, OWNER_B])
        ]
        assert await state.store(items, at) == {}
        delivered = await state.build(FileKey(period, OWNER_A), at, vgpv_file_name)
        waiting = await state.build(FileKey(period, OWNER_B), at, vgpv_file_name)
        assert delivered is not None
        assert waiting is not None
        refusal = RowVerdict(2, False, "E17", f"patient {PATIENT} is not listed at the unit")
        receipt = Receipt(
            delivered.name, f"kvitto-{stack.files_worker}", at, "partly_accepted", None,
            (refusal,), '{"status": "partly_accepted"}',
        )  # fmt: skip
        await state.receive(delivered, receipt, at)
        await state.mark(delivered.name, "done", at)
    finally:
        await ledger.close()
    return delivered.name, waiting.name


OWNER_A, OWNER_B = "SE2321000131-E000000000101", "SE2321000131-E000000000102"


def _intake(record_id: str, period: Period, owner: str) -> Intake:
    identity = EventIdentity(str(uuid.uuid4()), record_id, 1, "create")
    placement = Placement(FileKey(period, owner), {"diagnoser": ["J069"]})
    return Intake(identity, placement, False, f"raw {record_id}".encode())


async def test_the_file_deliveries_page_shows_periods_windows_receipts_and_refused_rows(
    registers: RegistersStack,
) -> None:
    # a period whose window has closed (two months back)
    period = Period.of(datetime.now(UTC).date()).previous().previous()
    delivered, waiting = await _files_filled(registers, period)
    worker = registers.files_worker

    async with _signed_in_to(registers.url, "vera") as (client, _token):  # a viewer may read it
        overview = (await client.get("/files")).text
        assert 'href="/files"' in overview  # in the navigation
        row = f"period-{worker}-{period}"
        assert _cell(overview, row, "window") == "closed"
        assert _cell(overview, row, "count") == "2"
        assert _cell(overview, row, "receipts") == "partly_accepted 1"
        assert _cell(overview, row, "refused") == "1"
        window = VgpvSettings().window().window(period)
        assert window.opens_at.strftime("%Y-%m-%d %H:%M") in overview

        listed = (await client.get(f"/files/{worker}/period/{period}")).text
        assert delivered in listed
        assert waiting in listed
        assert f'<dd id="not-accepted">{OWNER_B}</dd>' in listed  # its file is not delivered
        assert "partly_accepted" in listed

        shown = (await client.get(f"/files/{worker}/file/{delivered}")).text
        assert f"kvitto-{worker}" in shown
        assert "E17" in shown
        assert MASKED in shown  # the register's reason, its identity number masked
        assert PATIENT not in shown
        missing = await client.get(f"/files/{worker}/file/VGPV_none_000000_001.txt")
        assert missing.status_code == 404
        assert (await client.get(f"/files/catalog/period/{period}")).status_code == 404
    async with httpx.AsyncClient(base_url=registers.url, timeout=60) as anonymous:
        for path in ("/files", f"/files/{worker}/file/{delivered}", "/catalog"):
            refused = await anonymous.get(path)
            assert (refused.status_code, refused.headers["location"]) == (303, "/login"), path
        # the probes answer without a login: ready while the audit database answers
        assert (await anonymous.get("/health/live")).text == "live"
        assert (await anonymous.get("/health/ready")).text == "ready"
