"""Ledger per chunk: statements, round trips, commits and CPU for a chunk's open and settle.

    .venv/bin/python -m benchmarks.ledger_chunk [--chunks 20] [--size 500] [--before REV]

Runs `Bookkeeper.open` then `Bookkeeper.settle` over the same generated chunks (new records, newer
versions, duplicates, records with parked events; accepted, skipped, dead-lettered and parked
outcomes, some submissions left in flight) with two ledgers in one run, chunk by chunk in turn:
  before  the ledger, bookkeeping and schema modules as they were at git revision REV (loaded from
          `git show`, default: the last commit before the per-chunk statements were reduced)
  after   the ones in this working tree
each on SQLite (a file) and on a real PostgreSQL (the local one the tests start, no Docker).
Statements are counted with SQLAlchemy's `before_cursor_execute`, COMMITs sent with its `commit`
event (not on a connection in autocommit, where a statement alone commits itself),
round trips to PostgreSQL by a TCP relay in a process of its own (a client send after the server
spoke is one round trip; connection checkouts' pings included); CPU is this process's (SQLite's
work included, PostgreSQL's server not) per event, and the ratio after/before of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import multiprocessing
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from tempfile import TemporaryDirectory
from types import ModuleType
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url

from services.devstack.infra import provide_postgres
from shared.delivery import bookkeeping, ledger
from shared.delivery.errors import PermanentError, TransientError
from shared.delivery.fates import Applied, DeadLettered, Fate, Retrying, Skipped
from shared.delivery.worker import EventIdentity

BEFORE = "726a67954f41307c5ccb3a2a8215e2d9b36e74be"  # before a chunk's statements were reduced
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
_MODULES = ("ledger_schema", "ledger_sql", "ledger", "bookkeeping")


# --- the ledger as it was ----------------------------------------------------------------------


def load_before(rev: str, into: Path) -> tuple[ModuleType, ModuleType]:
    """The ledger's modules at `rev`, as a package of their own (`ledger_before`)."""
    package = into / "ledger_before"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in _MODULES:
        shown = subprocess.run(
            ["git", "show", f"{rev}:shared/delivery/{name}.py"], capture_output=True, text=True
        )
        if shown.returncode != 0 and name == "ledger_sql":
            continue  # (before it existed)
        shown.check_returncode()
        source = shown.stdout
        for other in _MODULES:
            source = source.replace(f"shared.delivery.{other} ", f"ledger_before.{other} ")
            source = source.replace(f"shared.delivery.{other}\n", f"ledger_before.{other}\n")
        (package / f"{name}.py").write_text(source)
    sys.path.insert(0, str(into))
    return importlib.import_module("ledger_before.ledger"), importlib.import_module(
        "ledger_before.bookkeeping"
    )


# --- round trips: a TCP relay in a process of its own --------------------------------------------


