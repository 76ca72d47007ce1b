"""What every page handler shares: settings, the workers, accounts, the audit, the templates."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from services.console.accounts import Account
from services.console.audit import ConsoleAudit
from services.console.security import csrf_token, current_user
from services.console.settings import ConsoleSettings
from services.console.sources import WorkerSource

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")


@dataclass
class Console:
    settings: ConsoleSettings
    sources: dict[str, WorkerSource]
    accounts: dict[str, Account]
    audit: ConsoleAudit

    def source(self, worker: str) -> WorkerSource | None:
        return self.sources.get(worker)


def console_of(request: Request) -> Console:
    console = request.app.state.console
    assert isinstance(console, Console)
    return console


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    """A page, with who is signed in, the CSRF token for its forms and the workers' names."""
    console = console_of(request)
    context |= {
        "user": current_user(request),
        "csrf": csrf_token(request),
        "workers": list(console.sources),
        "oidc": console.settings.oidc_enabled,
    }
    return templates.TemplateResponse(request, name, context, status_code=status_code)
