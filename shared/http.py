"""How register clients talk HTTP: a lean aiohttp session, and aiohttp's pool under the httpx API.

`RegisterSession` is the hot path of a client that makes one call per event: absolute URLs built
by the client, bodies it serialised once, header dicts built once, the answer read whole into a
`Reply` — nothing per request that does nothing (httpx's request and response models, auth flow,
event hooks, redirect loop and stream wrappers cost a call per event more than the call itself:
`benchmarks/register_call.py`). Failures still come out as httpx's exception types, so
`shared.delivery.classify` classifies them exactly as before. A session given an httpx transport
(`MockTransport` in unit tests) or created while tracing is on sends through an httpx client
instead (over `RegisterTransport`, instrumented for CLIENT spans).

`RegisterTransport` keeps httpx's whole API (auth flows, `MockTransport`) over aiohttp's pool for
clients whose calls are few (a bundle of 100, a file): httpx's own pool (httpcore) spent most of a
worker's CPU at the runtime's concurrency. Those clients are `RegisterClient`s, whose answers are
freed by their reference counts (httpx's own sit in a reference cycle until the collector runs).
`httpx-aiohttp` maps aiohttp's exceptions coarsely (every `ClientConnectionError`, a refused TLS
handshake and a dropped connection included, becomes `httpx.ConnectTimeout`), so both map them
again from the aiohttp cause (`_from_aiohttp`), keeping the chain so that `classify` still finds
the `ssl.SSLError` in it.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import urlencode

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from opentelemetry.trace import TracerProvider

from shared.tracing import instrument_http_client, sdk_provider, tracing_wanted

KEEPALIVE_SECONDS = 5.0  # httpx's default keep-alive expiry, as before


@dataclass(frozen=True, slots=True)
class Reply:
    """A register's answer, read whole: its status, headers (case-insensitive) and body."""

    status: int
    headers: Mapping[str, str]
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status <= 299

    @property
    def text(self) -> str:
        """The body decoded as httpx decodes it: the Content-Type's charset, else UTF-8."""
        charset = _charset(self.headers.get("content-type"))
        try:
            return self.content.decode(charset or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)

    def as_response(self) -> httpx.Response:
        """The same answer as an httpx.Response (for `classify.bad_answer`; not per request)."""
        return httpx.Response(self.status, headers=list(self.headers.items()), content=self.content)


def json_body(value: Any) -> bytes:
    """`value` as the JSON body httpx's ``json=`` sends (compact, UTF-8, no NaN)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


class RegisterSession:
    """One register's connection pool: `request` sends and reads an answer whole.

    Raises httpx's transport exceptions (`ConnectError`, `ReadTimeout`, …) with the aiohttp
    exception, and any `ssl.SSLError`, in their chain; `ssl.SSLError` may also come bare.
    """

    def __init__(
        self,
        base_url: str,
        *,
        ssl_context: ssl.SSLContext | None,
        timeout: httpx.Timeout,
        max_connections: int,
        transport: httpx.AsyncBaseTransport | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._ssl = ssl_context if ssl_context is not None else httpx.create_ssl_context()
        self._timeout = aiohttp.ClientTimeout(
            sock_connect=timeout.connect, sock_read=timeout.read, connect=timeout.pool
        )
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None  # opened in the event loop, at need
        self._httpx: httpx.AsyncClient | None = None
        traced = tracer_provider is not None or tracing_wanted() or sdk_provider() is not None
        if transport is not None or traced:
            self._httpx = RegisterClient(
                timeout=timeout,
                limits=httpx.Limits(
                    max_connections=max_connections, max_keepalive_connections=max_connections
                ),
                transport=transport
                or RegisterTransport(ssl_context=self._ssl, max_connections=max_connections),
                follow_redirects=False,
            )
            instrument_http_client(self._httpx, tracer_provider)

    def url(self, path: str, params: Sequence[tuple[str, str]] = ()) -> str:
        """The absolute URL of `path` (relative to the base URL's path, as httpx joins it) with
        `params` form-encoded as httpx encodes them."""
        url = path if path.startswith(("https://", "http://")) else self.base_url + path
        return f"{url}?{urlencode(params)}" if params else url

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """Send `content` (already serialised) with `headers` (the whole set) to `url`."""
        if self._httpx is not None:
            answer = await self._httpx.request(method, url, content=content, headers=headers)
            return Reply(answer.status_code, answer.headers, answer.content)
        session = self._session or self._open()
        try:
            async with session.request(
                method, url, data=content, headers=headers, allow_redirects=False
            ) as response:
                return Reply(response.status, response.headers, await response.read())
        except aiohttp.ClientError as exc:
            mapped = _from_aiohttp(exc, httpx.Request(method, url))
            if mapped is None:
                raise
            raise mapped from exc

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            ssl=self._ssl, limit=self._max_connections, keepalive_timeout=KEEPALIVE_SECONDS
        )
        self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._httpx is not None:
            await self._httpx.aclose()


class RegisterClient(httpx.AsyncClient):
    """httpx's client, whose answers read whole hold no reference cycle.

    httpx 0.28 wraps each answer's stream in a `BoundAsyncStream` that points back at the
    response (encode/httpx#3733), so every answer, its body and headers included, is freed only
    by the cyclic garbage collector instead of when its last reference goes; a worker that
    raises the collector's threshold (`shared.heap.freeze_heap`) would hold hundreds of
    them. Once the body is read the wrapper has done its work (timing `elapsed` as it closed):
    the response's stream becomes the body it read."""

    async def send(
        self, request: httpx.Request, *, stream: bool = False, **kwargs: Any
    ) -> httpx.Response:
        response = await super().send(request, stream=stream, **kwargs)
        if not stream:
            response.stream = httpx.ByteStream(response.content)
        return response


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
            cause = exc.__cause__
            mapped = _from_aiohttp(cause, request) if cause is not None else None
            raise (mapped or exc) from cause


def _from_aiohttp(cause: BaseException, request: httpx.Request) -> httpx.TransportError | None:
    """The httpx exception an aiohttp failure means, or None for one httpx has no name for."""
    message = str(cause) or type(cause).__name__
    mapped: type[httpx.TransportError]
    if isinstance(cause, aiohttp.ConnectionTimeoutError):
        mapped = httpx.ConnectTimeout
    elif isinstance(cause, aiohttp.ServerTimeoutError | asyncio.TimeoutError):
        mapped = httpx.ReadTimeout
    elif isinstance(cause, aiohttp.ClientConnectorError):  # refused, DNS, TLS handshake, proxy
        mapped = httpx.ConnectError
    elif isinstance(cause, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        mapped = httpx.RemoteProtocolError
    elif isinstance(cause, aiohttp.ClientOSError):  # a reset on an established connection
        mapped = httpx.ReadError
    elif isinstance(cause, aiohttp.ClientConnectionError):  # as httpx-aiohttp maps the rest
        mapped = httpx.ConnectTimeout
    elif isinstance(cause, aiohttp.InvalidUrlClientError | aiohttp.NonHttpUrlClientError):
        mapped = httpx.UnsupportedProtocol
    elif isinstance(cause, aiohttp.ClientHttpProxyError):
        mapped = httpx.ProxyError
    else:
        return None
    return mapped(message, request=request)


def _charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    header = Message()
    header["content-type"] = content_type
    return header.get_content_charset()


def json_object(response: httpx.Response | Reply) -> dict[str, Any]:
    """The answer's body as a JSON object; ``{}`` when it is not JSON or not an object."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
