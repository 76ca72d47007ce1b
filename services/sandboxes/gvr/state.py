"""What the sandbox's routes share: the kombika registry, the records, the faults."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.sandboxes.faults import FaultState
from services.sandboxes.gvr.kombika import KombikaRegistry
from services.sandboxes.gvr.store import RecordStore


@dataclass
class SandboxState:
    registry: KombikaRegistry
    store: RecordStore = field(default_factory=RecordStore)
    faults: FaultState = field(default_factory=FaultState)

    def reset(self) -> None:
        """No records, no log, no faults, only the kombikas the registry was built with."""
        self.store.reset()
        self.registry.reset()
        self.faults.reset()
