"""OpenID Connect login through Authlib: the production path, on when issuer and client are set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.starlette_client import OAuth
from joserfc.errors import JoseError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from services.console.accounts import Role
from services.console.security import sign_in
from services.console.settings import ConsoleSettings

log = structlog.get_logger("regbridge.console")


def role_of(claims: Mapping[str, Any], settings: ConsoleSettings) -> Role | None:
    """The role the identity provider's claims give: operator over viewer; None: neither."""
    held = claims.get(settings.oidc_roles_claim) or []
    roles = {held} if isinstance(held, str) else {str(r) for r in held}
    if settings.oidc_operator_role in roles:
        return Role.OPERATOR
    if settings.oidc_viewer_role in roles:
        return Role.VIEWER
    return None


def routes(settings: ConsoleSettings) -> list[BaseRoute]:
    """/login/oidc → the provider → /login/oidc/callback; the state, nonce and PKCE verifier kept
    in the signed session. The ID token must be signed by a key of the provider's JWKS, name this
    client in ``aud``, carry the session's nonce, be unexpired (120 s leeway, Authlib's) and be
    issued by the configured issuer itself (not only the one the discovery document names)."""
    oauth = OAuth()
    issuer = str(settings.oidc_issuer)
    oauth.register(
        "oidc",
        server_metadata_url=f"{issuer.rstrip('/')}/.well-known/openid-configuration",
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_secret(),
        # PKCE (S256) as well as the client secret: OAuth 2.1 and RFC 9700 ask it of every client
        client_kwargs={"scope": settings.oidc_scope, "code_challenge_method": "S256"},
    )
    client: Any = oauth.create_client("oidc")
    issuers = sorted({issuer, issuer.rstrip("/")})  # as configured, with or without its last '/'
    claims_options = {"iss": {"essential": True, "values": issuers}}

    async def start(request: Request) -> Response:
        # behind a TLS ingress the request's own URL may be http://…: the configured one wins
        redirect_uri = settings.oidc_redirect_uri or str(request.url_for("oidc_callback"))
        response: Response = await client.authorize_redirect(request, redirect_uri)
        return response

    async def callback(request: Request) -> Response:
        try:
            token = await client.authorize_access_token(request, claims_options=claims_options)
        except (AuthlibBaseError, JoseError) as exc:
            # OAuthError (state, the provider's or token endpoint's error), Authlib's claim
            # errors (nonce, iss, aud, exp) and joserfc's (signature, key): a refusal, not a 500
            why = f"{exc.error}: {exc.description}" if exc.description else str(exc.error)
            log.info("console_login_refused", via="oidc", error=why)
            raise HTTPException(403, f"sign-in failed: {why}") from None
        if token.get("userinfo") is None:
            log.info("console_login_refused", via="oidc", error="no ID token")
            raise HTTPException(403, "sign-in failed: the provider sent no ID token")
        claims: Mapping[str, Any] = token["userinfo"]
        role = role_of(claims, settings)
        name = str(claims.get(settings.oidc_name_claim) or claims.get("sub") or "")
        if role is None or not name:
            log.info("console_login_refused", via="oidc", reason="no regbridge role")
            raise HTTPException(403, "your account has no regbridge role (viewer or operator)")
        sign_in(request, name, role, "oidc")
        log.info("console_login", actor=name, role=role.value, via="oidc")
        return RedirectResponse("/", status_code=303)

    return [
        Route("/login/oidc", start, methods=["GET"]),
        Route("/login/oidc/callback", callback, methods=["GET"], name="oidc_callback"),
    ]
