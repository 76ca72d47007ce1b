"""The VGPV worker as regbridge runs it: care contacts of VGR's Vårdval units → one file per unit
and month, uploaded over mutual TLS in the region's three-working-day window."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.vgpv import dev
from services.vgpv.settings import VgpvSettings
from services.vgpv.units import UnitCatalog
from services.vgpv.worker import VgpvRegister, rules_from
from shared.contracts import CareContactEvent
from shared.spec import DevHooks, Wiring, WorkerContext, WorkerSpec


def register(settings: VgpvSettings, catalog: UnitCatalog) -> VgpvRegister:
    """The register as the file runtime drives it: its client, the catalog, the settings' rules
    and encoding. The caller closes it (`aclose`)."""
    from services.vgpv.client import VgpvClient

    return VgpvRegister(
        VgpvClient.from_settings(settings), catalog, rules_from(settings), settings.encoding
    )


@asynccontextmanager
async def build(settings: VgpvSettings, context: WorkerContext) -> AsyncIterator[Wiring]:
    """Not yet: the file-delivery runtime (`shared/files/`, its `file_wiring`) is being built
    beside this register; its wiring will follow the catalog (CatalogView), make the register
    with `register(settings, view)`, and run the window's schedule (`settings.window()`)."""
    raise NotImplementedError(
        "the VGPV worker needs the file-delivery runtime (shared/files/), not merged yet"
    )
    yield  # pragma: no cover - makes this an async generator


SPEC = WorkerSpec(
    name="vgpv",
    summary="VGR primary-care and rehab visits → one file per unit and month to VGPV "
    "(mutual TLS, the three-working-day window); needs the catalog with KIV",
    settings=VgpvSettings,
    event_types=(CareContactEvent,),
    input_purpose="care contacts from journal systems",
    build=build,
    dev=DevHooks(
        sandbox=dev.sandbox,
        demo=dev.demo,
        demo_share=2,
        try_next=lambda _dev, env: (
            f"curl --cert {env.get('REGBRIDGE_VGPV_CLIENT_CERT', 'client.pem')} "
            f"--key {env.get('REGBRIDGE_VGPV_CLIENT_KEY', 'client.key')} "
            f"--cacert {env.get('REGBRIDGE_VGPV_CA_BUNDLE', 'ca.pem')} "
            f"{env.get('REGBRIDGE_VGPV_BASE_URL', 'https://127.0.0.1:8096')}/filer"
            "   # the files VGPV received",
        ),
    ),
)
