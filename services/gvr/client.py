"""GvrClient: GVR's REST API over one pooled aiohttp session with mutual TLS (shared/http.py)."""

from __future__ import annotations

import os
import secrets
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import orjson
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    PrivateFormat,
    pkcs12,
)
from opentelemetry.trace import TracerProvider

from services.gvr.mapping import CANCELLED, GvrRequest
from services.gvr.settings import GvrSettings
from shared.delivery.classify import (
    bad_answer,
    classify_exception,
    classify_response,
)
from shared.delivery.errors import ConfigurationError, DeliveryError
from shared.delivery.worker import Accepted
from shared.http import RegisterSession, Reply, json_object

REGISTER = "GVR"
JSON = "application/json"
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=30.0)

# What a request can raise that classify_exception knows; anything else is a bug and surfaces.
_REQUEST_ERRORS = (httpx.HTTPError, httpx.InvalidURL, ssl.SSLError)
# The headers of every call, built once: GVR answers JSON; a body is JSON.
_ASK = {"accept": JSON}
_SEND = {"accept": JSON, "content-type": JSON}


def build_ssl_context(
    *,
    ca_bundle: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
    client_p12: str | None = None,
    client_p12_password: str | None = None,
) -> ssl.SSLContext:
    """A TLS client context trusting `ca_bundle` (None: the system's CAs), presenting the client
    certificate from PEM files (`client_cert` + `client_key`; the key may sit in the cert file)
    or from a PKCS#12 file. Raises ConfigurationError when the files cannot be used."""
    if client_p12 and (client_cert or client_key):
        raise _tls_config("set either client_p12 or client_cert + client_key, not both")
    if client_key and not client_cert:
        raise _tls_config("client_key is set without client_cert")
    try:
        context = ssl.create_default_context(cafile=ca_bundle)
        if client_p12:
            _load_pkcs12(context, Path(client_p12).read_bytes(), client_p12_password)
        elif client_cert:
            context.load_cert_chain(client_cert, client_key)
    except (OSError, ValueError, ssl.SSLError) as exc:  # FileNotFoundError, a bad password …
        raise _tls_config(f"cannot load the TLS files ({type(exc).__name__}: {exc})") from exc
    return context


class GvrClient:
    """Sends mapped `GvrRequest`s to GVR and reads records back by key; one connection pool.

    A call per event, so the call is lean: the URL and the body built once, the headers prebuilt,
    the answer classified only when it is not a 2xx. `send` never raises for HTTP or transport
    problems: it returns `Accepted` or the `DeliveryError` that decides the event's fate. `find`
    raises that error instead.
    """

    def __init__(
        self,
        base_url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_connections: int = 64,
        transport: httpx.AsyncBaseTransport | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self._http = RegisterSession(
            base_url,
            ssl_context=ssl_context,
            timeout=timeout,
            max_connections=max_connections,
            transport=transport,  # httpx's MockTransport in unit tests
            tracer_provider=tracer_provider,  # CLIENT spans, when tracing is on
        )

    @classmethod
    def from_settings(cls, settings: GvrSettings) -> GvrClient:
        password = settings.client_p12_password
        context = build_ssl_context(
            ca_bundle=settings.ca_bundle,
            client_cert=settings.client_cert,
            client_key=settings.client_key,
            client_p12=settings.client_p12,
            client_p12_password=password.get_secret_value() if password else None,
        )
        timeout = httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.write_timeout,
            pool=settings.pool_timeout,
        )
        return cls(
            settings.base_url,
            ssl_context=context,
            timeout=timeout,
            max_connections=settings.max_connections,
        )

    async def send(
        self, request: GvrRequest, *, operation: str | None = None
    ) -> Accepted | DeliveryError:
        """POST/PUT/DELETE `request`. 2xx → Accepted: GVR's new id for a create (the answer's
        "id"), the reference sent for a correction or cancellation. Anything else → the error
        classified for `operation` (default: the request's). A 2xx create without an id (not
        GVR answering?) is a ConfigurationError: pause and alarm, since a retry would be a 409."""
        operation = operation or request.operation
        body = None if request.json is None else request_body(request.json)
        try:
            reply = await self._http.request(
                request.method,
                self._http.url(request.path, request.params),
                content=body,
                headers=_ASK if body is None else _SEND,
            )
        except _REQUEST_ERRORS as exc:
            return classify_exception(exc, operation=operation, register=REGISTER)
        error = _error(reply, operation)
        if error is not None:
            return error
        if request.reference is not None:
            return Accepted(request.reference)
        record_id = created_id(reply)
        if not record_id:
            return bad_answer(REGISTER, reply.as_response(), 'no "id"')
        return Accepted(record_id)

    async def find(self, request: GvrRequest) -> str | None:
        """GET by key (a `lookup_request`): the id of the first hit that carries every field of
        `request.expect`, or None. A makulerad hit counts only when `expect` asks for
        status MAKULERAD (a cancellation); otherwise only live records count. Raises the
        classified DeliveryError when GVR cannot be asked."""
        url = self._http.url(request.path, request.params)
        try:
            reply = await self._http.request("GET", url, headers=_ASK)
        except _REQUEST_ERRORS as exc:
            raise classify_exception(exc, operation="lookup", register=REGISTER) from exc
        error = _error(reply, "lookup")
        if error is not None:
            raise error
        hits = json_object(reply).get("traffar")
        if not isinstance(hits, list):
            raise bad_answer(REGISTER, reply.as_response(), 'no "traffar" list')
        wants_cancelled = request.expect.get("status") == CANCELLED
        for hit in hits:
            if not isinstance(hit, dict) or (hit.get("status") == CANCELLED) != wants_cancelled:
                continue
            if all(hit.get(name) == value for name, value in request.expect.items()):
                record_id = hit.get("id")
                return str(record_id) if record_id is not None else None
        return None

    async def probe(self, path: str) -> DeliveryError | None:
        """Are we let in? A GET of `path` without parameters: any answer but 401/403 means the
        TLS handshake took our client certificate (the register may well call the GET itself
        a 400). A refused handshake or a 401/403 → ConfigurationError; unreachable → transient."""
        try:
            reply = await self._http.request("GET", self._http.url(path), headers=_ASK)
        except _REQUEST_ERRORS as exc:
            return classify_exception(exc, operation="lookup", register=REGISTER)
        if reply.status not in (401, 403):
            return None
        return classify_response(reply.status, reply.text, operation="lookup", register=REGISTER)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> GvrClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def request_body(record: dict[str, Any]) -> bytes:
    """The JSON body of a mapped record: orjson's bytes, which are `shared.http.json_body`'s
    (httpx's ``json=``) for what a mapping holds, strings, bounded ints, booleans, lists and
    objects (no floats: where the two differ, NaN and exponents), several times faster."""
    return orjson.dumps(record)


