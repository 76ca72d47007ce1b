"""How the HSA sandbox misbehaves on demand, and how it cuts a connection mid-answer."""

from __future__ import annotations

import asyncio
from contextvars import ContextVar

from pydantic import BaseModel, ConfigDict, Field
from starlette.types import Send

RAW_SEND: ContextVar[Send | None] = ContextVar("raw_send", default=None)
"""uvicorn's own `send` for the current request (set by the app before any middleware)."""


class Faults(BaseModel):
    """Faults of the sandbox; all off by default. Admin routes are never faulted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: float = Field(
        default=0, ge=0, description="Delay before answering /units, /export."
    )
    error_rate: float = Field(
        default=0, ge=0, le=1, description="Share of /units lookups answered 500 (seeded dice)."
    )
    export_delay_ms: float = Field(default=0, ge=0, description="Pause between export chunks.")
    export_truncate_after: int | None = Field(
        default=None,
        ge=0,
        description="Cut the export after this many unit lines: no trailer, connection closed.",
    )
    export_status: int | None = Field(
        default=None, ge=400, le=599, description="Answer /export with this status (e.g. 503)."
    )


class FaultsChange(BaseModel):
    """The faults to change; those not given keep their value, null switches one off."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float | None = Field(default=None, ge=0)
    error_rate: float | None = Field(default=None, ge=0, le=1)
    export_delay_ms: float | None = Field(default=None, ge=0)
    export_truncate_after: int | None = Field(default=None, ge=0)
    export_status: int | None = Field(default=None, ge=400, le=599)

    def applied_to(self, faults: Faults) -> Faults:
        changes = self.model_dump(exclude_unset=True)
        for name in ("latency_ms", "error_rate", "export_delay_ms"):
            if name in changes and changes[name] is None:
                changes[name] = 0
        return Faults.model_validate(faults.model_dump() | changes)


async def close_connection_abruptly(grace_s: float = 5.0) -> None:
    """Close the client's connection without finishing the answer (no final chunk).

    ASGI has no "abort" message, so this reaches uvicorn's h11 request cycle through its raw
    `send` (see `RAW_SEND`): closing the transport flushes what was already written, then drops
    the connection. It waits until uvicorn has seen the loss, so nothing sent afterwards (such as
    Starlette's end of the body) reaches the socket.
    """
    cycle = getattr(RAW_SEND.get(), "__self__", None)
    transport = getattr(cycle, "transport", None)
    if cycle is None or transport is None:
        raise RuntimeError("cutting a connection needs uvicorn's h11 protocol (ServerThread)")
    transport.close()
    deadline = asyncio.get_running_loop().time() + grace_s
    while not getattr(cycle, "disconnected", True):
        if asyncio.get_running_loop().time() > deadline:
            transport.abort()
            return
        await asyncio.sleep(0.005)
