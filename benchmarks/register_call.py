"""Register call path: the same pre-mapped GVR creates through bare aiohttp, httpx and GvrClient.

    .venv/bin/python -m benchmarks.register_call [--requests 6000] [--concurrency 64]
        [--latency-ms 20] [--rounds 2]

The GVR sandbox runs in a process of its own (mutual TLS, answering after --latency-ms). N valid
outpatient-visit creates (distinct patients, so no 409s) are mapped beforehand; then each way of
sending them runs in a process of its own, --concurrency in flight, the sandbox reset before each:
  bare    aiohttp, one session, absolute URLs and bodies serialised beforehand: the ceiling
  httpx   the call path GvrClient had before its lean path: httpx.AsyncClient over
          `RegisterTransport` (httpx-aiohttp), `json=` per request, the answer as an httpx.Response
  client  `GvrClient.send` as the worker calls it (classification and all)
The first 2 x concurrency requests of each open the connections (TLS handshakes) and are not
timed. CPU µs per request is the sending process's own (user + system, `getrusage`) over the timed
requests; the sandbox shares the 2 cores, so requests/s is the pair's. Each way runs --rounds
times, alternating; the table shows each way's best round (lowest CPU), and ratios to bare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import ssl
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from benchmarks.processes import CLI, launch, run_child
from services.gvr.client import GvrClient, build_ssl_context
from services.gvr.mapping import GvrPaths, GvrRequest, to_gvr_request
from shared.contracts import CareContactEvent, parse_event
from shared.delivery.worker import Accepted

WAYS = ("bare", "httpx", "client")


def client_tls(certs: Path) -> ssl.SSLContext:
    return build_ssl_context(
        ca_bundle=str(certs / "ca.pem"),
        client_cert=str(certs / "client.pem"),
        client_key=str(certs / "client.key"),
    )


def mapped(events_file: str) -> list[GvrRequest]:
    paths, requests = GvrPaths(), []
    for raw in json.loads(Path(events_file).read_text()):
        event = parse_event(json.dumps(raw).encode())
        assert isinstance(event, CareContactEvent)
        requests.append(to_gvr_request(event, None, paths))
    return requests


async def timed(
    send: Callable[[GvrRequest], Awaitable[int | str]],
    requests: list[GvrRequest],
    concurrency: int,
) -> dict[str, Any]:
    """Send every request, `concurrency` in flight; the first 2 x concurrency untimed."""
    outcomes = Counter[str]()

    async def drain(queue: Any) -> None:
        for request in queue:  # one shared iterator: each request sent once
            outcomes[str(await send(request))] += 1

    warm = 2 * concurrency
    first = iter(requests[:warm])
    await asyncio.gather(*(drain(first) for _ in range(concurrency)))
    rest = iter(requests[warm:])
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    await asyncio.gather(*(drain(rest) for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    count = len(requests) - warm
    return {
        "outcomes": dict(outcomes),
        "rate": count / seconds,
        "cpu_us": cpu / count * 1e6,
        "timed": count,
    }


async def bare(spec: argparse.Namespace, requests: list[GvrRequest]) -> dict[str, Any]:
    import aiohttp

    prepared = {
        id(r): (r.method, spec.url + r.path, json.dumps(r.json, separators=(",", ":")).encode())
        for r in requests
    }
    connector = aiohttp.TCPConnector(ssl=client_tls(Path(spec.certs)), limit=spec.concurrency)
    headers = {"content-type": "application/json"}
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(request: GvrRequest) -> int:
            method, url, body = prepared[id(request)]
            async with session.request(method, url, data=body, headers=headers) as response:
                await response.read()
                return response.status

        return await timed(send, requests, spec.concurrency)


async def through_httpx(spec: argparse.Namespace, requests: list[GvrRequest]) -> dict[str, Any]:
    """GvrClient.send as it was: httpx.AsyncClient over RegisterTransport, classified the same."""
    from shared.delivery.classify import classify_exception, classify_response
    from shared.http import RegisterTransport, json_object

    context = client_tls(Path(spec.certs))
    async with httpx.AsyncClient(
        base_url=spec.url,
        verify=context,
        timeout=httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=30.0),
        limits=httpx.Limits(
            max_connections=spec.concurrency, max_keepalive_connections=spec.concurrency
        ),
        transport=RegisterTransport(ssl_context=context, max_connections=spec.concurrency),
        headers={"accept": "application/json"},
        follow_redirects=False,
    ) as client:

        async def send(request: GvrRequest) -> str:
            try:
                response = await client.request(
                    request.method, request.path, params=request.params, json=request.json
                )
            except (httpx.HTTPError, ssl.SSLError) as exc:
                return classify_exception(exc, register="GVR").error_class
            error = classify_response(
                response.status_code, response.text, headers=response.headers, register="GVR"
            )
            if error is not None:
                return error.error_class
            return "accepted" if json_object(response).get("id") else "no id"

        return await timed(send, requests, spec.concurrency)


async def through_client(spec: argparse.Namespace, requests: list[GvrRequest]) -> dict[str, Any]:
    context = client_tls(Path(spec.certs))
    async with GvrClient(spec.url, ssl_context=context, max_connections=spec.concurrency) as client:

        async def send(request: GvrRequest) -> str:
            outcome = await client.send(request)
            return "accepted" if isinstance(outcome, Accepted) else outcome.error_class

        return await timed(send, requests, spec.concurrency)


async def child(spec: argparse.Namespace) -> dict[str, Any]:
    requests = mapped(spec.events)
    ways = {"bare": bare, "httpx": through_httpx, "client": through_client}
    return await ways[spec.way](spec, requests)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)  # JSON: one way, in its own process
    args = parser.parse_args()
    if args.child:
        print(json.dumps(await child(argparse.Namespace(**json.loads(args.child)))))
        return
    from benchmarks.gvr_drain import UNITS, VISIT_DAY, open_kombikas, visits

    n = args.requests
    events = visits(n, open_kombikas(VISIT_DAY), uuid.uuid4().hex[:8])
    with tempfile.TemporaryDirectory() as tmp:
        certs, events_file = Path(tmp) / "certs", Path(tmp) / "events.json"
        events_file.write_text(json.dumps(events))
        options = ["--latency-ms", str(args.latency_ms), "--units", str(UNITS), "--seed", "1"]
        sandbox = launch(
            [*CLI, "sandbox", "gvr", "--port", "0", "--certs-dir", str(certs), *options]
        )
        results: dict[str, list[dict[str, Any]]] = {way: [] for way in WAYS}
        try:
            assert sandbox.stdout is not None
            announced = re.search(r"(https://[^\s,]+)", sandbox.stdout.readline())
            assert announced is not None, "the GVR sandbox did not announce its address"
            url = announced.group(1)
            async with httpx.AsyncClient(
                base_url=url, verify=client_tls(certs), timeout=120
            ) as gvr:
                for _ in range(args.rounds):
                    for way in WAYS:
                        (await gvr.post("/admin/reset")).raise_for_status()
                        faults = {"latency_ms": args.latency_ms}  # a reset clears them
                        (await gvr.post("/admin/faults", json=faults)).raise_for_status()
                        spec = {"way": way, "url": url, "certs": str(certs)}
                        spec |= {"events": str(events_file), "concurrency": args.concurrency}
                        result, _ = run_child(__spec__.name, spec)
                        results[way].append(result)
        finally:
            sandbox.terminate()
            sandbox.wait(timeout=60)
    best = {way: min(runs, key=lambda r: r["cpu_us"]) for way, runs in results.items()}
    names = {
        "bare": "bare aiohttp session (ceiling)",
        "httpx": "httpx API over aiohttp (path before)",
        "client": "GvrClient.send",
    }
    print(
        f"{n} GVR creates ({best['bare']['timed']} timed), {args.concurrency} in flight, sandbox "
        f"answering after {args.latency_ms:g} ms over mutual TLS; best of {args.rounds} rounds"
    )
    print(f"{'way':<40}{'CPU µs/req':>12}{'vs bare':>9}{'req/s':>9}{'vs bare':>9}  outcomes")
    base = best["bare"]
    for way in WAYS:
        r = best[way]
        print(
            f"{names[way]:<40}{r['cpu_us']:>12.0f}{r['cpu_us'] / base['cpu_us']:>9.2f}"
            f"{r['rate']:>9.0f}{r['rate'] / base['rate']:>9.2f}  {r['outcomes']}"
        )
    every = {
        way: [(round(r["cpu_us"]), round(r["rate"])) for r in runs] for way, runs in results.items()
    }
    print(json.dumps({"requests": n, "concurrency": args.concurrency, "rounds": every}))


if __name__ == "__main__":
    asyncio.run(main())