def _relay_main(target: tuple[str, int], ports: Any, counters: list[Synchronized[int]]) -> None:
    async def serve() -> None:
        async def handle(
            index: int, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
        ) -> None:
            server_r, server_w = await asyncio.open_connection(*target)
            spoke = [True]  # the server spoke last: the client's next send is a new round trip

            async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, up: bool) -> None:
                while data := await src.read(65536):
                    if up and spoke[0]:
                        with counters[index].get_lock():
                            counters[index].value += 1
                    spoke[0] = not up
                    dst.write(data)
                    await dst.drain()
                dst.close()

            await asyncio.gather(
                pump(client_r, server_w, True),
                pump(server_r, client_w, False),
                return_exceptions=True,
            )

        servers = []
        for index in range(len(counters)):
            server = await asyncio.start_server(
                lambda r, w, i=index: handle(i, r, w), "127.0.0.1", 0
            )
            servers.append(server)
            ports.put(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    asyncio.run(serve())


class Relay:
    """Counts round trips to PostgreSQL per listening port (one per ledger)."""

    def __init__(self, url: str, n: int) -> None:
        parsed = make_url(url)
        self.url = parsed
        self.counters = [multiprocessing.Value("q", 0) for _ in range(n)]
        ports: Any = multiprocessing.Queue()
        target = (parsed.host or "127.0.0.1", parsed.port or 5432)
        self.process = multiprocessing.Process(
            target=_relay_main, args=(target, ports, self.counters), daemon=True
        )
        self.process.start()
        self.ports = [int(ports.get(timeout=30)) for _ in range(n)]

    def url_of(self, index: int) -> str:
        return self.url.set(host="127.0.0.1", port=self.ports[index]).render_as_string(
            hide_password=False
        )

    def count(self, index: int) -> int:
        return int(self.counters[index].value)

    def close(self) -> None:
        self.process.terminate()
        self.process.join(10)


# --- the workload -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """What `Bookkeeper` reads of a consumed record: its identity."""

    identity: EventIdentity


@dataclass
class Workload:
    """Chunks of events and the fate each gets, consistent with what earlier chunks did."""

    size: int
    rng: random.Random = field(default_factory=lambda: random.Random(17))  # noqa: S311 (a workload)
    versions: dict[str, int] = field(default_factory=dict)
    accepted: list[EventIdentity] = field(default_factory=list)
    parked: dict[str, list[EventIdentity]] = field(default_factory=dict)
    serial: int = 0

    def _next(self, record_id: str | None = None) -> EventIdentity:
        if record_id is None:
            self.serial += 1
            record_id = f"rec-{self.serial}"
        version = self.versions.get(record_id, 0) + 1
        self.versions[record_id] = version
        operation = "create" if version == 1 else "correct"
        return EventIdentity(
            str(uuid.UUID(int=self.rng.getrandbits(128))), record_id, version, operation
        )

    def chunk(self) -> list[tuple[EventIdentity, Fate]]:
        n = self.size
        out: list[tuple[EventIdentity, Fate]] = []
        transient = TransientError("timeout")
        if len(self.accepted) > n:  # 10 % duplicates of accepted events, skipped
            out += [(i, Skipped("duplicate")) for i in self.rng.sample(self.accepted, n // 10)]
        waiting = list(self.parked)
        self.rng.shuffle(waiting)
        for record_id in waiting[: n // 20]:  # 5 % parked events back from retry: accepted
            back = self.parked.pop(record_id)
            out += [(i, Applied(f"REF-{i.record_id}")) for i in back]
        for record_id in waiting[n // 20 : n // 10]:  # 5 % newer events behind a parked one
            behind = self._next(record_id)
            self.parked[record_id].append(behind)
            out.append((behind, Retrying("30s", "Blocked", "blocked_by_earlier", follows=True)))
        for k in range(n // 20):  # 5 % fail: retried (some answers lost) or dead-lettered
            failed = self._next()
            self.parked[failed.record_id] = [failed]
            if k % 2:
                fate: Fate = DeadLettered("PermanentError", "rejected", PermanentError("no"))
            else:
                error = transient if k % 4 == 0 else None
                fate = Retrying("30s", "TransientError", "timeout", error)
            out.append((failed, fate))
        known = [r for r in self.versions if r not in self.parked]
        newer = self.rng.sample(known, min(len(known), n // 5))  # newer versions of records
        out += [(self._next(r), Applied(f"REF-{r}")) for r in newer]
        while len(out) < n:  # the rest: new records
            fresh = self._next()
            out.append((fresh, Applied(f"REF-{fresh.record_id}")))
        self.accepted += [i for i, fate in out if isinstance(fate, Applied)]
        return out


# --- measuring ----------------------------------------------------------------------------------


@dataclass
class Tally:
    statements_open: int = 0
    statements_settle: int = 0
    commits: int = 0
    round_trips: int = 0
    cpu: float = 0.0
    wall: float = 0.0
    chunks: int = 0
    events: int = 0


class Subject:
    """One ledger implementation on one database, with its counters."""

    def __init__(
        self,
        name: str,
        ledger_mod: ModuleType,
        books_mod: ModuleType,
        url: str,
        rt: Callable[[], int],
    ) -> None:
        self.name = name
        self.ledger = ledger_mod.Ledger.from_url(url)
        self.books = books_mod.Bookkeeper(self.ledger, f"bench-{uuid.uuid4().hex[:8]}")
        self.rt = rt
        self.statements = 0
        self.commits = 0
        self.tally = Tally()
        engine = self.ledger.engine.sync_engine
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def _statement(self, *_: Any) -> None:
        self.statements += 1

    def _commit(self, conn: Any) -> None:
        if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            self.commits += 1  # a COMMIT sent (a statement alone in autocommit commits itself)

    async def run(
        self, chunk: Sequence[tuple[EventIdentity, Fate]], now: datetime, count: bool
    ) -> None:
        items = [Item(identity) for identity, _ in chunk]
        s0, c0, rt0 = self.statements, self.commits, self.rt()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        books = await self.books.open(items, now)
        s1 = self.statements
        await self.books.settle(
            [(item, fate) for item, (_, fate) in zip(items, chunk, strict=True)], books, now
        )
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        if count:
            t = self.tally
            t.statements_open += s1 - s0
            t.statements_settle += self.statements - s1
            t.commits += self.commits - c0
            t.round_trips += self.rt() - rt0
            t.cpu += cpu
            t.wall += wall
            t.chunks += 1
            t.events += len(chunk)


async def measure(subjects: Sequence[Subject], chunks: int, warmup: int, size: int) -> None:
    for subject in subjects:
        await subject.ledger.create_schema()
    workload = Workload(size)
    for n in range(warmup + chunks):
        chunk = workload.chunk()
        now = T0 + timedelta(seconds=n)
        order = subjects if n % 2 else list(reversed(subjects))  # neither always goes first
        for subject in order:
            await subject.run(chunk, now, count=n >= warmup)
    for subject in subjects:
        await subject.ledger.close()


def report(database: str, subjects: Sequence[Subject], postgres: bool) -> None:
    base = subjects[0].tally
    for subject in subjects:
        t = subject.tally
        per = t.chunks
        rt = f"{t.round_trips / per:.1f}" if postgres else "—"
        print(
            f"{database:<11}{subject.name:<8}"
            f"{t.statements_open / per:>6.1f}{t.statements_settle / per:>8.1f}"
            f"{(t.statements_open + t.statements_settle) / per:>7.1f}"
            f"{rt:>7}{t.commits / per:>9.1f}"
            f"{t.cpu / t.events * 1e6:>9.1f}{t.wall / per * 1e3:>9.1f}"
            f"{(t.cpu / t.events) / (base.cpu / base.events):>8.2f}"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=20, help="measured chunks per ledger")
    parser.add_argument("--warmup", type=int, default=3, help="chunks run before measuring")
    parser.add_argument("--size", type=int, default=500, help="events per chunk")
    parser.add_argument("--before", default=BEFORE, help="git revision of the ledger before")
    args = parser.parse_args()
    after = (ledger, bookkeeping)
    with TemporaryDirectory() as tmp, provide_postgres() as pg:
        before = load_before(args.before, Path(tmp))
        sqlite_urls = [f"sqlite+aiosqlite:///{Path(tmp) / f'{n}.db'}" for n in ("before", "after")]
        results: list[tuple[str, list[Subject], bool]] = []
        subjects = [
            Subject("before", *before, sqlite_urls[0], lambda: 0),
            Subject("after", *after, sqlite_urls[1], lambda: 0),
        ]
        await measure(subjects, args.chunks, args.warmup, args.size)
        results.append(("SQLite", subjects, False))
        if pg is None:
            print("no PostgreSQL here: SQLite only")
        else:
            relay = Relay(pg.address, 2)
            try:
                subjects = [
                    Subject("before", *before, relay.url_of(0), lambda: relay.count(0)),
                    Subject("after", *after, relay.url_of(1), lambda: relay.count(1)),
                ]
                await measure(subjects, args.chunks, args.warmup, args.size)
                results.append(("PostgreSQL", subjects, True))
            finally:
                relay.close()
    print(
        f"{args.chunks} chunks of {args.size} events per ledger (after {args.warmup} warm-up), "
        f"before = {args.before[:10]}; per chunk, CPU per event"
    )
    print(
        f"{'database':<11}{'ledger':<8}{'open':>6}{'settle':>8}{'stmts':>7}{'trips':>7}"
        f"{'commits':>9}{'µs/ev':>9}{'ms/chunk':>9}{'cpu x':>8}"
    )
    for database, subjects, postgres in results:
        report(database, subjects, postgres)


if __name__ == "__main__":
    asyncio.run(main())
