"""Scale-out: GVR workers 1 → 2 → 4 on a 12-partition input, one SIGKILLed, one added, no loss.

    .venv/bin/python -m benchmarks.scale_out [--phase-seconds 45] [--hold-seconds 20]
        [--settle-seconds 5] [--backlog 15000] [--latency-ms 20] [--partitions 12]

The stack `make run` gets (services/devstack/): a local broker, ONE PostgreSQL for the ledger all
workers share, the catalog imported from the HSA sandbox first, the GVR sandbox in a process of its
own (mutual TLS, answering after --latency-ms). Outpatient visits keyed by record id: a quarter of
the records stop at the create, a quarter get a correction, a quarter two, a quarter two and then a
cancellation; a record's events lie a few dozen offsets apart, so sequences straddle chunks and
rebalances.

Load: a standing backlog. --backlog events are published before the first worker starts, and a
producer task tops the backlog up to that level every half second until the last phase ends, so
events keep flowing in through every change. The workers never wait for input (the smallest backlog
seen in each window is printed to show it); the producer costs a few per cent of what a worker
does, in proportion to the drain; the final drain is bounded. A producer at a fixed rate above
what 4 workers drain would measure the same, but its rate must be guessed beforehand, and all it
publishes above the drain rate (most of it while 1 worker runs) piles up to drain at the end.

Phases, each a `regbridge run gvr` process (REGBRIDGE_GVR_HEALTH_PORT=0) under a launcher that
reports its peak RSS: 1 worker, 2, 4; one SIGKILLed (3 once the group notices, after the session
timeout); one added (4). A phase's rate is the register's own: operations accepted in the sandbox's
/admin/log from the group's settling (Stable with the phase's members, per the admin client) plus
--settle-seconds, to the next change. The pause is the longest gap between acceptances around the
change (after the kill: the longest any one partition waited). Then publishing stops, everything
drains (input and retry tier), and the workers get SIGTERM.

Proof from the register's record: per record (its kallId) the sandbox's log against what was
published: lost (published, not applied), doubled (applied more often than published, or under a
second GVR id), out of order (the right operations in another order, or a record whose content or
status read back by GET is not its last event's); and this run's dead letters on gvr's DLQ. Exit
status 1 unless all four are 0 and no worker exited on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from benchmarks.gvr_drain import CLI, SEED, UNITS, VISIT_DAY, client_tls, open_kombikas
from services.gvr.dev import DIAGNOSES, PROCEDURES, PROFESSIONS
from services.gvr.mapping import GvrPaths, lookup_request, to_gvr_request
from shared.contracts import CARE_CONTACT_EXAMPLES, CareContactEvent, parse_event
from shared.identifiers import luhn_check_digit
from shared.topics import dlq_topic, retry_topic

GROUP = "regbridge-gvr"
TIER = "30s"
# What a record gets, by record index modulo 4; a cancel carries the last correction's content.
OPS = (
    ("create",),
    ("create", "correct"),
    ("create", "correct", "correct"),
    ("create", "correct", "correct", "cancel"),
)
STATUS = {"create": "REGISTRERAD", "correct": "RATTAD", "cancel": "MAKULERAD"}
WAVE = 48  # records per wave; a wave carries version v of the records of wave w - v + 1
LAUNCHER = """
import json, os, signal, subprocess, sys
with open(sys.argv[1], "ab") as log:
    child = subprocess.Popen(sys.argv[2:], stdout=log, stderr=subprocess.STDOUT)
