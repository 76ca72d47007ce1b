"""`GvrSandbox`: the register, its API, its certificates and an HTTPS server thread, as one."""

from __future__ import annotations

import ssl
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

from services.sandboxes.faults import Faults, FaultsChange, FaultState
from services.sandboxes.gvr.app import GvrSandboxApi, create_app
from services.sandboxes.gvr.certs import SERVER_HOSTS, GvrCertificates
from services.sandboxes.gvr.kombika import KombikaPeriod, KombikaRegistry, KombikaState
from services.sandboxes.gvr.state import SandboxState
from services.sandboxes.gvr.store import RecordStore, utc_now
from services.sandboxes.hsa.directory import HsaDirectory
from services.sandboxes.server import ServedSandbox, ServerThread, ServerTls


class GvrSandbox(ServedSandbox):
    """GVR over HTTPS with mutual TLS; its kombikas are those of `HsaDirectory(units, seed)`.

        with GvrSandbox(units=2000, seed=1) as gvr:
            with httpx.Client(base_url=gvr.base_url, verify=gvr.certs.client_ssl_context()) as http:
                http.post("/vardhandelse/besok", json={...})

    `certs_dir` keeps the certificates (reused when complete, so a worker configured with them
    keeps working); without it they go to a temporary directory. TLS is capped at 1.2 unless
    `tls_maximum_version` says otherwise (None: the highest the machine offers).
    """

    def __init__(
        self,
        units: int = 2000,
        seed: int = 0,
        *,
        certs_dir: Path | str | None = None,
        new_certs: bool = False,
        cert_hosts: Sequence[str] = SERVER_HOSTS,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        tls_maximum_version: ssl.TLSVersion | None = ssl.TLSVersion.TLSv1_2,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._temporary: tempfile.TemporaryDirectory[str] | None = None
        if certs_dir is None:
            self._temporary = tempfile.TemporaryDirectory(prefix="gvr-certs-")
            certs_dir = self._temporary.name
        make = GvrCertificates.create if new_certs else GvrCertificates.ensure
        self.certs: GvrCertificates = make(certs_dir, hosts=cert_hosts)
        self.directory = HsaDirectory(units, seed)
        self.registry = KombikaRegistry.from_directory(self.directory)
        self.state = SandboxState(
            self.registry, RecordStore(clock=clock), FaultState(seed=seed, clock=clock)
        )
        if faults is not None:
            self.state.faults.faults = faults
        self.app: GvrSandboxApi = create_app(self.state)
        tls = ServerTls(
            certfile=self.certs.server_cert,
            keyfile=self.certs.server_key,
            ca_certs=self.certs.ca_cert,
            cert_reqs=ssl.CERT_REQUIRED,
            maximum_version=tls_maximum_version,
        )
        self.server = ServerThread(self.app, host=host, port=port, name="gvr-sandbox", tls=tls)

    @property
    def base_url(self) -> str:
        """``https://127.0.0.1:<port>`` (the address the server certificate names)."""
        return self.server.local_url

    @property
    def faults(self) -> Faults:
        return self.state.faults.faults

    def set_faults(self, **changes: Any) -> Faults:
        """As ``POST /admin/faults``: change the faults named, keep the others."""
        return self.state.faults.change(FaultsChange.model_validate(changes))

    def log(self) -> list[dict[str, str]]:
        """As ``GET /admin/log``: accepted operations in order (op, resource, id, kallId, at)."""
        return [asdict(entry) for entry in self.state.store.log()]

    def records(self) -> int:
        return len(self.state.store)

    def reset(self) -> None:
        """As ``POST /admin/reset``."""
        self.state.reset()

    def add_kombika(
        self, code: str, valid_from: date, valid_to: date | None = None
    ) -> KombikaPeriod:
        """As ``POST /admin/kombika``: the kombika is known (open in the period) until a reset."""
        return self.registry.add(code, valid_from, valid_to)

    def open_kombikas(self, on: date, limit: int = 10) -> list[KombikaPeriod]:
        return self.registry.examples(KombikaState.OPEN, on, limit)

    def closed_kombikas(self, on: date, limit: int = 10) -> list[KombikaPeriod]:
        """Kombikas that were open once and have closed before `on`."""
        return self.registry.examples(KombikaState.CLOSED, on, limit)
