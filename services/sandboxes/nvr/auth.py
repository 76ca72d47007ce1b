"""OAuth2 client credentials for the NVR sandbox: clients, the token endpoint, bearer checks."""

from __future__ import annotations

import base64
import binascii
import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote

DEFAULT_CLIENT_ID = "regbridge"
DEFAULT_CLIENT_SECRET = "regbridge-secret"  # noqa: S105 - the sandbox's well-known test secret


@dataclass(frozen=True)
class OAuthClient:
    """A client the register knows; `allowed_caregivers` None: it may report for any provider.

    `key_expires_on` is the last day its access key works (Folkhälsomyndigheten's keys live a
    year); `allowed_caregivers` holds organisation numbers.
    """

    client_id: str
    client_secret: str
    key_expires_on: date | None = None
    allowed_caregivers: frozenset[str] | None = None


@dataclass(frozen=True)
class TokenAnswer:
    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class _Issued:
    client: OAuthClient
    expires_at: datetime


class TokenIssuer:
    """Issues bearer tokens to known clients and checks them; thread-safe."""

    def __init__(
        self,
        clients: Iterable[OAuthClient],
        *,
        lifetime_s: float,
        clock: Callable[[], datetime],
        today: Callable[[], date],
    ) -> None:
        self.clients = {client.client_id: client for client in clients}
        self.lifetime_s = lifetime_s
        self._clock = clock
        self._today = today
        self._lock = threading.Lock()
        self._tokens: dict[str, _Issued] = {}

    def token(self, form_body: bytes, authorization: str | None) -> TokenAnswer:
        """The answer of ``POST /oauth2/token`` to this form body and Authorization header."""
        form = {k: v[0] for k, v in parse_qs(form_body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "client_credentials":
            return TokenAnswer(400, {"error": "unsupported_grant_type"})
        client_id, secret = _basic(authorization) or (
            form.get("client_id"),
            form.get("client_secret"),
        )
        client = self.clients.get(client_id or "")
        if (
            client is None
            or secret is None
            or not secrets.compare_digest(client.client_secret.encode(), secret.encode())
            or (client.key_expires_on is not None and self._today() > client.key_expires_on)
        ):
            return TokenAnswer(401, {"error": "invalid_client"})
        token = secrets.token_urlsafe(32)
        expires_at = self._clock() + timedelta(seconds=self.lifetime_s)
        with self._lock:
            self._tokens[token] = _Issued(client, expires_at)
        body = {"access_token": token, "token_type": "Bearer", "expires_in": int(self.lifetime_s)}
        return TokenAnswer(200, body)

    def client_of(self, authorization: str | None) -> OAuthClient | None:
        """The client of a live bearer token, or None (missing, unknown, expired, revoked)."""
        if authorization is None:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        with self._lock:
            issued = self._tokens.get(token.strip())
            if issued is None:
                return None
            if self._clock() >= issued.expires_at:
                del self._tokens[token.strip()]
                return None
            return issued.client

    def revoke(self) -> int:
        """Revoke every token issued so far; how many were live."""
        with self._lock:
            now = self._clock()
            live = sum(1 for issued in self._tokens.values() if now < issued.expires_at)
            self._tokens.clear()
            return live


def _basic(authorization: str | None) -> tuple[str, str] | None:
    """Client id and secret from HTTP Basic (each form-URL-encoded, as RFC 6749 2.3.1 says)."""
    if authorization is None:
        return None
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        return None
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))
