"""The catalog on one machine: the HSA, KIV and code-server sandboxes for `make run`, and a first
import before the workers start (they wait for the catalog)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from shared.spec import DevContext, Sandbox

PORT = 8090
KIV_PORT = 8094
CODESERVER_PORT = 8095


@contextmanager
def sandbox(dev: DevContext) -> Iterator[Sandbox]:
    """The HSA sandbox: a generated directory, admin changes notified on the catalog's input
    topic; KIV with the same directory's Västra Götaland units, and the code server's file with
    its Stockholm kombikas."""
    from services.catalog.settings import CatalogSettings
    from services.sandboxes.codeserver import CodeServerSandbox
    from services.sandboxes.hsa import HsaSandbox
    from services.sandboxes.kiv import KivSandbox

    topic = CatalogSettings().input_topic
    with (
        HsaSandbox(
            dev.units,
            seed=dev.seed,
            kafka_bootstrap=dev.kafka_bootstrap,
            topic=topic,
            port=dev.port(PORT),
        ) as hsa,
        KivSandbox(dev.units, seed=dev.seed, port=dev.port(KIV_PORT)) as kiv,
        CodeServerSandbox(dev.units, seed=dev.seed, port=dev.port(CODESERVER_PORT)) as codes,
    ):
        yield Sandbox(
            f"HSA sandbox at {hsa.base_url} ({dev.units} generated units; changes notified on "
            f"{topic}); KIV at {kiv.base_url}; the code server's file at "
            f"{codes.base_url}/mek.xml",
            {
                "REGBRIDGE_CATALOG_HSA_URL": hsa.base_url,
                "REGBRIDGE_CATALOG_KIV_URL": kiv.base_url,
                "REGBRIDGE_CATALOG_CODESERVER_URL": codes.base_url,
            },
        )


async def first_import() -> str:
    """Units and vaccines into the catalog now (the sandboxes are up, their URLs in the env)."""
    from services.catalog.app import import_kombikas_now, import_now, import_vaccines_now
    from services.catalog.settings import CatalogSettings

    settings = CatalogSettings()
    first = await import_now(settings, lambda _line: None)
    listed = await import_vaccines_now(settings)
    reports = [first.summary(), listed.summary()]
    if settings.codeserver_url:
        reports.append((await import_kombikas_now(settings)).summary())
    return f"first catalog import: {'; '.join(reports)}"


def example_unit(dev: DevContext) -> str:
    """The first unit of the generated directory (the same for the same seed)."""
    from services.sandboxes.hsa.directory import HsaDirectory

    return HsaDirectory(dev.units, seed=dev.seed).hsa_id_of(0)
