"""VGPV month: a large region's month of visits stored, built and delivered by the file runtime.

    .venv/bin/python -m benchmarks.vgpv_month [--visits 700000] [--units 200] [--partitions 12]
        [--measured-intake N]

January 2027's visits, spread evenly over `--units` open units of VG Primärvård and Vårdval Rehab
(KIV of an HSA directory of 20,000 units), on the local broker, a PostgreSQL ledger and state,
and the VGPV sandbox in a process of its own (mutual TLS, its clock at 2027-02-02 10:00, inside
January's window). Each phase runs in a process of its own, under the launcher of
`benchmarks.processes` (peak RSS and CPU from `os.wait4`):

  intake     the first `--measured-intake` visits (default: all) published to the input topic and
             stored through the delivery runtime (`FileIntake`, `results_on_accept=False`, the
             settings' batches), timed until every one is in the state; the rest, if any, stored
             directly with `FileState.store` in batches of 1,000 (not through the runtime)
  deliver    `FileDelivery.run(2027-01)` as `regbridge vgpv deliver-now` wires it: every unit's
             file built (INSERT … SELECT), rendered from the database a page at a time, uploaded,
             its receipt stored, a result per row published to Kafka
  again      the same run a second time, nothing changed (it builds nothing)
  baseline   the floor of the same work without the runtime: each file's rows read beforehand
             (untimed) into a list, rendered with `services.vgpv.format.render` and uploaded with a
             bare `VgpvClient` to the sandbox, reset in between so the names are new to it

The sandbox's holding for January must count every visit; it is printed, nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from benchmarks.processes import CLI, launch, report

HSA_UNITS, SEED = 20_000, 1
STOCKHOLM = ZoneInfo("Europe/Stockholm")
IN_JANUARYS_WINDOW = datetime(2027, 2, 2, 10, 0, tzinfo=STOCKHOLM)
FILL_BATCH = 1_000
TOP_STATEMENTS = 6  # the delivery run's slowest SQL statements (by total time) are printed
NAME = "vgpv"  # the register: topics, ledger namespace and state go by it


# --- the visits ---------------------------------------------------------------------------------


def vardval_units(count: int) -> list[tuple[str, str]]:
    """(HSA-id, area) of the first `count` KIV units of VG Primärvård or Vårdval Rehab that are
    open (no hsaEndDate) and that the worker places all through January 2027."""
    from services.sandboxes.kiv import KivDirectory
    from services.vgpv.units import UnitRules, reporting_unit
    from shared.delivery.errors import DeliveryError, NotOursError
    from shared.schedule import Period
    from tests.support.vgpv import kiv_catalog

    catalog, rules, month = kiv_catalog(HSA_UNITS, SEED), UnitRules(), Period(2027, 1)
    found: list[tuple[str, str]] = []
    for record in KivDirectory(HSA_UNITS, SEED).iter_units():
        area = record.get("vgrVardValOmrade")
        if area not in ("primarvard", "rehab") or "hsaEndDate" in record:
            continue
        hsa_id = str(record["hsaIdentity"])
        try:
            for day in (month.first_day, month.last_day):
                reporting_unit("unit", hsa_id, day, catalog, rules)
        except (DeliveryError, NotOursError):
            continue
        found.append((hsa_id, str(area)))
        if len(found) == count:
            break
    return found


def visit(i: int, units: list[tuple[str, str]], run: str) -> bytes:
    """Visit `i` (a create) at unit i mod units, on a January day; a rehab unit's visits meet a
    physiotherapist or an OT (the register refuses others)."""
    from services.vgpv import dev
    from shared.identifiers import synthetic_personnummer
    from tests.support.vgpv import vgr_visit

    rng = random.Random(f"{run}:{i}")  # noqa: S311 - benchmark data, not secrets
    hsa_id, area = units[i % len(units)]
    rehab = area == "rehab"
    day = date(2027, 1, 1) + timedelta(days=(i // len(units)) % 31)
    minute = rng.randrange(7 * 60, 17 * 60, 5)
    visited = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=STOCKHOLM)
    born = date(1930, 1, 1) + timedelta(days=rng.randrange(30_000))
    event = vgr_visit(
        f"{run}-{i:07d}",
        hsa_id,
        day.isoformat(),
        patient={"id_type": "PNR", "id": synthetic_personnummer(rng, born)},
        visited_at=visited.isoformat(),
        visit_type=rng.choice(dev.VISIT_TYPES),
        professions=[rng.choice(dev.REHAB_PROFESSIONS if rehab else dev.PRIMARY_CARE_PROFESSIONS)],
        akut="J" if rng.random() < 0.1 else "N",
        diagnoses=[rng.choice(dev.REHAB_DIAGNOSES if rehab else dev.DIAGNOSES)],
        procedures=[{"code": rng.choice(dev.PROCEDURES), "performed_on": day.isoformat()}],
    )
    return json.dumps(event).encode()


async def publish_visits(
    bootstrap: str, topic: str, indexes: range, units: list[tuple[str, str]], run: str
) -> None:
    """Visits `indexes`, keyed by record id, generated as they are sent (never all in memory)."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        sends: list[asyncio.Future[Any]] = []
        for i in indexes:
            key = f"{run}-{i:07d}".encode()
            sends.append(await producer.send(topic, visit(i, units, run), key=key))
            if len(sends) >= 10_000:
                await asyncio.gather(*sends)
                sends.clear()
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


