"""The CVR sandbox: Region Stockholm's waiting-time register's SFTP drop box (docs/cvr-file.md)."""

from services.sandboxes.cvr.keys import CvrKeys
from services.sandboxes.cvr.sandbox import CvrFaults, CvrSandbox

__all__ = ["CvrFaults", "CvrKeys", "CvrSandbox"]
