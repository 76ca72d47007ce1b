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
from dataclasses import dataclass
from typing import Any, Final

import orjson
from fhir.resources.R4B.coding import Coding
from fhir.resources.R4B.identifier import Identifier
from fhir.resources.R4B.immunization import Immunization, ImmunizationProtocolApplied
from fhir.resources.R4B.location import Location
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient
from pydantic import BaseModel, TypeAdapter, ValidationError

from services.nvr.mapping import invalid_fhir, validate_immunization

Path = tuple[str | int, ...]

MAX_SHAPES: Final = 1024
"""Shapes remembered at most (a handful occur: the optional parts by the two id types)."""


def _element(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    """A validator of one element's values, with the type fhir.resources declares for it."""
    annotation: Any = model.model_fields[name].annotation
    value_type: Any = next(
        (arg for arg in typing.get_args(annotation) if arg is not type(None)), annotation
    )
    return TypeAdapter(value_type)


_IDENTIFIER_VALUE = _element(Identifier, "value")
VARYING: Final[Mapping[Path, TypeAdapter[Any]]] = {
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


def shape_of(resource: dict[str, Any]) -> bytes:
    """The resource with `VARYING`'s leaves blanked (each to its value's type): its keys, list
    lengths and every other value, as one text."""
    return _shape(resource, _varying_leaves(resource))


def _shape(resource: dict[str, Any], found: list[_Leaf]) -> bytes:
    for found_leaf in found:  # blanked in place (orjson's walk is the cheapest), then restored
        found_leaf.container[found_leaf.key] = f"\x00{type(found_leaf.value).__name__}"
    try:
        return orjson.dumps(resource, default=repr)
    finally:
        for found_leaf in found:
            found_leaf.container[found_leaf.key] = found_leaf.value


@dataclass(frozen=True, slots=True)
class _Leaf:
    path: Path
    element: TypeAdapter[Any]
    container: Any  # the dict or list that holds it
    key: str | int
    value: Any


def _varying_leaves(resource: dict[str, Any]) -> list[_Leaf]:
    found = []
    for path, element in VARYING.items():
        node: Any = resource  # a dict or a list (Any: indexed by the path's keys)
        for step in path[:-1]:
            node = _step(node, step)
            if node is None:
                break
        else:
            key = path[-1]
            if _holds(node, key):
                found.append(_Leaf(path, element, node, key, node[key]))
    return found


def _holds(node: Any, key: str | int) -> bool:
    if isinstance(key, int):
        return isinstance(node, list) and key < len(node)
    return isinstance(node, dict) and key in node


def _step(node: Any, step: str | int) -> Any:
    if isinstance(step, int):
        return node[step] if isinstance(node, list) and step < len(node) else None
    return node.get(step) if isinstance(node, dict) else None


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
        problems: list[str] = []
        for found_leaf in found:
            try:
                found_leaf.element.validate_python(found_leaf.value)
            except ValidationError as error:
                where = ".".join(str(step) for step in found_leaf.path)
                problems.extend(
                    f"{where}: {detail['msg']}"
                    for detail in error.errors(
                        include_url=False, include_input=False, include_context=False
                    )
                )
        if problems:
            raise invalid_fhir(problems)
