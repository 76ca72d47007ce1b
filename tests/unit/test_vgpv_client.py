"""VgpvClient: receipts read, every other answer and transport failure turned into the project's
error types (httpx.MockTransport for the shapes; the sandbox test covers the real thing)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.vgpv.client import VgpvClient, build_ssl_context
from shared.delivery.errors import (
    ConfigurationError,
    DeliveryError,
    RegisterRejectedError,
    RegisterUnavailableError,
    ThrottledError,
)
from shared.files.register import RowVerdict

NAME = "VGPV_SE2321000131-E000000000101_202701_001.txt"
RECEIPT: dict[str, Any] = {
    "kvittoId": "VGPV-K-0000007",
    "filnamn": NAME,
    "mottagen": "2027-02-02T09:00:00Z",
    "status": "delvis_godkand",
    "orsakskod": None,
    "orsak": None,
    "ersatter": None,
    "kontrollsumma": "0" * 64,
    "antalRader": 2,
    "godkandaRader": 1,
    "avvisadeRader": 1,
    "rader": [
        {"radnummer": 1, "radnyckel": "a", "status": "godkand", "kod": None, "orsak": None},
        {"radnummer": 2, "radnyckel": "b", "status": "avvisad", "kod": "YRKE", "orsak": "XX"},
    ],
}
Handler = Callable[[httpx.Request], httpx.Response]


def client(handler: Handler) -> VgpvClient:
    return VgpvClient("https://vgpv.test", transport=httpx.MockTransport(handler))


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def upload(handler: Handler) -> Any:
    async with client(handler) as vgpv:
        return await vgpv.upload(NAME, chunks(b"H;", b"VGPV\n"))


async def test_an_upload_is_a_streamed_put_by_name_and_its_receipt_is_read() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=RECEIPT)

    async with client(handler) as vgpv:
        receipt = await vgpv.upload(NAME, chunks(b"H;", b"VGPV\n"))

    assert (seen[0].method, seen[0].url.path) == ("PUT", f"/filer/{NAME}")
    assert seen[0].content == b"H;VGPV\n"
    assert (receipt.file_name, receipt.receipt_id) == (NAME, "VGPV-K-0000007")
    assert receipt.status == "partly_accepted"
    assert receipt.received_at == datetime(2027, 2, 2, 9, 0, tzinfo=UTC)
    assert receipt.rows == (
        RowVerdict(1, True, None, None),
        RowVerdict(2, False, "YRKE", "XX"),
    )
    assert json.loads(receipt.raw) == RECEIPT


async def test_a_file_refused_whole_is_a_receipt_with_the_reason() -> None:
    refused = RECEIPT | {"status": "avvisad", "orsakskod": "SEN", "orsak": "too late", "rader": []}
    receipt = await upload(lambda _request: httpx.Response(422, json=refused))
    assert (receipt.status, receipt.reason, receipt.rows) == ("refused", "SEN: too late", ())


async def test_a_name_already_received_gives_its_stored_receipt() -> None:
    body = {"kod": "DUBBLETT", "sammaInnehall": True, "kvitto": RECEIPT | {"status": "godkand"}}
    receipt = await upload(lambda _request: httpx.Response(409, json=body))
    assert (receipt.receipt_id, receipt.status) == ("VGPV-K-0000007", "accepted")


async def test_another_file_under_a_name_already_received_is_rejected() -> None:
    body = {"kod": "DUBBLETT", "sammaInnehall": False, "kvitto": RECEIPT}
    with pytest.raises(RegisterRejectedError) as caught:
        await upload(lambda _request: httpx.Response(409, json=body))
    assert caught.value.error_class == "register_duplicate"


@pytest.mark.parametrize(
    ("response", "error_type", "error_class"),
    [
        (
            httpx.Response(500, json={"kod": "INTERNT"}),
            RegisterUnavailableError,
            "register_unavailable",
        ),
        (
            httpx.Response(503, json={"kod": "UNDERHALL"}),
            RegisterUnavailableError,
            "register_maintenance",
        ),
        (httpx.Response(429, headers={"retry-after": "7"}), ThrottledError, "throttled"),
        (httpx.Response(403, json={"kod": "BEHORIGHET"}), ConfigurationError, "register_forbidden"),
        (httpx.Response(401), ConfigurationError, "register_unauthorized"),
        (
            httpx.Response(413, json={"kod": "STORLEK"}),
            RegisterRejectedError,
            "register_payload_too_large",
        ),
        (
            httpx.Response(422, json={"detail": "bad name"}),
            RegisterRejectedError,
            "register_rejected",
        ),
        (
            httpx.Response(200, text="<html>portal</html>"),
            ConfigurationError,
            "register_bad_answer",
        ),
        (httpx.Response(200, json={"kvittoId": "x"}), ConfigurationError, "register_bad_answer"),
        (httpx.Response(404, text="Not Found"), ConfigurationError, "register_bad_answer"),
    ],
)
async def test_an_answer_without_a_receipt_is_classified(
    response: httpx.Response, error_type: type[DeliveryError], error_class: str
) -> None:
    with pytest.raises(error_type) as caught:
        await upload(lambda _request: response)
    assert caught.value.error_class == error_class
    if isinstance(caught.value, ThrottledError):
        assert caught.value.retry_after == 7


@pytest.mark.parametrize(
    ("failure", "error_class"),
    [
        (httpx.ConnectError("refused"), "register_unreachable"),
        (httpx.ReadTimeout("slow"), "register_timeout"),
        (httpx.RemoteProtocolError("dropped"), "register_unreachable"),
    ],
)
async def test_a_transport_failure_is_worth_a_retry(
    failure: httpx.TransportError, error_class: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        failure.request = request
        raise failure

    with pytest.raises(RegisterUnavailableError) as caught:
        await upload(handler)
    assert caught.value.error_class == error_class


async def test_lookup_reads_a_receipt_or_says_the_register_has_none() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == f"/filer/{NAME}/kvitto":
            return httpx.Response(200, json=RECEIPT)
        return httpx.Response(404, json={"kod": "OKAND", "orsak": "no file"})

    async with client(handler) as vgpv:
        found = await vgpv.receipt(NAME)
        missing = await vgpv.receipt("VGPV_other.txt")

    assert found is not None
    assert found.receipt_id == "VGPV-K-0000007"
    assert missing is None


async def test_lookup_while_the_register_is_down_raises_instead_of_saying_none() -> None:
    async with client(lambda _request: httpx.Response(503)) as vgpv:
        with pytest.raises(RegisterUnavailableError):
            await vgpv.receipt(NAME)


def test_tls_files_that_cannot_be_used_pause_the_worker(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="client_key is set without client_cert"):
        build_ssl_context(client_key=str(tmp_path / "key.pem"))
    with pytest.raises(ConfigurationError, match="cannot load the TLS files") as caught:
        build_ssl_context(client_cert=str(tmp_path / "missing.pem"))
    assert caught.value.error_class == "tls_config"
