"""The catalog on one machine: the HSA sandbox for `make run`, and a first import before the
workers start (they wait for the catalog)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from shared.spec import DevContext, Sandbox

PORT = 8090


@contextmanager
def sandbox(dev: DevContext) -> Iterator[Sandbox]:
    """The HSA sandbox: a generated directory; admin changes are notified on the catalog's input
    topic."""
    from services.catalog.settings import CatalogSettings
    from services.sandboxes.hsa import HsaSandbox

    topic = CatalogSettings().input_topic
    with HsaSandbox(
        dev.units,
        seed=dev.seed,
        kafka_bootstrap=dev.kafka_bootstrap,
        topic=topic,
        port=dev.port(PORT),
    ) as hsa:
        yield Sandbox(
            f"HSA sandbox at {hsa.base_url} ({dev.units} generated units; changes notified on "
            f"{topic})",
            {"REGBRIDGE_CATALOG_HSA_URL": hsa.base_url},
        )


async def first_import() -> str:
    """Units and vaccines into the catalog now (the sandboxes are up, their URLs in the env)."""
    from services.catalog.app import import_now, import_vaccines_now
    from services.catalog.settings import CatalogSettings

    first = await import_now(CatalogSettings(), lambda _line: None)
    listed = await import_vaccines_now(CatalogSettings())
    return f"first catalog import: {first.summary()}; {listed.summary()}"


def example_unit(dev: DevContext) -> str:
    """The first unit of the generated directory (the same for the same seed)."""
    from services.sandboxes.hsa.directory import HsaDirectory

    return HsaDirectory(dev.units, seed=dev.seed).hsa_id_of(0)
