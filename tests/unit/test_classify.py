"""Every status code and every httpx exception gets exactly one fate: retry, dead letter, pause."""

from __future__ import annotations

import asyncio
import inspect
import socket
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from shared.contracts.errors import ContractViolationError
from shared.delivery.classify import (
    RESPONSE_LIMIT,
    classify_exception,
    classify_response,
    is_permanent,
    is_transient,
    parse_retry_after,
    pauses_worker,
)
from shared.delivery.errors import (
    ConfigurationError,
    DeliveryError,
    InvalidEventError,
    NotYetAppliedError,
    PermanentError,
    RegisterRejectedError,
    RegisterUnavailableError,
    ThrottledError,
    TransientError,
)

NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
REQUEST = httpx.Request("POST", "https://gvr.test/vardhandelse/besok")
UNKNOWN_CODES = [99, 103, 199, 299, 306, 399, 418, 420, 499, 509, 599, 600, 999]
EVERY_STATUS = sorted({int(code) for code in httpx.codes} | set(UNKNOWN_CODES))


def category(err: DeliveryError) -> str:
    """The fate the runtime reads from an error; exactly one predicate must say yes."""
    verdicts = [is_transient(err), is_permanent(err), pauses_worker(err)]
    assert verdicts.count(True) == 1, f"{err!r} is in {verdicts.count(True)} categories"
    return ("transient", "permanent", "pause")[verdicts.index(True)]


# --- HTTP status codes ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", EVERY_STATUS)
@pytest.mark.parametrize("operation", ["create", "correct", "cancel"])
def test_every_status_code_has_exactly_one_fate_and_keeps_the_answer(
    status: int, operation: str
) -> None:
    # Given any status code the register could send (known to httpx or not)
    # When it is classified
    error = classify_response(status, "nope", operation=operation, register="GVR", now=NOW)
    # Then a 2xx is no error, and anything else is one error of exactly one category
    if 200 <= status <= 299:
        assert error is None
        return
    assert error is not None
    category(error)
    assert error.register_status == status
    assert error.register_response == "nope"
    assert error.message.startswith(f"GVR answered {status}: ")
    assert error.error_class
    assert error.error_class == error.error_class.lower()


@pytest.mark.parametrize(
    ("status", "operation", "error_type", "error_class"),
    [
        (400, "create", RegisterRejectedError, "register_rejected"),
        (422, "create", RegisterRejectedError, "register_rejected"),
        (404, "create", RegisterRejectedError, "register_not_found"),
        (404, "correct", NotYetAppliedError, "not_yet_applied"),
        (404, "cancel", NotYetAppliedError, "not_yet_applied"),
        (409, "create", RegisterRejectedError, "register_duplicate"),
        (409, "correct", RegisterRejectedError, "register_duplicate"),
        (401, "create", ConfigurationError, "register_unauthorized"),
        (403, "cancel", ConfigurationError, "register_forbidden"),
        (407, "create", ConfigurationError, "proxy_unauthorized"),
        (408, "create", RegisterUnavailableError, "register_timeout"),
        (421, "create", RegisterUnavailableError, "register_misdirected"),
        (423, "correct", RegisterUnavailableError, "register_locked"),
        (425, "create", RegisterUnavailableError, "register_too_early"),
        (429, "create", ThrottledError, "throttled"),
        (500, "create", RegisterUnavailableError, "register_unavailable"),
        (501, "create", RegisterUnavailableError, "register_unavailable"),
        (502, "create", RegisterUnavailableError, "register_unavailable"),
        (503, "create", RegisterUnavailableError, "register_maintenance"),
        (504, "create", RegisterUnavailableError, "register_unavailable"),
        (599, "create", RegisterUnavailableError, "register_unavailable"),
        (405, "create", RegisterRejectedError, "register_method_not_allowed"),
        (406, "create", RegisterRejectedError, "register_not_acceptable"),
        (410, "correct", RegisterRejectedError, "register_gone"),
        (411, "create", RegisterRejectedError, "register_length_required"),
        (412, "correct", RegisterRejectedError, "register_precondition_failed"),
        (413, "create", RegisterRejectedError, "register_payload_too_large"),
        (414, "create", RegisterRejectedError, "register_uri_too_long"),
        (415, "create", RegisterRejectedError, "register_unsupported_media_type"),
        (417, "create", RegisterRejectedError, "register_expectation_failed"),
        (431, "create", RegisterRejectedError, "register_headers_too_large"),
        (418, "create", RegisterRejectedError, "register_http_418"),
        (499, "create", RegisterRejectedError, "register_http_499"),
        (100, "create", RegisterUnavailableError, "register_unexpected_status"),
        (101, "create", RegisterUnavailableError, "register_unexpected_status"),
        (301, "create", RegisterUnavailableError, "register_redirected"),
        (304, "create", RegisterUnavailableError, "register_redirected"),
        (308, "create", RegisterUnavailableError, "register_redirected"),
        (600, "create", RegisterUnavailableError, "register_unexpected_status"),
    ],
)
def test_the_important_status_codes(
    status: int, operation: str, error_type: type[DeliveryError], error_class: str
) -> None:
    error = classify_response(status, operation=operation, now=NOW)
    assert type(error) is error_type
    assert error.error_class == error_class


