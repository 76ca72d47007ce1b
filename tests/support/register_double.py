"""A real HTTP register for the delivery runtime's tests and benchmarks, with faults on demand.

    with RegisterDouble() as double:  # uvicorn on 127.0.0.1:<free port>, own thread + loop
        double.set_faults(latency_ms=50, fail_next=2)
        ...  # talk to double.base_url over HTTP
        assert [e.record_id for e in double.accepted()] == [...]

Endpoints: POST /records, POST /records/batch, GET /records/{record_id};
admin (never faulted, never counted): POST /admin/faults, GET /admin/faults, GET /admin/log,
POST /admin/reset.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.sandboxes.server import ServerThread

OPERATIONS = ("create", "correct", "cancel")
MAX_BATCH = 100

JsonObject = dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Faults:
    """How the register misbehaves; every field off by default."""

    down: bool = False  # 503 to everything but admin
    latency_ms: float = 0.0  # awaited after reading the request, before applying it (non-blocking)
    transient_rate: float = 0.0  # share of requests answered 503 at random (seeded)
    reject_record_ids: frozenset[str] = frozenset()  # writes for these answer 400
    fail_next: int = 0  # the next N requests answer 503
    drop_connections: bool = False  # close the socket without answering
    unauthorized: bool = False  # 401 to everything but admin (a credential the register refuses)

    def as_json(self) -> JsonObject:
        return {**asdict(self), "reject_record_ids": sorted(self.reject_record_ids)}


@dataclass(frozen=True)
class AcceptedRequest:
    """One accepted write, in the order the register applied it."""

    record_id: str
    event_id: str
    record_version: int
    operation: str
    reference: str
    received_at: datetime

    def as_json(self) -> JsonObject:
        return {**asdict(self), "received_at": self.received_at.isoformat()}


@dataclass(frozen=True)
class RegisterRecord:
    """What the register holds for a record_id now."""

    reference: str
    record_version: int
    operation: str


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _State:
    """Records, log, faults and counters; one lock, never held across an await."""

    seed: int
    clock: Callable[[], datetime]
    lock: threading.Lock = field(default_factory=threading.Lock)
    faults: Faults = field(default_factory=Faults)
    records: dict[str, RegisterRecord] = field(default_factory=dict)
    log: list[AcceptedRequest] = field(default_factory=list)
    requests_received: int = 0
    next_reference: int = 1
    generation: int = 0  # bumped by reset(): a request admitted before it must not write after
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def reset(self) -> None:
        with self.lock:
            self.faults = Faults()
            self.records.clear()
            self.log.clear()
            self.requests_received = 0
            self.next_reference = 1
            self.generation += 1
            self.rng = random.Random(self.seed)

    def admit(self) -> tuple[float, str | None, int]:
        """Count a request and decide its fate at arrival: (latency in s, fault or None, gen)."""
        with self.lock:
            self.requests_received += 1
            faults = self.faults
            verdict: str | None = None
            if faults.drop_connections:
                verdict = "drop"
            elif faults.unauthorized:
                verdict = "unauthorized"
            elif faults.down:
                verdict = "down"
            elif faults.fail_next > 0:
                self.faults = replace(faults, fail_next=faults.fail_next - 1)
                verdict = "fail_next"
            elif faults.transient_rate > 0 and self.rng.random() < faults.transient_rate:
                verdict = "transient"
            return faults.latency_ms / 1000, verdict, self.generation

    def is_current(self, generation: int) -> bool:
        with self.lock:
            return generation == self.generation

    def write(self, entry: object) -> tuple[int, JsonObject]:
        with self.lock:
            return self._write_locked(entry)

    def write_batch(self, entries: list[object]) -> list[JsonObject]:
        """Apply entries in order, atomically; one `{"status", ...}` result per entry."""
        with self.lock:
            results = []
            for entry in entries:
                status, body = self._write_locked(entry)
                if status >= 400 and "error" not in body:
                    body = {"error": "; ".join(e["message"] for e in body["errors"]), **body}
                results.append({"status": status, **body})
            return results

    def _write_locked(self, entry: object) -> tuple[int, JsonObject]:
        errors = validation_errors(entry)
        if errors:
            return 400, {"errors": errors}
        assert isinstance(entry, dict)
        record_id, operation = entry["record_id"], entry["operation"]
        if record_id in self.faults.reject_record_ids:
            message = f"register refuses record {record_id!r}: failed its business rules"
            return 400, {"errors": [{"field": "record_id", "message": message}]}
        known = self.records.get(record_id)
        if operation == "create" and known is not None:
            error = f"record {record_id!r} already exists"
            return 409, {"error": error, "reference": known.reference}
        if operation != "create" and known is None:
            return 404, {"error": f"record {record_id!r} is not known to the register"}
        if known is None:
            reference, status = f"REF-{self.next_reference}", 201
            self.next_reference += 1
        else:
            reference, status = known.reference, 200
        self.records[record_id] = RegisterRecord(reference, entry["record_version"], operation)
        self.log.append(
            AcceptedRequest(
                record_id=record_id,
                event_id=entry["event_id"],
                record_version=entry["record_version"],
                operation=operation,
                reference=reference,
                received_at=self.clock(),
            )
        )
        return status, {"reference": reference}


def validation_errors(entry: object) -> list[JsonObject]:
    """The register's field-level complaints about one write request (empty when valid)."""
    if not isinstance(entry, dict):
        return [{"field": "body", "message": f"expected a JSON object, got {type(entry).__name__}"}]
    errors = []
    for name in ("record_id", "event_id"):
        if not isinstance(entry.get(name), str) or not entry[name]:
            errors.append({"field": name, "message": "required, a non-empty string"})
    version = entry.get("record_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        errors.append({"field": "record_version", "message": "required, an integer >= 1"})
    if entry.get("operation") not in OPERATIONS:
        errors.append({"field": "operation", "message": f"required, one of {list(OPERATIONS)}"})
    if not isinstance(entry.get("payload"), dict):
        errors.append({"field": "payload", "message": "required, a JSON object"})
    return errors


def _faults_changes(body: object) -> JsonObject:
    """Validate an admin faults body into keyword arguments for `RegisterDouble.set_faults`."""
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    checks: dict[str, Callable[[Any], bool]] = {
        "down": lambda v: isinstance(v, bool),
        "drop_connections": lambda v: isinstance(v, bool),
        "unauthorized": lambda v: isinstance(v, bool),
        "latency_ms": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v >= 0,
        "transient_rate": lambda v: isinstance(v, int | float) and 0 <= v <= 1,
        "fail_next": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "reject_record_ids": lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
        "seed": lambda v: isinstance(v, int) and not isinstance(v, bool),
    }
    for name, value in body.items():
        if name not in checks:
            raise ValueError(f"unknown fault {name!r}; known: {sorted(checks)}")
        if not checks[name](value):
            raise ValueError(f"invalid value for {name!r}: {value!r}")
    return body


async def _json_body(request: Request) -> object:
    try:
        return json.loads(await request.body())
    except ValueError as exc:
        raise _BadRequest(f"body is not JSON: {exc}") from exc


class _BadRequest(Exception):
    pass


def _bad_request(message: str, field_name: str = "body") -> JSONResponse:
    return JSONResponse({"errors": [{"field": field_name, "message": message}]}, status_code=400)


class _FaultGate:
    """Outermost ASGI layer: counts non-admin requests, then delays, drops or 503s them."""

    def __init__(self, app: ASGIApp, state: _State) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/admin/"):
            await self.app(scope, receive, send)
            return
        latency, verdict, generation = self.state.admit()
        receive = await _buffered(receive)  # the register has the request, whatever comes next
        if latency > 0:
            await asyncio.sleep(latency)
            if not self.state.is_current(generation):  # keeps tests apart: no late writes
                verdict = "reset while waiting"
        if verdict is None:
            await self.app(scope, receive, send)
        elif verdict == "drop":
            await _drop_connection(receive, send)
        elif verdict == "unauthorized":
            body = {"error": "client not authorised"}
            await JSONResponse(body, status_code=401)(scope, receive, send)
        else:
            body = {"error": f"register unavailable ({verdict})"}
            await JSONResponse(body, status_code=503)(scope, receive, send)


async def _buffered(receive: Receive) -> Receive:
    """Read the whole body now, so a client giving up during `latency` cannot stop the write."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return receive  # gone already: let the app see the disconnect
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

    return replay


async def _drop_connection(receive: Receive, send: Send) -> None:
    """Close the socket without a byte of answer.

    ASGI has no "abort" message, so this reaches uvicorn's protocol object: `send` is the bound
    method of its request/response cycle, which holds the asyncio transport. It must therefore be
    the raw `send` uvicorn passed in (hence this runs outside Starlette's middleware). Once the
    transport is closed uvicorn marks the cycle disconnected and stays quiet when we return.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise RuntimeError("drop_connections needs uvicorn's h11/httptools protocol transport")
    transport.close()
    while (await receive())["type"] != "http.disconnect":
        pass


def _build_app(state: _State, double: RegisterDouble) -> ASGIApp:
    async def post_record(request: Request) -> Response:
        try:
            entry = await _json_body(request)
        except _BadRequest as exc:
            return _bad_request(str(exc))
        status, body = state.write(entry)
        return JSONResponse(body, status_code=status)

    async def post_batch(request: Request) -> Response:
        try:
            body = await _json_body(request)
        except _BadRequest as exc:
            return _bad_request(str(exc))
        entries = body.get("entries") if isinstance(body, dict) else None
        if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_BATCH:
            return _bad_request(f"required, a list of 1 to {MAX_BATCH} entries", "entries")
        return JSONResponse({"entries": state.write_batch(entries)})

    async def get_record(request: Request) -> Response:
        record = double.record(request.path_params["record_id"])
        if record is None:
            return JSONResponse({"error": "record is not known to the register"}, status_code=404)
        return JSONResponse(asdict(record))

    async def post_faults(request: Request) -> Response:
        try:
            changes = _faults_changes(await _json_body(request))
        except (_BadRequest, ValueError) as exc:
            return _bad_request(str(exc))
        return JSONResponse(double.set_faults(**changes).as_json())

    async def get_faults(request: Request) -> Response:
        return JSONResponse(double.faults.as_json())

    async def get_log(request: Request) -> Response:
        entries = [entry.as_json() for entry in double.accepted()]
        return JSONResponse({"entries": entries, "requests_received": double.requests_received})

    async def post_reset(request: Request) -> Response:
        double.reset()
        return Response(status_code=204)

    routes = [
        Route("/records", post_record, methods=["POST"]),
        Route("/records/batch", post_batch, methods=["POST"]),
        Route("/records/{record_id:path}", get_record, methods=["GET"]),
        Route("/admin/faults", post_faults, methods=["POST"]),
        Route("/admin/faults", get_faults, methods=["GET"]),
        Route("/admin/log", get_log, methods=["GET"]),
        Route("/admin/reset", post_reset, methods=["POST"]),
    ]
    return _FaultGate(Starlette(routes=routes), state)


class RegisterDouble:
    """The register as a real uvicorn server in a background thread with its own event loop."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        clock: Callable[[], datetime] = _utc_now,
        shutdown_timeout: float = 2.0,
    ) -> None:
        self._state = _State(seed=seed, clock=clock)
        self.app = _build_app(self._state, self)
        self.server = ServerThread(
            self.app,
            host=host,
            port=port,
            name="register-double",
            lifespan="off",
            shutdown_timeout=math.ceil(shutdown_timeout),
        )

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def port(self) -> int:
        return self.server.port

    def start(self, timeout: float = 10.0) -> RegisterDouble:
        self.server.start(timeout)
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> RegisterDouble:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # Python-side accessors: thread-safe, no HTTP needed in assertions.

    def accepted(self) -> list[AcceptedRequest]:
        """Every accepted write so far, in the order applied."""
        with self._state.lock:
            return list(self._state.log)

    def record(self, record_id: str) -> RegisterRecord | None:
        with self._state.lock:
            return self._state.records.get(record_id)

    @property
    def requests_received(self) -> int:
        """All non-admin requests, including those answered 503 or dropped (a batch counts one)."""
        with self._state.lock:
            return self._state.requests_received

    @property
    def faults(self) -> Faults:
        with self._state.lock:
            return self._state.faults

    def set_faults(
        self,
        *,
        down: bool | None = None,
        latency_ms: float | None = None,
        transient_rate: float | None = None,
        reject_record_ids: list[str] | frozenset[str] | None = None,
        fail_next: int | None = None,
        drop_connections: bool | None = None,
        unauthorized: bool | None = None,
        seed: int | None = None,
    ) -> Faults:
        """Change the given faults, keep the others; `seed` restarts the transient_rate dice."""
        changes: JsonObject = {
            name: value
            for name, value in {
                "down": down,
                "latency_ms": latency_ms,
                "transient_rate": transient_rate,
                "fail_next": fail_next,
                "drop_connections": drop_connections,
                "unauthorized": unauthorized,
            }.items()
            if value is not None
        }
        if reject_record_ids is not None:
            changes["reject_record_ids"] = frozenset(reject_record_ids)
        with self._state.lock:
            self._state.faults = replace(self._state.faults, **changes)
            if seed is not None:
                self._state.seed = seed
                self._state.rng = random.Random(seed)
            return self._state.faults

    def clear_faults(self) -> None:
        with self._state.lock:
            self._state.faults = Faults()

    def reset(self) -> None:
        """Forget records, log, counters and faults (the seed is kept)."""
        self._state.reset()


def main() -> None:
    """Serve the double alone (benchmarks run it in its own process): prints its URL."""
    import signal
    import sys
    import threading

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    with RegisterDouble(port=port) as double:
        print(double.base_url, flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
