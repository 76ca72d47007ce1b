"""How the GVR and NVR sandboxes misbehave on demand: latency, 500, 429, maintenance 503, 403,
dropped calls.

Faults apply to the register's routes only (the path prefixes a sandbox gives `FaultMiddleware`);
the admin routes, a token endpoint and the OpenAPI always answer, so a test can switch a fault
off again. Each sandbox words the error answers its register's way (`FaultAnswers`).
"""

# S311: a seeded PRNG picks the faulted calls, reproducibly; no secret involved.
# ruff: noqa: S311

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Receive, Scope, Send


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
        default=False, description="403 to every register call: the client has no permission."
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

    def change(self, change: FaultsChange) -> Faults:
        """Change the faults `change` names, keep the others; the faults now in force."""
        self.faults = change.applied_to(self.faults)
        return self.faults

    def hit(self, rate: float) -> bool:
        return rate > 0 and self.rng.random() < rate


Answer = tuple[str, str]
"""An error answer's (code, message), as the register's error body carries them."""


@dataclass(frozen=True)
class FaultAnswers:
    """How a register answers its faults: the content type, its error body, each fault's words.

    `throttled`'s message is a format string with ``{seconds}`` (the Retry-After).
    """

    content_type: str
    body: Callable[[str, str], bytes]
    maintenance: Answer
    forbidden: Answer
    throttled: Answer
    error: Answer


class FaultMiddleware:
    """Outermost ASGI layer, so `send` is uvicorn's own and a connection can be dropped."""

    def __init__(
        self, app: ASGIApp, state: FaultState, prefixes: tuple[str, ...], answers: FaultAnswers
    ) -> None:
        self.app = app
        self.state = state
        self.prefixes = prefixes
        self.answers = answers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        state, answers = self.state, self.answers
        faults = state.faults
        now = state.clock()
        if faults.in_maintenance(now):
            headers: list[tuple[bytes, bytes]] = []
            if faults.maintenance_until is not None:
                wait = math.ceil((faults.maintenance_until - now).total_seconds())
                headers.append((b"retry-after", str(max(wait, 1)).encode()))
            await self._answer(send, 503, answers.maintenance, headers)
            return
        delay = faults.latency_ms + (
            state.rng.uniform(0, faults.latency_jitter_ms) if faults.latency_jitter_ms else 0
        )
        if delay > 0:
            await asyncio.sleep(delay / 1000)
        if faults.forbidden:
            await self._answer(send, 403, answers.forbidden, [])
        elif state.hit(faults.drop_rate):
            await drop_connection(receive, send)
        elif state.hit(faults.throttle_rate):
            seconds = str(faults.retry_after_s)
            code, message = answers.throttled
            throttled = (code, message.format(seconds=seconds))
            await self._answer(send, 429, throttled, [(b"retry-after", seconds.encode())])
        elif state.hit(faults.error_rate):
            await self._answer(send, 500, answers.error, [])
        else:
            await self.app(scope, receive, send)

    async def _answer(
        self, send: Send, status: int, answer: Answer, headers: list[tuple[bytes, bytes]]
    ) -> None:
        body = self.answers.body(*answer)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", self.answers.content_type.encode()),
                    (b"content-length", str(len(body)).encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def drop_connection(receive: Receive, send: Send) -> None:
    """Close the connection without a byte of answer (over TLS: a close_notify, then FIN).

    ASGI has no "abort", so this reaches uvicorn's h11 request cycle through its raw `send` (a
    bound method of the cycle, which holds the transport), then waits for uvicorn to notice.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise RuntimeError("dropping a connection needs uvicorn's h11 protocol (ServerThread)")
    transport.close()
    while (await receive())["type"] != "http.disconnect":
        pass