@pytest.mark.parametrize("status", [s for s in EVERY_STATUS if 500 <= s <= 599])
def test_every_5xx_is_retried(status: int) -> None:
    error = classify_response(status)
    assert error is not None
    assert category(error) == "transient"


@pytest.mark.parametrize(
    "status", [s for s in EVERY_STATUS if 400 <= s <= 499 and s not in {401, 403, 407, 404}]
)
def test_a_4xx_is_a_dead_letter_unless_it_is_about_time(status: int) -> None:
    error = classify_response(status)
    assert error is not None
    expected = "transient" if status in {408, 421, 423, 425, 429} else "permanent"
    assert category(error) == expected


def test_the_register_text_is_kept_but_cut_at_the_limit() -> None:
    body = "x" * (RESPONSE_LIMIT + 500)
    error = classify_response(400, body, register="GVR")
    assert error is not None
    assert error.register_response == "x" * RESPONSE_LIMIT
    assert len(error.message) < 300


def test_the_message_is_the_register_name_and_the_start_of_its_answer() -> None:
    error = classify_response(409, "duplicate create\nkey: 11010 046 M30", register="GVR")
    assert error is not None
    assert error.message == "GVR answered 409: duplicate create key: 11010 046 M30"


def test_a_pretty_printed_operation_outcome_is_readable_in_the_message() -> None:
    body = '{\n  "resourceType": "OperationOutcome",\n  "issue": [\n    {"severity": "error"}]}'
    error = classify_response(400, body, register="NVR")
    assert error is not None
    assert error.message.startswith('NVR answered 400: { "resourceType": "OperationOutcome",')
    assert error.register_response == body


def test_an_empty_answer_is_described_by_its_reason_phrase() -> None:
    error = classify_response(502, register="GVR")
    assert error is not None
    assert error.message == "GVR answered 502: Bad Gateway"
    unknown = classify_response(499, register="GVR")
    assert unknown is not None
    assert unknown.message == "GVR answered 499: (no body)"


def test_a_redirect_names_where_it_points() -> None:
    error = classify_response(301, headers={"Location": "https://new.gvr.test/"}, register="GVR")
    assert error is not None
    assert error.message == "GVR answered 301: Moved Permanently (Location: https://new.gvr.test/)"


def test_an_identity_number_in_the_answer_is_masked_in_the_message_only() -> None:
    body = "patientId 191212121212 saknas"
    error = classify_response(400, body, register="GVR")
    assert error is not None
    assert "191212121212" not in error.message
    assert "19121212****" in error.message
    assert error.register_response == body  # the register's own words, for the dead letter


