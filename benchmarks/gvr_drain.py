"""GVR drain: a backlog of outpatient visits into GVR, naive consumer vs the regbridge GVR worker.

    .venv/bin/python -m benchmarks.gvr_drain [--visits 50000] [--latency-ms 20] [--partitions 12]
        [--naive-sample 2000] [--naive-seconds 60]

Publishes N valid outpatient-visit creates (distinct patients, so distinct GVR keys; kombikas open
on the visit day in the HSA directory the catalog holds), keyed by record id, to a fresh topic and
reads it three ways, each in a process of its own, against the GVR sandbox (a process of its own;
mutual TLS; answers after --latency-ms):
  raw     aiokafka getmany, no group, no work: every record, from the first poll to the last
  naive   one event at a time: parse, map, GvrClient.send, commit that message; over a sample (the
          first --naive-sample events or --naive-seconds); the sandbox is reset after it (no 409s)
  bare    the ceiling: every request mapped beforehand (untimed), then sent by a bare aiohttp
          client over the same mutual TLS at the worker's concurrency (MAX_IN_FLIGHT); no Kafka,
          no ledger; the sandbox is reset after it
  worker  `regbridge run gvr` (catalog view, SQLite ledger) draining all N, then SIGTERM
The worker's and the bare client's CPU per event are their processes' own (rusage); the worker's
includes its start (imports, the catalog's load, the group join). The worker's steady figure leaves
the start out: its CPU (/proc) from the first poll that sees a commit to the one that sees the last,
over the events committed in between; it compares with the bare client's, timed over its sending
alone. worker / bare is the ratio the runtime's overhead costs. The worker's events at the
register while draining are its `regbridge_register_in_flight`, scraped every 0.25 s: a worker
that keeps the register busy holds it at its concurrency, as the bare client does.
Register rates come from the sandbox's log (first to last accepted create). Peak RSS is os.wait4's,
taken by a small launcher: a child forked from this large process would inherit its high-water mark.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import random
import re
import signal
import ssl
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.processes import CLI, InFlight, SteadyCpu, free_port, launch, report, run_child

# Module level: what the consumer children need; the parent's imports (FastAPI …) are local.
from services.gvr.client import GvrClient, build_ssl_context
from services.gvr.mapping import GvrPaths, to_gvr_request
from services.gvr.settings import GvrSettings
from shared.contracts import CARE_CONTACT_EXAMPLES, CareContactEvent, parse_event
from shared.delivery.worker import Accepted

UNITS, SEED = 2000, 1
VISIT_DAY = date(2026, 11, 16)  # a Monday; the codes the visits use are valid on it


def open_kombikas(day: date) -> list[str]:
    """Kombikas that both GVR's registry and the catalog hold open on `day`."""
    from services.sandboxes.gvr.kombika import periods_of_unit
    from services.sandboxes.hsa.directory import HsaDirectory

    found = []
    for unit in HsaDirectory(UNITS, SEED).iter_units():
        start = unit.get("hsaStartDate")
        if unit.get("hsaEndDate") or not start or date.fromisoformat(start) > day:
            continue
        found += [p.code for p in periods_of_unit(unit) if p.open_on(day)]
    return found


def visits(n: int, kombikas: list[str], run: str) -> list[dict[str, Any]]:
    """N valid creates; patient i is unique (birth date + serial), so every GVR key is too."""
    from services.gvr.dev import DIAGNOSES, PROCEDURES, PROFESSIONS
    from shared.identifiers import luhn_check_digit

    rng = random.Random(SEED)  # noqa: S311 - benchmark data, not secrets
    events = []
    for i in range(n):
        born = date(1930, 1, 1) + timedelta(days=i % 30000)
        ten = born.strftime("%y%m%d") + f"{i // 30000 + 1:03d}"
        patient = born.strftime("%Y")[:2] + ten + str(luhn_check_digit(ten))
        visited = datetime.fromisoformat(f"{VISIT_DAY}T07:00Z") + timedelta(minutes=i % 600)
        event = copy.deepcopy(CARE_CONTACT_EXAMPLES["outpatient_visit"])
        event |= {"event_id": str(uuid.uuid4()), "occurred_at": datetime.now(UTC).isoformat()}
        event |= {"source_system": "bench-journal", "record_id": f"besok-{run}-{i:07d}"}
        payload = event["payload"]
        del payload["referring_kombika"], payload["care_period_code"]
        payload |= {
            "patient": {"id_type": "PNR", "id": patient},
            "kombika": kombikas[i % len(kombikas)],
            "visited_at": visited.isoformat(),
            "professions": [rng.choice(PROFESSIONS)],
            "akut": rng.choice("JN"),
            "diagnoses": [rng.choice(DIAGNOSES)],
            "procedures": [{"code": rng.choice(PROCEDURES), "diagnosis_index": 0}],
        }
        payload["procedures"][0]["performed_on"] = str(VISIT_DAY)
        events.append(event)
    return events


