"""`CodeServerSandbox`: the MEK file, its API and a server thread in one object (CLI, tests)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from services.sandboxes.codeserver.app import CodeServerApi, create_app
from services.sandboxes.codeserver.mek import CodeServerFile, MekRow
from services.sandboxes.hsa.directory import utc_now
from services.sandboxes.server import ServedSandbox, ServerThread


class CodeServerSandbox(ServedSandbox):
    """Region Stockholm's code server, its MEK file generated from the HSA sandbox's directory of
    `hsa_units` (same `seed`), over HTTP.

        with CodeServerSandbox(hsa_units=2000, seed=1) as codeserver:
            httpx.get(f"{codeserver.base_url}/mek.xml")
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
        self.file = CodeServerFile(hsa_units, seed, clock=clock)
        self.app: CodeServerApi = create_app(self.file)
        self.server = ServerThread(
            self.app, host=host, port=port, name="codeserver-sandbox", lifespan="off"
        )

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def mek_url(self) -> str:
        return f"{self.base_url}/mek.xml"

    def add(
        self, kombika: str, hsa_id: str, from_date: date, till_date: date | None = None
    ) -> MekRow:
        """As ``POST /admin/mappings``: the row added."""
        return self.file.add(kombika, hsa_id, from_date, till_date)

    def remove(self, kombika: str) -> int:
        """As ``DELETE /admin/mappings/{kombika}``: rows removed."""
        return self.file.remove(kombika)

    def reset(self) -> None:
        """As ``POST /admin/reset``."""
        self.file.reset()
