"""The console's overview under 100,000 dead letters: GET / latency against a trivial page.

    .venv/bin/python -m benchmarks.console_overview [--letters 100000] [--partitions 12]
                                                    [--workers 3] [--requests 40]

Three workers' dead-letter topics of 12 partitions each are filled with dead letters as the
runtime writes them (its `Writer`: the original event, its story headers, the register's answer),
a few of them replayed with `regbridge dlq replay`'s code (audited in the ledger on PostgreSQL).
Each worker's health server is a small stand-in answering /status and /health/ready as the
runtime's does. The console itself runs as in production (`create_app` under uvicorn, a local
account signed in over real HTTP) and is timed from a client in this process:
  baseline        GET /login without a session: a template rendered by the same app
  overview        GET / after warm-up, the figures computed anew for every request (TTL 0)
  overview-cached GET / as deployed (figures kept for the cache's TTL)
  live-figures    GET /overview/figures: the fragment the page fetches every few seconds
  list-newest     GET /dead-letters (no filter): the newest letters, read from partition tails
  list-filtered   GET /dead-letters?record_id=…: a filter, which reads the whole topics
The first overview after start tallies every letter's error class once (a background read);
its time is printed too. The machine is shared and noisy: read ratios, not milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from tempfile import TemporaryDirectory
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from services.console.accounts import hash_password, parse_accounts
from services.console.app import create_app
from services.console.settings import ConsoleSettings
from services.console.sources import WorkerSource
from services.devstack.infra import provide_kafka, provide_postgres
from shared.delivery.dlq_read import DlqFilter, read_dead_letters
from shared.delivery.dlq_replay import replay
from shared.delivery.errors import InvalidEventError, RegisterRejectedError, TransientError
from shared.delivery.fates import DeadLettered
from shared.delivery.ledger import Ledger
from shared.delivery.outgoing import Inbound, Writer
from shared.delivery.retry import RetryPolicy
from shared.delivery.worker import EventIdentity
from shared.settings import KafkaSettings, TopicSettings
from shared.topics import WorkerTopics
from tests.support.console import serving
from tests.support.double_register.settings import DoubleSettings
from tests.support.runtime_harness import create_topics

PASSWORD = "bench-password"  # noqa: S105 - a throwaway local account of this run
TIERS = ("30s", "5m")
REPLAYED_PER_WORKER = 20


def _fates(n: int) -> DeadLettered:
    """A spread of the runtime's dead-letter fates, with the register's answer where it has one."""
    if n % 10 < 6:
        answer = json.dumps({"error": "VAL-17", "detail": "enhet.inr saknas för besöket"})
        error = RegisterRejectedError(
            "the register refused: 422", register_status=422, register_response=answer
        )
        return DeadLettered(error.error_class, error.message, error)
    if n % 10 < 9:
        invalid = InvalidEventError("payload.patient.id: not a personal identity number")
        return DeadLettered(invalid.error_class, invalid.message, invalid)
    gone = TransientError("503 after 5 attempts", error_class="retries_exhausted")
    return DeadLettered("retries_exhausted", gone.message, gone)


def _letters(topics: WorkerTopics, count: int, partitions: int) -> Iterator[tuple[int, Any]]:
    """`count` dead letters as the runtime's Writer makes them, spread over the partitions."""
    writer = Writer(topics, RetryPolicy.from_names(list(TIERS)), "bench-1.0")
    start = datetime.now(UTC) - timedelta(days=2)
    for n in range(count):
        record_id = f"besok-{topics.worker}-{n}"
        body = {
            "event_id": str(uuid.uuid4()),
            "record_id": record_id,
            "record_version": 1,
            "operation": "create",
            "payload": {"patient": {"id": "191212121212"}, "note": f"visit {n}"},
        }
        partition = n % partitions
        now = start + timedelta(seconds=n)
        inbound = Inbound(
            topics.input,
            partition,
            n // partitions,
            record_id.encode(),
            json.dumps(body).encode(),
            ((("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")),),
            int(now.timestamp() * 1000),
        )
        identity = EventIdentity(str(body["event_id"]), record_id, 1, "create")
        letter = writer.messages(inbound, identity, _fates(n), now)[0]
        assert letter.topic == topics.dlq
        yield partition, letter


async def fill(bootstrap: str, topics: WorkerTopics, count: int, partitions: int) -> None:
    # as the runtime's producer is set (its record batches are what a tail read decodes)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        pending = []
        for partition, out in _letters(topics, count, partitions):
            pending.append(
                await producer.send(
                    out.topic, out.value, key=out.key, headers=out.headers, partition=partition
                )
            )
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


def health_stand_in(worker: str) -> Starlette:
    """A worker's health server as the console sees it (the runtime's /status shape)."""

    async def ready(_request: Request) -> Response:
        return PlainTextResponse("ready")

    async def status(_request: Request) -> Response:
        return JSONResponse(
            {
                "worker": worker,
                "version": "bench-1.0",
                "started": True,
                "paused_reason": None,
                "circuit": "closed",
                "alarms": [],
                "components": {},
            }
        )

    return Starlette(routes=[Route("/health/ready", ready), Route("/status", status)])


def _timed(client: httpx.Client, path: str, n: int, check: Callable[[str], bool]) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        page = client.get(path)
        times.append(time.perf_counter() - started)
        if page.status_code != 200 or not check(page.text):
            raise RuntimeError(f"{path}: {page.status_code} {page.text[:400]}")
    return times


