"""`NvrSandbox`: the register, its API and an HTTP server thread, as one."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from services.nvr.profile import NvrProfile
from services.sandboxes.faults import Faults, FaultsChange, FaultState
from services.sandboxes.hsa.directory import HsaDirectory
from services.sandboxes.nvr.app import NvrSandboxApi, create_app
from services.sandboxes.nvr.auth import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    OAuthClient,
    TokenIssuer,
)
from services.sandboxes.nvr.catalog import CareUnits, Vaccine, VaccineList
from services.sandboxes.nvr.state import NvrState, today_in_sweden
from services.sandboxes.nvr.store import ImmunizationStore, StoredImmunization, utc_now
from services.sandboxes.server import ServedSandbox, ServerThread


class NvrSandbox(ServedSandbox):
    """NVR over plain HTTP; its care units are those of `HsaDirectory(units, seed)`.

        with NvrSandbox(units=2000, seed=1) as nvr:
            token = httpx.post(f"{nvr.base_url}/oauth2/token", data=..., auth=nvr.client_auth)

    Without `clients` one client is known: `DEFAULT_CLIENT_ID` / `DEFAULT_CLIENT_SECRET`, any care
    provider. `clock` is "now" for tokens, faults, record times and the rules' "today".
    """

    def __init__(
        self,
        units: int = 2000,
        seed: int = 0,
        *,
        clients: Iterable[OAuthClient] | None = None,
        token_lifetime_s: float = 300,
        vaccines: list[dict[str, Any]] | None = None,
        profile: NvrProfile | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        profile = profile or NvrProfile()
        if clients is None:
            clients = [OAuthClient(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET)]
        self.directory = HsaDirectory(units, seed)
        fault_state = FaultState(seed=seed, clock=clock)
        if faults is not None:
            fault_state.faults = faults
        tokens = TokenIssuer(
            clients,
            lifetime_s=token_lifetime_s,
            clock=clock,
            today=functools.partial(today_in_sweden, clock),
        )
        self.state = state = NvrState(
            profile=profile,
            clock=clock,
            tokens=tokens,
            vaccines=VaccineList(vaccines),
            units=CareUnits(self.directory),
            store=ImmunizationStore(clock=clock),
            faults=fault_state,
        )
        self.app: NvrSandboxApi = create_app(state)
        self.server = ServerThread(self.app, host=host, port=port, name="nvr-sandbox")

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return self.server.local_url

    @property
    def profile(self) -> NvrProfile:
        return self.state.profile

    @property
    def token_url(self) -> str:
        return self.base_url + self.profile.token_path

    @property
    def fhir_url(self) -> str:
        return self.base_url + self.profile.fhir_path

    @property
    def faults(self) -> Faults:
        return self.state.faults.faults

    def set_faults(self, **changes: Any) -> Faults:
        """As ``PUT /admin/faults``: change the faults named, keep the others."""
        return self.state.faults.change(FaultsChange.model_validate(changes))

    def set_vaccines(self, vaccines: list[dict[str, Any]]) -> None:
        """As ``PUT /admin/vaccines``: the vaccine list until the next reset."""
        self.state.vaccines.replace([Vaccine.model_validate(v) for v in vaccines])

    def revoke_tokens(self) -> int:
        """As ``POST /admin/tokens/revoke``."""
        return self.state.tokens.revoke()

    def records(self) -> list[StoredImmunization]:
        """Every record the register holds (deleted ones too), oldest first."""
        return self.state.store.records()

    def record(self, record_id: str) -> StoredImmunization | None:
        return self.state.store.get(record_id)

    def reset(self) -> None:
        """As ``POST /admin/reset``."""
        self.state.reset()

    def unit_example(self, index: int = 0) -> tuple[str, str, str]:
        """(unit HSA-id, care provider HSA-id, care provider org number) of generated unit i."""
        hsa_id = self.directory.hsa_id_of(index)
        owner = self.state.units.owner(hsa_id)
        if owner is None:
            raise LookupError(f"unit {index} ({hsa_id}) has no care provider")
        return hsa_id, owner.caregiver_hsa_id, owner.caregiver_org_number
