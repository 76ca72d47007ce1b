"""The code-server sandbox: Region Stockholm's MEK file (kombika ↔ HSA-id) from the HSA sandbox."""

from services.sandboxes.codeserver.app import create_app
from services.sandboxes.codeserver.mek import CodeServerFile, MekRow
from services.sandboxes.codeserver.sandbox import CodeServerSandbox

__all__ = ["CodeServerFile", "CodeServerSandbox", "MekRow", "create_app"]
