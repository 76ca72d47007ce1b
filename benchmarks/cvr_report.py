"""CVR report: a large region's waiting lists stored, and a month's reports built and delivered
over SFTP by the file runtime.

    .venv/bin/python -m benchmarks.cvr_report [--entries 500000] [--units 200] [--closed 0.1]
        [--poll-interval S]

`--entries` waiting-list entries (`care.wait`) spread evenly over `--units` of Region Stockholm's
units (kombikas), referred in the half year before and put on the list (recorded) in January
2027, on the local broker (results), a PostgreSQL ledger and state, and the CVR sandbox in a
process of its own (real SSH: its host key pinned, the client key's login, `<name>.part` renamed
into `in/`, receipts polled from `ut/`). Each phase runs in a process of its own, under the
launcher of `benchmarks.processes` (peak RSS and CPU from `os.wait4`):

  fill       January's entries stored with `FileState.store` in batches of 1,000, each parsed and
             placed by `CvrRegister` as the intake does (not through Kafka: `bench-vgpv` measures
             the runtime's intake, the same `FileIntake`): still waiting, so placed in January and
             carried into every later report
  january    `FileDelivery.run(2027-01)` as `regbridge cvr deliver-now` wires it: January's
             reports, every entry's result published (the report before the one measured)
  closing    `--closed` of the entries (10 %) completed (7 in 10) or removed (3 in 10) on a
             February day: a new version each, recorded in February, stored likewise
  deliver    `FileDelivery.run(2027-02)`, the measured run: each unit's February report built
             (INSERT … SELECT: the entries still waiting carried from January, and the ones
             completed or removed in February), rendered from the database a page at a time
             (each carried row's wait counted to February's last day), uploaded over SFTP, its
             receipt polled from CVR's outbox and stored, a result published per entry that
             changed since January's report
  again      the same run a second time, nothing changed (it builds nothing)
  baseline   the floor of the same work without the runtime: each February file's rows read
             beforehand (untimed) into a list, rendered with `services.cvr.format.render` and
             uploaded with a bare `CvrTransfer` (the same polling) to a new sandbox process
             (the same keys, an empty root: the names are new to it)

The transfer polls for each receipt every `--poll-interval` seconds (default: the worker's,
`CvrTransfer`'s 2 s). The sandbox's receipts for each month are counted from its outbox; they
are printed, nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from benchmarks.processes import CLI, launch, report
from benchmarks.vgpv_month import cpu_seconds, means, quiet, statement_times, timed

STOCKHOLM = ZoneInfo("Europe/Stockholm")
JANUARY, FEBRUARY = "2027-01", "2027-02"
FILL_BATCH = 1_000
PARTITIONS = 12  # the results topic's, as bench-vgpv's
TOP_STATEMENTS = 6  # the measured run's slowest SQL statements (by total time) are printed
PROGRESS_S = 30  # a progress line on stderr this often during a long phase
NAME = "cvr"  # the register: topics, ledger namespace and state go by it
KINDS = ("first_visit", "first_visit", "examination", "treatment", "operation")
CODES = ("F101", "F102", "B220", "T340", "U110", "K210", "O450", "R115")
REASONS = ("treated_elsewhere", "declined", "deceased", "no_longer_needed", "other")


# --- the entries --------------------------------------------------------------------------------


def kombikas(count: int) -> list[str]:
    """`count` kombikas of Region Stockholm: inrättning (5 digits), klinik (3), avdelning (2)."""
    return [
        f"{11010 + 7 * (i // 5):05d}{100 + 11 * (i % 5):03d}{'ABCDEFGHJK'[i % 10]}{i // 10 % 10}"
        for i in range(count)
    ]


def recorded_on(i: int, units: list[str]) -> date:
    """The January day entry `i` was put on the list."""
    return date(2027, 1, 1) + timedelta(days=(i // len(units)) % 31)


def payload(i: int, units: list[str], run: str) -> dict[str, Any]:
    """Entry `i` as its journal system first reports it (waiting), at unit i mod units: referred
    up to half a year before it was recorded; a treatment or an operation decided on; some
    booked; some with a patient-chosen period (PVV) or a medically caused wait still open (MOV)."""
    from shared.identifiers import synthetic_personnummer

    rng = random.Random(f"{run}:{i}")  # noqa: S311 - benchmark data, not secrets
    day = recorded_on(i, units)
    referral = day - timedelta(days=rng.randrange(0, 180))
    kind = rng.choice(KINDS)
    born = date(1930, 1, 1) + timedelta(days=rng.randrange(30_000))
    body: dict[str, Any] = {
        "patient": {"id_type": "PNR", "id": synthetic_personnummer(rng, born)},
        "kombika": units[i % len(units)],
        "cvr_code": rng.choice(CODES),
        "wait_kind": kind,
        "priority": str(rng.randrange(1, 5)),
        "guarantee_applies": rng.random() < 0.9,
        "referral_received": referral.isoformat(),
    }
    if kind in ("treatment", "operation"):
        decided = min(day, referral + timedelta(days=rng.randrange(1, 30)))
        body["decided_on"] = decided.isoformat()
    if rng.random() < 0.3:
        body["booked_on"] = day.isoformat()
        body["booked_for"] = (day + timedelta(days=rng.randrange(7, 90))).isoformat()
    roll, span = rng.random(), (day - referral).days
    if roll < 0.08:
        start = referral + timedelta(days=rng.randrange(0, span + 1))
        end = start + timedelta(days=rng.randrange(7, 30))
        body["exceptions"] = [
            {"kind": "patient_chosen", "start": start.isoformat(), "end": end.isoformat()}
        ]
    elif roll < 0.11:
        start = referral + timedelta(days=rng.randrange(0, span + 1))
        body["exceptions"] = [{"kind": "medically_caused", "start": start.isoformat()}]
    return body


def closes(i: int, run: str, share: float) -> bool:
    """Whether entry `i` is completed or removed in February (`share` of them)."""
    return random.Random(f"{run}:{i}:closed").random() < share  # noqa: S311 - benchmark data


def event(i: int, units: list[str], run: str, month: str) -> bytes:
    """Entry `i`'s event of `month`: January's puts it on the list (version 1, waiting);
    February's completes or removes it on a February day (version 2, recorded that day)."""
    body = payload(i, units, run)
    if month == JANUARY:
        version, day = 1, recorded_on(i, units)
    else:
        rng = random.Random(f"{run}:{i}:closed")  # noqa: S311 - benchmark data, not secrets
        rng.random()  # the draw `closes` made
        version, day = 2, date(2027, 2, 1) + timedelta(days=rng.randrange(28))
        if rng.random() < 0.7:
            body["completed_on"] = day.isoformat()
        else:
            body["removed_on"] = day.isoformat()
            body["removed_reason"] = rng.choice(REASONS)
        for period in body.get("exceptions", ()):
            period.setdefault("end", day.isoformat())  # an ended wait has no open period
    rng = random.Random(f"{run}:{i}:{version}")  # noqa: S311 - benchmark data, not secrets
    minute = rng.randrange(7 * 60, 17 * 60)
    occurred = datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=STOCKHOLM)
    return json.dumps(
        {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "event_type": "care.wait",
            "schema_version": 1,
            "occurred_at": occurred.isoformat(),
            "source_system": "bench-journal",
            "record_id": f"{run}-{i:07d}",
            "record_version": version,
            "operation": "create" if version == 1 else "correct",
            "payload": body,
        }
    ).encode()


