"""How the NVR sandbox misbehaves on demand: latency, 500, 429, maintenance 503, dropped calls.

Adapted from the GVR sandbox's faults (same `Faults` fields, same admin semantics); the answers
here are FHIR `OperationOutcome`s. Faults apply to the register's routes only (the FHIR base and
the vaccine list); the token endpoint, the admin routes and the OpenAPI always answer, so a test
can switch a fault off again and a client can always get a token.
"""

# S311: a seeded PRNG picks the faulted calls, reproducibly; no secret involved.
# ruff: noqa: S311

from __future__ import annotations

import asyncio
import json
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Receive, Scope, Send

FHIR_JSON = "application/fhir+json"


def utc_now() -> datetime:
    return datetime.now(UTC)


class Faults(BaseModel):
    """The sandbox's faults; all off by default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: float = Field(default=0, ge=0, description="Delay before every register answer.")
    latency_jitter_ms: float = Field(
        default=0, ge=0, description="Plus a uniformly drawn 0 … this many ms."
    )
    error_rate: float = Field(default=0, ge=0, le=1, description="Share answered 500.")
    throttle_rate: float = Field(default=0, ge=0, le=1, description="Share answered 429.")
    retry_after_s: int = Field(default=1, ge=0, description="Retry-After of a 429, seconds.")
    maintenance: bool = Field(default=False, description="503 to every register call while on.")
    maintenance_until: AwareDatetime | None = Field(
        default=None,
        description="Maintenance until this time (then off by itself); Retry-After counts to it.",
    )
    drop_rate: float = Field(
        default=0, ge=0, le=1, description="Share whose connection is closed without an answer."
    )
    forbidden: bool = Field(
        default=False, description="403 to every register call: the client lost its permission."
    )

    def in_maintenance(self, now: datetime) -> bool:
        until = self.maintenance_until
        return (self.maintenance or until is not None) and (until is None or now < until)


class FaultsChange(BaseModel):
    """The faults to change; those not given keep their value, null switches one off."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float | None = Field(default=None, ge=0)
    latency_jitter_ms: float | None = Field(default=None, ge=0)
    error_rate: float | None = Field(default=None, ge=0, le=1)
    throttle_rate: float | None = Field(default=None, ge=0, le=1)
    retry_after_s: int | None = Field(default=None, ge=0)
    maintenance: bool | None = None
    maintenance_until: AwareDatetime | None = None
    drop_rate: float | None = Field(default=None, ge=0, le=1)
    forbidden: bool | None = None

    def applied_to(self, faults: Faults) -> Faults:
        changes = self.model_dump(exclude_unset=True)
        defaults = Faults()
        for name, value in list(changes.items()):
            if value is None:
                changes[name] = getattr(defaults, name)
        return Faults.model_validate(faults.model_dump() | changes)


@dataclass
class FaultState:
    """The faults in force and the seeded dice; read in the server's loop, set from anywhere."""

    seed: int = 0
    clock: Callable[[], datetime] = utc_now
    faults: Faults = field(default_factory=Faults)
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def reset(self) -> None:
        self.faults = Faults()
        self.rng = random.Random(self.seed)

    def hit(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate


class FaultMiddleware:
    """Outermost ASGI layer, so `send` is uvicorn's own and a connection can be dropped."""

    def __init__(self, app: ASGIApp, state: FaultState, prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.state = state
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        state = self.state
        faults = state.faults
        now = state.clock()
        if faults.in_maintenance(now):
            headers: list[tuple[bytes, bytes]] = []
            if faults.maintenance_until is not None:
                wait = math.ceil((faults.maintenance_until - now).total_seconds())
                headers.append((b"retry-after", str(max(wait, 1)).encode()))
            await _answer(send, 503, "transient", "NVR is closed for maintenance", headers)
            return
        delay = faults.latency_ms + (
            state.rng.uniform(0, faults.latency_jitter_ms) if faults.latency_jitter_ms else 0
        )
        if delay > 0:
            await asyncio.sleep(delay / 1000)
        if faults.forbidden:
            await _answer(send, 403, "forbidden", "the client has no permission for NVR", [])
        elif state.hit(faults.drop_rate):
            await drop_connection(receive, send)
        elif state.hit(faults.throttle_rate):
            seconds = str(faults.retry_after_s)
            retry = [(b"retry-after", seconds.encode())]
            await _answer(send, 429, "throttled", f"too many calls; retry in {seconds} s", retry)
        elif state.hit(faults.error_rate):
            await _answer(send, 500, "exception", "internal error in NVR (injected)", [])
        else:
            await self.app(scope, receive, send)


async def drop_connection(receive: Receive, send: Send) -> None:
    """Close the connection without a byte of answer (through uvicorn's h11 request cycle)."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise RuntimeError("dropping a connection needs uvicorn's h11 protocol (ServerThread)")
    transport.close()
    while (await receive())["type"] != "http.disconnect":
        pass


async def _answer(
    send: Send, status: int, code: str, text: str, headers: list[tuple[bytes, bytes]]
) -> None:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "details": {"text": text}}],
    }
    body = json.dumps(outcome).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", FHIR_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
