"""NVR drain: a backlog of vaccinations into NVR, naive consumer vs the regbridge NVR worker.

    .venv/bin/python -m benchmarks.nvr_drain [--vaccinations 100000] [--latency-ms 50]
        [--partitions 12] [--naive-sample 2000] [--naive-seconds 60] [--cpu-sample 2000]
        [--postgres]

Publishes N valid vaccination creates (distinct record ids; personnummer and samordningsnummer
with their check digits; vaccines and batches from the sandbox's default list, COVID-19 ones with
a dose number; care units and their providers from the HSA directory the sandbox and the catalog
share), keyed by record id, to a fresh topic and reads it three ways, each in a process of its
own, against the NVR sandbox (a process of its own; OAuth2; answers after --latency-ms):
  raw     aiokafka getmany, no group, no work: every record, from the first poll to the last
  naive   one vaccination at a time: parse, map (FHIR build + validation), a bundle of one entry,
          commit that message; over a sample (the first --naive-sample vaccinations or
          --naive-seconds); the sandbox is reset after it (no 409s for the worker)
  bare    the ceiling: every vaccination mapped into bundles of 100 beforehand (untimed; the
          worker's own map and bundle), then the bundles POSTed by a bare aiohttp client with one
          OAuth2 token, as many in flight as the worker's MAX_IN_FLIGHT / BATCH_SIZE; no Kafka,
          no ledger; the sandbox is reset after it
  worker  `regbridge run nvr` (catalog view, SQLite ledger or with --postgres production's
          PostgreSQL, bundles of 100) draining all N,
          then SIGTERM
Register rates come from the sandbox's own record (`/admin/records`: each record's lastUpdated,
from the first acceptance to the last). Peak RSS and the worker's CPU are os.wait4's, taken by a
small launcher: a child forked from this large process would inherit its high-water mark; its
figure "while draining" leaves start-up out (`benchmarks.processes.SteadyCpu`). The
sandbox's CPU is read from /proc around each phase. The CPU of FHIR building and validation is
measured in a process of its own on the first --cpu-sample vaccinations of the topic, with the
worker's own `parse`, `map` (rules + build + the per-shape FHIR check) and bundle (`entry` +
`build_bundle`), a full fhir.resources validation of each resource beside it for comparison,
against the same catalog (process CPU time, best of 3, µs per vaccination).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from benchmarks.processes import CLI, SteadyCpu, launch, report, run_child

# Module level: what the consumer children need; the parent's imports (FastAPI …) are local.
from services.nvr.client import NvrClient
from services.nvr.mapping import build_bundle, validate_immunization
from services.nvr.profile import NvrProfile
from services.nvr.settings import NvrSettings
from services.nvr.worker import NvrCall, NvrWorker
from shared.contracts import VaccinationEvent
from shared.delivery.worker import Accepted
from shared.oauth2 import ClientCredentialsAuth

UNITS, SEED = 2000, 1
CLIENT_ID, CLIENT_SECRET = "regbridge", "regbridge-secret"  # the sandbox's test pair
BUNDLE = 100  # the worker's batch_size (NvrSettings), NVR's limit


def usable_units() -> list[tuple[str, str, str]]:
    """(unit HSA-id, provider HSA-id, provider org number) of active units with a valid provider,
    as the NVR sandbox's HSA directory and the catalog (imported from it) both hold them."""
    from services.sandboxes.hsa.directory import HsaDirectory
    from shared.identifiers import validate_hsa_id, validate_organisationsnummer

    found = []
    for unit in HsaDirectory(UNITS, SEED).iter_units():
        ids = (unit.get("hsaIdentity"), unit.get("careGiver"), unit.get("careGiverOrgNo"))
        if unit.get("hsaEndDate") or not all(isinstance(i, str) and i for i in ids):
            continue
        hsa_id, giver, org = (str(i) for i in ids)
        try:
            validate_hsa_id(hsa_id)
            validate_hsa_id(giver)
            validate_organisationsnummer(org)
        except ValueError:
            continue
        found.append((hsa_id, giver, org))
    return found


def identity_number(born: date, serial: int, coordination: bool) -> str:
    """A 12-digit personnummer (or samordningsnummer: day + 60) with its Luhn check digit."""
    from shared.identifiers import luhn_check_digit

    day = born.day + 60 if coordination else born.day
    ten = f"{born:%y%m}{day:02d}{serial % 1000:03d}"
    return f"{born:%Y}"[:2] + ten + str(luhn_check_digit(ten))