print(json.dumps({"pid": child.pid}), flush=True)
signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
_, status, usage = os.wait4(child.pid, 0)
print(json.dumps({"exit": os.waitstatus_to_exitcode(status), "rss_mb": usage.ru_maxrss / 1024}))
"""


class Visits:
    """Outpatient visits of one run, made wave by wave on demand; record i has a patient of its
    own, so GVR's key (patient, day, time, kombika) is unique per record."""

    def __init__(self, run: str, kombikas: list[str]) -> None:
        self.run, self.kombikas = run, kombikas
        self.template = copy.deepcopy(CARE_CONTACT_EXAMPLES["outpatient_visit"])
        self.template["source_system"] = "bench-journal"
        for unused in ("referring_kombika", "care_period_code"):
            del self.template["payload"][unused]
        self.waves = 0
        self.pending: list[dict[str, Any]] = []

    def record_id(self, i: int) -> str:
        return f"besok-{self.run}-{i:07d}"

    def take(self, n: int) -> list[dict[str, Any]]:
        while len(self.pending) < n:
            self._wave()
        taken, self.pending = self.pending[:n], self.pending[n:]
        return taken

    def _wave(self) -> None:
        for version in range(1, 5):
            wave = self.waves - version + 1
            if wave < 0:
                continue
            for i in range(wave * WAVE, (wave + 1) * WAVE):
                ops = OPS[i % len(OPS)]
                if version <= len(ops):
                    self.pending.append(self.visit(i, version, ops[version - 1]))
        self.waves += 1

    def visit(self, i: int, version: int, operation: str) -> dict[str, Any]:
        born = date(1930, 1, 1) + timedelta(days=i % 30000)
        ten = born.strftime("%y%m%d") + f"{i // 30000 + 1:03d}"
        visited = datetime.fromisoformat(f"{VISIT_DAY}T07:00Z") + timedelta(minutes=i % 600)
        procedure = {"code": PROCEDURES[i % len(PROCEDURES)], "diagnosis_index": 0}
        payload = self.template["payload"] | {
            "patient": {
                "id_type": "PNR",
                "id": f"{born:%Y}"[:2] + ten + str(luhn_check_digit(ten)),
            },
            "kombika": self.kombikas[i % len(self.kombikas)],
            "visited_at": visited.isoformat(),
            "professions": [PROFESSIONS[i % len(PROFESSIONS)]],
            "akut": "JN"[i % 2],
            # every correction changes the main diagnosis; a cancellation keeps the last one
            "diagnoses": [DIAGNOSES[(i + min(version, 3)) % len(DIAGNOSES)]],
            "procedures": [procedure | {"performed_on": str(VISIT_DAY)}],
        }
        return self.template | {
            "event_id": str(uuid.uuid4()),
            "occurred_at": datetime.now(UTC).isoformat(),
            "record_id": self.record_id(i),
            "record_version": version,
            "operation": operation,
            "payload": payload,
        }


@dataclass
class Worker:
    name: str
    launcher: subprocess.Popen[str]
    pid: int
    log: Path
    ended: dict[str, Any] | None = None  # the launcher's {"exit", "rss_mb"}
    expected_end: bool = False  # killed or stopped by us


@dataclass
class Sample:
    at: float
    state: str
    members: int
    backlog: int


@dataclass
class Phase:
    label: str
    replicas: int
    changed_at: float  # the launch or the kill
    stable_at: float = 0.0  # the group Stable with `replicas` members
    ended_at: float = 0.0


