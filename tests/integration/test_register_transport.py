"""RegisterTransport (httpx API over aiohttp) and RegisterSession (aiohttp, lean) map transport
failures alike, as the runtime needs them."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from shared.delivery.classify import classify_exception
from shared.delivery.errors import RegisterUnavailableError
from shared.http import RegisterSession, RegisterTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _serve(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def _drop_after_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.close()


async def _never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    await asyncio.sleep(5)
    writer.close()


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\n")
    writer.write(b'content-length: 13\r\n\r\n{"id": "R-1"}')
    await writer.drain()
    writer.close()


def _client(base_url: str, read: float = 5.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        transport=RegisterTransport(ssl_context=None, max_connections=4),
        timeout=httpx.Timeout(connect=1.0, read=read, write=1.0, pool=1.0),
    )


async def _send(way: str, base_url: str, method: str, read: float = 5.0) -> int:
    """One call through the httpx client over RegisterTransport, or through RegisterSession."""
    if way == "transport":
        async with _client(base_url, read) as client:
            return (await client.request(method, "/r", content=b"{}")).status_code
    session = RegisterSession(
        base_url,
        ssl_context=None,
        timeout=httpx.Timeout(connect=1.0, read=read, write=1.0, pool=1.0),
        max_connections=4,
    )
    try:
        return (await session.request(method, session.url("/r"), content=b"{}")).status
    finally:
        await session.aclose()


WAYS = pytest.mark.parametrize("way", ["transport", "session"])


@pytest.fixture
async def dropping() -> AsyncIterator[str]:
    async for url in _serve(_drop_after_request):
        yield url


@pytest.fixture
async def silent() -> AsyncIterator[str]:
    async for url in _serve(_never_answer):
        yield url


@pytest.fixture
async def answering() -> AsyncIterator[str]:
    async for url in _serve(_answer):
        yield url


async def test_an_answer_comes_back_as_an_httpx_response(answering: str) -> None:
    async with _client(answering) as client:
        response = await client.post("/r", json={"a": 1})
    assert (response.status_code, response.json()) == (201, {"id": "R-1"})


async def test_an_answer_comes_back_from_the_session_whole(answering: str) -> None:
    session = RegisterSession(
        answering, ssl_context=None, timeout=httpx.Timeout(1.0), max_connections=4
    )
    try:
        reply = await session.request("POST", session.url("/r"), content=b'{"a":1}')
    finally:
        await session.aclose()
    assert (reply.status, reply.json(), reply.headers["Content-Type"]) == (
        201,
        {"id": "R-1"},
        "application/json",
    )


@WAYS
async def test_a_connection_dropped_after_the_request_is_a_remote_protocol_error(
    dropping: str, way: str
) -> None:
    with pytest.raises(httpx.RemoteProtocolError) as caught:
        await _send(way, dropping, "POST")
    error = classify_exception(caught.value, register="R")
    assert isinstance(error, RegisterUnavailableError)
    assert error.error_class == "register_unreachable"


@WAYS
async def test_no_answer_within_the_read_timeout_is_a_read_timeout(silent: str, way: str) -> None:
    with pytest.raises(httpx.ReadTimeout) as caught:
        await _send(way, silent, "GET", read=0.3)
    assert classify_exception(caught.value, register="R").error_class == "register_timeout"


@WAYS
async def test_a_refused_connection_is_a_connect_error(way: str) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(httpx.ConnectError) as caught:
        await _send(way, f"http://127.0.0.1:{port}", "GET")
    error = classify_exception(caught.value, register="R")
    assert (type(error), error.error_class) == (RegisterUnavailableError, "register_unreachable")
