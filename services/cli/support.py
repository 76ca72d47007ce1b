"""What the commands share: the registry, a worker's settings with quiet logging, Ctrl-C."""

from __future__ import annotations

import signal
import threading
from typing import Any

import typer
from pydantic import SecretStr

from shared.heap import freeze_heap
from shared.logging import configure_logging
from shared.settings import RegbridgeSettings
from shared.spec import Registry, UnknownWorkerError, WorkerSpec


def registry_of(ctx: typer.Context) -> Registry:
    """The registry the command line was built with (`build_app`)."""
    registry = ctx.find_root().obj
    assert isinstance(registry, Registry), "build the app with services.cli.app.build_app"
    return registry


def worker_spec(ctx: typer.Context, name: str) -> WorkerSpec[Any]:
    """The worker called `name`, or a usage error naming the known ones."""
    try:
        return registry_of(ctx).get(name)
    except UnknownWorkerError as exc:
        raise typer.BadParameter(str(exc), param_hint="--worker") from None


def worker_settings(spec: WorkerSpec[Any], database_url: str | None = None) -> RegbridgeSettings:
    """The worker's own settings (logging quietened for a command line)."""
    settings: RegbridgeSettings = spec.load_settings()
    if database_url:
        settings = settings.model_copy(update={"database_url": SecretStr(database_url)})
    level = "WARNING" if settings.log_level == "INFO" else settings.log_level
    configure_logging(level, settings.log_format)
    return settings


def wait_for_interrupt() -> None:
    """Block until SIGINT or SIGTERM; what started before is frozen out of the collector's way
    (`shared.heap.freeze_heap`: a sandbox's full collections walked its whole store)."""
    freeze_heap()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
