"""The overview page, and the fragment of its figures that the page fetches every few seconds."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from services.console.context import render
from services.console.figures import Figures
from services.console.security import current_user, require_user

REFRESH_S = 5  # the live figures' period (htmx); without JavaScript the page reloads every 15 s


def figures_of(request: Request) -> Figures:
    figures = request.app.state.figures
    assert isinstance(figures, Figures)
    return figures


async def overview(request: Request) -> Response:
    require_user(request)
    rows = await figures_of(request).views()
    return render(request, "overview.html", rows=rows, refresh_s=REFRESH_S)


async def figures_fragment(request: Request) -> Response:
    """The figures alone, for htmx to swap in; signed out, htmx is sent to the login page."""
    if current_user(request) is None:
        return Response("sign in again", status_code=401, headers={"HX-Redirect": "/login"})
    rows = await figures_of(request).views()
    return render(request, "overview_figures.html", rows=rows)


routes: list[BaseRoute] = [
    Route("/", overview),
    Route("/overview/figures", figures_fragment),
]