# --- the children -------------------------------------------------------------------------------


def settings_of(spec: dict[str, Any]) -> Any:
    """CvrSettings as the worker would read them from its environment."""
    from pydantic import SecretStr

    from services.cvr.settings import CvrSettings
    from shared.settings import KafkaSettings

    keys = Path(spec["keys"])
    return CvrSettings(
        kafka=KafkaSettings(bootstrap_servers=spec["bootstrap"]),
        input_topic=spec["topic"],
        instance_id="bench-cvr",
        database_url=SecretStr(spec["database"]),
        sftp_host="127.0.0.1",
        sftp_port=spec["port"],
        sftp_key_file=str(keys / "client_key"),
        sftp_known_hosts=str(keys / "known_hosts"),
    )


def registered(spec: dict[str, Any]) -> Any:
    """The CVR register as `regbridge cvr deliver-now` makes it (no catalog: kombikas need none,
    and a delivery run places nothing); its transfer's poll interval `--poll-interval`'s."""
    from services.cvr.spec import register
    from shared.catalog.index import CatalogIndex

    cvr = register(settings_of(spec), CatalogIndex())
    if spec["poll"] is not None:
        cvr._transfer.poll_interval = spec["poll"]
    return cvr


async def stored_count(state: Any) -> int:
    from sqlalchemy import func, select

    from shared.files.state import file_records

    query = select(func.count()).where(file_records.c.register == state.register)
    async with state.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def fill(spec: dict[str, Any]) -> dict[str, Any]:
    """The month's events straight into the state: parsed and placed as the intake does."""
    from shared.delivery.clock import SystemClock
    from shared.delivery.ledger import Ledger
    from shared.files.state import FileState, Intake

    quiet()
    units, run, month = spec["units"], spec["run"], spec["month"]
    indexes: Sequence[int] = range(spec["entries"])
    if month == FEBRUARY:
        indexes = [i for i in indexes if closes(i, run, spec["closed"])]
    cvr = registered(spec)
    ledger = Ledger.from_url(settings_of(spec).ledger_url())
    await ledger.create_schema()
    state = FileState(ledger.engine, NAME)
    await state.create_schema()
    clock = SystemClock()
    started = noted = time.perf_counter()
    for start in range(0, len(indexes), FILL_BATCH):
        items = []
        for i in indexes[start : start + FILL_BATCH]:
            raw = event(i, units, run, month)
            identity, parsed = cvr.parse(raw)
            items.append(Intake(identity, cvr.place(parsed), False, raw))
        refused = await state.store(items, clock.now())
        if refused:
            raise RuntimeError(f"the state refused {len(refused)} entries: {refused}")
        if time.perf_counter() - noted > PROGRESS_S:
            noted = time.perf_counter()
            done = start + len(items)
            print(
                f"fill {month}: {done:,} of {len(indexes):,} stored, {noted - started:.0f} s",
                file=sys.stderr,
            )
    seconds = time.perf_counter() - started
    count = await stored_count(state)
    await ledger.close()
    return {"seconds": seconds, "entries": len(indexes), "stored": count}