def _row(name: str, times: list[float], base: float) -> str:
    p50 = statistics.median(times)
    p95 = sorted(times)[max(0, round(0.95 * len(times)) - 1)]
    return (
        f"  {name:<16}{len(times):>5}{p50 * 1000:>10.1f}{p95 * 1000:>10.1f}"
        f"{max(times) * 1000:>10.1f}{p50 / base:>10.1f}x"
    )


@contextmanager
def _signed_in(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, follow_redirects=True, timeout=120) as client:
        login = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert token is not None
        form = {"name": "bench", "password": PASSWORD, "csrf_token": token.group(1)}
        assert "bench (viewer)" in client.post("/login", data=form).text
        yield client


def measure(url: str, app: Starlette, args: argparse.Namespace, total: int) -> None:
    figures = app.state.figures
    with _signed_in(url) as client, httpx.Client(base_url=url, timeout=60) as anonymous:
        started = time.perf_counter()
        first = client.get("/")
        first_s = time.perf_counter() - started
        while "counting" in client.get("/overview/figures").text:
            time.sleep(0.2)
        tallied_s = time.perf_counter() - started
        per_worker = f"<strong>{total // args.workers:,}</strong>"
        print(
            f"first overview {first_s * 1000:.0f} ms ({first.status_code}); every error class "
            f"tallied {tallied_s:.1f} s after start"
        )

        def shows(page: str) -> bool:
            return page.count(per_worker) == args.workers and "counting" not in page

        n = args.requests
        base = _timed(anonymous, "/login", n, lambda page: "password" in page)
        default_ttl = figures.ttl_s
        figures.ttl_s = 0.0
        cold = _timed(client, "/", n, shows)
        fragment = _timed(client, "/overview/figures", n, shows)
        figures.ttl_s = default_ttl
        cached = _timed(client, "/", n, shows)
        listed = f"{total:,} dead letters match"
        newest = _timed(client, "/dead-letters", max(3, n // 4), lambda page: listed in page)
        wanted = f"/dead-letters?worker=all&record_id=besok-bench0-{total // args.workers // 2}"
        filtered = _timed(client, wanted, 3, lambda page: "1 dead letters match" in page)
    b = statistics.median(base)
    print(f"\n  {'page':<16}{'n':>5}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}{'p50/base':>11}")
    print(_row("baseline", base, b))
    print(_row("overview", cold, b))
    print(_row("overview-cached", cached, b))
    print(_row("live-figures", fragment, b))
    print(_row("list-newest", newest, b))
    print(_row("list-filtered", filtered, b))
    print(
        f"\n(figures cache TTL {default_ttl} s; {args.workers} workers x {args.partitions} "
        f"partitions, {total:,} dead letters)"
    )


async def prepare(bootstrap: str, postgres: str, args: argparse.Namespace) -> list[WorkerSource]:
    sources, health = [], []
    ledger = Ledger.from_url(postgres)
    await ledger.create_schema()
    per_worker = args.letters // args.workers
    try:
        for i in range(args.workers):
            worker = f"bench{i}"
            input_topic = f"bench.console.{worker}.{uuid.uuid4().hex[:6]}"
            await create_topics(bootstrap, worker, input_topic, TIERS, partitions=args.partitions)
            topics = WorkerTopics(worker, input_topic, TIERS)
            started = time.perf_counter()
            await fill(bootstrap, topics, per_worker, args.partitions)
            print(
                f"{worker}: {per_worker:,} dead letters written in "
                f"{time.perf_counter() - started:.1f} s"
            )
            settings = DoubleSettings(
                database_url=postgres,  # type: ignore[arg-type]
                kafka=KafkaSettings(bootstrap_servers=bootstrap),
                topics=TopicSettings(retry_delays=list(TIERS)),
                input_topic=input_topic,
            )
            some = DlqFilter(until=datetime.now(UTC) - timedelta(days=2) + timedelta(seconds=40))
            letters = await read_dead_letters(settings.kafka, topics.dlq, filters=some)
            chosen = letters[:REPLAYED_PER_WORKER]
            await replay(settings.kafka, ledger, chosen, operator="bench")
            sources.append((worker, settings, topics))
            health.append(worker)
    finally:
        await ledger.close()
    return [WorkerSource(w, s, t, "") for w, s, t in sources]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    with provide_kafka() as kafka, provide_postgres() as pg, TemporaryDirectory() as _tmp:
        if pg is None:
            raise SystemExit("no PostgreSQL here (initdb/pg_ctl on PATH, or a URL in env)")
        print(f"Kafka {kafka.address} ({kafka.how}), PostgreSQL ({pg.how})")
        prepared = asyncio.run(prepare(kafka.address, pg.address, args))
        with _health_servers([s.name for s in prepared]) as urls:
            sources = {
                s.name: WorkerSource(s.name, s.settings, s.topics, urls[s.name]) for s in prepared
            }
            console = ConsoleSettings(
                session_secret="b" * 40,  # type: ignore[arg-type]
                secure_cookies=False,
                database_url=pg.address,  # type: ignore[arg-type]
            )
            accounts = parse_accounts(f"bench viewer {hash_password(PASSWORD)}")
            app = create_app(console, sources, accounts)
            with serving(app) as url:
                measure(url, app, args, args.letters // args.workers * args.workers)


@contextmanager
def _health_servers(workers: list[str]) -> Iterator[dict[str, str]]:
    with _nested([serving(health_stand_in(w)) for w in workers]) as urls:
        yield dict(zip(workers, urls, strict=True))


@contextmanager
def _nested(managers: list[Any]) -> Iterator[list[str]]:
    with ExitStack() as stack:
        yield [stack.enter_context(m) for m in managers]


if __name__ == "__main__":
    main()
