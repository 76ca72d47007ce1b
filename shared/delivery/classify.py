"""The one place where failures (HTTP answers, httpx/TLS errors, bad events) become errors."""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import anyio
import httpx

from shared.contracts.errors import ContractViolationError
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
from shared.identifiers import mask_personal_ids
from shared.oauth2 import TokenRequestError

RESPONSE_LIMIT = 4000
"""Characters of the register's answer kept on the error (and so on a dead letter)."""

_SUMMARY_LIMIT = 200
_DELTA_SECONDS = re.compile(r"[0-9]+", re.ASCII)
_OPERATIONS_AFTER_CREATE = frozenset({"correct", "cancel"})

# Status → (type, error_class) where the type is not simply "4xx permanent, 5xx transient".
# Error classes are spelled out, not derived from httpx.codes names, so that they stay stable for
# dead-letter filters (413 is REQUEST_ENTITY_TOO_LARGE in httpx but CONTENT_TOO_LARGE in RFC 9110).
_BY_STATUS: dict[int, tuple[type[DeliveryError], str]] = {
    400: (RegisterRejectedError, "register_rejected"),
    401: (ConfigurationError, "register_unauthorized"),  # certificate/token: no event can pass
    403: (ConfigurationError, "register_forbidden"),  # permissions not set up for these credentials
    407: (ConfigurationError, "proxy_unauthorized"),  # our proxy wants credentials: not the event
    408: (RegisterUnavailableError, "register_timeout"),
    409: (RegisterRejectedError, "register_duplicate"),
    421: (RegisterUnavailableError, "register_misdirected"),  # a new connection usually fixes it
    422: (RegisterRejectedError, "register_rejected"),
    423: (RegisterUnavailableError, "register_locked"),  # the record is busy at the register
    425: (RegisterUnavailableError, "register_too_early"),
    503: (RegisterUnavailableError, "register_maintenance"),
}
# Other 4xx: the register refused this request as sent; sending it again cannot help (a 413 bundle
# stays too large, a 415 body keeps its type): a dead letter, to be replayed once fixed.
_REJECTED_NAMES = {
    405: "register_method_not_allowed",
    406: "register_not_acceptable",
    410: "register_gone",
    411: "register_length_required",
    412: "register_precondition_failed",
    413: "register_payload_too_large",
    414: "register_uri_too_long",
    415: "register_unsupported_media_type",
    417: "register_expectation_failed",
    431: "register_headers_too_large",
}
# SSL errors that mean "the connection broke" (or, SSLWant*, are internal to non-blocking I/O and
# linger as __context__), not "the certificates do not match".
_SSL_NETWORK_ERRORS: tuple[type[ssl.SSLError], ...] = (ssl.SSLEOFError, ssl.SSLZeroReturnError)
_SSL_NETWORK_ERRORS += (ssl.SSLSyscallError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
# httpx errors that are our side's fault for every event alike: pause and alarm, never dead-letter.
_OUR_SIDE: tuple[tuple[type[Exception], str, str], ...] = (
    (httpx.ProxyError, "proxy_error", "the proxy refused or failed the connection"),
    (httpx.UnsupportedProtocol, "unsupported_protocol", "the configured URL has no http(s) scheme"),
    (httpx.InvalidURL, "invalid_url", "the configured base URL or path is not a valid URL"),
    (httpx.TooManyRedirects, "too_many_redirects", "the configured URL redirects in a loop"),
    (httpx.DecodingError, "register_bad_encoding", "the answer's Content-Encoding is broken"),
    (httpx.LocalProtocolError, "local_protocol_error", "we built an invalid request (header?)"),
    # A bare ProtocolError comes from httpx.DigestAuth (RemoteProtocolError is a retry, below).
    (httpx.ProtocolError, "protocol_error", "the register's auth challenge is malformed"),
)


def classify_response(
    status: int,
    body: str = "",
    *,
    headers: Mapping[str, str] | None = None,
    operation: str = "create",
    now: datetime | None = None,
    register: str = "register",
) -> DeliveryError | None:
    """The error a register's answer means, or None for 2xx; `register` names it in the message.

    1xx, 3xx and codes outside 100-599 are unexpected (redirects are not followed): transient, so
    a misconfigured URL ends up pausing the worker through the circuit breaker, not in dead letters.
    """
    if 200 <= status <= 299:
        return None
    kept = body[:RESPONSE_LIMIT]
    message = _message(register, status, body, headers)
    if status == 429:
        return ThrottledError(
            message,
            retry_after=parse_retry_after(_header(headers, "retry-after"), now=now),
            error_class="throttled",
            register_status=status,
            register_response=kept,
        )
    error_type: type[DeliveryError]
    if status == 404 and operation in _OPERATIONS_AFTER_CREATE:
        # the create may still be on its way or in a retry tier; the retry horizon bounds the wait
        error_type, error_class = NotYetAppliedError, "not_yet_applied"
    elif status == 404:
        error_type, error_class = RegisterRejectedError, "register_not_found"
    else:
        error_type, error_class = _BY_STATUS.get(status) or _by_range(status)
    return error_type(
        message, error_class=error_class, register_status=status, register_response=kept
    )


def _by_range(status: int) -> tuple[type[DeliveryError], str]:
    if 400 <= status <= 499:
        return RegisterRejectedError, _REJECTED_NAMES.get(status, f"register_http_{status}")
    if 500 <= status <= 599:
        return RegisterUnavailableError, "register_unavailable"
    if 300 <= status <= 399:
        return RegisterUnavailableError, "register_redirected"
    return RegisterUnavailableError, "register_unexpected_status"


def classify_exception(
    exc: BaseException,
    *,
    operation: str = "create",
    now: datetime | None = None,
    register: str = "register",
) -> DeliveryError:
    """The DeliveryError `exc` means; anything not known here is raised again.

    There is no blanket retry: an exception this function does not know (KeyError, StreamConsumed,
    CookieConflict, a bare httpx.HTTPError/RequestError, CancelledError …) is a bug or a shutdown,
    and must surface as itself instead of quietly cycling through the retry tiers.
    """
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, ContractViolationError):
        return InvalidEventError(str(exc))
    if isinstance(exc, httpx.HTTPStatusError):
        response = exc.response
        try:
            body = response.text
        except httpx.ResponseNotRead:  # a streamed answer nobody read: classify on the status alone
            body = ""
        error = classify_response(
            response.status_code,
            body,
            headers=response.headers,
            operation=operation,
            now=now,
            register=register,
        )
        if error is None:  # an HTTPStatusError for a 2xx is made by our code, never by httpx
            raise exc
        return error
    if isinstance(exc, TokenRequestError):
        return _token_error(exc, register)
    if isinstance(exc, httpx.TimeoutException):
        return RegisterUnavailableError(
            f"{register} timed out ({_describe(exc)})", error_class="register_timeout"
        )
    tls_error = _tls_error(exc) if isinstance(exc, ssl.SSLError | httpx.NetworkError) else None
    if tls_error is not None:
        return ConfigurationError(
            f"TLS handshake with {register} failed; the client certificate, its key or the CA "
            f"bundle is likely wrong ({_describe(tls_error)})",
            error_class="tls_handshake",
        )
    if isinstance(exc, httpx.ConnectError) and _closed_during_handshake(exc):
        return ConfigurationError(
            f"{register} closed the connection during the TLS handshake: it most likely refused "
            f"the client certificate (another CA, expired, or not registered for this service)",
            error_class="tls_handshake",
        )
    for error_type, error_class, why in _OUR_SIDE:
        if isinstance(exc, error_type) and not isinstance(exc, httpx.RemoteProtocolError):
            return ConfigurationError(
                f"cannot talk to {register}: {why} ({_describe(exc)})", error_class=error_class
            )
    # Network errors, a protocol error from the register's side (usually a dropped connection),
    # a bare SSL EOF/reset, and a bare TransportError (a custom transport's) are worth a retry.
    if isinstance(exc, httpx.TransportError | ssl.SSLError):
        return RegisterUnavailableError(
            f"{register} unreachable ({_describe(exc)})", error_class="register_unreachable"
        )
    raise exc


