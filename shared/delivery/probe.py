"""A start-up (and periodic) check that the register accepts our credentials.

Without it a refused client certificate or an expired client secret shows only when the first
event arrives, perhaps at night. `RegisterProbe` asks the register at start, then every
`interval` seconds (`retry_interval` while failing): a ConfigurationError makes the worker not
ready and logs an alarm; anything else (the register down, busy) is the runtime's business and
leaves readiness alone. It is a health `Component`, so /ready and /status show it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from shared.delivery.errors import ConfigurationError, DeliveryError
from shared.logging import get_logger

log = get_logger(__name__)

Check = Callable[[], Awaitable[DeliveryError | None]]


class RegisterProbe:
    def __init__(
        self, register: str, check: Check, *, interval: float = 300.0, retry_interval: float = 30.0
    ) -> None:
        self.register = register
        self._check = check
        self._interval = interval
        self._retry_interval = retry_interval
        self._error: DeliveryError | None = None
        self._checked = False

    @property
    def ready(self) -> bool:
        return not isinstance(self._error, ConfigurationError)

    def describe(self) -> dict[str, Any]:
        error = self._error
        return {
            "ready": self.ready,
            "checked": self._checked,
            "error_class": error.error_class if error else None,
            "error": error.message if error else None,
        }

    async def check_once(self) -> DeliveryError | None:
        error = await self._check()
        if isinstance(error, ConfigurationError):
            log.error(
                "register_probe_failed",
                register=self.register,
                error_class=error.error_class,
                alarm=error.message,
            )
        elif error is not None:
            log.warning(
                "register_probe_unanswered", register=self.register, error_class=error.error_class
            )
        elif isinstance(self._error, ConfigurationError) or not self._checked:
            log.info("register_probe_ok", register=self.register)
        self._error, self._checked = error, True
        return error

    async def run(self) -> None:
        """Forever (a worker's background job): check, sleep, check again."""
        while True:
            error = await self.check_once()
            await asyncio.sleep(self._retry_interval if error else self._interval)