@dataclass
class ScaleOut:
    args: argparse.Namespace
    bootstrap: str
    topic: str
    env: dict[str, str]
    visits: Visits
    logs: Path
    published: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    partition_of: dict[str, int] = field(default_factory=dict)
    per_partition: Counter[int] = field(default_factory=Counter)
    samples: list[Sample] = field(default_factory=list)
    workers: list[Worker] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    producing: bool = True
    pulse_task: asyncio.Task[None] | None = None

    @property
    def count(self) -> int:
        return sum(self.per_partition.values())

    async def publish(self, producer: AIOKafkaProducer, n: int) -> None:
        events = self.visits.take(n)
        sends = [
            await producer.send(self.topic, json.dumps(e).encode(), key=e["record_id"].encode())
            for e in events
        ]
        for event, sent in zip(events, await asyncio.gather(*sends), strict=True):
            self.published[event["record_id"]].append(event["operation"])
            self.partition_of[event["record_id"]] = sent.partition
            self.per_partition[sent.partition] += 1

    async def pulse(self, producer: AIOKafkaProducer, admin: AIOKafkaAdminClient) -> None:
        """Every half second: the group's state and backlog; top the backlog up while producing;
        note a worker that exited on its own."""
        while True:
            try:
                [described] = await admin.describe_consumer_groups([GROUP])
                offsets = await admin.list_consumer_group_offsets(GROUP)
            except KafkaError as exc:  # a fresh broker: no coordinator until the first join
                if not exc.retriable:
                    raise
                await asyncio.sleep(0.5)
                continue
            group = described.groups[0]  # (error, group, state, protocol type, protocol, members…)
            done = sum(o.offset for tp, o in offsets.items() if tp.topic == self.topic)
            backlog = self.count - max(done, 0)
            self.samples.append(Sample(time.time(), group[2], len(group[5]), backlog))
            if self.producing and backlog < self.args.backlog:
                await self.publish(producer, self.args.backlog - backlog)
            for worker in self.workers:
                if worker.ended is None and worker.launcher.poll() is not None:
                    self.collect(worker)
                    if not worker.expected_end:
                        tail = worker.log.read_text(errors="replace").splitlines()[-40:]
                        print(f"{worker.name} exited on its own: {worker.ended}", file=sys.stderr)
                        print("\n".join(tail), file=sys.stderr)
            await asyncio.sleep(0.5)

    def start_worker(self) -> Worker:
        name = f"worker-{len(self.workers) + 1}"
        log = self.logs / f"{name}.log"
        command = [sys.executable, "-c", LAUNCHER, str(log), *CLI, "run", "gvr"]
        launcher = subprocess.Popen(command, env=self.env, stdout=subprocess.PIPE, text=True)
        assert launcher.stdout is not None
        worker = Worker(name, launcher, json.loads(launcher.stdout.readline())["pid"], log)
        self.workers.append(worker)
        return worker

    def collect(self, worker: Worker, timeout: float | None = None) -> None:
        lines = worker.launcher.communicate(timeout=timeout)[0].strip().splitlines()
        worker.ended = json.loads(lines[-1])

    def live(self) -> list[Worker]:
        return [w for w in self.workers if w.ended is None and not w.expected_end]

    async def change(self, label: str, replicas: int, hold: float, *, kill: bool = False) -> None:
        """Start workers (or SIGKILL one) up to `replicas`; wait until the group is Stable with
        that many members, then hold for settle + `hold` seconds."""
        phase = Phase(label, replicas, time.time())
        self.phases.append(phase)
        if kill:
            victim = self.live()[0]
            victim.expected_end = True
            os.kill(victim.pid, signal.SIGKILL)
        while len(self.live()) < replicas:
            self.start_worker()
        deadline = time.monotonic() + 180
        while not any(
            s.at > phase.changed_at and s.state == "Stable" and s.members == replicas
            for s in self.samples
        ):
            if self.pulse_task is not None and self.pulse_task.done():
                self.pulse_task.result()  # its exception, if it failed
            if time.monotonic() > deadline:
                last = self.samples[-1] if self.samples else None
                raise RuntimeError(f"{label}: no Stable group of {replicas} members; last: {last}")
            await asyncio.sleep(0.25)
        phase.stable_at = next(
            s.at
            for s in self.samples
            if s.at > phase.changed_at and s.state == "Stable" and s.members == replicas
        )
        print(f"{label}: group stable after {phase.stable_at - phase.changed_at:.1f} s", flush=True)
        await asyncio.sleep(
            max(0.0, phase.stable_at + self.args.settle_seconds + hold - time.time())
        )
        phase.ended_at = time.time()

    async def drain(self, admin: AIOKafkaAdminClient, ends: AIOKafkaConsumer) -> float:
        """Stop publishing; wait until the input and the retry tier are committed to the end."""
        self.producing, started = False, time.time()
        retry = retry_topic("gvr", TIER)
        tps = [TopicPartition(retry, p) for p in range(self.args.partitions)]
        quiet, deadline = 0, time.monotonic() + 300
        while quiet < 3:
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not drain within 300 s")
            await asyncio.sleep(1)
            retried = sum((await ends.end_offsets(tps)).values())
            offsets = await admin.list_consumer_group_offsets(f"{GROUP}-retry")
            retry_done = sum(o.offset for tp, o in offsets.items() if tp.topic == retry)
            drained = self.samples[-1].backlog == 0 and max(retry_done, 0) >= retried
            quiet = quiet + 1 if drained else 0
        return time.time() - started

    def stop_all(self) -> None:
        for worker in self.workers:
            if worker.ended is None:
                worker.expected_end = True
                worker.launcher.send_signal(signal.SIGTERM)  # the launcher passes it on
        for worker in self.workers:
            if worker.ended is None:
                self.collect(worker, timeout=120)


