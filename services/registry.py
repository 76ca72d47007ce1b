"""The one list of workers: the command line, the dev stack and the deployment checks read it."""

from __future__ import annotations

from services.catalog.spec import SPEC as CATALOG
from services.cvr.spec import SPEC as CVR
from services.gvr.spec import SPEC as GVR
from services.nvr.spec import SPEC as NVR
from services.vgpv.spec import SPEC as VGPV
from shared.spec import Registry

# in start order: the catalog first, the others read it
REGISTRY = Registry([CATALOG, GVR, NVR, VGPV, CVR])
