"""The NVR sandbox: Nationella vaccinationsregistret's API as docs/nvr-api.md defines it."""

from services.sandboxes.faults import Faults, FaultsChange
from services.sandboxes.nvr.app import NvrSandboxApi, create_app
from services.sandboxes.nvr.auth import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, OAuthClient
from services.sandboxes.nvr.sandbox import NvrSandbox
from services.sandboxes.nvr.state import NvrState

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "Faults",
    "FaultsChange",
    "NvrSandbox",
    "NvrSandboxApi",
    "NvrState",
    "OAuthClient",
    "create_app",
]
