"""The KIV sandbox: Katalog i Väst (Västra Götaland) generated from the HSA sandbox's directory."""

from services.sandboxes.kiv.app import create_app
from services.sandboxes.kiv.directory import KivDirectory, KivRecord
from services.sandboxes.kiv.sandbox import KivSandbox

__all__ = ["KivDirectory", "KivRecord", "KivSandbox", "create_app"]
