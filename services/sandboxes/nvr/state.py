"""What the NVR sandbox's routes share: profile, clock, tokens, lists, records, faults."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from services.nvr.profile import NvrProfile
from services.nvr.rules import RuleContext
from services.sandboxes.faults import FaultState
from services.sandboxes.nvr.auth import OAuthClient, TokenIssuer
from services.sandboxes.nvr.catalog import CareUnits, VaccineList
from services.sandboxes.nvr.store import ImmunizationStore

SWEDEN = ZoneInfo("Europe/Stockholm")


def today_in_sweden(clock: Callable[[], datetime]) -> date:
    return clock().astimezone(SWEDEN).date()


@dataclass
class NvrState:
    profile: NvrProfile
    clock: Callable[[], datetime]
    tokens: TokenIssuer
    vaccines: VaccineList
    units: CareUnits
    store: ImmunizationStore
    faults: FaultState

    def today(self) -> date:
        """Today in Sweden, by the injected clock (what "in the future" is measured against)."""
        return today_in_sweden(self.clock)

    def rule_context(self, client: OAuthClient) -> RuleContext:
        return RuleContext(
            vaccines=self.vaccines.facts,
            units=self.units.owner,
            today=self.today(),
            profile=self.profile,
            allowed_caregivers=client.allowed_caregivers,
        )

    def reset(self) -> None:
        """No records, no tokens, no faults, the vaccine list as built, units looked up anew."""
        self.store.reset()
        self.tokens.revoke()
        self.faults.reset()
        self.vaccines.reset()
        self.units.forget()