def vaccinations(
    n: int, units: list[tuple[str, str, str]], vaccines: list[dict[str, Any]], run: str
) -> list[dict[str, Any]]:
    """N valid creates: COVID-19 (dose 1-4), childhood, pneumococcal risk-group and tuberculosis
    vaccinations, each after its programme began and after the person's birth, none in future."""

    def of_atc(prefix: str) -> dict[str, Any]:
        return next(v for v in vaccines if (v.get("atcCode") or "").startswith(prefix))

    by_programme = {
        "covid19": next(v for v in vaccines if v["covid19"]),
        "childhood": of_atc("J07CA"),  # combined childhood vaccines (Infanrix hexa)
        "pneumococcal_risk": of_atc("J07AL"),
        "tuberculosis_child": of_atc("J07AN"),  # BCG
    }
    rng = random.Random(SEED)  # noqa: S311 - benchmark data, not secrets
    events = []
    for i in range(n):
        programme = rng.choices(list(by_programme), weights=(45, 30, 15, 10))[0]
        vaccine = by_programme[programme]
        dose = None
        if programme == "covid19":
            born = date(1930, 1, 1) + timedelta(days=i % 25_000)
            given = date(2021, 1, 10) + timedelta(days=i % 1_400)
            dose = 1 + i % 4
        elif programme == "childhood":
            born = date(2015, 1, 1) + timedelta(days=i % 3_000)
            given = born + timedelta(days=90 + i % 300)
        elif programme == "pneumococcal_risk":
            born = date(1940, 1, 1) + timedelta(days=i % 20_000)
            given = date(2023, 1, 2) + timedelta(days=i % 700)
        else:
            born = date(2024, 6, 1) + timedelta(days=i % 300)
            given = date(2025, 6, 2) + timedelta(days=i % 400)
        batches = [
            b["number"] for b in vaccine["batches"] if (b["expiresOn"] or "9999") >= str(given)
        ]
        coordination = i % 20 == 0  # one in twenty: a samordningsnummer
        person: dict[str, Any] = {
            "id_type": "SNR" if coordination else "PNR",
            "id": identity_number(born, i // 1_000, coordination),
        }
        if i % 2:
            person["birth_date"] = str(born)
        unit, giver, org = units[i % len(units)]
        payload: dict[str, Any] = {
            "patient": person,
            "vaccinated_on": str(given),
            "vaccine_npl_id": vaccine["nplId"],
            "vaccine_name": vaccine["name"],
            "batch_number": rng.choice(batches),
            "programme": programme,
            "performing_unit_hsa_id": unit,
            "care_provider": {"hsa_id": giver, "organisation_number": org},
        }
        if dose is not None:
            payload["dose_number"] = dose
        events.append(
            {
                "event_id": str(uuid.uuid4()),
                "event_type": "vaccination",
                "schema_version": 1,
                "occurred_at": datetime.now(UTC).isoformat(),
                "source_system": "bench-journal",
                "record_id": f"vacc-{run}-{i:07d}",
                "record_version": 1,
                "operation": "create",
                "payload": payload,
            }
        )
    return events


def consumer_of(args: argparse.Namespace, group: str | None) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )


def nvr_client(url: str) -> NvrClient:
    profile = NvrProfile()
    auth = ClientCredentialsAuth(url + profile.token_path, CLIENT_ID, CLIENT_SECRET)
    return NvrClient(url, auth=auth, profile=profile)


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
    """The ceiling: every vaccination read, mapped and bundled first (untimed), then each bundle
    POSTed by a bare aiohttp client, `args.concurrency` bundles in flight."""
    import aiohttp

    from services.nvr.client import FHIR_JSON

    consumer, raws = consumer_of(args, None), list[bytes]()
    await consumer.start()
    try:
        while len(raws) < args.limit:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            raws += [r.value or b"" for records in batch.values() for r in records]
    finally:
        await consumer.stop()
    profile = NvrProfile()
    async with nvr_client(args.url) as client:
        worker = NvrWorker(client, None, profile)
        entries = [worker.map(worker.parse(raw)[1], None).entry() for raw in raws]
    bodies = [
        build_bundle(entries[i : i + BUNDLE], profile) for i in range(0, len(entries), BUNDLE)
    ]
    accepted, failed = 0, Counter[str]()
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=args.concurrency)
    ) as session:
        form = {"grant_type": "client_credentials"}
        token_url, auth = args.url + profile.token_path, aiohttp.BasicAuth(CLIENT_ID, CLIENT_SECRET)
        async with session.post(token_url, data=form, auth=auth) as answer:
            token = (await answer.json())["access_token"]
        headers = {
            "authorization": f"Bearer {token}",
            "content-type": FHIR_JSON,
            "accept": FHIR_JSON,
        }
        url, queue = args.url + profile.fhir_path, iter(bodies)

        async def sender() -> None:
            nonlocal accepted
            for body in queue:  # one shared iterator: each bundle sent once
                async with session.post(url, data=body, headers=headers) as response:
                    answer = await response.read()
                    if response.status >= 300:
                        failed[str(response.status)] += BUNDLE
                        continue
                    for entry in json.loads(answer)["entry"]:
                        status = entry["response"]["status"]
                        if status.startswith("2"):
                            accepted += 1
                        else:
                            failed[status.split()[0]] += 1

        cpu, started = time.process_time(), time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(args.concurrency)))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {
        "accepted": accepted,
        "failed": dict(failed),
        "rate": len(entries) / seconds,
        "cpu_us": cpu / len(entries) * 1e6,
    }


