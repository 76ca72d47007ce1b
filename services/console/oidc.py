"""OpenID Connect login through Authlib: the production path, on when issuer and client are set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from authlib.integrations.starlette_client import OAuth, OAuthError
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
    """/login/oidc → the provider → /login/oidc/callback; the state kept in the signed session."""
    oauth = OAuth()
    issuer = str(settings.oidc_issuer).rstrip("/")
    oauth.register(
        "oidc",
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_secret(),
        client_kwargs={"scope": settings.oidc_scope},
    )
    client: Any = oauth.create_client("oidc")

    async def start(request: Request) -> Response:
        redirect_uri = request.url_for("oidc_callback")
        response: Response = await client.authorize_redirect(request, str(redirect_uri))
        return response

    async def callback(request: Request) -> Response:
        try:
            token = await client.authorize_access_token(request)
        except OAuthError as exc:
            log.info("console_login_refused", via="oidc", error=exc.error)
            raise HTTPException(403, f"sign-in failed: {exc.error}") from None
        claims: Mapping[str, Any] = token.get("userinfo") or {}
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
