"""The GVR sandbox: Gemensamt vårdregister's API as docs/gvr-api.md defines it, over mutual TLS."""

from services.sandboxes.faults import Faults, FaultsChange
from services.sandboxes.gvr.app import GvrSandboxApi, create_app
from services.sandboxes.gvr.certs import ClientCertificate, GvrCertificates
from services.sandboxes.gvr.kombika import KombikaPeriod, KombikaRegistry, KombikaState
from services.sandboxes.gvr.sandbox import GvrSandbox
from services.sandboxes.gvr.schema import FelKod
from services.sandboxes.gvr.state import SandboxState

__all__ = [
    "ClientCertificate",
    "Faults",
    "FaultsChange",
    "FelKod",
    "GvrCertificates",
    "GvrSandbox",
    "GvrSandboxApi",
    "KombikaPeriod",
    "KombikaRegistry",
    "KombikaState",
    "SandboxState",
    "create_app",
]