async def deliver(spec: dict[str, Any]) -> dict[str, Any]:
    """One delivery run of the month, wired as `regbridge cvr deliver-now` wires it, its parts
    timed: the upload split into writing the file and waiting for its receipt."""
    from prometheus_client import CollectorRegistry

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
    cvr = registered(spec)
    period = Period.parse(spec["month"])
    names = ("build", "deliver", "write", "receipt", "receive", "report")
    spent: dict[str, list[float]] = {name: [] for name in names}
    sent, files_sent, started, noted = [0], [0], time.perf_counter(), [time.perf_counter()]
    upload = cvr.deliver

    async def counted(header: Any, content: AsyncIterator[bytes]) -> Any:
        async def pieces() -> AsyncIterator[bytes]:
            async for piece in content:
                sent[0] += len(piece)
                yield piece

        try:
            return await upload(header, pieces())
        finally:
            files_sent[0] += 1
            if time.perf_counter() - noted[0] > PROGRESS_S:
                noted[0] = time.perf_counter()
                print(
                    f"deliver {period}: {files_sent[0]} files sent ({sent[0] / 1e6:.1f} MB), "
                    f"{noted[0] - started:.0f} s",
                    file=sys.stderr,
                )

    transfer = cvr._transfer
    transfer._write = timed(transfer._write, spent["write"])
    transfer._await_receipt = timed(transfer._await_receipt, spent["receipt"])
    cvr.deliver = timed(counted, spent["deliver"])
    state.build = timed(state.build, spent["build"])  # type: ignore[method-assign]
    state.receive = timed(state.receive, spent["receive"])  # type: ignore[method-assign]
    statements = statement_times(ledger.engine)
    metrics = FileMetrics(CollectorRegistry())
    try:
        async with file_parts(cvr, settings, state, SystemClock(), metrics) as parts:
            delivery = parts.delivery
            delivery._report = timed(delivery._report, spent["report"])  # type: ignore[method-assign]
            started = time.perf_counter()
            summary = await delivery.run(period)
            seconds = time.perf_counter() - started
            files = await state.files_of(period)
    finally:
        await cvr.aclose()
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
    from services.cvr.format import render
    from shared.delivery.ledger import Ledger
    from shared.files.state import FileState
    from shared.schedule import Period

    quiet()
    ledger = Ledger.from_url(settings_of(spec).ledger_url())
    state = FileState(ledger.engine, NAME)
    transfer = registered(spec)._transfer
    write_s: list[float] = []
    receipt_s: list[float] = []
    transfer._write = timed(transfer._write, write_s)
    transfer._await_receipt = timed(transfer._await_receipt, receipt_s)
    render_s = upload_s = 0.0
    rows = sent = 0
    statuses: dict[str, int] = {}
    try:
        for info in await state.files_of(Period.parse(spec["month"])):
            listed = [row async for page in state.rows(info.name) for row in page]
            started = time.perf_counter()
            pieces = list(render(info.header, listed))
            render_s += time.perf_counter() - started

            async def content(pieces: list[bytes] = pieces) -> AsyncIterator[bytes]:
                for piece in pieces:
                    yield piece

            started = time.perf_counter()
            receipt = await transfer.upload(info.name, content())
            upload_s += time.perf_counter() - started
            statuses[receipt.status] = statuses.get(receipt.status, 0) + 1
            rows += len(listed)
            sent += sum(len(piece) for piece in pieces)
    finally:
        await ledger.close()
    return {
        "render_s": render_s,
        "upload_s": upload_s,
        "write_s": sum(write_s),
        "receipt_s": sum(receipt_s),
        "rows": rows,
        "bytes": sent,
        "statuses": statuses,
    }