# --- the children -------------------------------------------------------------------------------


def settings_of(spec: dict[str, Any]) -> Any:
    """VgpvSettings as the worker would read them from its environment."""
    from pydantic import SecretStr

    from services.vgpv.settings import VgpvSettings
    from shared.settings import KafkaSettings

    certs = Path(spec["certs"])
    return VgpvSettings(
        kafka=KafkaSettings(bootstrap_servers=spec["bootstrap"]),
        input_topic=spec["topic"],
        instance_id="bench-vgpv",
        database_url=SecretStr(spec["database"]),
        base_url=spec["url"],
        client_cert=str(certs / "client.pem"),
        client_key=str(certs / "client.key"),
        ca_bundle=str(certs / "ca.pem"),
    )


def quiet() -> None:
    """Warnings and errors only, as JSON on stderr (stdout carries the child's answer)."""
    from shared.logging import configure_logging
    from shared.settings import LogFormat

    configure_logging("WARNING", LogFormat.JSON)


async def stored_count(state: Any) -> int:
    from sqlalchemy import func, select

    from shared.files.state import file_records

    query = select(func.count()).where(file_records.c.register == state.register)
    async with state.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def intake(spec: dict[str, Any]) -> dict[str, Any]:
    """The measured visits through the runtime until all are stored; then the rest, directly."""
    from services.vgpv.spec import register
    from shared.delivery.clock import SystemClock
    from shared.delivery.ledger import Ledger
    from shared.delivery.runtime import DeliveryRuntime
    from shared.files.intake import FileIntake
    from shared.files.state import FileState, Intake
    from shared.files.wiring import file_topics
    from tests.support.vgpv import kiv_catalog

    quiet()
    settings = settings_of(spec)
    vgpv = register(settings, kiv_catalog(HSA_UNITS, SEED))
    ledger = Ledger.from_url(settings.ledger_url())
    await ledger.create_schema()
    state = FileState(ledger.engine, NAME)
    await state.create_schema()
    clock = SystemClock()
    runtime = DeliveryRuntime(
        FileIntake(vgpv, state, clock),
        ledger,
        settings.kafka,
        file_topics(NAME, settings),
        settings.runtime,
        clock=clock,
        results_on_accept=False,
    )
    measured, total = spec["measured"], spec["visits"]
    started = time.perf_counter()
    task = asyncio.create_task(runtime.run())
    joined = first = None
    stored, last, since, noted = 0, -1, time.monotonic(), time.monotonic()
    try:
        while stored < measured:
            await asyncio.sleep(0.5)
            if task.done():
                task.result()
                raise RuntimeError("the runtime stopped before every visit was stored")
            if joined is None and runtime.status.assigned:
                joined = time.perf_counter() - started
            stored = await stored_count(state)
            if first is None and stored:
                first = time.perf_counter() - started
            if stored != last:
                last, since = stored, time.monotonic()
            elif time.monotonic() - since > 180:
                raise RuntimeError(f"the intake stalled at {stored} of {measured} stored")
            if time.monotonic() - noted > 30:
                noted = time.monotonic()
                elapsed = time.perf_counter() - started
                print(
                    f"intake: {stored:,} of {measured:,} stored, {elapsed:.0f} s", file=sys.stderr
                )
        intake_s = time.perf_counter() - started
    finally:
        runtime.stop()
        await asyncio.wait_for(task, 120)
    fill_s = 0.0
    if total > measured:  # the rest straight into the state: parse and place as the intake does
        units, run = [(hsa_id, area) for hsa_id, area in spec["units"]], spec["run"]
        started = time.perf_counter()
        for start in range(measured, total, FILL_BATCH):
            items = []
            for i in range(start, min(start + FILL_BATCH, total)):
                raw = visit(i, units, run)
                identity, event = vgpv.parse(raw)
                items.append(Intake(identity, vgpv.place(event), False, raw))
            refused = await state.store(items, clock.now())
            if refused:
                raise RuntimeError(f"the state refused {len(refused)} visits: {refused}")
        fill_s = time.perf_counter() - started
    count = await stored_count(state)
    await vgpv.aclose()
    await ledger.close()
    return {
        "intake_s": intake_s,
        "joined_s": joined,
        "first_stored_s": first,
        "fill_s": fill_s,
        "stored": count,
    }