def _token_error(exc: TokenRequestError, register: str) -> DeliveryError:
    """The OAuth2 token endpoint gave no token: busy (retry), credentials refused (pause and
    alarm: someone must renew them), or another answer (pause: is the token URL right?)."""
    text = mask_personal_ids(exc.message)
    if exc.status == 429:
        return ThrottledError(
            f"{register}: {text}", error_class="token_throttled", register_status=exc.status
        )
    if exc.transient:
        return RegisterUnavailableError(
            f"{register}: {text}", error_class="token_unavailable", register_status=exc.status
        )
    if exc.credentials_refused:
        return ConfigurationError(
            f"{register} credentials refused: {text}; renew or correct the client id/secret",
            error_class="credentials_refused",
            register_status=exc.status,
        )
    return ConfigurationError(
        f"{register}: {text}", error_class="token_bad_answer", register_status=exc.status
    )


def bad_answer(register: str, response: httpx.Response, what: str) -> ConfigurationError:
    """An answer that is not the register's (`what` it lacked or had): the URL is wrong, pause."""
    text = mask_personal_ids(response.text[:RESPONSE_LIMIT])
    summary = " ".join(text[:_SUMMARY_LIMIT].split()) or "(no body)"
    return ConfigurationError(
        f"{register} answered {response.status_code} with {what}: {summary}; "
        f"is base_url {register}?",
        error_class="register_bad_answer",
        register_status=response.status_code,
        register_response=text,
    )