def rate_in(times: list[float], start: float, end: float) -> float:
    return sum(start <= t < end for t in times) / (end - start) if end > start else 0.0


def longest_gap(times: list[float], start: float, end: float) -> float:
    inside = [start, *(t for t in times if start <= t < end), end]
    return max(b - a for a, b in itertools.pairwise(inside))


async def read_back(
    bench: ScaleOut, url: str, certs: Path, records: list[str]
) -> tuple[int, int, int]:
    """GET every record by its key: (records read, doubled, out of order): more than one GVR
    record with its kallId; a status or main diagnosis that is not its last event's."""
    paths, limit = GvrPaths(), asyncio.Semaphore(32)
    doubled = wrong = 0
    async with httpx.AsyncClient(base_url=url, verify=client_tls(certs), timeout=60) as gvr:
        await gvr.post("/admin/faults", json={"latency_ms": 0})  # reading is not measured

        async def check(record_id: str) -> None:
            nonlocal doubled, wrong
            ops = bench.published[record_id]
            i = int(record_id.rsplit("-", 1)[1])
            content = len([op for op in ops if op != "cancel"])  # a cancel keeps the content
            last = bench.visits.visit(i, content, ops[content - 1])
            event = parse_event(json.dumps(last).encode())
            assert isinstance(event, CareContactEvent)
            lookup = lookup_request(event, paths)
            async with limit:
                answer = await gvr.get(lookup.path, params=lookup.params)
            hits = [
                h for h in answer.raise_for_status().json()["traffar"] if h["kallId"] == record_id
            ]
            body = to_gvr_request(event, "GVR-0000000", paths).json or {}
            doubled += max(len(hits) - 1, 0)
            last_hit = hits[-1] if hits else None  # none: lost, counted from the log already
            if last_hit and (last_hit["status"], last_hit["diagnoser"]) != (
                STATUS[ops[-1]],
                body["diagnoser"],
            ):
                wrong += 1

        await asyncio.gather(*(check(r) for r in records))
    return len(records), doubled, wrong


async def dead_letters(bootstrap: str, run: str) -> tuple[int, dict[str, int], list[str]]:
    """This run's dead letters: how many, by error class, and the first few stories."""
    from tests.support.runtime_harness import read_topic

    records = await read_topic(bootstrap, dlq_topic("gvr"), timeout=5)
    mine = [r for r in records if (r.key or b"").decode().startswith(f"besok-{run}-")]
    stories = [{k: v.decode(errors="replace") for k, v in r.headers or ()} for r in mine]
    classes = Counter(s.get("regbridge-error-class", "?") for s in stories)
    shown = ("record-id", "error-class", "register-status", "error-message")
    examples = ["; ".join(s.get(f"regbridge-{k}", "?")[:160] for k in shown) for s in stories[:3]]
    return len(mine), dict(classes), examples


def at_risk(bench: ScaleOut, log: list[dict[str, str]]) -> list[str]:
    """Corrected records with an operation applied while the group changed (from the change to
    settle seconds after it was Stable), at most --read-back of them: the sandbox looks records
    up by scanning them all, so reading every record back would take minutes."""
    windows = [(p.changed_at, p.stable_at + bench.args.settle_seconds) for p in bench.phases]
    found: dict[str, None] = {}
    for entry in log:
        at = datetime.fromisoformat(entry["at"]).timestamp()
        ops = bench.published.get(entry["kallId"], [])
        if len(ops) > 1 and any(a <= at < b for a, b in windows):
            found[entry["kallId"]] = None
    return list(found)[: bench.args.read_back]


