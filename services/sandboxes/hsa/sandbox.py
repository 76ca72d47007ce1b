"""`HsaSandbox`: the directory, its API and a server thread in one object (CLI, tests)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, time, timedelta

from services.sandboxes.hsa.app import HsaSandboxApi, create_app
from services.sandboxes.hsa.cuts import DEFAULT_LEAD, DEFAULT_SLOTS, ExportCuts
from services.sandboxes.hsa.directory import HsaDirectory, utc_now
from services.sandboxes.hsa.faults import Faults, FaultsChange
from services.sandboxes.hsa.notifications import DEFAULT_TOPIC
from services.sandboxes.server import ServedSandbox, ServerThread
from shared.settings import KafkaSettings


class HsaSandbox(ServedSandbox):
    """A generated HSA directory served over real HTTP.

        with HsaSandbox(units=2000, seed=1) as hsa:
            httpx.get(f"{hsa.base_url}/units/{hsa.directory.hsa_id_of(0)}")

    With `kafka` (or just `kafka_bootstrap`), admin changes are notified on `topic`. The export
    is cut `export_lead` before each of `export_slots` (zero: the export is always current);
    `cut_export()` cuts it now.
    """

    def __init__(
        self,
        units: int = 2000,
        seed: int = 0,
        *,
        kafka: KafkaSettings | None = None,
        kafka_bootstrap: str | None = None,
        topic: str = DEFAULT_TOPIC,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], datetime] = utc_now,
        export_lead: timedelta = DEFAULT_LEAD,
        export_slots: Sequence[time] = DEFAULT_SLOTS,
    ) -> None:
        if kafka is None and kafka_bootstrap is not None:
            kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap)
        self.directory = HsaDirectory(units, seed, clock=clock)
        self.topic = topic
        self.cuts = ExportCuts(self.directory, lead=export_lead, slots=export_slots)
        self.app: HsaSandboxApi = create_app(
            self.directory, kafka=kafka, topic=topic, cuts=self.cuts
        )
        self.server = ServerThread(self.app, host=host, port=port, name="hsa-sandbox")

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def faults(self) -> Faults:
        return self.app.sandbox.faults

    def set_faults(self, **changes: float | int | None) -> Faults:
        """As ``POST /admin/faults``: change the faults named, keep the others."""
        self.app.sandbox.faults = FaultsChange.model_validate(changes).applied_to(self.faults)
        return self.faults

    def cut_export(self) -> datetime:
        """As ``POST /admin/export/cut``: the export holds the directory as of now."""
        return self.cuts.cut().as_of

    def reset(self) -> None:
        """As ``POST /admin/reset``."""
        self.app.sandbox.reset()