# --- Retry-After ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Mon, 02 Mar 2026 12:01:30 GMT", 90.0),
        ("Mon, 02 Mar 2026 11:59:00 GMT", 0.0),  # already past: retry now
        ("Monday, 02-Mar-26 12:00:10 GMT", 10.0),  # RFC 850 form, still allowed by RFC 9110
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_both_forms(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


def test_retry_after_is_read_from_a_429_whatever_the_header_case() -> None:
    error = classify_response(429, headers={"retry-after": "30"})
    assert isinstance(error, ThrottledError)
    assert error.retry_after == 30.0
    in_a_minute = (NOW + timedelta(minutes=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    dated = classify_response(429, headers=httpx.Headers({"Retry-After": in_a_minute}), now=NOW)
    assert isinstance(dated, ThrottledError)
    assert dated.retry_after == 60.0
    silent = classify_response(429)
    assert isinstance(silent, ThrottledError)
    assert silent.retry_after is None


def test_a_naive_now_is_taken_as_utc() -> None:
    naive = NOW.replace(tzinfo=None)
    assert parse_retry_after("Mon, 02 Mar 2026 12:00:05 GMT", now=naive) == 5.0


def test_without_now_the_clock_is_read() -> None:
    in_an_hour = (datetime.now(UTC) + timedelta(hours=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    seconds = parse_retry_after(in_an_hour)
    assert seconds is not None
    assert 3500 < seconds <= 3600


# --- every httpx exception -----------------------------------------------------------------------

HTTPX_EXCEPTIONS = {
    name: getattr(httpx, name)
    for name in httpx.__all__
    if inspect.isclass(getattr(httpx, name)) and issubclass(getattr(httpx, name), BaseException)
}
RAISED_AGAIN = "raised again"
EXPECTED: dict[str, tuple[type[DeliveryError], str] | str] = {
    "HTTPError": RAISED_AGAIN,  # a bare base class says nothing about what happened
    "RequestError": RAISED_AGAIN,
    "TransportError": (RegisterUnavailableError, "register_unreachable"),
    "TimeoutException": (RegisterUnavailableError, "register_timeout"),
    "ConnectTimeout": (RegisterUnavailableError, "register_timeout"),
    "ReadTimeout": (RegisterUnavailableError, "register_timeout"),
    "WriteTimeout": (RegisterUnavailableError, "register_timeout"),
    "PoolTimeout": (RegisterUnavailableError, "register_timeout"),
    "NetworkError": (RegisterUnavailableError, "register_unreachable"),
    "ConnectError": (RegisterUnavailableError, "register_unreachable"),
    "ReadError": (RegisterUnavailableError, "register_unreachable"),
    "WriteError": (RegisterUnavailableError, "register_unreachable"),
    "CloseError": (RegisterUnavailableError, "register_unreachable"),
    "RemoteProtocolError": (RegisterUnavailableError, "register_unreachable"),
    "ProtocolError": (ConfigurationError, "protocol_error"),
    "LocalProtocolError": (ConfigurationError, "local_protocol_error"),
    "ProxyError": (ConfigurationError, "proxy_error"),
    "UnsupportedProtocol": (ConfigurationError, "unsupported_protocol"),
    "InvalidURL": (ConfigurationError, "invalid_url"),
    "TooManyRedirects": (ConfigurationError, "too_many_redirects"),
    "DecodingError": (ConfigurationError, "register_bad_encoding"),
    "HTTPStatusError": (RegisterUnavailableError, "register_maintenance"),  # made with a 503
    "CookieConflict": RAISED_AGAIN,  # programming errors: they must surface
    "StreamError": RAISED_AGAIN,
    "StreamConsumed": RAISED_AGAIN,
    "StreamClosed": RAISED_AGAIN,
    "ResponseNotRead": RAISED_AGAIN,
    "RequestNotRead": RAISED_AGAIN,
}


def make(exc_type: type[BaseException]) -> BaseException:
    """An instance as httpx itself would make it (some need a request and a response)."""
    parameters = inspect.signature(exc_type).parameters
    if "response" in parameters:
        response = httpx.Response(503, text="underhåll", request=REQUEST)
        return exc_type("Server error '503'", request=REQUEST, response=response)  # type: ignore[call-arg]
    if "request" in parameters:
        return exc_type("boom", request=REQUEST)  # type: ignore[call-arg]
    if "message" in parameters:
        return exc_type("boom")
    return exc_type()


def test_every_httpx_exception_has_a_decision() -> None:
    # A new httpx exception class must get a deliberate place in the table, not a default.
    assert set(HTTPX_EXCEPTIONS) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(HTTPX_EXCEPTIONS))
def test_each_httpx_exception(name: str) -> None:
    exc = make(HTTPX_EXCEPTIONS[name])
    expected = EXPECTED[name]
    if isinstance(expected, str):  # RAISED_AGAIN
        with pytest.raises(HTTPX_EXCEPTIONS[name]) as raised:
            classify_exception(exc)
        assert raised.value is exc
        return
    error_type, error_class = expected
    error = classify_exception(exc, register="GVR")
    assert type(error) is error_type
    assert error.error_class == error_class
    category(error)
    assert "GVR" in error.message


def test_an_http_status_error_is_classified_by_its_response() -> None:
    response = httpx.Response(404, text="okänd post", request=REQUEST)
    exc = httpx.HTTPStatusError("404", request=REQUEST, response=response)
    correction = classify_exception(exc, operation="correct", register="GVR")
    assert isinstance(correction, NotYetAppliedError)
    assert correction.register_status == 404
    assert correction.register_response == "okänd post"
    assert correction.message == "GVR answered 404: okänd post"
    assert isinstance(classify_exception(exc, operation="create"), RegisterRejectedError)


def test_a_429_status_error_carries_retry_after() -> None:
    response = httpx.Response(429, headers={"Retry-After": "7"}, request=REQUEST)
    error = classify_exception(httpx.HTTPStatusError("429", request=REQUEST, response=response))
    assert isinstance(error, ThrottledError)
    assert error.retry_after == 7.0


def test_a_status_error_on_an_unread_stream_is_classified_by_status_alone() -> None:
    response = httpx.Response(500, stream=httpx.ByteStream(b"never read"), request=REQUEST)
    error = classify_exception(httpx.HTTPStatusError("500", request=REQUEST, response=response))
    assert isinstance(error, RegisterUnavailableError)
    assert error.register_response == ""


def test_a_status_error_for_a_success_is_a_bug_and_raised_again() -> None:
    response = httpx.Response(201, request=REQUEST)
    exc = httpx.HTTPStatusError("made up", request=REQUEST, response=response)
    with pytest.raises(httpx.HTTPStatusError):
        classify_exception(exc)


# --- httpx raising for real (MockTransport only for shapes a real server cannot easily make) ----


def test_a_real_refused_connection_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(httpx.ConnectError) as raised, httpx.Client() as client:
        client.get(f"http://127.0.0.1:{port}/")
    error = classify_exception(raised.value)
    assert error.error_class == "register_unreachable"
    assert is_transient(error)


def test_a_real_read_timeout_is_a_timeout() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        with pytest.raises(httpx.ReadTimeout) as raised, httpx.Client(timeout=0.2) as client:
            client.get(f"http://127.0.0.1:{port}/")
    error = classify_exception(raised.value)
    assert error.error_class == "register_timeout"
    assert is_transient(error)


def test_a_real_redirect_loop_and_a_broken_encoding_pause_the_worker() -> None:
    def register(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/loop":
            return httpx.Response(302, headers={"Location": "/loop"})
        gzip = {"Content-Encoding": "gzip"}
        return httpx.Response(200, headers=gzip, stream=httpx.ByteStream(b"not gzip"))

    with httpx.Client(transport=httpx.MockTransport(register), follow_redirects=True) as client:
        with pytest.raises(httpx.TooManyRedirects) as loop:
            client.get("https://gvr.test/loop")
        with pytest.raises(httpx.DecodingError) as decoding:
            client.get("https://gvr.test/")
    with httpx.Client() as client, pytest.raises(httpx.UnsupportedProtocol) as scheme:
        client.get("ftp://gvr.test/besok")
    assert classify_exception(loop.value).error_class == "too_many_redirects"
    assert classify_exception(decoding.value).error_class == "register_bad_encoding"
    assert classify_exception(scheme.value).error_class == "unsupported_protocol"
    assert all(pauses_worker(classify_exception(e.value)) for e in (loop, decoding, scheme))


def test_a_real_invalid_url_pauses_the_worker() -> None:
    with pytest.raises(httpx.InvalidURL) as raised:
        httpx.Request("GET", "https://gvr.test/vardhandelse/besok\n")
    assert classify_exception(raised.value).error_class == "invalid_url"


def test_raise_for_status_is_classified_by_its_response() -> None:
    response = httpx.Response(422, text="ogiltig kombika", request=REQUEST)
    with pytest.raises(httpx.HTTPStatusError) as raised:
        response.raise_for_status()
    error = classify_exception(raised.value, register="GVR")
    assert isinstance(error, RegisterRejectedError)
    assert error.message == "GVR answered 422: ogiltig kombika"


# --- TLS -----------------------------------------------------------------------------------------

# A throwaway self-signed P-256 certificate for 127.0.0.1/localhost, valid 2000-2100, made with
# `openssl` once: neither `trustme` nor `cryptography` is in the lock. It protects nothing.
TEST_SERVER_KEY = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgptNuHpEuw9gnxOAt
0r0hy6lcel82NYVMzVkuOtesmDyhRANCAAQFN1aDUfeq/Bk7K7xwqdem9Kr6o0MG
TDw64I06yzV+y9yj17WP6uUWCiV+lRgzDG37x/4ztzTAGn2hGm5zF2cT
-----END PRIVATE KEY-----
"""
TEST_SERVER_CERT = """-----BEGIN CERTIFICATE-----
MIIBjzCCATWgAwIBAgIBATAKBggqhkjOPQQDAjAgMR4wHAYDVQQDDBVyZWdicmlk
Z2UgdGVzdCBzZXJ2ZXIwIBcNMDAwMTAxMDAwMDAwWhgPMjEwMDAxMDEwMDAwMDBa
MCAxHjAcBgNVBAMMFXJlZ2JyaWRnZSB0ZXN0IHNlcnZlcjBZMBMGByqGSM49AgEG
CCqGSM49AwEHA0IABAU3VoNR96r8GTsrvHCp16b0qvqjQwZMPDrgjTrLNX7L3KPX
tY/q5RYKJX6VGDMMbfvH/jO3NMAafaEabnMXZxOjXjBcMBoGA1UdEQQTMBGHBH8A
AAGCCWxvY2FsaG9zdDAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIChDAd
BgNVHQ4EFgQUYW81LtfXC2JKFpc6mIqostQnA4owCgYIKoZIzj0EAwIDSAAwRQIg
AgGPCmWPYa10tyrMaezOF7UXu4auXtt0g4Rxm9m4pRgCIQCx0p42oR0ozn2vlKH1
jiHM1k+BFyRTtcBZWYUqaMOH5w==
-----END CERTIFICATE-----
"""


@pytest.fixture
def server_cert(tmp_path: Path) -> Path:
    (tmp_path / "key.pem").write_text(TEST_SERVER_KEY)
    (tmp_path / "cert.pem").write_text(TEST_SERVER_CERT)
    return tmp_path / "cert.pem"


@pytest.fixture
async def tls_server(server_cert: Path) -> AsyncIterator[str]:
    """A tiny HTTPS server on 127.0.0.1 that answers 200 to anyone who completes the handshake."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server_cert, server_cert.with_name("key.pem"))

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"https://127.0.0.1:{port}/"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_real_tls_handshake_failure_pauses_the_worker(
    tls_server: str, server_cert: Path
) -> None:
    # Given a register whose certificate the client does not trust (e.g. test CA against production)
    async with httpx.AsyncClient(timeout=5) as client:
        with pytest.raises(httpx.ConnectError) as raised:
            await client.get(tls_server)
    # When the failure is classified
    error = classify_exception(raised.value, register="GVR")
    # Then it is a configuration problem that pauses the worker, and says what to look at
    assert isinstance(error, ConfigurationError)
    assert error.error_class == "tls_handshake"
    assert pauses_worker(error)
    assert "client certificate" in error.message
    assert "CA" in error.message
    assert "CERTIFICATE_VERIFY_FAILED" in error.message or "verify failed" in error.message
    # And the same server is fine for a client that trusts it: the trust was the only problem
    trusting = ssl.create_default_context(cafile=str(server_cert))
    async with httpx.AsyncClient(verify=trusting, timeout=5) as client:
        assert (await client.get(tls_server)).status_code == 200


def chained(outer: BaseException, inner: BaseException, *, as_cause: bool = True) -> BaseException:
    if as_cause:
        outer.__cause__ = inner
    else:
        outer.__context__ = inner
    return outer


@pytest.mark.parametrize(
    ("exc", "error_class"),
    [
        (ssl.SSLCertVerificationError(1, "certificate verify failed"), "tls_handshake"),
        (
            ssl.SSLError(1, "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] alert bad certificate"),
            "tls_handshake",
        ),
        (
            chained(httpx.ConnectError("x"), ssl.SSLCertVerificationError(1, "verify failed")),
            "tls_handshake",
        ),
        (  # TLS 1.3: the server's rejection of our client certificate arrives on the first read
            chained(httpx.ReadError(""), ssl.SSLError(1, "tlsv13 alert certificate required")),
            "tls_handshake",
        ),
        (
            chained(httpx.ConnectError("x"), ssl.SSLError(1, "handshake"), as_cause=False),
            "tls_handshake",
        ),
        (
            chained(httpx.ConnectError("x"), chained(OSError("wrapped"), ssl.SSLError(1, "hs"))),
            "tls_handshake",
        ),
        (chained(httpx.ReadError(""), ssl.SSLEOFError(8, "EOF")), "register_unreachable"),
        (chained(httpx.ReadError(""), ssl.SSLZeroReturnError(6, "closed")), "register_unreachable"),
        (
            chained(httpx.ConnectError(""), ssl.SSLWantReadError(2, "want read")),
            "register_unreachable",
        ),
        (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), "register_unreachable"),
        (chained(httpx.ConnectError(""), ConnectionRefusedError(111)), "register_unreachable"),
        (chained(httpx.ConnectTimeout(""), ssl.SSLError(1, "hs")), "register_timeout"),
        (chained(httpx.RemoteProtocolError(""), ssl.SSLError(1, "x")), "register_unreachable"),
    ],
)
def test_tls_failures_are_found_in_the_cause_chain(exc: BaseException, error_class: str) -> None:
    assert classify_exception(exc).error_class == error_class


def test_a_cyclic_cause_chain_does_not_hang() -> None:
    outer = httpx.ConnectError("outer")
    inner = OSError("inner")
    outer.__cause__ = inner
    inner.__context__ = outer
    assert classify_exception(outer).error_class == "register_unreachable"


# --- contract violations, own errors, unknown exceptions -----------------------------------------


def test_a_contract_violation_is_an_invalid_event() -> None:
    exc = ContractViolationError.single("payload.patient.id", "check digit fails")
    error = classify_exception(exc)
    assert type(error) is InvalidEventError
    assert error.error_class == "invalid_event"
    assert error.message == str(exc) == "payload.patient.id: check digit fails"
    assert is_permanent(error)


@pytest.mark.parametrize(
    "error",
    [
        RegisterRejectedError("already", register_status=400),
        ThrottledError("slow down", retry_after=3),
        NotYetAppliedError("later"),
        ConfigurationError("bad cert", error_class="tls_handshake"),
        InvalidEventError("bad"),
    ],
)
def test_a_delivery_error_is_itself(error: DeliveryError) -> None:
    assert classify_exception(error) is error


@pytest.mark.parametrize(
    "exc",
    [
        KeyError("bug"),
        ValueError("bug"),
        TypeError("bug"),
        RuntimeError("bug"),
        OSError("not from httpx"),
        TimeoutError("not from httpx"),
        asyncio.CancelledError(),
        KeyboardInterrupt(),
    ],
)
def test_an_unknown_exception_is_raised_again_never_retried(exc: BaseException) -> None:
    with pytest.raises(type(exc)) as raised:
        classify_exception(exc)
    assert raised.value is exc


@pytest.mark.parametrize(
    ("error", "fate"),
    [
        (RegisterUnavailableError("x"), "transient"),
        (ThrottledError("x"), "transient"),
        (NotYetAppliedError("x"), "transient"),
        (TransientError("x"), "transient"),
        (InvalidEventError("x"), "permanent"),
        (RegisterRejectedError("x"), "permanent"),
        (PermanentError("x"), "permanent"),
        (ConfigurationError("x"), "pause"),
    ],
)
def test_the_predicates(error: DeliveryError, fate: str) -> None:
    assert category(error) == fate


def test_a_bare_delivery_error_has_no_fate() -> None:
    bare = DeliveryError("x")
    assert not is_transient(bare)
    assert not is_permanent(bare)
    assert not pauses_worker(bare)


def test_an_https_connect_the_server_closes_mid_handshake_is_a_configuration_error() -> None:
    # Given the server broke off the TLS handshake (how TLS 1.2 refuses a client certificate)
    import anyio

    def closed(url: str) -> httpx.ConnectError:
        error = httpx.ConnectError("", request=httpx.Request("POST", url))
        error.__cause__ = anyio.EndOfStream()
        return error

    # Then over HTTPS it pauses the worker, while a plain connection problem is retried
    assert classify_exception(closed("https://gvr.example/vardhandelse/besok")).error_class == (
        "tls_handshake"
    )
    assert classify_exception(closed("http://gvr.example/x")).error_class == "register_unreachable"