def consumer_of(args: argparse.Namespace, group: str | None) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )


def client_tls(certs: Path) -> ssl.SSLContext:
    return build_ssl_context(
        ca_bundle=str(certs / "ca.pem"),
        client_cert=str(certs / "client.pem"),
        client_key=str(certs / "client.key"),
    )


async def raw_consume(args: argparse.Namespace) -> dict[str, Any]:
    """Every record, no group (no join to wait for): from the first poll to the last record."""
    consumer = consumer_of(args, None)
    await consumer.start()
    seen, started = 0, time.perf_counter()
    try:
        while seen < args.limit:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            seen += sum(len(records) for records in batch.values())
        seconds = time.perf_counter() - started
    finally:
        await consumer.stop()
    return {"events": seen, "rate": seen / seconds}


async def bare(args: argparse.Namespace) -> dict[str, Any]:
    """The ceiling: every event read and mapped first (untimed), then each request sent by a bare
    aiohttp client, `args.concurrency` in flight, bodies serialised beforehand."""
    import aiohttp

    consumer, paths = consumer_of(args, None), GvrPaths()
    requests: list[tuple[str, str, bytes]] = []
    await consumer.start()
    try:
        while len(requests) < args.limit:
            for records in (await consumer.getmany(timeout_ms=500, max_records=500)).values():
                for message in records:
                    event = parse_event(message.value or b"")
                    assert isinstance(event, CareContactEvent)
                    request = to_gvr_request(event, None, paths)
                    body = json.dumps(request.json, separators=(",", ":")).encode()
                    requests.append((request.method, args.url + request.path, body))
    finally:
        await consumer.stop()
    accepted, failed = 0, Counter[int]()
    connector = aiohttp.TCPConnector(ssl=client_tls(Path(args.certs)), limit=args.concurrency)
    headers = {"content-type": "application/json"}
    async with aiohttp.ClientSession(connector=connector) as session:
        queue = iter(requests)

        async def sender() -> None:
            nonlocal accepted
            for method, url, body in queue:  # one shared iterator: each request sent once
                async with session.request(method, url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status < 300:
                        accepted += 1
                    else:
                        failed[response.status] += 1

        cpu, started = time.process_time(), time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(args.concurrency)))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "accepted": accepted,
        "failed": dict(failed),
        "rate": len(requests) / seconds,
        "cpu_us": cpu / len(requests) * 1e6,
    }


async def naive(args: argparse.Namespace) -> dict[str, Any]:
    """One event at a time: parse → map → send → commit this message, then the next."""
    consumer, paths = consumer_of(args, f"naive-{uuid.uuid4()}"), GvrPaths()
    accepted, errors, started = 0, Counter[str](), 0.0
    await consumer.start()
    try:
        async with GvrClient(args.url, ssl_context=client_tls(Path(args.certs))) as client:
            while accepted + errors.total() < args.limit:
                message = await consumer.getone()
                event = parse_event(message.value or b"")
                assert isinstance(event, CareContactEvent)
                outcome = await client.send(to_gvr_request(event, None, paths))
                tp = TopicPartition(message.topic, message.partition)
                await consumer.commit({tp: message.offset + 1})
                if isinstance(outcome, Accepted):
                    accepted += 1
                else:
                    errors[outcome.error_class] += 1
                started = started or time.perf_counter()
                if time.perf_counter() - started > args.seconds:
                    break
    finally:
        await consumer.stop()
    return {"accepted": accepted, "errors": dict(errors)}


def log_rate(entries: list[dict[str, str]]) -> float:
    """Accepted creates per second between the sandbox's first and last acceptance."""
    times = sorted(datetime.fromisoformat(e["at"]) for e in entries if e["op"] == "create")
    return (len(times) - 1) / (times[-1] - times[0]).total_seconds() if len(times) > 1 else 0.0


