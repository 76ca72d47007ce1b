"""The shape of the house: `shared/` is the runtime, names no register; a register is a folder."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from services.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
SHARED = sorted((ROOT / "shared").rglob("*.py"))


def _registers() -> list[str]:
    """The registry's workers that are registers (the catalog is shared's own concept), and the
    ones the next issues add."""
    return sorted({spec.name for spec in REGISTRY if spec.name != "catalog"} | {"vgpv", "cvr"})


def test_shared_names_no_register_anywhere() -> None:
    pattern = re.compile(rf"\b({'|'.join(_registers())})\b", re.IGNORECASE)
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in SHARED
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []


def test_shared_imports_nothing_from_services() -> None:
    imports = []
    for path in SHARED:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            imports += [
                f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] == "services"
            ]
    assert imports == []


def test_every_registered_worker_lives_in_a_folder_of_its_own() -> None:
    for spec in REGISTRY:
        folder = f"services.{spec.name}."
        parts = [spec.settings.__module__, spec.build.__module__]  # type: ignore[attr-defined]
        assert all(part.startswith(folder) for part in parts), (spec.name, parts)
        assert (ROOT / "services" / spec.name / "spec.py").exists()
