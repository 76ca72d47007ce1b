"""FHIR validated once per shape: an Immunization is checked by fhir.resources in full the first
time its shape is seen, and after that only in what varies from event to event. Pure, in memory.

`build_immunization` writes every resource from the same template: which parts are present
(an NVR id, a birth date, the catalog's names, a dose number …) and the profile's systems and
URLs are the resource's **shape**; the event's own values (identity numbers, codes, dates, the
batch number …) fill the leaves listed in `VARYING`, each with the FHIR type fhir.resources gives
that element (read from its models, not written by hand). A resource whose shape has been
validated in full is valid iff each of its varying leaves is a valid value of that type:
fhir.resources' other checks (choice types, required elements, unknown fields, the contained
resources' types) depend on the shape only. `tests/unit/test_nvr_fhir_check.py` proves the
equivalence — shape by shape, value by value, against `Immunization.model_validate` — and that
two events of one shape differ only in `VARYING`'s leaves; HAPI FHIR's validator checks every
shape too (`tests/integration/test_fhir_validator.py`).

A shape that is new is validated in full (`validate_immunization`): a resource the template
did not foresee costs time, never correctness.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping
from typing import Any, Final

import orjson
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.immunization import Immunization, ImmunizationProtocolApplied
from fhir.resources.R4B.location import Location
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from pydantic import BaseModel, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from services.nvr.mapping import invalid_fhir, validate_immunization

Path = tuple[str | int, ...]

MAX_SHAPES: Final = 1024
"""Shapes remembered at most (a handful occur: the optional parts by the two id types)."""


def _element(model: type[BaseModel], name: str) -> Any:
    """The type fhir.resources declares for one element's values (None left out)."""
    annotation: Any = model.model_fields[name].annotation
    return next((arg for arg in typing.get_args(annotation) if arg is not type(None)), annotation)


_IDENTIFIER_VALUE = _element(Identifier, "value")
VARYING: Final[Mapping[Path, Any]] = {
    # the Immunization
    ("id",): _element(Immunization, "id"),
    ("identifier", 0, "system"): _element(Identifier, "system"),  # the source system's
    ("identifier", 0, "value"): _IDENTIFIER_VALUE,
    ("vaccineCode", "coding", 0, "code"): _element(Coding, "code"),
    ("vaccineCode", "coding", 0, "display"): _element(Coding, "display"),
    ("occurrenceDateTime",): _element(Immunization, "occurrenceDateTime"),
    ("lotNumber",): _element(Immunization, "lotNumber"),
    ("protocolApplied", 0, "doseNumberPositiveInt"): _element(
        ImmunizationProtocolApplied, "doseNumberPositiveInt"
    ),
    ("extension", 0, "valueCoding", "code"): _element(Coding, "code"),
    # contained Patient, Organization (the care giver), Location (the unit)
    ("contained", 0, "identifier", 0, "value"): _IDENTIFIER_VALUE,
    ("contained", 0, "birthDate"): _element(Patient, "birthDate"),
    ("contained", 1, "identifier", 0, "value"): _IDENTIFIER_VALUE,
    ("contained", 1, "identifier", 1, "value"): _IDENTIFIER_VALUE,
    ("contained", 1, "name"): _element(Organization, "name"),
    ("contained", 2, "identifier", 0, "value"): _IDENTIFIER_VALUE,
    ("contained", 2, "name"): _element(Location, "name"),
}
"""Each leaf the event fills, and the FHIR type of its element."""

# The leaves' containers as a tree, each reached by one step from one before it (a prefix
# walked once, not once per leaf); each leaf as (its container's place, its key, its name).
_CONTAINERS: list[Path] = sorted(
    {path[:end] for path in VARYING for end in range(len(path))}, key=lambda path: len(path)
)
_CONTAINER_STEPS = [(_CONTAINERS.index(path[:-1]), path[-1]) for path in _CONTAINERS[1:]]
_NAMES = {path: f"leaf{number}" for number, path in enumerate(VARYING)}
_LEAF_PLACES = [(_CONTAINERS.index(path[:-1]), str(path[-1]), _NAMES[path]) for path in VARYING]
_PATH_OF = {name: path for path, name in _NAMES.items()}
assert all(isinstance(path[-1], str) for path in VARYING)  # a leaf is a field of an object

