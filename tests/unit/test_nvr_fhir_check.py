"""FHIR validated once per shape (services/nvr/fhir_check.py) says what validating every resource
in full says: shape by shape, value by value, against fhir.resources' `Immunization`."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fhir.resources.R4B.immunization import Immunization
from pydantic import ValidationError

from services.nvr.fhir_check import VARYING, ImmunizationCheck, Path, leaf, shape_of
from services.nvr.mapping import validate_immunization
from shared.delivery.errors import InvalidEventError
from tests.support.nvr_shapes import SHAPES, resource


def leaves(node: object, path: Path = ()) -> dict[Path, object]:
    if isinstance(node, dict):
        return {p: v for key, value in node.items() for p, v in leaves(value, (*path, key)).items()}
    if isinstance(node, list):
        return {p: v for i, item in enumerate(node) for p, v in leaves(item, (*path, i)).items()}
    return {path: node}


@pytest.mark.parametrize("shape", SHAPES)
def test_two_events_of_one_shape_differ_only_in_the_varying_leaves(shape: tuple[Any, ...]) -> None:
    first, second = resource(0, shape), resource(1, shape)
    assert shape_of(first) == shape_of(second)
    a, b = leaves(first), leaves(second)
    differ = {path for path in a.keys() | b.keys() if a.get(path) != b.get(path)}
    assert differ, "the variants differ"
    assert differ <= set(VARYING), (
        f"not listed as varying: {sorted(differ - set(VARYING), key=str)}"
    )


def test_every_shape_is_valid_fhir_and_a_different_one() -> None:
    shapes = {shape_of(resource(0, shape)) for shape in SHAPES}
    assert len(shapes) == len(SHAPES)
    for shape in SHAPES:
        Immunization.model_validate(resource(0, shape))


# values for each kind of element: valid ones and ones FHIR refuses
STRINGS = ["x", "Å ä ö", " lead", "trail ", "a  b", "", " ", "\t", "line\nbreak", "a" * 300]
CODES = ["F101", "a b", "a  b", " a", "a ", "", "ö", "a\tb"]
IDS = ["imm-1", "a.b", "a_b", "a" * 64, "a" * 65, "", "å"]
URIS = ["urn:x:y", "http://a/b", "a b", "", "urn:x:åäö"]
DATES = ["2025-03-14", "2024-02-29", "2025-02-29", "2025-13-01", "2025", "2025-03", "", "x"]
DATETIMES = [*DATES, "2025-03-14T10:00:00+01:00", "2025-03-14T25:00:00Z"]
POSITIVE = [1, 2, 2147483647, 0, -1, 2147483648, "3", 1.0, True]
OTHERS: list[object] = [None, 12, ["a"], {"a": 1}]


def candidates(path: Path) -> list[object]:
    last = path[-1]
    if last == "id":
        return [*IDS, *OTHERS]
    if last == "system":
        return [*URIS, *OTHERS]
    if last == "code":
        return [*CODES, *OTHERS]
    if last == "occurrenceDateTime":
        return [*DATETIMES, *OTHERS]
    if last == "birthDate":
        return [*DATES, *OTHERS]
    if last == "doseNumberPositiveInt":
        return [*POSITIVE, *OTHERS]
    return [*STRINGS, *OTHERS]


def fully_valid(resource: dict[str, Any]) -> bool:
    try:
        Immunization.model_validate(resource)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("shape", SHAPES[::3] + SHAPES[-1:])
def test_the_check_says_what_full_validation_says_value_by_value(shape: tuple[Any, ...]) -> None:
    base = resource(0, shape)
    check = ImmunizationCheck()
    check(base)  # its shape validated in full
    other_types = 0  # a value of another type is another shape: validated in full
    for path in VARYING:
        present, original = leaf(base, path)
        if not present:
            continue
        for value in candidates(path):
            other_types += type(value) is not type(original)
            changed = copy.deepcopy(base)
            node: Any = changed
            for step in path[:-1]:
                node = node[step]
            node[path[-1]] = value
            try:
                check(changed)
                checked = True
            except InvalidEventError:
                checked = False
            assert checked == fully_valid(changed), (path, value)
    assert check.full_validations == 1 + other_types


def test_the_check_validates_each_shape_in_full_once_and_an_invalid_one_each_time() -> None:
    seen: list[int] = []

    def validate(resource: dict[str, Any]) -> None:
        seen.append(1)
        validate_immunization(resource)

    check = ImmunizationCheck(validate=validate)
    for variant in range(5):
        check(resource(variant, SHAPES[0]))
    check(resource(0, SHAPES[1]))
    assert check.full_validations == len(seen) == 2
    broken = resource(0, SHAPES[2])
    broken["lotNumber"] = ""
    for _ in range(2):
        with pytest.raises(InvalidEventError, match="lotNumber"):
            check(broken)
    assert check.full_validations == 4  # a refused shape is not remembered


def test_an_unforeseen_part_makes_a_new_shape_validated_in_full() -> None:
    check = ImmunizationCheck()
    check(resource(0, SHAPES[0]))
    odd = resource(1, SHAPES[0])
    odd["nickname"] = "Nisse"  # not something the template writes, nor FHIR
    with pytest.raises(InvalidEventError, match="nickname"):
        check(odd)
    assert check.full_validations == 2


def test_a_refusal_names_the_element_and_hides_the_identity_number() -> None:
    check = ImmunizationCheck()
    check(resource(0, SHAPES[0]))
    bad = resource(0, SHAPES[0])
    bad["contained"][0]["identifier"][0]["value"] = ""
    bad["lotNumber"] = "196508313159 "
    bad["vaccineCode"]["coding"][0]["code"] = "a  b"
    with pytest.raises(InvalidEventError) as caught:
        check(bad)
    message = str(caught.value)
    assert "contained.0.identifier.0.value" in message
    assert "vaccineCode.coding.0.code" in message
    assert "196508313159" not in message
    assert caught.value.error_class == "invalid_fhir"