def statement_times(engine: Any) -> dict[str, list[float]]:
    """Each SQL statement's [calls, seconds] on `engine` from now on, by its text."""
    from sqlalchemy import event

    times: dict[str, list[float]] = {}

    def before(conn: Any, _cursor: Any, _sql: str, *_: Any) -> None:
        conn.info.setdefault("started", []).append(time.perf_counter())

    def after(conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        seconds = time.perf_counter() - conn.info["started"].pop()
        noted = times.setdefault(" ".join(sql.split()), [0, 0.0])
        noted[0] += 1
        noted[1] += seconds

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    event.listen(engine.sync_engine, "after_cursor_execute", after)
    return times


def timed(call: Callable[..., Awaitable[Any]], spent: list[float]) -> Callable[..., Any]:
    """`call`, its every duration noted in `spent`."""

    async def timing(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await call(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - started)

    return timing


async def deliver(spec: dict[str, Any]) -> dict[str, Any]:
    """One delivery run of January, wired as `regbridge vgpv deliver-now` wires it (the register's
    client only: the run places nothing, so no catalog is loaded), its parts timed."""
    from prometheus_client import CollectorRegistry

    from services.vgpv.spec import register
    from shared.catalog.index import CatalogIndex
    from shared.delivery.clock import SystemClock
    from shared.delivery.ledger import Ledger
    from shared.files.delivery import FileMetrics
    from shared.files.state import FileState
    from shared.files.wiring import file_parts
    from shared.schedule import Period

    quiet()
    settings = settings_of(spec)
    ledger = Ledger.from_url(settings.ledger_url())
    state = FileState(ledger.engine, NAME)
    vgpv = register(settings, CatalogIndex())
    spent: dict[str, list[float]] = {"build": [], "deliver": [], "receive": [], "report": []}
    sent = [0]
    upload = vgpv.deliver

    async def counted(header: Any, content: AsyncIterator[bytes]) -> Any:
        async def pieces() -> AsyncIterator[bytes]:
            async for piece in content:
                sent[0] += len(piece)
                yield piece

        return await upload(header, pieces())

    vgpv.deliver = timed(counted, spent["deliver"])  # type: ignore[method-assign]
    state.build = timed(state.build, spent["build"])  # type: ignore[method-assign]
    state.receive = timed(state.receive, spent["receive"])  # type: ignore[method-assign]
    statements = statement_times(ledger.engine)
    metrics = FileMetrics(CollectorRegistry())
    try:
        async with file_parts(vgpv, settings, state, SystemClock(), metrics) as parts:
            delivery = parts.delivery
            delivery._report = timed(delivery._report, spent["report"])  # type: ignore[method-assign]
            started = time.perf_counter()
            summary = await delivery.run(Period(2027, 1))
            seconds = time.perf_counter() - started
            files = await state.files_of(Period(2027, 1))
    finally:
        await vgpv.aclose()
        await ledger.close()
    return {
        "seconds": seconds,
        "summary": summary,
        "files": len(files),
        "rows": sum(f.row_count for f in files),
        "accepted": sum(1 for f in files if f.receipt_status == "accepted"),
        "bytes": sent[0],
        "spent": spent,
        "statements": sorted(statements.items(), key=lambda item: -item[1][1])[:TOP_STATEMENTS],
    }


async def baseline(spec: dict[str, Any]) -> dict[str, Any]:
    """The same files without the runtime: rows in a list (read untimed), rendered, uploaded."""
    from services.vgpv.client import VgpvClient
    from services.vgpv.format import render
    from shared.delivery.ledger import Ledger
    from shared.files.state import FileState
    from shared.schedule import Period

    quiet()
    settings = settings_of(spec)
    ledger = Ledger.from_url(settings.ledger_url())
    state = FileState(ledger.engine, NAME)
    render_s = upload_s = 0.0
    rows = sent = 0
    statuses: dict[str, int] = {}
    try:
        async with VgpvClient.from_settings(settings) as client:
            for info in await state.files_of(Period(2027, 1)):
                listed = [row async for page in state.rows(info.name) for row in page]
                started = time.perf_counter()
                pieces = list(render(info.header, listed, settings.encoding))
                render_s += time.perf_counter() - started

                async def content(pieces: list[bytes] = pieces) -> AsyncIterator[bytes]:
                    for piece in pieces:
                        yield piece

                started = time.perf_counter()
                receipt = await client.upload(info.name, content())
                upload_s += time.perf_counter() - started
                statuses[receipt.status] = statuses.get(receipt.status, 0) + 1
                rows += len(listed)
                sent += sum(len(piece) for piece in pieces)
    finally:
        await ledger.close()
    return {
        "render_s": render_s,
        "upload_s": upload_s,
        "rows": rows,
        "bytes": sent,
        "statuses": statuses,
    }


CHILDREN = {"intake": intake, "deliver": deliver, "baseline": baseline}


def child(role: str, spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`role` in a process of its own: (its answer, {"rss_mb", "cpu_s"} from os.wait4)."""
    command = [sys.executable, "-m", __spec__.name, "--child", json.dumps(spec | {"role": role})]
    lines, ended = report(launch(command))
    return json.loads(lines[-1]), ended


# --- the parent ---------------------------------------------------------------------------------


def cpu_seconds(launcher_pid: int) -> float | None:
    """CPU (user + system) so far of the launcher's child (the sandbox), from /proc."""
    try:
        children = Path(f"/proc/{launcher_pid}/task/{launcher_pid}/children").read_text().split()
        fields = Path(f"/proc/{children[0]}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sandbox_admin(url: str, certs: Path) -> Any:
    import httpx

    from services.vgpv.client import build_ssl_context

    context = build_ssl_context(
        ca_bundle=str(certs / "ca.pem"),
        client_cert=str(certs / "client.pem"),
        client_key=str(certs / "client.key"),
    )
    return httpx.Client(base_url=url, verify=context, timeout=900)


def means(spent: list[float], n: int = 20) -> str:
    """Total, and the mean of the first and the last `n` calls (growth with the state's size)."""
    if not spent:
        return "not called"
    head, tail = spent[:n], spent[-n:]
    return (
        f"{sum(spent):.1f} s over {len(spent)} calls (first {len(head)}: "
        f"{1000 * sum(head) / len(head):.0f} ms each, last {len(tail)}: "
        f"{1000 * sum(tail) / len(tail):.0f} ms each, slowest {1000 * max(spent):.0f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=700_000)
    parser.add_argument("--units", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument(
        "--measured-intake",
        type=int,
        default=None,
        help="visits stored through the runtime (default: all); the rest directly",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)  # JSON: a phase's own process
    args = parser.parse_args()
    if args.child:
        spec = json.loads(args.child)
        print(json.dumps(asyncio.run(CHILDREN[spec["role"]](spec))))
        return
    asyncio.run(measure(args))


async def measure(args: argparse.Namespace) -> None:
    from services.devstack.infra import provide_kafka, provide_postgres
    from tests.support.runtime_harness import create_topics

    n = args.visits
    measured = min(n, args.measured_intake or n)
    run = f"bench{random.randrange(16**6):06x}"  # noqa: S311 - a name, not a secret
    units = vardval_units(args.units)
    if len(units) < args.units:
        raise SystemExit(f"KIV of {HSA_UNITS} HSA units has only {len(units)} open Vårdval units")
    rehab = sum(1 for _, area in units if area == "rehab")
    topic = f"bench.visits.{run}"
    with (
        provide_kafka() as broker,
        provide_postgres() as postgres,
        tempfile.TemporaryDirectory() as tmp,
    ):
        if postgres is None:
            raise SystemExit("no PostgreSQL: install its server binaries (make tools)")
        certs = Path(tmp) / "certs"
        sandbox = launch(
            [
                *CLI,
                "sandbox",
                "vgpv",
                "--port",
                "0",
                "--hsa-units",
                str(HSA_UNITS),
                "--seed",
                str(SEED),
                "--certs-dir",
                str(certs),
                "--now",
                IN_JANUARYS_WINDOW.isoformat(),
            ]
        )
        try:
            assert sandbox.stdout is not None
            announced = re.search(r"(https://[^\s,]+)", sandbox.stdout.readline())
            assert announced is not None, "the VGPV sandbox did not announce its address"
            url = announced.group(1)
            spec: dict[str, Any] = {"bootstrap": broker.address, "topic": topic}
            spec |= {"database": postgres.address}
            spec |= {"url": url, "certs": str(certs), "units": units, "run": run}
            spec |= {"visits": n, "measured": measured}
            tiers = ["30s", "5m", "1h", "6h"]  # the settings' retry tiers
            await create_topics(broker.address, NAME, topic, tiers, args.partitions)
            started = time.perf_counter()
            await publish_visits(broker.address, topic, range(measured), units, run)
            publish_s = time.perf_counter() - started
            print(f"published {measured:,} visits in {publish_s:.1f} s", file=sys.stderr)
            stored, intake_usage = child("intake", spec)
            print(f"stored {stored['stored']:,}; delivering", file=sys.stderr)

            sandbox_cpu = cpu_seconds(sandbox.pid)
            first, first_usage = child("deliver", spec)
            after = cpu_seconds(sandbox.pid)
            judged_s = None if sandbox_cpu is None or after is None else after - sandbox_cpu
            with sandbox_admin(url, certs) as admin:
                holding = admin.get("/innehav", params={"period": "2027-01"}).raise_for_status()
                held = sum(len(month["rader"]) for month in holding.json())
                uploads = admin.get("/admin/uploads").raise_for_status().json()
            again, again_usage = child("deliver", spec)
            with sandbox_admin(url, certs) as admin:  # the same names, new to the register
                admin.post("/admin/reset").raise_for_status()
                now = {"now": IN_JANUARYS_WINDOW.isoformat()}
                admin.post("/admin/clock", json=now).raise_for_status()
            floor, floor_usage = child("baseline", spec)
        finally:
            sandbox.terminate()
            _, sandbox_usage = report(sandbox, timeout=120)

    mb = first["bytes"] / 1e6
    floor_s = floor["render_s"] + floor["upload_s"]
    rows = [
        ("build + deliver (FileDelivery.run)", first["seconds"], first["rows"], first_usage),
        ("second run, nothing changed", again["seconds"], 0, again_usage),
        ("baseline: render only (rows in a list)", floor["render_s"], floor["rows"], None),
        ("baseline: render + upload (bare client)", floor_s, floor["rows"], floor_usage),
    ]
    print(
        f"VGPV month: {n:,} visits of January 2027 over {len(units)} units ({len(units) - rehab} "
        f"VG Primärvård, {rehab} Vårdval Rehab); {args.partitions} partitions; PostgreSQL ledger "
        f"and state; VGPV sandbox in its own process (mutual TLS, clock 2027-02-02 10:00)"
    )
    joined = stored["joined_s"] or 0.0
    print(
        f"intake through the runtime: {measured:,} visits stored in {stored['intake_s']:.1f} s "
        f"({measured / stored['intake_s']:,.0f}/s; {measured / (stored['intake_s'] - joined):,.0f}"
        f"/s after the group join at {joined:.1f} s); published beforehand in {publish_s:.1f} s; "
        f"peak RSS {intake_usage['rss_mb']:.0f} MB, CPU {intake_usage['cpu_s']:.0f} s"
    )
    if n > measured:
        print(
            f"intake filled directly (FileState.store, {FILL_BATCH:,} a batch, no Kafka, no "
            f"ledger): {n - measured:,} visits in {stored['fill_s']:.1f} s "
            f"({(n - measured) / stored['fill_s']:,.0f}/s)"
        )
    print(f"state: {stored['stored']:,} records; run: {first['summary']}")
    print(f"{'phase':<42}{'wall s':>8}{'rows':>9}{'rows/s':>9}{'peak RSS MB':>13}{'CPU s':>7}")
    table = []
    for name, seconds, count, usage in rows:
        rss = f"{usage['rss_mb']:>13.0f}{usage['cpu_s']:>7.0f}" if usage else f"{'':>13}{'':>7}"
        rate = f"{count / seconds:>9,.0f}" if count else f"{'':>9}"
        print(f"{name:<42}{seconds:>8.1f}{count:>9,}{rate}{rss}")
        table.append({"phase": name, "seconds": round(seconds, 2), "rows": count} | (usage or {}))
    print(
        f"files: {first['files']} built and delivered ({first['accepted']} accepted whole), "
        f"{mb:.1f} MB uploaded; second run: {again['summary']}"
    )
    print(
        f"runtime vs baseline (render + upload): {first['seconds'] / floor_s:.2f} times "
        f"({first['seconds']:.1f} s vs {floor_s:.1f} s; baseline receipts {floor['statuses']})"
    )
    spent = first["spent"]
    for part in ("build", "deliver", "receive", "report"):
        print(f"  {part:<8} {means(spent[part])}")
    print("the run's slowest SQL statements (calls, total s, mean ms, the statement):")
    for sql, (calls, seconds) in first["statements"]:
        print(f"  {calls:>6}{seconds:>8.1f}{1000 * seconds / calls:>9.1f}  {sql[:180]}")
    judged = "n/a" if judged_s is None else f"{judged_s:.0f} s"
    twice = sum(1 for count in uploads.values() if count != 1)
    print(
        f"sandbox: holding for 2027-01 {held:,} rows (visits {n:,}); files uploaded more than "
        f"once {twice}; its CPU during the run {judged}; its peak RSS "
        f"{sandbox_usage['rss_mb']:.0f} MB"
    )
    summary = {
        "visits": n,
        "units": len(units),
        "measured_intake": measured,
        "intake_s": round(stored["intake_s"], 1),
        "fill_s": round(stored["fill_s"], 1),
        "publish_s": round(publish_s, 1),
        "held_rows": held,
        "mb_uploaded": round(mb, 1),
        "ratio": round(first["seconds"] / floor_s, 2),
        "sandbox_cpu_during_run_s": judged_s,
        "spent_s": {part: round(sum(spent[part]), 1) for part in spent},
        "rows": table,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