async def naive(args: argparse.Namespace) -> dict[str, Any]:
    """One vaccination at a time: parse → map → a bundle of one → commit this message."""
    consumer = consumer_of(args, f"naive-{uuid.uuid4()}")
    accepted, errors, started = 0, Counter[str](), 0.0
    await consumer.start()
    try:
        async with nvr_client(args.url) as client:
            worker = NvrWorker(client, None, client.profile)  # no catalog: NVR checks the rules
            while accepted + errors.total() < args.limit:
                message = await consumer.getone()
                _, event = worker.parse(message.value or b"")
                call = worker.map(event, None)
                outcome = await client.send_bundle([call.entry()])
                tp = TopicPartition(message.topic, message.partition)
                await consumer.commit({tp: message.offset + 1})
                for each in outcome if isinstance(outcome, list) else [outcome]:
                    if isinstance(each, Accepted):
                        accepted += 1
                    else:
                        errors[each.error_class] += 1
                started = started or time.perf_counter()
                if time.perf_counter() - started > args.seconds:
                    break
    finally:
        await consumer.stop()
    return {"accepted": accepted, "errors": dict(errors)}


def best_cpu_us(work: Callable[[], object], count: int, repeat: int = 3) -> float:
    """Best of `repeat` runs of `work`: µs of process CPU per vaccination (`count` per run)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
    return best / count * 1e6


async def fhir_cpu(args: argparse.Namespace) -> dict[str, Any]:
    """The worker's own per-vaccination CPU, on the first `limit` vaccinations of the topic,
    against the catalog it reads (a CatalogView of the same topics, stopped once caught up)."""
    from shared.catalog.view import CatalogView
    from shared.settings import KafkaSettings

    consumer, raws = consumer_of(args, None), list[bytes]()
    await consumer.start()
    try:
        while len(raws) < args.limit:
            batch = await consumer.getmany(timeout_ms=500, max_records=500)
            raws += [r.value or b"" for records in batch.values() for r in records]
    finally:
        await consumer.stop()
    raws = raws[: args.limit]
    view = CatalogView(
        KafkaSettings(bootstrap_servers=args.bootstrap),
        units_topic=args.units_topic,
        vaccines_topic=args.vaccines_topic,
    )
    await view.start()
    try:
        await view.wait_ready(120)
    finally:
        await view.stop()
    profile = NvrProfile()
    client = NvrClient("http://127.0.0.1:9", auth=None, profile=profile)  # never called
    worker = NvrWorker(client, view, profile)
    events = [event for raw in raws if isinstance(event := worker.parse(raw)[1], VaccinationEvent)]
    calls: list[NvrCall] = [worker.map(event, None) for event in events]  # warm: first validation
    resources = [call.resource for call in calls if call.resource is not None]
    n = len(events)

    def bundles() -> None:
        for first in range(0, n, BUNDLE):
            build_bundle([call.entry() for call in calls[first : first + BUNDLE]], profile)

    def each(work: Callable[[Any], object], items: list[Any]) -> Callable[[], None]:
        def run() -> None:
            for item in items:
                work(item)

        return run

    figures = {
        "parse_us": best_cpu_us(each(worker.parse, raws), n),
        "map_us": best_cpu_us(each(lambda event: worker.map(event, None), events), n),
        "rules_us": best_cpu_us(each(worker._check_rules, events), n),
        "validate_us": best_cpu_us(each(validate_immunization, resources), n),
        "bundle_us": best_cpu_us(bundles, n),
    }
    await client.aclose()
    return {"sample": n} | {k: round(v, 1) for k, v in figures.items()}


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def register_records(nvr: httpx.AsyncClient) -> list[dict[str, Any]]:
    """Every record the sandbox holds, paged."""
    records: list[dict[str, Any]] = []
    while True:
        page = await nvr.get("/admin/records", params={"offset": len(records), "limit": 20_000})
        listed = page.raise_for_status().json()["records"]
        records += listed
        if not listed:
            return records


def record_rate(records: list[dict[str, Any]]) -> float:
    """Accepted vaccinations per second after the register's first acceptance: those stored
    later than the first (a bundle's records share its instant) over first → last."""
    times = sorted(datetime.fromisoformat(r["lastUpdated"]).timestamp() for r in records)
    if len(times) < 2 or times[-1] == times[0]:
        return 0.0
    later = sum(1 for t in times if t > times[0])
    return later / (times[-1] - times[0])


async def drain(
    env: dict[str, str], bootstrap: str, topic: str, n: int
) -> tuple[float, dict[str, Any], float | None]:
    """Run `regbridge run nvr` until its group committed all N (or stalls): (start, launcher's
    {"rss_mb", "cpu_s"}, its steady CPU µs a vaccination, `SteadyCpu`). Its logs go to this
    process's stderr."""
    started, worker = time.time(), launch([*CLI, "run", "nvr"], "err", env)
    steady = SteadyCpu(worker)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        done, last, since = 0, -1, time.monotonic()
        while done < n and worker.poll() is None and time.monotonic() - since < 180:
            await asyncio.sleep(1)
            try:
                offsets = await admin.list_consumer_group_offsets("regbridge-nvr")
            except KafkaError:  # e.g. no group coordinator yet on a fresh broker
                continue
            done = sum(o.offset for tp, o in offsets.items() if tp.topic == topic and o.offset > 0)
            steady.sample(done)
            if done != last:
                last, since = done, time.monotonic()
    finally:
        await admin.close()
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)  # a graceful stop; the launcher passes it on
    return started, report(worker, timeout=120)[1], steady.us_per_event()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vaccinations", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--naive-sample", type=int, default=2000)
    parser.add_argument("--naive-seconds", type=float, default=60)
    parser.add_argument("--cpu-sample", type=int, default=2000)
    parser.add_argument(
        "--postgres", action="store_true", help="the worker's ledger on PostgreSQL (production's)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)  # JSON: a consumer's own process
    args = parser.parse_args()
    if args.child:
        child = argparse.Namespace(**json.loads(args.child))
        roles = {"raw": raw_consume, "naive": naive, "cpu": fhir_cpu, "bare": bare}
        print(json.dumps(await roles[child.role](child)))
        return
    from services.devstack.infra import provide_kafka, provide_postgres
    from services.sandboxes.hsa import HsaSandbox
    from shared.settings import KafkaSettings
    from shared.topics import TopicSpec, ensure_topics
    from tests.support.runtime_harness import create_topics, publish

    n, run = args.vaccinations, uuid.uuid4().hex[:8]
    topics = {name: f"bench.{name}.{run}" for name in ("input", "units", "vaccines", "kombikas")}
    with (
        provide_kafka() as broker,
        provide_postgres() as pg,
        tempfile.TemporaryDirectory() as tmp,
    ):
        if args.postgres and pg is None:
            raise SystemExit("no PostgreSQL here")
        ledger = pg.address if args.postgres and pg else f"sqlite+aiosqlite:///{tmp}/ledger.db"
        bootstrap = broker.address
        await ensure_topics(
            KafkaSettings(bootstrap_servers=bootstrap),
            [TopicSpec(topics[t], "", compacted=True) for t in ("units", "vaccines", "kombikas")],
            partitions=6,
            replication_factor=1,
        )
        await create_topics(bootstrap, "nvr", topics["input"], ["30s"], args.partitions)
        env = os.environ | {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "REGBRIDGE_TOPICS_CARE_UNITS": topics["units"],
            "REGBRIDGE_TOPICS_VACCINES": topics["vaccines"],
            "REGBRIDGE_TOPICS_KOMBIKAS": topics["kombikas"],
            "REGBRIDGE_NVR_INPUT_TOPIC": topics["input"],
            "REGBRIDGE_TOPICS_RETRY_DELAYS": '["30s"]',
            "REGBRIDGE_CATALOG_DATABASE_URL": f"sqlite+aiosqlite:///{Path(tmp) / 'c.db'}",
            "REGBRIDGE_CATALOG_NVR_CLIENT_ID": CLIENT_ID,
            "REGBRIDGE_CATALOG_NVR_CLIENT_SECRET": CLIENT_SECRET,
            "REGBRIDGE_NVR_CLIENT_ID": CLIENT_ID,
            "REGBRIDGE_NVR_CLIENT_SECRET": CLIENT_SECRET,
            "REGBRIDGE_NVR_DATABASE_URL": ledger,
            "REGBRIDGE_NVR_HEALTH_PORT": "0",
        }
        options = ["--latency-ms", str(args.latency_ms), "--units", str(UNITS), "--seed", "1"]
        sandbox = subprocess.Popen(
            [*CLI, "sandbox", "nvr", "--port", "0", *options], stdout=subprocess.PIPE, text=True
        )
        try:
            assert sandbox.stdout is not None
            announced = re.search(r"(http://[^\s,]+)", sandbox.stdout.readline())
            assert announced is not None, "the NVR sandbox did not announce its address"
            url = announced.group(1)
            # the sandbox's own vaccine list (as started): what the vaccinations give
            vaccines = httpx.get(f"{url}/admin/vaccines").raise_for_status().json()
            events = vaccinations(n, usable_units(), vaccines, run)
            await publish(bootstrap, topics["input"], events)
            del events
            env["REGBRIDGE_NVR_BASE_URL"] = env["REGBRIDGE_CATALOG_VACCINES_URL"] = url
            # the catalog first: the worker checks units, vaccines and batches in it
            with HsaSandbox(UNITS, SEED) as hsa:
                env["REGBRIDGE_CATALOG_HSA_URL"] = hsa.base_url
                imported = subprocess.run(
                    [*CLI, "catalog", "import-now"],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
            listed = subprocess.run(
                [*CLI, "catalog", "vaccines-now"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            common = {"bootstrap": bootstrap, "topic": topics["input"], "url": url}
            common |= {"seconds": args.naive_seconds}
            raw, raw_rss = run_child(__spec__.name, {"role": "raw", "limit": n, **common})
            cpu, _ = run_child(
                __spec__.name,
                {
                    "role": "cpu",
                    "limit": min(args.cpu_sample, n),
                    "units_topic": topics["units"],
                    "vaccines_topic": topics["vaccines"],
                    **common,
                },
            )
            async with httpx.AsyncClient(base_url=url, timeout=120) as nvr:
                sandbox_cpu = proc_cpu(sandbox.pid)
                sample, naive_rss = run_child(
                    __spec__.name, {"role": "naive", "limit": args.naive_sample, **common}
                )
                naive_sandbox_cpu = proc_cpu(sandbox.pid) - sandbox_cpu
                naive_records = await register_records(nvr)

                async def reset() -> None:  # the next one meets none of the records sent
                    (await nvr.post("/admin/reset")).raise_for_status()
                    faults = {"latency_ms": args.latency_ms}  # a reset clears the faults too
                    (await nvr.put("/admin/faults", json=faults)).raise_for_status()

                await reset()
                runtime = NvrSettings().runtime
                concurrency = max(1, runtime.max_in_flight // runtime.batch_size)
                ceiling, bare_rss = run_child(
                    __spec__.name,
                    {"role": "bare", "limit": n, "concurrency": concurrency, **common},
                )
                await reset()
                sandbox_cpu = proc_cpu(sandbox.pid)
                started, worker_end, steady_us = await drain(env, bootstrap, topics["input"], n)
                worker_sandbox_cpu = proc_cpu(sandbox.pid) - sandbox_cpu
                worker_records = await register_records(nvr)
                sandbox_rss = proc_peak_mb(sandbox.pid)
        finally:
            sandbox.terminate()
            sandbox.wait(timeout=60)
    naive_rate = record_rate(naive_records)
    first = min(datetime.fromisoformat(r["lastUpdated"]) for r in worker_records)
    first_s = first.timestamp() - started
    worker_rss, worker_cpu = worker_end["rss_mb"], worker_end["cpu_s"]
    rows = [
        ("raw consume (aiokafka, no work)", raw["events"], raw["rate"], raw_rss),
        ("naive (1 per request, commit each)", len(naive_records), naive_rate, naive_rss),
        (
            f"bare aiohttp client, {concurrency} bundles in flight",
            ceiling["accepted"],
            ceiling["rate"],
            bare_rss,
        ),
        (
            f"regbridge NVR worker ({'PostgreSQL' if args.postgres else 'SQLite'} ledger)",
            len(worker_records),
            record_rate(worker_records),
            worker_rss,
        ),
    ]
    print(
        f"{n} vaccinations published, {args.partitions} partitions; NVR sandbox answers after "
        f"{args.latency_ms:g} ms (OAuth2, plain HTTP)\n"
        f"catalog: {imported.stdout.strip()}; vaccines: {listed.stdout.strip()}\n"
        f"naive sample: {sample['accepted']} accepted, errors: {sample['errors'] or 'none'}\n"
        f"worker: first acceptance {first_s:.1f} s after its start (catalog, group join); "
        f"{len(worker_records)} records in the register\n"
        f"bare client: {ceiling['accepted']} accepted, failed: {ceiling['failed'] or 'none'}"
    )
    print(f"{'consumer':<42}{'events':>8}{'events/s':>10}{'vs naive':>10}{'peak RSS MB':>13}")
    keys = ("consumer", "events", "events_per_s", "vs_naive", "peak_rss_mb")
    table = []
    for name, count, rate, rss in rows:
        print(f"{name:<42}{count:>8}{rate:>10.1f}{rate / naive_rate:>10.2f}{rss:>13.0f}")
        values = (name, count, round(rate, 1), round(rate / naive_rate, 2), round(rss))
        table.append(dict(zip(keys, values, strict=True)))
    per_worker = worker_cpu / n * 1e6
    per_sandbox = worker_sandbox_cpu / max(len(worker_records), 1) * 1e6
    per_naive_sandbox = naive_sandbox_cpu / max(len(naive_records), 1) * 1e6
    print(
        f"CPU µs per vaccination (process CPU, worker's own code, best of 3 over "
        f"{cpu['sample']}):\n"
        f"  parse (contract)                     {cpu['parse_us']:>8.1f}\n"
        f"  map (rules, build, FHIR per shape)   {cpu['map_us']:>8.1f}\n"
        f"    of which rules                     {cpu['rules_us']:>8.1f}\n"
        f"  (a full R4B validation, not done)    {cpu['validate_us']:>8.1f}\n"
        f"  bundle (entry + build_bundle, 100s)  {cpu['bundle_us']:>8.1f}\n"
        f"  worker process, all of it (rusage)   {per_worker:>8.1f}"
        f"  ({worker_cpu:.1f} s for {n}, start-up included)\n"
        f"  worker process, while draining       {steady_us or float('nan'):>8.1f}"
        f"  (/proc, first commit seen to last: start-up left out)\n"
        f"  bare client (rusage, sending only)   {ceiling['cpu_us']:>8.1f}\n"
        f"  NVR sandbox during the worker's run  {per_sandbox:>8.1f}"
        f"  ({worker_sandbox_cpu:.1f} s; peak RSS {sandbox_rss:.0f} MB)\n"
        f"  NVR sandbox during the naive sample  {per_naive_sandbox:>8.1f}"
        f"  ({naive_sandbox_cpu:.1f} s)"
    )
    summary = {"vaccinations": n, "partitions": args.partitions, "latency_ms": args.latency_ms}
    summary |= {"worker_first_acceptance_s": round(first_s, 1), "rows": table}
    summary |= {
        "cpu_us_per_vaccination": cpu
        | {
            "worker_process": round(per_worker, 1),
            "worker_steady": round(steady_us, 1) if steady_us else None,
            "sandbox_worker_run": round(per_sandbox, 1),
            "sandbox_naive_run": round(per_naive_sandbox, 1),
        },
        "worker_cpu_s": round(worker_cpu, 1),
        "sandbox_peak_rss_mb": round(sandbox_rss),
    }
    ratio = record_rate(worker_records) / ceiling["rate"]
    print(f"worker / ceiling: {ratio:.2f} of the bare client's rate")
    summary |= {"worker_vs_ceiling": round(ratio, 2), "bare_cpu_us": round(ceiling["cpu_us"], 1)}
    print(json.dumps(summary))


if __name__ == "__main__":
    asyncio.run(main())