_Leaves = TypedDict(  # type: ignore[misc]  # the leaves' names are made above
    "_Leaves", {_NAMES[path]: element for path, element in VARYING.items()}, total=False
)
_VALIDATE_LEAVES = TypeAdapter(_Leaves)
"""Every varying leaf of a resource validated in one call, each by its element's type."""


def shape_of(resource: dict[str, Any]) -> bytes:
    """The resource with `VARYING`'s leaves blanked (each to its value's type): its keys, list
    lengths and every other value, as one text."""
    return _shape(resource, _varying_leaves(resource))


_Leaf = tuple[dict[str, Any], str, str]  # (the object that holds it, its key, its name)


def _shape(resource: dict[str, Any], found: list[_Leaf]) -> bytes:
    values = [container[key] for container, key, _ in found]
    for container, key, _ in found:  # blanked in place (orjson's walk is the cheapest), then
        container[key] = f"\x00{type(container[key]).__name__}"  # restored
    try:
        return orjson.dumps(resource, default=repr)
    finally:
        for (container, key, _), value in zip(found, values, strict=True):
            container[key] = value


def _varying_leaves(resource: dict[str, Any]) -> list[_Leaf]:
    """The leaves of `VARYING` the resource holds: each in an object at its path."""
    containers: list[Any] = [resource]
    for base, step in _CONTAINER_STEPS:
        node = containers[base]
        if isinstance(step, int):
            containers.append(node[step] if isinstance(node, list) and step < len(node) else None)
        else:
            containers.append(node.get(step) if isinstance(node, dict) else None)
    return [
        (node, key, name)
        for place, key, name in _LEAF_PLACES
        if isinstance(node := containers[place], dict) and key in node
    ]


def leaf(resource: Mapping[str, Any], path: Path) -> tuple[bool, Any]:
    """(present, value) of the leaf at `path`."""
    node: Any = resource
    for step in path:
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                return False, None
        elif not isinstance(node, Mapping) or step not in node:
            return False, None
        node = node[step]
    return True, node


def _where(loc: tuple[str | int, ...]) -> str:
    """A leaf's error location as its dotted path in the resource."""
    return ".".join(str(step) for step in (*_PATH_OF[str(loc[0])], *loc[1:]))


class ImmunizationCheck:
    """`check(resource)`: valid FHIR R4 or InvalidEventError (`invalid_fhir`), as
    `validate_immunization` says — in full once per shape, then the varying leaves only."""

    def __init__(
        self,
        validate: Callable[[dict[str, Any]], None] = validate_immunization,
        max_shapes: int = MAX_SHAPES,
    ) -> None:
        self._validate = validate
        self._max_shapes = max_shapes
        self._shapes: set[bytes] = set()
        self.full_validations = 0  # how many resources were validated in full (tests, metrics)

    def __call__(self, resource: dict[str, Any]) -> None:
        found = _varying_leaves(resource)
        shape = _shape(resource, found)
        if shape not in self._shapes:
            self.full_validations += 1
            self._validate(resource)  # raises for an invalid one: its shape is not remembered
            if len(self._shapes) < self._max_shapes:
                self._shapes.add(shape)
            return
        try:
            _VALIDATE_LEAVES.validate_python({name: node[key] for node, key, name in found})
        except ValidationError as error:
            problems = [
                f"{_where(detail['loc'])}: {detail['msg']}"
                for detail in error.errors(
                    include_url=False, include_input=False, include_context=False
                )
            ]
            raise invalid_fhir(problems) from None