CHILDREN = {"fill": fill, "deliver": deliver, "baseline": baseline}


def child(role: str, spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`role` in a process of its own: (its answer, {"rss_mb", "cpu_s"} from os.wait4)."""
    command = [sys.executable, "-m", __spec__.name, "--child", json.dumps(spec | {"role": role})]
    lines, ended = report(launch(command))
    return json.loads(lines[-1]), ended


# --- the parent ---------------------------------------------------------------------------------


@contextmanager
def cvr_sandbox(keys: Path, root: Path, usage: dict[str, Any]) -> Iterator[tuple[int, int]]:
    """`regbridge sandbox cvr` in a process of its own (its keys in `keys`, reused; its folders
    under `root`): (the launcher's pid, the SFTP port); its {"rss_mb", "cpu_s"} into `usage`
    when it stops."""
    process = launch(
        [*CLI, "sandbox", "cvr", "--port", "0", "--certs-dir", str(keys), "--root", str(root)]
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        announced = re.search(r"SFTP at [^\s:]+:([0-9]+)", line)
        assert announced is not None, f"the CVR sandbox did not announce its port: {line!r}"
        yield process.pid, int(announced.group(1))
    finally:
        process.terminate()
        _, ended = report(process, timeout=120)
        usage.update(ended)


def receipts(root: Path) -> dict[str, dict[str, int]]:
    """The sandbox's receipts in its outbox, by period: files, rows, rows accepted, by status."""
    found: dict[str, dict[str, int]] = {}
    for path in sorted((root / "ut").glob("*.kvitto.json")):
        body = json.loads(path.read_text(encoding="utf-8"))
        period = body["filnamn"].split("_")[-2]
        noted = found.setdefault(f"{period[:4]}-{period[4:]}", {"files": 0, "rows": 0})
        noted["files"] += 1
        noted["rows"] += body["antalRader"]
        noted["accepted"] = noted.get("accepted", 0) + body["antalGodkanda"]
        noted[body["status"]] = noted.get(body["status"], 0) + 1
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=500_000)
    parser.add_argument("--units", type=int, default=200)
    parser.add_argument(
        "--closed", type=float, default=0.1, help="share completed or removed in February"
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=None,
        help="seconds between looks for a receipt (default: the worker's, 2)",
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

    n = args.entries
    run = f"bench{random.randrange(16**6):06x}"  # noqa: S311 - a name, not a secret
    units = kombikas(args.units)
    topic = f"bench.waits.{run}"
    sandbox_usage: dict[str, Any] = {}
    fresh_usage: dict[str, Any] = {}
    with (
        provide_kafka() as broker,
        provide_postgres() as postgres,
        tempfile.TemporaryDirectory() as tmp,
    ):
        if postgres is None:
            raise SystemExit("no PostgreSQL: install its server binaries (make tools)")
        keys, root = Path(tmp) / "keys", Path(tmp) / "root"
        spec: dict[str, Any] = {"bootstrap": broker.address, "topic": topic}
        spec |= {"database": postgres.address, "keys": str(keys), "poll": args.poll_interval}
        spec |= {"units": units, "run": run, "entries": n, "closed": args.closed}
        tiers = ["30s", "5m", "1h", "6h"]  # the settings' retry tiers
        await create_topics(broker.address, NAME, topic, tiers, PARTITIONS)
        with cvr_sandbox(keys, root, sandbox_usage) as (sandbox_pid, port):
            spec["port"] = port
            print(f"filling {n:,} entries waiting since January", file=sys.stderr)
            january_fill, january_fill_usage = child("fill", spec | {"month": JANUARY})
            print("delivering January's reports", file=sys.stderr)
            january, january_usage = child("deliver", spec | {"month": JANUARY})
            print("filling February's completions and removals", file=sys.stderr)
            closing, closing_usage = child("fill", spec | {"month": FEBRUARY})
            print("delivering February's reports (measured)", file=sys.stderr)
            sandbox_cpu = cpu_seconds(sandbox_pid)
            first, first_usage = child("deliver", spec | {"month": FEBRUARY})
            after = cpu_seconds(sandbox_pid)
            judged_s = None if sandbox_cpu is None or after is None else after - sandbox_cpu
            again, again_usage = child("deliver", spec | {"month": FEBRUARY})
        held = receipts(root)
        print("baseline: February's files to a new sandbox", file=sys.stderr)
        with cvr_sandbox(keys, Path(tmp) / "fresh", fresh_usage) as (_, port):
            floor, floor_usage = child("baseline", spec | {"port": port, "month": FEBRUARY})

    mb = first["bytes"] / 1e6
    floor_s = floor["render_s"] + floor["upload_s"]
    closed = closing["entries"]
    rows = [
        ("January: build + deliver (every result)", january["seconds"], january["rows"]),
        ("February: build + deliver (measured)", first["seconds"], first["rows"]),
        ("February again, nothing changed", again["seconds"], 0),
        ("baseline: render only (rows in a list)", floor["render_s"], floor["rows"]),
        ("baseline: render + upload (bare transfer)", floor_s, floor["rows"]),
    ]
    usages: list[dict[str, Any] | None] = [
        january_usage,
        first_usage,
        again_usage,
        None,
        floor_usage,
    ]
    poll = "2 (the worker's)" if args.poll_interval is None else f"{args.poll_interval:g}"
    print(
        f"CVR report: {n:,} waiting-list entries recorded in January 2027 over {len(units)} units "
        f"(kombikas), {closed:,} of them ({closed / n:.0%}) completed or removed in February; "
        f"PostgreSQL ledger and state; CVR sandbox over SFTP in its own process; receipts "
        f"polled every {poll} s"
    )
    for label, filled, filled_usage in (
        ("January's entries", january_fill, january_fill_usage),
        ("February's completions and removals", closing, closing_usage),
    ):
        print(
            f"filled directly (FileState.store, {FILL_BATCH:,} a batch, parsed and placed by "
            f"CvrRegister): {label}, {filled['entries']:,} in {filled['seconds']:.1f} s "
            f"({filled['entries'] / filled['seconds']:,.0f}/s); peak RSS "
            f"{filled_usage['rss_mb']:.0f} MB"
        )
    print(f"state: {closing['stored']:,} records; measured run: {first['summary']}")
    print(f"{'phase':<44}{'wall s':>8}{'rows':>9}{'rows/s':>9}{'peak RSS MB':>13}{'CPU s':>7}")
    table = []
    for (name, seconds, count), usage in zip(rows, usages, strict=True):
        rss = f"{usage['rss_mb']:>13.0f}{usage['cpu_s']:>7.0f}" if usage else f"{'':>13}{'':>7}"
        rate = f"{count / seconds:>9,.0f}" if count else f"{'':>9}"
        print(f"{name:<44}{seconds:>8.1f}{count:>9,}{rate}{rss}")
        table.append({"phase": name, "seconds": round(seconds, 2), "rows": count} | (usage or {}))
    print(
        f"February: {first['files']} files built and delivered ({first['accepted']} accepted "
        f"whole), {mb:.1f} MB uploaded; January: {january['files']} files, "
        f"{january['bytes'] / 1e6:.1f} MB; second run: {again['summary']}"
    )
    print(
        f"runtime vs baseline (render + upload): {first['seconds'] / floor_s:.2f} times "
        f"({first['seconds']:.1f} s vs {floor_s:.1f} s; baseline writing {floor['write_s']:.1f} s, "
        f"waiting for receipts {floor['receipt_s']:.1f} s; its receipts {floor['statuses']})"
    )
    for month, measured in (("February", first), ("January", january)):
        print(f"{month}'s run:")
        for part, spent in measured["spent"].items():
            print(f"  {part:<8} {means(spent)}")
    print("the measured run's slowest SQL statements (calls, total s, mean ms, the statement):")
    for sql, (calls, seconds) in first["statements"]:
        print(f"  {calls:>6}{seconds:>8.1f}{1000 * seconds / calls:>9.1f}  {sql[:180]}")
    judged = "n/a" if judged_s is None else f"{judged_s:.0f} s"
    print(
        f"sandbox: receipts by period {held}; its CPU during the measured run {judged}; its "
        f"peak RSS {sandbox_usage['rss_mb']:.0f} MB (the baseline's: {fresh_usage['rss_mb']:.0f} "
        f"MB)"
    )
    summary = {
        "entries": n,
        "units": len(units),
        "closed": closed,
        "fill_s": round(january_fill["seconds"], 1),
        "closing_fill_s": round(closing["seconds"], 1),
        "held": held,
        "mb_uploaded": round(mb, 1),
        "ratio": round(first["seconds"] / floor_s, 2),
        "sandbox_cpu_during_run_s": judged_s,
        "spent_s": {part: round(sum(spent), 1) for part, spent in first["spent"].items()},
        "rows": table,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