def prove(bench: ScaleOut, log: list[dict[str, str]]) -> dict[str, Any]:
    """The register's log per record against what was published."""
    applied: dict[str, list[str]] = defaultdict(list)
    ids: dict[str, set[str]] = defaultdict(set)
    for entry in log:
        if entry["kallId"] in bench.published:
            applied[entry["kallId"]].append(entry["op"])
            ids[entry["kallId"]].add(entry["id"])
    lost = doubled = out_of_order = 0
    doubled_ops: Counter[str] = Counter()
    examples: list[str] = []
    for record_id, ops in bench.published.items():
        have, want = Counter(applied[record_id]), Counter(ops)
        lost += (want - have).total()
        doubled += (have - want).total() + max(len(ids[record_id]) - 1, 0)
        doubled_ops += have - want
        out_of_order += have == want and applied[record_id] != ops
        if applied[record_id] != ops and len(examples) < 3:
            examples.append(f"{record_id}: published {ops}, applied {applied[record_id]}")
    return {
        "lost": lost,
        "doubled": doubled,
        "out_of_order": out_of_order,
        "doubled_by_op": dict(doubled_ops),
        "examples": examples,
    }


def table(bench: ScaleOut, times: list[float], by_partition: dict[int, list[float]]) -> list[Any]:
    rows, settle = [], bench.args.settle_seconds
    for i, phase in enumerate(bench.phases):
        start, end = phase.stable_at + settle, phase.ended_at
        rate = rate_in(times, start, end)
        backlog = min((s.backlog for s in bench.samples if start <= s.at < end), default=0)
        if i == 0:
            first = min((t for t in times if t >= phase.changed_at), default=end)
            pause = f"first acceptance {first - phase.changed_at:.1f} s after launch"
        elif phase.label.startswith("kill"):
            waited = max(longest_gap(ts, phase.changed_at, start) for ts in by_partition.values())
            pause = f"a partition waited {waited:.1f} s (session timeout + rebalance)"
        else:
            pause = f"rebalance pause {longest_gap(times, phase.changed_at, start):.1f} s"
        notes = f"{pause}; window {end - start:.0f} s; min backlog {backlog}"
        rows.append((phase.label, phase.replicas, rate, notes))
    return rows


