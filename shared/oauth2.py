"""OAuth2 client credentials for httpx: one cached token, refreshed early, one retry on 401.

    auth = ClientCredentialsAuth("https://register.example/oauth2/token", "regbridge", secret)
    client = httpx.AsyncClient(base_url=..., auth=auth)

- The token is cached with its expiry and fetched again `refresh_early` seconds before it
  expires (at most half its lifetime early, so short-lived tokens are not fetched every time).
- One `asyncio.Lock`: fifty concurrent requests with no token fetch one token, not fifty.
- A 401 answer fetches a new token (unless another request already did) and sends the request
  once more; a second 401 is returned as it is. A 403 is never retried: a new token would not
  change the client's permissions.
- The token request goes through the same client (an httpx auth flow yields it), so it shares the
  pool, TLS settings and transport. A refusal raises `TokenRequestError`, which
  `shared.delivery.classify.classify_exception` turns into ConfigurationError ("credentials
  refused") or a transient error (token endpoint 5xx/429); transport errors reach the caller as
  the httpx exceptions they are.
- The client secret and the tokens never appear in `repr`, in log lines or in exception text.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Generator
from datetime import date
from urllib.parse import quote

import httpx
import structlog
from pydantic import SecretStr

from shared.http import json_object

log = structlog.get_logger(__name__)

DEFAULT_LIFETIME = 300.0
"""Seconds a token is taken to live when the token endpoint does not say (no `expires_in`)."""

_DESCRIPTION_LIMIT = 200
_CREDENTIAL_ERRORS = frozenset({"invalid_client", "unauthorized_client", "invalid_grant"})


class TokenRequestError(Exception):
    """The token endpoint answered but gave no token.

    `status` is its HTTP status, `error` the OAuth2 error code (``invalid_client`` …) when it sent
    one. `credentials_refused` says whether the client id/secret were refused (wrong, unknown or
    expired): no retry can help, someone must renew them.
    """

    def __init__(self, message: str, *, status: int, error: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error = error

    @property
    def credentials_refused(self) -> bool:
        return self.error in _CREDENTIAL_ERRORS or self.status == 401

    @property
    def transient(self) -> bool:
        """The endpoint is down or busy (5xx, 408, 429): asking again later may work."""
        return self.status >= 500 or self.status in (408, 429)


class ClientCredentialsAuth(httpx.Auth):
    """OAuth2 client-credentials bearer auth for `httpx.AsyncClient` (async only)."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: SecretStr | str,
        *,
        scope: str | None = None,
        refresh_early: float = 60.0,
        credentials_in_body: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`credentials_in_body`: send client_id/client_secret as form fields instead of HTTP
        Basic. `clock` is monotonic seconds (injected so tests move time without sleeping)."""
        if not token_url or not client_id:
            raise ValueError("token_url and client_id are required")
        self.token_url = token_url
        self.client_id = client_id
        self._secret = (
            client_secret if isinstance(client_secret, SecretStr) else SecretStr(client_secret)
        )
        self.scope = scope
        self.refresh_early = refresh_early
        self.credentials_in_body = credentials_in_body
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self.tokens_fetched = 0
        """How many tokens this auth has fetched (for metrics and tests)."""

    def __repr__(self) -> str:
        return f"ClientCredentialsAuth(token_url={self.token_url!r}, client_id={self.client_id!r})"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise NotImplementedError("ClientCredentialsAuth works with httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        async with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                self._store(await _read((yield self._token_request())))
            token = self._token
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code != 401:
            return
        async with self._lock:
            if self._token in (None, token):  # nobody has replaced the refused token meanwhile
                log.info("oauth2_token_refused", token_url=self.token_url)
                self._store(await _read((yield self._token_request())))
            token = self._token
        request.headers["Authorization"] = f"Bearer {token}"
        yield request

    async def access_token(self, client: httpx.AsyncClient) -> str:
        """The cached token, fetched through `client` when missing or due (for callers that are
        not httpx requests, e.g. Kafka's SASL/OAUTHBEARER). Raises TokenRequestError."""
        async with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                self._store(await client.send(self._token_request()))
            assert self._token is not None  # _store raised otherwise
            return self._token

    def invalidate(self) -> None:
        """Forget the cached token: the next request fetches a new one."""
        self._token = None

    def _token_request(self) -> httpx.Request:
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        headers = {"Accept": "application/json"}
        secret = self._secret.get_secret_value()
        if self.credentials_in_body:
            form |= {"client_id": self.client_id, "client_secret": secret}
            return httpx.Request("POST", self.token_url, data=form, headers=headers)
        # RFC 6749 §2.3.1: id and secret are form-encoded before Basic encoding
        basic = httpx.BasicAuth(quote(self.client_id, safe=""), quote(secret, safe=""))
        request = httpx.Request("POST", self.token_url, data=form, headers=headers)
        return next(basic.auth_flow(request))

    def _store(self, response: httpx.Response) -> None:
        """Keep the token of a token-endpoint answer, or raise TokenRequestError."""
        body = json_object(response)
        if response.status_code != 200:
            error = body.get("error")
            error = error if isinstance(error, str) else None
            described = _describe_error(error, body.get("error_description"))
            secret = self._secret.get_secret_value()
            raise TokenRequestError(
                f"token endpoint {self.token_url} answered {response.status_code}"
                f"{described.replace(secret, '***') if secret else described} for client "
                f"{self.client_id!r}",
                status=response.status_code,
                error=error,
            )
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise TokenRequestError(
                f"token endpoint {self.token_url} answered 200 without an access_token; "
                "is token_url right?",
                status=200,
                error="no_access_token",
            )
        lifetime = _lifetime(body.get("expires_in"))
        self._token = token
        self._refresh_at = self._clock() + lifetime - min(self.refresh_early, lifetime / 2)
        self.tokens_fetched += 1
        log.info("oauth2_token_fetched", token_url=self.token_url, expires_in=lifetime)


def days_left(expires_on: date, *, today: date | None = None) -> int:
    """Days until a credential expires (negative once it has); `today` defaults to the local date.

    Folkhälsomyndigheten's client secrets are valid one year: alarm well before this reaches 0.
    """
    return (expires_on - (today if today is not None else date.today())).days


async def _read(response: httpx.Response) -> httpx.Response:
    await response.aread()
    return response


def _lifetime(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    if isinstance(value, str) and value.isdigit() and int(value) > 0:
        return float(value)
    return DEFAULT_LIFETIME


def _describe_error(error: str | None, description: object) -> str:
    """' (invalid_client: the key has expired)' from the OAuth2 error fields, never the body."""
    if error is None:
        return ""
    text = error[:64]
    if isinstance(description, str) and description.strip():
        text += ": " + " ".join(description.split())[:_DESCRIPTION_LIMIT]
    return f" ({text})"
