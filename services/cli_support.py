"""What the commands share: a worker's own settings with quiet logging, waiting for Ctrl-C."""

from __future__ import annotations

import signal
import threading

from pydantic import SecretStr

from shared.logging import configure_logging
from shared.settings import CatalogSettings, GvrSettings, NvrSettings, RegbridgeSettings

_SETTINGS: dict[str, type[RegbridgeSettings]] = {
    "gvr": GvrSettings,
    "nvr": NvrSettings,
    "catalog": CatalogSettings,
}


def worker_settings(worker: str, database_url: str | None = None) -> RegbridgeSettings:
    """The worker's own settings (GVR/NVR/catalog); any other name gets the shared base."""
    settings = _SETTINGS.get(worker, RegbridgeSettings)()
    if database_url:
        settings = settings.model_copy(update={"database_url": SecretStr(database_url)})
    level = "WARNING" if settings.log_level == "INFO" else settings.log_level
    configure_logging(level, settings.log_format)
    return settings


def wait_for_interrupt() -> None:
    """Block until SIGINT or SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
