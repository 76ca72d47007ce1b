"""The transport behind every register client: aiohttp's connection pool under the httpx API.

httpx's own pool (httpcore) spends most of a worker's CPU at the concurrency the runtime uses
(measured here: ~340 requests/s at 20 in flight against ~2,300 through aiohttp; a register's
drain benchmark went from 155 to 436 events/s). The clients keep httpx's API — requests,
responses, auth flows, `MockTransport` in unit tests — and send through `httpx-aiohttp`.

`httpx-aiohttp` maps aiohttp's exceptions coarsely: every `ClientConnectionError`, a refused TLS
handshake and a connection the server dropped mid-answer included, becomes `httpx.ConnectTimeout`.
The runtime must tell those apart (a refused certificate pauses the worker, a dropped connection
after a POST is a retry), so `RegisterTransport` maps them again from the aiohttp cause, keeping
the chain so that `shared.delivery.classify` still finds the `ssl.SSLError` in it.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport


class RegisterTransport(AiohttpTransport):
    """`AiohttpTransport` with a pool of `max_connections` and exact exception mapping."""

    def __init__(self, *, ssl_context: ssl.SSLContext | None, max_connections: int) -> None:
        super().__init__(
            verify=ssl_context if ssl_context is not None else True,
            limits=httpx.Limits(max_connections=max_connections),
            trust_env=False,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except httpx.TransportError as exc:
            raise _remapped(exc, request) from exc.__cause__


def _remapped(exc: httpx.TransportError, request: httpx.Request) -> httpx.TransportError:
    cause = exc.__cause__
    message = str(exc) or type(cause).__name__
    mapped: httpx.TransportError
    if isinstance(cause, aiohttp.ConnectionTimeoutError):
        mapped = httpx.ConnectTimeout(message, request=request)
    elif isinstance(cause, aiohttp.ServerTimeoutError | asyncio.TimeoutError):
        mapped = httpx.ReadTimeout(message, request=request)
    elif isinstance(cause, aiohttp.ClientConnectorError):  # refused, DNS, TLS handshake
        mapped = httpx.ConnectError(message, request=request)
    elif isinstance(cause, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        mapped = httpx.RemoteProtocolError(message, request=request)
    elif isinstance(cause, aiohttp.ClientOSError):  # a reset on an established connection
        mapped = httpx.ReadError(message, request=request)
    else:
        return exc
    return mapped


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The answer's body as a JSON object; ``{}`` when it is not JSON or not an object."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
