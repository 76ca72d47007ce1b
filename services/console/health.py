"""The console's probes: live (the process answers) and ready (its audit database answers)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from services.console.context import console_of


async def live(_request: Request) -> Response:
    return PlainTextResponse("live")


async def ready(request: Request) -> Response:
    """Ready when every reveal and replay can be audited: the audit database answers."""
    try:
        async with console_of(request).audit.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as exc:
        return PlainTextResponse(f"audit database unavailable ({type(exc).__name__})", 503)
    return PlainTextResponse("ready")


routes: list[BaseRoute] = [Route("/health/live", live), Route("/health/ready", ready)]
