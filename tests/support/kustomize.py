"""A small kustomize, enough for deploy/k8s, so tests render the overlays without kubectl.

Implemented: `resources` (files and directories), `components`, `configMapGenerator` (`envs`,
`literals`; `behavior` create or merge), `patches` (strategic merge with the merge keys of the
lists deploy/k8s patches, a JSON merge patch for custom resources, and JSON 6902 `add`,
`replace`, `remove`; a `target` by kind and name), `images` and `namespace`, in kustomize's
order: resources, components, generators, patches, namespace, images. Not reproduced: the hash
suffix of generated ConfigMap names (references keep the plain name). Any other field raises, so
a manifest cannot silently use what this does not render.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

SUPPORTED = {
    "apiVersion",
    "kind",
    "resources",
    "components",
    "configMapGenerator",
    "patches",
    "images",
    "namespace",
}
# patchMergeKey of the Kubernetes API's lists that deploy/k8s patches (other lists are replaced)
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}
BUILT_IN = {"ConfigMap", "Deployment", "Job", "PodDisruptionBudget", "Secret", "Service"}


def build(directory: Path) -> list[Resource]:
    """Render the kustomization in `directory`, as `kubectl kustomize` would (see above)."""
    return _build(directory, [])


def _build(directory: Path, accumulated: list[Resource]) -> list[Resource]:
    kustomization = _kustomization(directory)
    unknown = set(kustomization) - SUPPORTED
    if unknown:
        raise ValueError(f"{directory}: not supported by tests/support/kustomize.py: {unknown}")
    resources = accumulated
    for entry in kustomization.get("resources", []):
        path = directory / entry
        resources += build(path) if path.is_dir() else _documents(path)
    for entry in kustomization.get("components", []):
        component = directory / entry
        if _kustomization(component).get("kind") != "Component":
            raise ValueError(f"{component}: not a Component")
        resources = _build(component, resources)
    for generator in kustomization.get("configMapGenerator", []):
        _generate(directory, generator, resources)
    for entry in kustomization.get("patches", []):
        _patch(directory, entry, resources)
    if "namespace" in kustomization:
        for resource in resources:
            resource["metadata"]["namespace"] = kustomization["namespace"]
    for image in kustomization.get("images", []):
        _set_image(image, resources)
    return resources


def _kustomization(directory: Path) -> dict[str, Any]:
    loaded = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert isinstance(loaded, dict), directory
    return loaded


def _documents(path: Path) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def env_file(path: Path) -> dict[str, str]:
    """KEY=value lines; blank lines and `#` comments skipped; the value kept as written."""
    pairs: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path}: not KEY=value: {line!r}")
        pairs[key.strip()] = value
    return pairs


def _generate(directory: Path, generator: dict[str, Any], resources: list[Resource]) -> None:
    unknown = set(generator) - {"name", "envs", "literals", "behavior"}
    if unknown:
        raise ValueError(f"configMapGenerator {generator['name']}: unsupported {unknown}")
    data: dict[str, str] = {}
    for name in generator.get("envs", []):
        data |= env_file(directory / name)
    for literal in generator.get("literals", []):
        key, _, value = literal.partition("=")
        data[key] = value
    existing = _matching(resources, "ConfigMap", generator["name"])
    behavior = generator.get("behavior", "create")
    if behavior == "create":
        if existing:
            raise ValueError(f"ConfigMap {generator['name']} exists already")
        metadata = {"name": generator["name"]}
        resources.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}
        )
    elif behavior == "merge":
        if len(existing) != 1:
            raise ValueError(f"ConfigMap {generator['name']} to merge into: {len(existing)} found")
        existing[0].setdefault("data", {}).update(data)
    else:
        raise ValueError(f"configMapGenerator behavior {behavior!r} is not supported")


def _matching(resources: Iterable[Resource], kind: str | None, name: str | None) -> list[Resource]:
    """Resources of `kind` whose name matches `name` (a regular expression, as kustomize's)."""
    return [
        r
        for r in resources
        if (kind is None or r["kind"] == kind)
        and (name is None or re.fullmatch(name, r["metadata"]["name"]))
    ]


def _patch(directory: Path, entry: dict[str, Any], resources: list[Resource]) -> None:
    unknown = set(entry) - {"path", "patch", "target"}
    if unknown:
        raise ValueError(f"patch {entry}: unsupported {unknown}")
    text = (directory / entry["path"]).read_text() if "path" in entry else entry["patch"]
    documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    target = entry.get("target")
    if target is not None and set(target) - {"kind", "name"}:
        raise ValueError(f"patch target {target}: only kind and name are supported")
    for document in documents:
        if isinstance(document, list):  # JSON 6902: a list of operations, for a target
            if target is None:
                raise ValueError(f"{entry}: a JSON 6902 patch needs a target")
            found = _matching(resources, target.get("kind"), target.get("name"))
            for resource in _at_least_one(found, entry):
                for operation in document:
                    _apply_6902(resource, operation)
            continue
        kind = target.get("kind") if target else document["kind"]
        name = target.get("name") if target else document["metadata"]["name"]
        for resource in _at_least_one(_matching(resources, kind, name), entry):
            patch = {k: v for k, v in document.items() if k not in ("apiVersion", "kind")}
            if target:  # the patch's own name does not narrow a target
                patch["metadata"] = {
                    k: v for k, v in patch.get("metadata", {}).items() if k != "name"
                }
            merged = _merge(resource, patch, strategic=resource["kind"] in BUILT_IN)
            resource.clear()
            resource.update(merged)


def _at_least_one(found: list[Resource], entry: dict[str, Any]) -> list[Resource]:
    if not found:
        raise ValueError(f"patch {entry}: matches no resource")
    return found


def _merge(base: Any, patch: Any, *, strategic: bool, field: str = "") -> Any:
    """Strategic merge (maps recursively, keyed lists by their merge key) or JSON merge patch
    (`strategic=False`: maps recursively, lists replaced); None deletes a key."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            elif key in merged:
                merged[key] = _merge(merged[key], value, strategic=strategic, field=key)
            else:
                merged[key] = copy.deepcopy(value)
        return merged
    if strategic and isinstance(base, list) and isinstance(patch, list) and field in MERGE_KEYS:
        key = MERGE_KEYS[field]
        merged_list = [copy.deepcopy(item) for item in base]
        for item in patch:
            same = [i for i, old in enumerate(merged_list) if old.get(key) == item.get(key)]
            if same:
                merged_list[same[0]] = _merge(merged_list[same[0]], item, strategic=True)
            else:
                merged_list.append(copy.deepcopy(item))
        return merged_list
    return copy.deepcopy(patch)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise ValueError(f"JSON pointer {path!r} must start with /")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _apply_6902(resource: Resource, operation: dict[str, Any]) -> None:
    op, *parents, last = [operation["op"], *_pointer(operation["path"])]
    node: Any = resource
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if op == "add":
        value = copy.deepcopy(operation["value"])
        if isinstance(node, list):
            node.insert(len(node) if last == "-" else int(last), value)
        else:
            node[last] = value
    elif op == "replace":
        index: Any = int(last) if isinstance(node, list) else last
        if isinstance(node, dict) and last not in node:
            raise ValueError(f"replace {operation['path']}: nothing there")
        node[index] = copy.deepcopy(operation["value"])
    elif op == "remove":
        del node[int(last) if isinstance(node, list) else last]
    else:
        raise ValueError(f"JSON 6902 operation {op!r} is not supported")


def _set_image(image: dict[str, Any], resources: list[Resource]) -> None:
    for resource in resources:
        spec = resource.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            name, _, _tag = container["image"].partition(":")
            if name == image["name"]:
                new_name = image.get("newName", name)
                container["image"] = (
                    f"{new_name}:{image['newTag']}" if "newTag" in image else new_name
                )
