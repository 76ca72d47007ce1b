"""VgpvClient: VGPV's file upload over one pooled httpx client with mutual TLS."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterable
from datetime import datetime
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

import httpx
from opentelemetry.trace import TracerProvider

from services.vgpv.settings import VgpvSettings
from shared.delivery.classify import (
    RESPONSE_LIMIT,
    bad_answer,
    classify_exception,
    classify_response,
)
from shared.delivery.errors import ConfigurationError, DeliveryError, RegisterRejectedError
from shared.files.register import Receipt, RowVerdict
from shared.http import RegisterClient, RegisterTransport, json_object
from shared.tracing import instrument_http_client

REGISTER = "VGPV"
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=120.0, write=60.0, pool=30.0)
STATUSES: dict[str, Literal["accepted", "partly_accepted", "refused"]] = {
    "godkand": "accepted",
    "delvis_godkand": "partly_accepted",
    "avvisad": "refused",
}
# What a request can raise that classify_exception knows; anything else is a bug and surfaces.
_REQUEST_ERRORS = (httpx.HTTPError, httpx.InvalidURL, ssl.SSLError)


def build_ssl_context(
    *, ca_bundle: str | None = None, client_cert: str | None = None, client_key: str | None = None
) -> ssl.SSLContext:
    """A TLS client context trusting `ca_bundle` (None: the system's CAs) and presenting the
    client certificate (PEM; the key may sit in the certificate's file). ConfigurationError
    when the files cannot be used."""
    if client_key and not client_cert:
        raise _tls_config("client_key is set without client_cert")
    try:
        context = ssl.create_default_context(cafile=ca_bundle)
        if client_cert:
            context.load_cert_chain(client_cert, client_key)
    except (OSError, ValueError, ssl.SSLError) as exc:
        raise _tls_config(f"cannot load the TLS files ({type(exc).__name__}: {exc})") from exc
    return context


class VgpvClient:
    """Uploads files by name and reads their receipts back; one connection pool.

    Every HTTP or transport problem is raised as the `DeliveryError` the shared classification
    makes of it (`shared.delivery.classify`): transient ones are tried again later, a refused
    certificate pauses the worker."""

    def __init__(
        self,
        base_url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_connections: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self._client = RegisterClient(
            base_url=base_url,
            verify=ssl_context if ssl_context is not None else True,
            timeout=timeout,
            transport=transport
            or RegisterTransport(ssl_context=ssl_context, max_connections=max_connections),
            headers={"accept": "application/json"},
            follow_redirects=False,
        )
        instrument_http_client(self._client, tracer_provider)

    @classmethod
    def from_settings(cls, settings: VgpvSettings) -> VgpvClient:
        context = build_ssl_context(
            ca_bundle=settings.ca_bundle,
            client_cert=settings.client_cert,
            client_key=settings.client_key,
        )
        timeout = httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.write_timeout,
            pool=settings.pool_timeout,
        )
        return cls(settings.base_url, ssl_context=context, timeout=timeout)

    async def upload(self, name: str, content: AsyncIterable[bytes]) -> Receipt:
        """PUT the file, streamed. The receipt of a file read (200: its rows' verdicts) or
        refused whole (422: late, a broken trailer …); a name the register already has (409)
        gives its stored receipt when the content is the same, RegisterRejectedError when not."""
        try:
            response = await self._client.put(
                _path(name), content=content, headers={"content-type": "text/plain"}
            )
        except _REQUEST_ERRORS as exc:
            raise classify_exception(exc, operation="deliver", register=REGISTER) from exc
        body = json_object(response)
        if response.status_code in (200, 422) and "kvittoId" in body:
            return parse_receipt(body, response.text)
        if response.status_code == 409 and isinstance(body.get("kvitto"), dict):
            if body.get("sammaInnehall") is not True:
                raise RegisterRejectedError(
                    f"{REGISTER} holds another file named {name}",
                    error_class="register_duplicate",
                    register_status=409,
                    register_response=response.text[:RESPONSE_LIMIT],
                )
            stored = body["kvitto"]
            return parse_receipt(stored, json.dumps(stored, ensure_ascii=False))
        raise _error(response, "deliver", "no receipt")

    async def receipt(self, name: str) -> Receipt | None:
        """The receipt of the file `name`, or None when the register has no file by that name."""
        try:
            response = await self._client.get(f"{_path(name)}/kvitto")
        except _REQUEST_ERRORS as exc:
            raise classify_exception(exc, operation="lookup", register=REGISTER) from exc
        body = json_object(response)
        if response.status_code == 404 and body.get("kod") == "OKAND":
            return None
        if response.status_code == 200 and "kvittoId" in body:
            return parse_receipt(body, response.text)
        raise _error(response, "lookup", "no receipt")

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> VgpvClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def parse_receipt(body: dict[str, Any], raw: str) -> Receipt:
    """VGPV's receipt (``kvittoId``, ``status``, ``rader`` …) as a `Receipt`; ValueError
    (a ConfigurationError: not VGPV answering?) when it lacks what a receipt has."""
    try:
        status = STATUSES[body["status"]]
        rows = tuple(
            RowVerdict(
                number=int(row["radnummer"]),
                accepted=row["status"] == "godkand",
                code=row.get("kod"),
                reason=row.get("orsak"),
            )
            for row in body.get("rader") or ()
        )
        reason = body.get("orsak")
        if body.get("orsakskod"):
            reason = f"{body['orsakskod']}: {reason}"
        return Receipt(
            file_name=str(body["filnamn"]),
            receipt_id=str(body["kvittoId"]),
            received_at=datetime.fromisoformat(str(body["mottagen"])),
            status=status,
            reason=reason,
            rows=rows,
            raw=raw,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"{REGISTER}'s receipt could not be read ({type(exc).__name__}: {exc})",
            error_class="register_bad_answer",
            register_response=raw[:RESPONSE_LIMIT],
        ) from exc


def _error(response: httpx.Response, operation: str, what: str) -> DeliveryError:
    """The classified error of a non-2xx answer; a 2xx or 404 that is not VGPV's own answer: a
    bad answer (pause: is base_url VGPV?)."""
    status = response.status_code
    if 200 <= status <= 299 or status == 404:
        return bad_answer(REGISTER, response, what)
    error = classify_response(
        status, response.text, headers=response.headers, operation=operation, register=REGISTER
    )
    return error if error is not None else bad_answer(REGISTER, response, what)


def _path(name: str) -> str:
    return f"/filer/{quote(name, safe='')}"


def _tls_config(why: str) -> ConfigurationError:
    return ConfigurationError(f"{REGISTER} client TLS: {why}", error_class="tls_config")
