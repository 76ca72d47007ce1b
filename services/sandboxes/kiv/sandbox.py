"""`KivSandbox`: the KIV directory, its API and a server thread in one object (CLI, tests)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from services.sandboxes.hsa.directory import utc_now
from services.sandboxes.kiv.app import KivSandboxApi, create_app
from services.sandboxes.kiv.directory import KivDirectory, KivRecord
from services.sandboxes.server import ServedSandbox, ServerThread


class KivSandbox(ServedSandbox):
    """KIV, generated from the HSA sandbox's directory of `hsa_units` (same `seed`), over HTTP.

        with KivSandbox(hsa_units=2000, seed=1) as kiv:
            httpx.get(f"{kiv.base_url}/units/{kiv.directory.hsa_id_of(0)}")

    Its records are the HSA sandbox's Västra Götaland units (county 14), under the same HSA-ids.
    """

    def __init__(
        self,
        hsa_units: int = 2000,
        seed: int = 1,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.directory = KivDirectory(hsa_units, seed, clock=clock)
        self.app: KivSandboxApi = create_app(self.directory)
        self.server = ServerThread(
            self.app, host=host, port=port, name="kiv-sandbox", lifespan="off"
        )

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def upsert(self, unit: dict[str, Any]) -> tuple[KivRecord, bool]:
        """As ``POST /admin/units``: the record as stored now, and whether it is new."""
        return self.directory.upsert(unit)

    def remove(self, hsa_id: str) -> bool:
        """As ``DELETE /admin/units/{hsa_id}``; False when it was not there."""
        return self.directory.remove(hsa_id)

    def reset(self) -> None:
        """As ``POST /admin/reset``."""
        self.directory.reset()
