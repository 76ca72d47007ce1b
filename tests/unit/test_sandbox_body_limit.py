"""The sandboxes' request size limits: 413 in the register's words, before the body is read."""

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from services.sandboxes.gvr import app as gvr_app
from services.sandboxes.gvr.kombika import KombikaRegistry
from services.sandboxes.gvr.state import SandboxState
from services.sandboxes.nvr import app as nvr_app
from services.sandboxes.nvr.sandbox import NvrSandbox
from services.sandboxes.server import BodyLimit


async def echo_length(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers 200 with the number of body bytes it read."""
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


def limited(max_bytes: int) -> httpx.AsyncClient:
    app = BodyLimit(echo_length, max_bytes, "text/plain", lambda size: f"size={size}".encode())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sandbox")


async def chunks(total: int, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


async def test_a_body_of_exactly_the_limit_passes_untouched() -> None:
    async with limited(100) as client:
        answer = await client.post("/", content=b"x" * 100)
    assert (answer.status_code, answer.text) == (200, "100")


async def test_a_declared_length_over_the_limit_is_refused_with_its_size() -> None:
    async with limited(100) as client:
        answer = await client.post("/", content=b"x" * 101)
    assert (answer.status_code, answer.text) == (413, "size=101")
    assert answer.headers["content-type"] == "text/plain"


async def test_a_chunked_body_is_counted_and_refused_once_past_the_limit() -> None:
    async with limited(2500) as client:
        small = await client.post("/", content=chunks(2500))
        large = await client.post("/", content=chunks(10_000))
    assert (small.status_code, small.text) == (200, "2500")
    assert (large.status_code, large.text) == (413, "size=None")


@pytest.fixture
def gvr() -> httpx.AsyncClient:
    app = gvr_app.create_app(SandboxState(registry=KombikaRegistry()))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gvr")


async def test_gvr_answers_413_with_a_fel_above_one_mebibyte(gvr: httpx.AsyncClient) -> None:
    assert gvr_app.MAX_REQUEST_BYTES == 1024 * 1024
    body = b'{"x": "' + b"a" * gvr_app.MAX_REQUEST_BYTES + b'"}'
    async with gvr:
        answer = await gvr.post("/vardhandelse/besok", content=body)
        under = await gvr.post("/vardhandelse/besok", content=b'{"x": 1}')
    assert answer.status_code == 413
    (fel,) = answer.json()["fel"]
    assert fel["kod"] == "GVR-FORMAT"
    assert f"{len(body)} byte" in fel["meddelande"]
    assert under.status_code != 413


async def test_nvr_answers_413_with_an_operation_outcome_above_five_mebibytes() -> None:
    app = NvrSandbox(units=5, seed=1).app
    assert nvr_app.MAX_REQUEST_BYTES == 5 * 1024 * 1024
    body = json.dumps({"resourceType": "Bundle", "pad": "a" * nvr_app.MAX_REQUEST_BYTES}).encode()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://nvr") as client:
        answer = await client.post(
            "/fhir", content=body, headers={"content-type": "application/fhir+json"}
        )
    assert answer.status_code == 413
    (issue,) = answer.json()["issue"]
    assert issue["code"] == "too-long"
    assert f"{len(body)} bytes" in issue["details"]["text"]
