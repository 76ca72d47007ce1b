"""A small, strict OpenID Connect provider for tests: the authorization code flow, over real HTTP.

    with oidc_provider(user) as provider:           # uvicorn on 127.0.0.1:<free port>, own thread
        provider.redirect_uris.append(console_url + "/login/oidc/callback")
        ...                                          # the console's issuer is provider.issuer

What it does, as a provider must (OpenID Connect Core 1.0, RFC 6749, RFC 7636):
- ``/.well-known/openid-configuration`` (discovery) and ``/jwks`` (an RSA key made per run);
- ``/authorize`` approves the configured user without a login page, after checking the client
  id and the registered redirect URI exactly (a wrong one answers 400, never a redirect), then
  ``response_type=code``, an ``openid`` scope, a ``state``, a ``nonce`` and a PKCE S256 challenge
  (required: OAuth 2.1's rule);
- ``/token`` checks the client's secret (HTTP Basic or in the form), that the code is its own,
  unexpired and used once, the redirect URI and the PKCE verifier; it answers an access token and
  an RS256 ID token (``iss``, ``sub``, ``aud``, ``exp``, ``iat``, ``auth_time``, ``nonce``,
  ``at_hash``, ``name``, ``preferred_username``, ``email`` and the user's ``roles``).

To test a relying party's refusals it can misbehave on request: ``id_token_claims`` replace
claims of the next ID tokens (a wrong nonce, issuer, audience, an expired token),
``sign_with_foreign_key`` signs them with a key not in its JWKS, and ``discovery_issuer``
announces another issuer in its discovery document. ``seen`` keeps what the relying party sent.
It signs with joserfc, the JOSE library Authlib's own clients verify with (``authlib.jose`` is
deprecated in Authlib 1.7+). No login page, no consent, no userinfo, no refresh tokens, no
logout endpoint: it proves the relying party's side of the flow, not any real provider's.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core.util import create_half_hash
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.support.console import serving

CODE_TTL_S = 60
TOKEN_TTL_S = 300


@dataclass
class OidcUser:
    sub: str
    preferred_username: str
    name: str
    roles: list[str]
    email: str = ""


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    nonce: str
    code_challenge: str
    scope: str
    user: OidcUser
    expires: float


def _new_key() -> RSAKey:
    kid = uuid.uuid4().hex
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


@dataclass
class OidcProvider:
    user: OidcUser  # approved at /authorize
    client_id: str = "regbridge-console"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    redirect_uris: list[str] = field(default_factory=list)
    issuer: str = ""  # its URL, set when served
    # misbehaviour, for a relying party's refusals
    id_token_claims: dict[str, Any] = field(default_factory=dict)
    sign_with_foreign_key: bool = False
    discovery_issuer: str | None = None
    # what came in: each /authorize's query, each /token's form and how the client authenticated
    seen: list[dict[str, str]] = field(default_factory=list)
    key: RSAKey = field(default_factory=_new_key)
    _grants: dict[str, _Grant] = field(default_factory=dict)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self._discovery),
                Route("/jwks", self._jwks),
                Route("/authorize", self._authorize),
                Route("/token", self._token, methods=["POST"]),
            ]
        )

    async def _discovery(self, _request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.discovery_issuer or self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "grant_types_supported": ["authorization_code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": ["openid", "profile", "email"],
                "claims_supported": ["sub", "name", "preferred_username", "email", "roles"],
            }
        )

    async def _jwks(self, _request: Request) -> Response:
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})

    async def _authorize(self, request: Request) -> Response:
        query = dict(request.query_params)
        self.seen.append({"endpoint": "authorize", **query})
        client_id, redirect_uri = query.get("client_id"), query.get("redirect_uri", "")
        if client_id != self.client_id:
            return PlainTextResponse("unknown client_id", status_code=400)
        if redirect_uri not in self.redirect_uris:
            return PlainTextResponse("redirect_uri not registered", status_code=400)
        state = query.get("state", "")

        def error(code: str, description: str) -> Response:
            params = {"error": code, "error_description": description}
            if state:
                params["state"] = state
            return RedirectResponse(f"{redirect_uri}?{urlencode(params)}", status_code=302)

        if query.get("response_type") != "code":
            return error("unsupported_response_type", "only the code flow")
        if "openid" not in query.get("scope", "").split():
            return error("invalid_scope", "openid is required")
        if not state:
            return error("invalid_request", "state is required")
        if not query.get("nonce"):
            return error("invalid_request", "nonce is required")
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return error("invalid_request", "PKCE with S256 is required")
        code = secrets.token_urlsafe(32)
        self._grants[code] = _Grant(
            client_id,
            redirect_uri,
            query["nonce"],
            query["code_challenge"],
            query["scope"],
            self.user,
            time.monotonic() + CODE_TTL_S,
        )
        return RedirectResponse(
            f"{redirect_uri}?{urlencode({'code': code, 'state': state})}", status_code=302
        )

    def _client_of(self, request: Request, form: dict[str, str]) -> tuple[str, str, str] | None:
        """(client id, secret, method) from HTTP Basic or the form; None: neither."""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:]).decode()
            except ValueError:
                return None
            client_id, _, secret = decoded.partition(":")
            return client_id, secret, "client_secret_basic"
        if "client_id" in form and "client_secret" in form:
            return form["client_id"], form["client_secret"], "client_secret_post"
        return None

    async def _token(self, request: Request) -> Response:
        async with request.form() as raw:
            form = {k: str(v) for k, v in raw.items()}
        client = self._client_of(request, form)
        self.seen.append({"endpoint": "token", "auth": client[2] if client else "none", **form})
        if client is None or client[0] != self.client_id:
            return _token_error("invalid_client", "client authentication failed", 401)
        if not hmac.compare_digest(client[1].encode(), self.client_secret.encode()):
            return _token_error("invalid_client", "client authentication failed", 401)
        if form.get("grant_type") != "authorization_code":
            return _token_error("unsupported_grant_type", "only authorization_code")
        grant = self._grants.pop(form.get("code", ""), None)  # used once, whatever follows
        if grant is None or grant.client_id != client[0] or time.monotonic() > grant.expires:
            return _token_error("invalid_grant", "unknown, used or expired code")
        if form.get("redirect_uri") != grant.redirect_uri:
            return _token_error("invalid_grant", "redirect_uri differs from the authorization's")
        verifier = form.get("code_verifier", "")
        expected = grant.code_challenge.encode()
        if not verifier or not hmac.compare_digest(
            create_s256_code_challenge(verifier).encode(), expected
        ):
            return _token_error("invalid_grant", "PKCE verification failed")
        access_token = secrets.token_urlsafe(32)
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": grant.user.sub,
            "aud": grant.client_id,
            "exp": now + TOKEN_TTL_S,
            "iat": now,
            "auth_time": now,
            "nonce": grant.nonce,
            "at_hash": create_half_hash(access_token, "RS256").decode(),
            "name": grant.user.name,
            "preferred_username": grant.user.preferred_username,
            "roles": list(grant.user.roles),
        }
        if grant.user.email:
            claims["email"] = grant.user.email
        claims.update(self.id_token_claims)
        key = _new_key() if self.sign_with_foreign_key else self.key
        header = {"alg": "RS256", "kid": self.key.kid, "typ": "JWT"}
        id_token = jwt.encode(header, claims, key)
        body = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL_S,
            "scope": grant.scope,
            "id_token": id_token,
        }
        return JSONResponse(body, headers={"cache-control": "no-store", "pragma": "no-cache"})


def _token_error(code: str, description: str, status: int = 400) -> Response:
    headers = {"cache-control": "no-store"}
    if status == 401:
        headers["www-authenticate"] = 'Basic realm="token"'
    body = {"error": code, "error_description": description}
    return JSONResponse(body, status_code=status, headers=headers)


@contextlib.contextmanager
def oidc_provider(user: OidcUser) -> Iterator[OidcProvider]:
    """The provider under uvicorn on a free loopback port; its issuer is its base URL."""
    provider = OidcProvider(user)
    with serving(provider.app()) as url:
        provider.issuer = url
        yield provider
