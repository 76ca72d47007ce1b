"""The console's web application: sessions, login, the pages, their errors, security headers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from services.console import catalog, deadletters, files, health, overview
from services.console.accounts import Account, authenticate
from services.console.audit import ConsoleAudit
from services.console.context import HERE, Console, console_of, render
from services.console.figures import Figures
from services.console.security import (
    LoginRequiredError,
    SecurityHeaders,
    checked_form,
    current_user,
    require_user,
    sign_in,
)
from services.console.settings import ConsoleSettings
from services.console.sources import WorkerSource
from services.console.trace import trace_record

log = structlog.get_logger("regbridge.console")
MIN_SECRET = 32


async def login_page(request: Request) -> Response:
    if current_user(request) is not None:
        return RedirectResponse("/", status_code=303)
    return render(request, "login.html")


async def login(request: Request) -> Response:
    form = await checked_form(request)
    name, password = str(form.get("name", "")), str(form.get("password", ""))
    account = await asyncio.to_thread(authenticate, console_of(request).accounts, name, password)
    if account is None:
        log.info("console_login_refused", via="local")
        return render(request, "login.html", status_code=401, error="Wrong name or password.")
    sign_in(request, account.name, account.role, "local")
    log.info("console_login", actor=account.name, role=account.role.value, via="local")
    return RedirectResponse("/", status_code=303)


async def logout(request: Request) -> Response:
    await checked_form(request)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


async def trace(request: Request) -> Response:
    require_user(request)
    record_id = request.query_params.get("record_id", "").strip()
    traces = []
    if record_id:
        sources = console_of(request).sources.values()
        traces = list(await asyncio.gather(*(trace_record(s, record_id) for s in sources)))
    return render(request, "trace.html", record_id=record_id, traces=traces)


async def audit_page(request: Request) -> Response:
    require_user(request)
    return render(request, "audit.html", entries=await console_of(request).audit.latest(200))


async def _login_required(request: Request, _exc: Exception) -> Response:
    return RedirectResponse("/login", status_code=303)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return render(request, "error.html", status_code=exc.status_code, message=exc.detail)


def create_app(
    settings: ConsoleSettings, sources: dict[str, WorkerSource], accounts: dict[str, Account]
) -> Starlette:
    """The console over these workers; sessions signed with the settings' secret."""
    secret = settings.session_key()
    if len(secret) < MIN_SECRET:
        raise ValueError(
            f"REGBRIDGE_CONSOLE_SESSION_SECRET must be at least {MIN_SECRET} characters"
        )
    if not accounts and not settings.oidc_enabled:
        raise ValueError("no way to sign in: give local accounts or OIDC settings")
    audit = ConsoleAudit.from_url(settings.audit_url())
    figures = Figures(sources)  # Kafka and ledger connections kept open for the overview

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await audit.create_schema()
        try:
            yield
        finally:
            await figures.close()
            await audit.close()

    routes = [
        *overview.routes,
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/trace", trace),
        Route("/audit", audit_page),
        *deadletters.routes,
        *health.routes,
        *catalog.routes,
        *files.routes,
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    if settings.oidc_enabled:
        from services.console import oidc  # Authlib, only when OIDC is set up

        routes += oidc.routes(settings)
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(
                SessionMiddleware,
                secret_key=secret,
                session_cookie="regbridge_console",
                max_age=settings.session_max_age_s,
                same_site="lax",
                https_only=settings.secure_cookies,
            ),
        ],
        exception_handlers={LoginRequiredError: _login_required, HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.console = Console(settings, sources, accounts, audit)
    app.state.figures = figures
    return app
