"""Who is signed in, what their role allows, and the CSRF token of every state-changing form."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.console.accounts import Role

CSRF_FIELD = "csrf_token"
_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; form-action 'self'; frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),  # pages hold personal data: no copies in caches
]


class LoginRequiredError(Exception):
    """A page asked for without a session: the answer is the login page."""


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    via: str  # local, oidc

    @property
    def operator(self) -> bool:
        return self.role is Role.OPERATOR


def sign_in(request: Request, name: str, role: Role, via: str) -> None:
    """A fresh session for the user: a new CSRF token, nothing carried over from before."""
    request.session.clear()
    request.session.update({"user": name, "role": role.value, "via": via})
    csrf_token(request)


def current_user(request: Request) -> User | None:
    session = request.session
    try:
        return User(session["user"], Role(session["role"]), session.get("via", "local"))
    except (KeyError, ValueError):
        return None


def require_user(request: Request) -> User:
    user = current_user(request)
    if user is None:
        raise LoginRequiredError
    return user


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use): put in every form, checked on every POST."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def checked_form(request: Request) -> FormData:
    """The POSTed form, or 403 when its CSRF token is missing or not the session's."""
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    expected = request.session.get("csrf")
    if not isinstance(sent, str) or not isinstance(expected, str):
        raise HTTPException(403, "missing CSRF token: reload the page and try again")
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        raise HTTPException(403, "wrong CSRF token: reload the page and try again")
    return form


async def operator_form(request: Request) -> tuple[User, FormData]:
    """A POST only an operator may make: signed in, the CSRF token right, the operator role."""
    user = current_user(request)
    if user is None:
        raise HTTPException(403, "sign in first")
    form = await checked_form(request)
    if not user.operator:
        raise HTTPException(403, "only an operator may do this")
    return user, form


class SecurityHeaders:
    """Every answer: no framing, no sniffing, no referrer, no caching, scripts from here only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)
