"""Catalog sync at scale: full imports of 300,000 units, memory, and notification latency.

    .venv/bin/python -m benchmarks.catalog_import [--units 300000] [--changed 0.01]
        [--notifications 20]

Runs the HSA sandbox, the importer (`regbridge catalog import-now`), the catalog sync
(`regbridge run catalog`) and a CatalogView each in a process of its own against the local broker,
and prints: wall time and messages published for the first import (everything new), for an import
after the given share of units changed, for one after every unit changed, and for an import with
nothing changed; peak RSS of each process; and the delay from a notification to the change being
visible in a CatalogView.

The baseline, measured before each import against the same export of the same sandbox: a child
process that only reads the export and parses it with the import's own parser
(`DirectoryClient.export` and `normalise_hsa_unit`), without Kafka. Each import prints its wall
time divided by that baseline's, and its CPU time (user + system, from rusage) divided by the
baseline's: the steadier figure on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from services.catalog.directory_client import DirectoryClient
from services.catalog.normalise import InvalidUnitError, normalise_hsa_unit
from services.devstack.infra import provide_kafka
from services.sandboxes.hsa.directory import HsaDirectory
from shared.catalog.view import CatalogView
from shared.settings import KafkaSettings
from shared.topics import TopicSpec, ensure_topics

CLI = [sys.executable, "-m", "services.cli"]
READ_AND_PARSE = [sys.executable, "-m", "benchmarks.catalog_import", "--read-and-parse"]


async def read_and_parse(hsa_url: str) -> int:
    """The baseline: read HSA's export and normalise each unit as the import does; no Kafka."""
    client = DirectoryClient(hsa_url)
    units = 0
    try:
        async for row in client.export():
            if row.unit is not None:
                try:
                    normalise_hsa_unit(row.unit)
                    units += 1
                except InvalidUnitError:
                    pass
    finally:
        await client.aclose()
    return units


def run_measured(args: list[str], env: dict[str, str]) -> tuple[float, float, str, float]:
    """Run a child to completion: (seconds, peak RSS in MB, stdout, CPU seconds)."""
    started = time.perf_counter()
    process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    out = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise RuntimeError(f"{' '.join(args)} failed: {out}")
    return seconds, usage.ru_maxrss / 1024, out, usage.ru_utime + usage.ru_stime


def published_of(summary: str) -> int:
    match = re.search(r"(\d+) published", summary)
    return int(match.group(1)) if match else -1