def created_id(reply: Reply) -> str | None:
    """A create's answer's "id" when it is a non-empty string. orjson reads strings as the
    standard library does; what it refuses (a BOM, NaN, a lone surrogate, not JSON) is read
    again by `json_object`, so the outcome is the same."""
    try:
        answer = orjson.loads(reply.content)
    except orjson.JSONDecodeError:
        answer = json_object(reply)
    record_id = answer.get("id") if isinstance(answer, dict) else None
    return record_id if isinstance(record_id, str) and record_id else None


def _error(reply: Reply, operation: str) -> DeliveryError | None:
    """The classified error of a non-2xx answer (the body decoded only then)."""
    if reply.is_success:
        return None
    return classify_response(
        reply.status, reply.text, headers=reply.headers, operation=operation, register=REGISTER
    )


def _tls_config(why: str) -> ConfigurationError:
    return ConfigurationError(f"GVR client TLS: {why}", error_class="tls_config")


def _load_pkcs12(context: ssl.SSLContext, data: bytes, password: str | None) -> None:
    """Key + certificate (+ chain) from PKCS#12 into `context`. `ssl` reads only files, so they
    pass through a private file (see `_private_file`), the key encrypted with a one-time
    password: the plain key is never written anywhere."""
    key, cert, chain = pkcs12.load_key_and_certificates(
        data, password.encode() if password is not None else None
    )
    if key is None or cert is None:
        raise ValueError("the PKCS#12 file holds no private key and certificate")
    one_time = secrets.token_urlsafe(32)
    pem = cert.public_bytes(Encoding.PEM)
    pem += b"".join(extra.public_bytes(Encoding.PEM) for extra in chain)
    pem += key.private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(one_time.encode())
    )
    with _private_file(pem) as path:
        context.load_cert_chain(path, password=one_time)


@contextmanager
def _private_file(content: bytes) -> Iterator[str]:
    """A path to `content` that only this process can read, gone when the block ends: an
    anonymous in-memory file (Linux memfd, never on disk) where there is one, else a 0600 file."""
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("regbridge-gvr-client", os.MFD_CLOEXEC)
        try:
            with open(fd, "wb", closefd=False) as file:
                file.write(content)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    fd, path = tempfile.mkstemp(prefix="regbridge-gvr-", suffix=".pem")  # mode 0600
    try:
        with open(fd, "wb") as file:
            file.write(content)
        yield path
    finally:
        os.unlink(path)
