"""RegisterSession's URLs, bodies and replies are what the httpx client made of the same call;
RegisterClient's answers hold no reference cycle."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import httpx
import pytest

from shared.http import RegisterClient, RegisterSession, Reply, json_body

PARAMS = (
    ("id", "GVR-0000042"),
    ("enhet.inr", "11010"),
    ("besokstid", "09:30"),
    ("odd", "a b/å+&=?#%~*'()!"),
)


def session(base_url: str) -> RegisterSession:
    return RegisterSession(
        base_url, ssl_context=None, timeout=httpx.Timeout(1.0), max_connections=1
    )


@pytest.mark.parametrize(
    "base_url", ["https://gvr.test", "https://gvr.test:8443/api/", "http://h/"]
)
@pytest.mark.parametrize("params", [(), PARAMS, PARAMS[:1]])
@pytest.mark.parametrize("path", ["/vardhandelse/besok", "/vardhandelse/besok/GVR-1%2F2"])
def test_the_url_is_the_one_httpx_built_from_base_url_path_and_params(
    base_url: str, params: tuple[tuple[str, str], ...], path: str
) -> None:
    client = httpx.AsyncClient(base_url=base_url)
    expected = client.build_request("GET", path, params=params).url
    assert session(base_url).url(path, params) == str(expected)


@pytest.mark.parametrize(
    "body", [{"a": 1, "å": "ä ö", "list": [1.5, None, True]}, {"nested": {"x": "\u2028"}}, []]
)
def test_a_body_is_the_bytes_httpx_sent_for_json(body: Any) -> None:
    request = httpx.Request("POST", "https://gvr.test/r", json=body)
    assert json_body(body) == request.read()
    with pytest.raises(ValueError, match="JSON"):
        json_body({"x": float("nan")})


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        (None, "Taxan gäller inte".encode()),
        ("application/json", "Taxan gäller inte".encode()),
        ("text/html; charset=ISO-8859-1", "Taxan gäller inte".encode("latin-1")),
        ("text/plain; charset=no-such-charset", "gäller".encode()),
        ("text/plain", b"\xff broken utf-8"),
    ],
)
def test_a_reply_reads_as_the_httpx_response_of_the_same_answer(
    content_type: str | None, content: bytes
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    reply = Reply(400, httpx.Headers(headers), content)
    response = httpx.Response(400, headers=headers, content=content)
    assert reply.text == response.text
    assert reply.as_response().text == response.text
    assert (reply.is_success, Reply(204, {}, b"").is_success) == (False, True)


async def test_a_register_clients_answer_is_freed_when_its_last_reference_goes() -> None:
    """No reference cycle (httpx's stream wrapper points back at its response): with the cyclic
    collector off, the answer, read whole, still goes as soon as nothing holds it."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"id": "1"}, headers={"x-a": "b"})

    async with RegisterClient(transport=httpx.MockTransport(answer)) as client:
        gc.disable()
        try:
            response = await client.post("https://nvr.test/fhir", content=b"{}")
            assert (response.status_code, response.json()) == (201, {"id": "1"})
            assert response.content == b'{"id":"1"}'
            assert [chunk async for chunk in response.aiter_bytes()] == [b'{"id":"1"}']
            gone = weakref.ref(response)
            del response
            assert gone() is None
        finally:
            gc.enable()