async def drain(
    env: dict[str, str], bootstrap: str, topic: str, n: int
) -> tuple[float, dict[str, Any], float | None, float | None]:
    """Run `regbridge run gvr` until its group committed all N (or stalls): (start, its
    {"rss_mb", "cpu_s"}, its steady CPU µs an event, its mean events at the register while
    draining). Its logs go to this process's stderr.

    Steady: the worker's CPU between the first poll that sees a commit and the poll that sees the
    last, over the events committed between them: start-up (imports, the catalog's load, the group
    join) left out, as the bare client's figure leaves its own out (`SteadyCpu`)."""
    port = free_port()
    started = time.time()
    worker = launch([*CLI, "run", "gvr"], "err", env | {"REGBRIDGE_GVR_HEALTH_PORT": str(port)})
    steady, in_flight = SteadyCpu(worker), InFlight(port)
    done = 0
    watching = asyncio.ensure_future(in_flight.watch(lambda: 0 < done < n))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        last, since = -1, time.monotonic()
        while done < n and worker.poll() is None and time.monotonic() - since < 180:
            await asyncio.sleep(1)
            offsets = await admin.list_consumer_group_offsets("regbridge-gvr")
            done = sum(o.offset for tp, o in offsets.items() if tp.topic == topic and o.offset > 0)
            steady.sample(done)
            if done != last:
                last, since = done, time.monotonic()
    finally:
        watching.cancel()
        await admin.close()
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)  # a graceful stop; the launcher passes it on
    return started, report(worker, timeout=120)[1], steady.us_per_event(), in_flight.mean()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, default=50_000)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--naive-sample", type=int, default=2000)
    parser.add_argument("--naive-seconds", type=float, default=60)
    parser.add_argument(
        "--concurrency", type=int, default=None, help="in flight (default: MAX_IN_FLIGHT's)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)  # JSON: a consumer's own process
    args = parser.parse_args()
    if args.child:
        child = argparse.Namespace(**json.loads(args.child))
        roles = {"raw": raw_consume, "naive": naive, "bare": bare}
        print(json.dumps(await roles[child.role](child)))
        return
    from services.devstack.infra import provide_kafka
    from services.sandboxes.hsa import HsaSandbox
    from shared.settings import KafkaSettings
    from shared.topics import TopicSpec, ensure_topics
    from tests.support.runtime_harness import create_topics, publish

    n, run = args.visits, uuid.uuid4().hex[:8]
    topics = {name: f"bench.{name}.{run}" for name in ("input", "units", "vaccines", "kombikas")}
    events = visits(n, open_kombikas(VISIT_DAY), run)
    with provide_kafka() as broker, tempfile.TemporaryDirectory() as tmp:
        bootstrap, certs = broker.address, Path(tmp) / "certs"
        await ensure_topics(
            KafkaSettings(bootstrap_servers=bootstrap),
            [TopicSpec(topics[t], "", compacted=True) for t in ("units", "vaccines", "kombikas")],
            partitions=6,
            replication_factor=1,
        )
        await create_topics(bootstrap, "gvr", topics["input"], ["30s"], args.partitions)
        await publish(bootstrap, topics["input"], events)
        env = os.environ | {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "REGBRIDGE_TOPICS_CARE_UNITS": topics["units"],
            "REGBRIDGE_TOPICS_VACCINES": topics["vaccines"],
            "REGBRIDGE_TOPICS_KOMBIKAS": topics["kombikas"],
            "REGBRIDGE_GVR_INPUT_TOPIC": topics["input"],
            "REGBRIDGE_TOPICS_RETRY_DELAYS": '["30s"]',
            "REGBRIDGE_CATALOG_VACCINES_URL": "http://127.0.0.1:9",
            "REGBRIDGE_CATALOG_DATABASE_URL": f"sqlite+aiosqlite:///{Path(tmp) / 'c.db'}",
            "REGBRIDGE_GVR_CLIENT_CERT": str(certs / "client.pem"),
            "REGBRIDGE_GVR_CLIENT_KEY": str(certs / "client.key"),
            "REGBRIDGE_GVR_CA_BUNDLE": str(certs / "ca.pem"),
            "REGBRIDGE_GVR_DATABASE_URL": f"sqlite+aiosqlite:///{Path(tmp) / 'ledger.db'}",
            "REGBRIDGE_GVR_HEALTH_PORT": "0",
        }
        with HsaSandbox(UNITS, SEED) as hsa:  # the catalog first: the worker checks units in it
            env["REGBRIDGE_CATALOG_HSA_URL"] = hsa.base_url
            imported = subprocess.run(
                [*CLI, "catalog", "import-now"], env=env, capture_output=True, text=True, check=True
            )
        options = ["--latency-ms", str(args.latency_ms), "--units", str(UNITS), "--seed", "1"]
        sandbox = launch(
            [*CLI, "sandbox", "gvr", "--port", "0", "--certs-dir", str(certs), *options]
        )
        try:
            assert sandbox.stdout is not None
            announced = re.search(r"(https://[^\s,]+)", sandbox.stdout.readline())
            assert announced is not None, "the GVR sandbox did not announce its address"
            url = env["REGBRIDGE_GVR_BASE_URL"] = announced.group(1)
            common = {"bootstrap": bootstrap, "topic": topics["input"], "url": url}
            common |= {"certs": str(certs), "seconds": args.naive_seconds}
            raw, raw_rss = run_child(__spec__.name, {"role": "raw", "limit": n, **common})
            sample, naive_rss = run_child(
                __spec__.name, {"role": "naive", "limit": args.naive_sample, **common}
            )
            async with httpx.AsyncClient(
                base_url=url, verify=client_tls(certs), timeout=120
            ) as gvr:

                async def reset() -> None:  # the next one meets none of the records sent
                    (await gvr.post("/admin/reset")).raise_for_status()
                    faults = {"latency_ms": args.latency_ms}  # a reset clears the faults too
                    (await gvr.post("/admin/faults", json=faults)).raise_for_status()

                naive_log = (await gvr.get("/admin/log")).raise_for_status().json()
                await reset()
                concurrency = args.concurrency or GvrSettings().runtime.max_in_flight
                ceiling, bare_rss = run_child(
                    __spec__.name,
                    {"role": "bare", "limit": n, "concurrency": concurrency, **common},
                )
                await reset()
                started, worker_end, steady_cpu_us, out = await drain(
                    env, bootstrap, topics["input"], n
                )
                worker_rss = worker_end["rss_mb"]
                worker_log = (await gvr.get("/admin/log")).raise_for_status().json()
        finally:
            sandbox.terminate()
            sandbox.wait(timeout=60)
    naive_rate = log_rate(naive_log)
    first = min(datetime.fromisoformat(e["at"]) for e in worker_log).timestamp() - started
    worker_rate = log_rate(worker_log)
    rows = [
        ("raw consume (aiokafka, no work)", raw["events"], raw["rate"], raw_rss),
        ("naive (1 at a time, commit each)", len(naive_log), naive_rate, naive_rss),
        (
            f"bare aiohttp client, {concurrency} in flight",
            ceiling["accepted"],
            ceiling["rate"],
            bare_rss,
        ),
        ("regbridge GVR worker (SQLite ledger)", len(worker_log), worker_rate, worker_rss),
    ]
    worker_cpu_us = worker_end["cpu_s"] / n * 1e6
    print(
        f"{n} visits published, {args.partitions} partitions; GVR sandbox answers after "
        f"{args.latency_ms:g} ms over mutual TLS\ncatalog: {imported.stdout.strip()}\n"
        f"naive sample: {sample['accepted']} accepted, errors: {sample['errors'] or 'none'}\n"
        f"worker: first acceptance {first:.1f} s after its start (catalog, group join); "
        f"{'unknown' if out is None else f'{out:.1f}'} of {concurrency} events at the register "
        "on average while draining (its regbridge_register_in_flight, every 0.25 s)\n"
        f"bare client: {ceiling['accepted']} accepted, failed: {ceiling['failed'] or 'none'}"
    )
    print(f"{'consumer':<42}{'events':>8}{'events/s':>10}{'vs naive':>10}{'peak RSS MB':>13}")
    keys = ("consumer", "events", "events_per_s", "vs_naive", "peak_rss_mb")
    table = []
    for name, count, rate, rss in rows:
        print(f"{name:<42}{count:>8}{rate:>10.1f}{rate / naive_rate:>10.2f}{rss:>13.0f}")
        values = (name, count, round(rate, 1), round(rate / naive_rate, 2), round(rss))
        table.append(dict(zip(keys, values, strict=True)))
    ratio = worker_rate / ceiling["rate"]
    steady = f"{steady_cpu_us:.0f} µs" if steady_cpu_us is not None else "unknown (no /proc)"
    print(
        f"CPU per event: worker {worker_cpu_us:.0f} µs (its whole process, start included), "
        f"{steady} while draining (start-up left out); bare client {ceiling['cpu_us']:.0f} µs\n"
        f"worker / ceiling: {ratio:.2f} of the bare client's rate"
    )
    summary = {"visits": n, "partitions": args.partitions, "latency_ms": args.latency_ms}
    summary |= {"worker_cpu_us": round(worker_cpu_us), "bare_cpu_us": round(ceiling["cpu_us"])}
    summary |= {"worker_steady_cpu_us": round(steady_cpu_us) if steady_cpu_us else None}
    summary |= {"worker_vs_ceiling": round(ratio, 2)}
    summary |= {"worker_in_flight": round(out, 1) if out is not None else None}
    print(json.dumps(summary | {"worker_first_acceptance_s": round(first, 1), "rows": table}))


if __name__ == "__main__":
    asyncio.run(main())
