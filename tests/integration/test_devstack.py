"""`make run`'s parts from the registry: every worker's sandbox comes up and hands the workers
settings they know; the preparations (the catalog's first import) run against them."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from pydantic import BaseModel

from services.registry import REGISTRY
from shared.settings import TopicSettings
from shared.spec import DevContext
from shared.topics import TopicSpec, ensure_topics

pytestmark = pytest.mark.integration


def _is_setting(variable: str) -> bool:
    """Does some worker of the registry read `variable` (a field, or a field of a section)?"""
    for spec in REGISTRY:
        prefix = str(spec.settings.model_config.get("env_prefix", ""))
        if not variable.startswith(prefix):
            continue
        owner: type[BaseModel] = spec.settings
        *sections, field = variable.removeprefix(prefix).lower().split("__")
        for section in sections:
            owner = owner.model_fields[section].annotation  # type: ignore[assignment]
        return field in owner.model_fields
    return False


async def test_every_sandbox_comes_up_with_settings_the_workers_read(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the catalog's topics of this test's own, and the stack's context
    topics = TopicSettings(
        care_units=f"dev.units.{unique_name}",
        vaccines=f"dev.vaccines.{unique_name}",
        kombikas=f"dev.kombikas.{unique_name}",
    )
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("REGBRIDGE_TOPICS_CARE_UNITS", topics.care_units)
    monkeypatch.setenv("REGBRIDGE_TOPICS_VACCINES", topics.vaccines)
    monkeypatch.setenv("REGBRIDGE_TOPICS_KOMBIKAS", topics.kombikas)
    monkeypatch.setenv("REGBRIDGE_CATALOG_INPUT_TOPIC", f"dev.notifications.{unique_name}")
    compacted = [
        TopicSpec(t, "dev", compacted=True)
        for t in (topics.care_units, topics.vaccines, topics.kombikas)
    ]
    await ensure_topics(
        REGISTRY.get("catalog").load_settings().kafka, compacted, partitions=1, replication_factor=1
    )
    dev = DevContext(kafka_bootstrap, 50, 1, tmp_path, lambda _port: 0)
    hooks = [spec.dev for spec in REGISTRY if spec.dev is not None]

    # When every sandbox comes up, in registry order, and the preparations run
    with contextlib.ExitStack() as stack:
        sandboxes = []
        for hook in hooks:
            if hook.sandbox is not None:
                sandbox = stack.enter_context(hook.sandbox(dev))
                for name, value in sandbox.env.items():
                    monkeypatch.setenv(name, value)
                sandboxes.append(sandbox)
        prepared = [await hook.prepare() for hook in hooks if hook.prepare is not None]

    # Then each said where it is, set only settings some worker reads, and the import ran on them
    assert len(sandboxes) == len([hook for hook in hooks if hook.sandbox is not None]) == 5
    assert all(("http" in s.description or "sftp" in s.description) for s in sandboxes)
    unknown = [n for s in sandboxes for n in s.env if not _is_setting(n)]
    assert unknown == []
    assert len(prepared) == 1
    assert f"{topics.care_units}: 50 seen, 50 published" in prepared[0]
    assert f"{topics.vaccines}: 4 seen, 4 published" in prepared[0]