def is_transient(err: DeliveryError) -> bool:
    """Retry later (next retry tier)."""
    return isinstance(err, TransientError)


def is_permanent(err: DeliveryError) -> bool:
    """Dead-letter at once."""
    return isinstance(err, PermanentError)


def pauses_worker(err: DeliveryError) -> bool:
    """Pause consumption and alarm; the event is not at fault."""
    return isinstance(err, ConfigurationError)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from Retry-After: delta-seconds, or an HTTP-date relative to `now`."""
    if value is None:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    now = now if now is not None else datetime.now(UTC)
    when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    now = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def _tls_error(exc: BaseException) -> ssl.SSLError | None:
    """The certificate/handshake SSLError in `exc`'s cause/context chain, if there is one."""
    for link in _chain(exc):
        if isinstance(link, ssl.SSLError):
            return None if isinstance(link, _SSL_NETWORK_ERRORS) else link
    return None


def _closed_during_handshake(exc: httpx.ConnectError) -> bool:
    """An HTTPS connect that ended with the peer closing (anyio's EndOfStream, an SSL EOF):
    the TCP connection stood, so the TLS handshake is what the server broke off. With TLS 1.2
    that is how a server refuses a client certificate it does not trust. Through aiohttp
    (shared/http.py) the same close arrives as a ConnectionResetError under the connect error."""
    try:
        https = exc.request.url.scheme == "https"
    except RuntimeError:  # no request attached: not from an httpx client
        return False
    closed = (anyio.EndOfStream, ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError)
    return https and any(isinstance(link, closed) for link in _chain(exc))


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending and len(seen) < 32:
        link = pending.pop(0)
        if id(link) in seen:
            continue
        seen.add(id(link))
        yield link
        pending.extend(e for e in (link.__cause__, link.__context__) if e is not None)


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    return next((v for k, v in (headers or {}).items() if k.lower() == name), None)


def _message(register: str, status: int, body: str, headers: Mapping[str, str] | None) -> str:
    """ "<register> answered 400: <the body, whitespace collapsed, cut short>", identity numbers
    masked.

    Collapsing whitespace instead of taking the first line keeps pretty-printed JSON (a FHIR
    OperationOutcome starts with a lone "{") readable.
    """
    summary = " ".join(body[: _SUMMARY_LIMIT * 5].split())
    if len(summary) > _SUMMARY_LIMIT:
        summary = summary[: _SUMMARY_LIMIT - 1] + "…"
    summary = summary or httpx.codes.get_reason_phrase(status) or "(no body)"
    location = _header(headers, "location") if 300 <= status <= 399 else None
    if location:
        summary += f" (Location: {location})"
    return mask_personal_ids(f"{register} answered {status}: {summary}")


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return mask_personal_ids(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)
