"""The HSA sandbox: a generated, lazily computed HSA directory behind a GetHsaUnit-style API."""

from services.sandboxes.hsa.app import create_app
from services.sandboxes.hsa.directory import HsaDirectory, Upserted
from services.sandboxes.hsa.faults import Faults
from services.sandboxes.hsa.notifications import DEFAULT_TOPIC, build_notification
from services.sandboxes.hsa.sandbox import HsaSandbox

__all__ = [
    "DEFAULT_TOPIC",
    "Faults",
    "HsaDirectory",
    "HsaSandbox",
    "Upserted",
    "build_notification",
    "create_app",
]