async def run(args: argparse.Namespace) -> int:
    from services.devstack.infra import provide_kafka, provide_postgres
    from services.sandboxes.hsa import HsaSandbox
    from shared.settings import KafkaSettings
    from shared.topics import TopicSpec, ensure_topics
    from tests.support.runtime_harness import create_topics

    run_id = uuid.uuid4().hex[:8]
    topics = {name: f"bench.{name}.{run_id}" for name in ("input", "units", "vaccines", "kombikas")}
    with (
        provide_kafka() as broker,
        provide_postgres() as postgres,
        tempfile.TemporaryDirectory(prefix="regbridge-scale-") as tmp,
    ):
        if postgres is None:
            raise SystemExit("no PostgreSQL here: set REGBRIDGE_TEST_DATABASE_URL or install it")
        bootstrap, certs = broker.address, Path(tmp) / "certs"
        await ensure_topics(
            KafkaSettings(bootstrap_servers=bootstrap),
            [TopicSpec(topics[t], "", compacted=True) for t in ("units", "vaccines", "kombikas")],
            partitions=6,
            replication_factor=1,
        )
        await create_topics(bootstrap, "gvr", topics["input"], [TIER], args.partitions)
        env = os.environ | {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "REGBRIDGE_TOPICS_CARE_UNITS": topics["units"],
            "REGBRIDGE_TOPICS_VACCINES": topics["vaccines"],
            "REGBRIDGE_TOPICS_KOMBIKAS": topics["kombikas"],
            "REGBRIDGE_GVR_INPUT_TOPIC": topics["input"],
            "REGBRIDGE_TOPICS_RETRY_DELAYS": f'["{TIER}"]',
            "REGBRIDGE_CATALOG_VACCINES_URL": "http://127.0.0.1:9",
            "REGBRIDGE_CATALOG_DATABASE_URL": f"sqlite+aiosqlite:///{Path(tmp) / 'c.db'}",
            "REGBRIDGE_GVR_CLIENT_CERT": str(certs / "client.pem"),
            "REGBRIDGE_GVR_CLIENT_KEY": str(certs / "client.key"),
            "REGBRIDGE_GVR_CA_BUNDLE": str(certs / "ca.pem"),
            "REGBRIDGE_GVR_DATABASE_URL": postgres.address,
            "REGBRIDGE_GVR_HEALTH_PORT": "0",
            "REGBRIDGE_LOG_FORMAT": "json",
        }
        with HsaSandbox(UNITS, SEED) as hsa:  # the catalog first: the workers check units in it
            env["REGBRIDGE_CATALOG_HSA_URL"] = hsa.base_url
            imported = subprocess.run(
                [*CLI, "catalog", "import-now"], env=env, capture_output=True, text=True, check=True
            )
        options = ["--latency-ms", str(args.latency_ms), "--units", str(UNITS), "--seed", "1"]
        sandbox_log = (Path(tmp) / "sandbox.log").open("wb")
        sandbox = subprocess.Popen(
            [*CLI, "sandbox", "gvr", "--port", "0", "--certs-dir", str(certs), *options],
            stdout=subprocess.PIPE,
            stderr=sandbox_log,  # e.g. the killed worker's hang-ups
            text=True,
        )
        visits = Visits(run_id, open_kombikas(VISIT_DAY))
        bench = ScaleOut(args, bootstrap, topics["input"], env, visits, Path(tmp))
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        ends = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        pulse: asyncio.Task[None] | None = None
        try:
            assert sandbox.stdout is not None
            announced = re.search(r"(https://[^\s,]+)", sandbox.stdout.readline())
            assert announced is not None, "the GVR sandbox did not announce its address"
            url = env["REGBRIDGE_GVR_BASE_URL"] = announced.group(1)
            for client in (producer, admin, ends):
                await client.start()
            await bench.publish(producer, args.backlog)  # before the first worker
            started = time.time()
            pulse = bench.pulse_task = asyncio.create_task(bench.pulse(producer, admin))
            hold = args.phase_seconds
            await bench.change("1 worker", 1, hold)
            await bench.change("1 → 2", 2, hold)
            await bench.change("2 → 4", 4, hold)
            await bench.change("kill 1 of 4 (SIGKILL)", 3, args.hold_seconds, kill=True)
            await bench.change("3 → 4 (one added)", 4, hold)
            drained = await bench.drain(admin, ends)
            await asyncio.sleep(3)  # anything doubled would arrive now
            bench.stop_all()
            async with httpx.AsyncClient(
                base_url=url, verify=client_tls(certs), timeout=300
            ) as gvr:
                log = (await gvr.get("/admin/log")).raise_for_status().json()
            proof = prove(bench, log)
            read, doubled, wrong = await read_back(bench, url, certs, at_risk(bench, log))
            proof["doubled"] += doubled
            proof["out_of_order"] += wrong
            dead = await dead_letters(bootstrap, run_id)
            proof["dead_letters"], proof["dead_letter_classes"], proof["dead_examples"] = dead
        finally:
            if pulse is not None:
                pulse.cancel()
            bench.stop_all()
            await producer.stop()
            await ends.stop()
            await admin.close()
            sandbox.terminate()
            sandbox.wait(timeout=60)
            sandbox_log.close()
        worker_logs = {w.name: w.log.read_text(errors="replace") for w in bench.workers}
    mine = [e for e in log if e["kallId"] in bench.published]
    times = sorted(datetime.fromisoformat(e["at"]).timestamp() for e in mine)
    by_partition: dict[int, list[float]] = defaultdict(list)
    for entry in mine:
        at = datetime.fromisoformat(entry["at"]).timestamp()
        by_partition[bench.partition_of[entry["kallId"]]].append(at)
    for ts in by_partition.values():
        ts.sort()
    return report(
        bench, proof, times, by_partition, worker_logs, imported.stdout, read, drained, started
    )