async def notification_delays(
    env: dict[str, str],
    hsa_url: str,
    kafka: KafkaSettings,
    topics: dict[str, str],
    sample: list[str],
) -> tuple[list[float], float, int]:
    """Delays (s) from an admin change in HSA to the change in a CatalogView here; view load
    time and unit count."""
    sync = subprocess.Popen(
        [*CLI, "run", "catalog"], env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    view = CatalogView(kafka, units_topic=topics["units"], vaccines_topic=topics["vaccines"])
    started = time.perf_counter()
    await view.start()
    await view.wait_ready(600)
    load = time.perf_counter() - started
    delays: list[float] = []
    try:
        await asyncio.sleep(5)  # the sync joins its consumer group
        async with httpx.AsyncClient(base_url=hsa_url, timeout=30) as client:
            for i in range(len(sample)):
                hsa_id = sample[i]
                name = f"Benchmarkmottagningen {uuid.uuid4().hex[:6]}"
                sent = time.perf_counter()
                body = {"hsaIdentity": hsa_id, "name": name}
                (await client.post("/admin/units", json=body)).raise_for_status()
                while (unit := view.unit(hsa_id)) is None or unit.name != name:
                    await asyncio.sleep(0.005)
                    if time.perf_counter() - sent > 60:
                        raise TimeoutError(f"{hsa_id} not visible after 60 s")
                delays.append(time.perf_counter() - sent)
        units = view.stats().units
    finally:
        sync.terminate()
        sync.wait(timeout=60)
        await view.stop()
    return delays, load, units


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=300_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--notifications", type=int, default=20)
    parser.add_argument(
        "--all-changed",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also import after every unit changed (about a minute more at 300,000)",
    )
    parser.add_argument("--read-and-parse", metavar="HSA_URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.read_and_parse:  # the baseline's child process
        print(await read_and_parse(args.read_and_parse))
        return
    suffix = uuid.uuid4().hex[:8]
    topics = {
        "units": f"bench.care-units.{suffix}",
        "vaccines": f"bench.vaccines.{suffix}",
        "kombikas": f"bench.kombikas.{suffix}",
        "notifications": f"bench.hsa-notifications.{suffix}",
    }
    with provide_kafka() as broker, tempfile.TemporaryDirectory() as tmp:
        kafka = KafkaSettings(bootstrap_servers=broker.address)
        await ensure_topics(
            kafka,
            [
                TopicSpec(topics["units"], "", compacted=True),
                TopicSpec(topics["vaccines"], "", compacted=True),
                TopicSpec(topics["kombikas"], "", compacted=True),
                TopicSpec(topics["notifications"], ""),
            ],
            partitions=6,
            replication_factor=1,
        )
        sandbox = subprocess.Popen(
            [
                *CLI,
                "sandbox",
                "hsa",
                "--units",
                str(args.units),
                "--port",
                "0",
                "--kafka-bootstrap",
                broker.address,
                "--topic",
                topics["notifications"],
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert sandbox.stdout is not None
        announced = re.search(r"(http://[^\s,]+)", sandbox.stdout.readline())
        assert announced is not None, "the sandbox did not announce its address"
        hsa_url = announced.group(1)
        env = os.environ | {
            "KAFKA_BOOTSTRAP_SERVERS": broker.address,
            "REGBRIDGE_TOPICS_CARE_UNITS": topics["units"],
            "REGBRIDGE_TOPICS_VACCINES": topics["vaccines"],
            "REGBRIDGE_TOPICS_KOMBIKAS": topics["kombikas"],
            "REGBRIDGE_CATALOG_INPUT_TOPIC": topics["notifications"],
            "REGBRIDGE_CATALOG_HSA_URL": hsa_url,
            "REGBRIDGE_CATALOG_VACCINES_URL": "http://127.0.0.1:9",
            "REGBRIDGE_CATALOG_DATABASE_URL": f"sqlite+aiosqlite:///{Path(tmp) / 'c.db'}",
            "REGBRIDGE_CATALOG_HEALTH_PORT": "0",
            "REGBRIDGE_CATALOG_LOG_FORMAT": "json",
        }
        rows = []
        try:

            def measure(name: str) -> None:
                baseline, _, _, baseline_cpu = run_measured([*READ_AND_PARSE, hsa_url], env)
                t, rss, out, cpu = run_measured([*CLI, "catalog", "import-now"], env)
                rows.append((name, t, published_of(out), rss, baseline, cpu, baseline_cpu))

            def change(share: float) -> None:
                body = {"share": share, "notify": False}
                httpx.post(f"{hsa_url}/admin/changes", json=body, timeout=300).raise_for_status()
                httpx.post(f"{hsa_url}/admin/export/cut", timeout=120).raise_for_status()

            measure("first import (everything new)")
            change(args.changed)
            measure(f"import after {args.changed:.0%} changed")
            measure("import with nothing changed")
            if args.all_changed:
                change(1.0)
                measure("import after 100% changed")
            directory = HsaDirectory(args.units, 1)  # the sandbox's own (seed 1): same ids
            sample = [directory.hsa_id_of(i * 7919 % args.units) for i in range(args.notifications)]
            delays, load, units = await notification_delays(env, hsa_url, kafka, topics, sample)
        finally:
            sandbox.terminate()
            sandbox.wait(timeout=60)
    view_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.units} units in the HSA sandbox; {units} in the catalog after the imports")
    print(
        f"{'full import':<34}{'wall s':>8}{'published':>11}{'peak RSS MB':>13}"
        f"{'read+parse s':>14}{'import/parse':>14}"
        f"{'CPU s':>8}{'read+parse CPU s':>18}{'CPU ratio':>11}"
    )
    for name, seconds, published, rss, baseline, cpu, baseline_cpu in rows:
        print(
            f"{name:<34}{seconds:>8.1f}{published:>11}{rss:>13.0f}"
            f"{baseline:>14.1f}{seconds / baseline:>13.2f}x"
            f"{cpu:>8.1f}{baseline_cpu:>18.1f}{cpu / baseline_cpu:>10.2f}x"
        )
    print(f"CatalogView (this process): ready in {load:.1f} s, peak RSS {view_rss:.0f} MB")
    delays.sort()
    print(
        f"notification → visible in CatalogView, {len(delays)} changes: "
        f"median {statistics.median(delays) * 1000:.0f} ms, "
        f"p95 {delays[int(0.95 * (len(delays) - 1))] * 1000:.0f} ms, max {delays[-1] * 1000:.0f} ms"
    )
    print(
        json.dumps(
            {
                "rows": rows,
                "view_ready_s": load,
                "view_rss_mb": view_rss,
                "delays_ms": [round(d * 1000) for d in delays],
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
