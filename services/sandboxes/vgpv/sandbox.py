"""`VgpvSandbox`: the register, its API, its certificates and an HTTPS server thread, as one."""

from __future__ import annotations

import ssl
import tempfile
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from services.sandboxes.faults import Faults, FaultsChange, FaultState
from services.sandboxes.gvr.certs import SERVER_HOSTS, GvrCertificates
from services.sandboxes.kiv.directory import KivDirectory
from services.sandboxes.server import ServedSandbox, ServerThread, ServerTls
from services.sandboxes.vgpv.app import VgpvSandboxApi, create_app
from services.sandboxes.vgpv.state import SandboxClock, SandboxState, utc_now


class VgpvSandbox(ServedSandbox):
    """VGPV's upload over HTTPS with mutual TLS (as over Sjunet); its units are KIV's for the HSA
    sandbox's directory of `hsa_units` (same `seed`), or the `kiv` directory given.

        with VgpvSandbox(hsa_units=2000, seed=1) as vgpv:
            VgpvClient(vgpv.base_url, ssl_context=vgpv.certs.client_ssl_context())

    The certificates are made as the GVR sandbox makes its own (a test CA, the server's, a
    client's), kept in `certs_dir` or a temporary directory. `clock` is the base of the
    register's clock; `set_clock` moves it (into a window, past a close).
    """

    def __init__(
        self,
        hsa_units: int = 2000,
        seed: int = 1,
        *,
        kiv: KivDirectory | None = None,
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
            self._temporary = tempfile.TemporaryDirectory(prefix="vgpv-certs-")
            certs_dir = self._temporary.name
        make = GvrCertificates.create if new_certs else GvrCertificates.ensure
        self.certs: GvrCertificates = make(certs_dir, hosts=cert_hosts)
        self.kiv = kiv if kiv is not None else KivDirectory(hsa_units, seed)
        register_clock = SandboxClock(clock)
        self.state = SandboxState(
            self.kiv, clock=register_clock, faults=FaultState(seed=seed, clock=register_clock)
        )
        if faults is not None:
            self.state.faults.faults = faults
        self.app: VgpvSandboxApi = create_app(self.state)
        tls = ServerTls(
            certfile=self.certs.server_cert,
            keyfile=self.certs.server_key,
            ca_certs=self.certs.ca_cert,
            cert_reqs=ssl.CERT_REQUIRED,
            maximum_version=tls_maximum_version,
        )
        self.server = ServerThread(self.app, host=host, port=port, name="vgpv-sandbox", tls=tls)

    @property
    def base_url(self) -> str:
        """``https://127.0.0.1:<port>`` (the address the server certificate names)."""
        return self.server.local_url

    def set_faults(self, **changes: Any) -> Faults:
        """As ``POST /admin/faults``: change the faults named, keep the others."""
        return self.state.faults.change(FaultsChange.model_validate(changes))

    def set_clock(self, now: datetime | None) -> datetime:
        """As ``POST /admin/clock``: the register's time from now on (None: the real time)."""
        return self.state.clock.set(now)

    def uploads(self) -> dict[str, int]:
        """As ``GET /admin/uploads``: uploads per file name, duplicates included."""
        return self.state.store.uploads()

    def holding(self) -> list[dict[str, Any]]:
        """As ``GET /innehav``: the rows held per unit and month."""
        return self.state.store.holding()

    def reset(self) -> None:
        """As ``POST /admin/reset``."""
        self.state.reset()

    def stop(self) -> None:
        super().stop()
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = None
