"""`regbridge console`: serve the console; `regbridge console hash-password`: an accounts line."""

from __future__ import annotations

from typing import Annotated

import typer

from services.console.accounts import Role, hash_password, load_accounts
from services.console.settings import ConsoleSettings
from shared.spec import Registry

console_app = typer.Typer(
    help="The operator console: dead letters, replay, record traces, the workers' state.",
    invoke_without_command=True,
)


def serve(registry: Registry, settings: ConsoleSettings) -> None:
    """Until SIGTERM or Ctrl-C, on the settings' host and port."""
    import uvicorn

    from services.console.app import create_app
    from services.console.sources import worker_sources
    from shared.logging import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    accounts = load_accounts(settings.accounts.get_secret_value(), settings.accounts_file)
    app = create_app(settings, worker_sources(registry, settings), accounts)
    # no access log: the URLs hold no personal data, but the console logs its own events
    uvicorn.run(app, host=settings.host, port=settings.port, access_log=False, log_level="warning")


@console_app.callback()
def console(ctx: typer.Context) -> None:
    """Serve the console (settings: REGBRIDGE_CONSOLE_…; docs/console.md)."""
    if ctx.invoked_subcommand is not None:
        return
    registry = ctx.find_root().obj
    assert isinstance(registry, Registry), "build the app with services.cli.app.build_app"
    settings = ConsoleSettings()
    typer.echo(f"regbridge console at http://{settings.host}:{settings.port}/")
    try:
        serve(registry, settings)
    except ValueError as exc:
        typer.secho(f"regbridge console: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None


@console_app.command("hash-password")
def hash_password_command(
    name: Annotated[str, typer.Argument(help="The account's name.")],
    role: Annotated[Role, typer.Option(help="viewer or operator.")] = Role.VIEWER,
) -> None:
    """Print an accounts line (NAME ROLE HASH) for REGBRIDGE_CONSOLE_ACCOUNTS(_FILE)."""
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    typer.echo(f"{name} {role.value} {hash_password(password)}")
