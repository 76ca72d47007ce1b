"""The VGPV sandbox: VG Primärvård's and Vårdval Rehab's file upload, over mutual TLS."""

from services.sandboxes.vgpv.app import VgpvSandboxApi, create_app
from services.sandboxes.vgpv.sandbox import VgpvSandbox
from services.sandboxes.vgpv.state import SandboxClock, SandboxState

__all__ = ["SandboxClock", "SandboxState", "VgpvSandbox", "VgpvSandboxApi", "create_app"]