def report(
    bench: ScaleOut,
    proof: dict[str, Any],
    times: list[float],
    by_partition: dict[int, list[float]],
    worker_logs: dict[str, str],
    imported: str,
    read: int,
    drained: float,
    started: float,
) -> int:
    args = bench.args
    ops = Counter(op for record in bench.published.values() for op in record)
    unexpected = [w.name for w in bench.workers if not w.expected_end]
    failed_commits = sum(text.count("commit_failed") for text in worker_logs.values())
    print(
        f"{bench.count} events ({dict(ops)}) on {len(bench.published)} records, "
        f"{args.partitions} partitions; GVR sandbox answers after {args.latency_ms:g} ms over "
        f"mutual TLS; ledger: one PostgreSQL shared by every worker\n"
        f"catalog: {imported.strip()}\n"
        f"load: a standing backlog of {args.backlog} events, topped up every 0.5 s until the "
        f"last phase ended; then drained in {drained:.1f} s; {os.cpu_count()} CPU cores for "
        f"everything (broker, PostgreSQL, sandbox, producer, workers)\n"
        f"events/s: register operations accepted per second in the sandbox's log, from the "
        f"group's settling + {args.settle_seconds:g} s to the next change"
    )
    rows = table(bench, times, by_partition)
    one = rows[0][2] or 1.0
    print(f"{'phase':<24}{'replicas':>9}{'events/s':>10}{'vs 1 replica':>14}  notes")
    for label, replicas, rate, notes in rows:
        print(f"{label:<24}{replicas:>9}{rate:>10.1f}{rate / one:>14.2f}  {notes}")
    rss = {w.name: round((w.ended or {}).get("rss_mb", 0)) for w in bench.workers}
    exits = {w.name: (w.ended or {}).get("exit") for w in bench.workers}
    print(
        f"peak RSS per worker (MB): {rss}; exits: {exits}\n"
        f"note: {os.cpu_count()} shared cores cannot scale 4 processes linearly: the broker, "
        f"PostgreSQL, the sandbox and the producer run on the same cores; the figures are what "
        f"they are\n"
        f"commits refused after a rebalance (the next owner re-ran those chunks): "
        f"{failed_commits}; workers that exited on their own: {unexpected or 'none'}\n"
        f"register's record: {len(times)} operations applied for {bench.count} published; "
        f"{read} corrected records applied around a change read back by GET\n"
        f"lost: {proof['lost']}, doubled: {proof['doubled']}, out of order: "
        f"{proof['out_of_order']}, dead letters: {proof['dead_letters']}"
    )
    if proof["doubled_by_op"] or proof["examples"] or proof["dead_letters"]:
        print(f"doubled by operation: {proof['doubled_by_op']}")
        print(f"dead letters by class: {proof['dead_letter_classes']}")
        for line in proof["examples"] + proof["dead_examples"]:
            print(f"  {line}")
    ok = not unexpected and not any(
        proof[k] for k in ("lost", "doubled", "out_of_order", "dead_letters")
    )
    summary = {
        "events": bench.count,
        "records": len(bench.published),
        "partitions": args.partitions,
        "latency_ms": args.latency_ms,
        "cores": os.cpu_count(),
        "backlog": args.backlog,
        "seconds": round(time.time() - started),
        "rows": [
            {
                "phase": label,
                "replicas": replicas,
                "events_per_s": round(rate, 1),
                "vs_1_replica": round(rate / one, 2),
                "notes": notes,
            }
            for label, replicas, rate, notes in rows
        ],
        "peak_rss_mb": rss,
        "commits_refused": failed_commits,
        "unexpected_exits": unexpected,
        **proof,
        "ok": ok,
    }
    print(json.dumps(summary, ensure_ascii=False))
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase-seconds", type=float, default=45)
    parser.add_argument("--hold-seconds", type=float, default=20, help="with 3, after the kill")
    parser.add_argument("--settle-seconds", type=float, default=5)
    parser.add_argument("--backlog", type=int, default=15_000)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--read-back", type=int, default=3000, help="records checked by GET")
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
