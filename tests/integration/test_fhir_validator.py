"""NVR bundles checked offline by HAPI FHIR's R4 validator: a check no one on the project wrote."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest

from tests.support.nvr_samples import broken_bundles, bundles_to_validate

pytestmark = pytest.mark.integration

IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
FHIRVALIDATOR = (
    Path(__file__).resolve().parents[2] / "deploy" / "fhir-validator" / "fhirvalidator.py"
)
VALID = bundles_to_validate()
BROKEN = broken_bundles()


def _load_fhirvalidator() -> ModuleType:
    """deploy/fhir-validator/ is no package (it runs before any install): load the file itself."""
    spec = importlib.util.spec_from_file_location("fhirvalidator", FHIRVALIDATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


def _unavailable(why: str) -> NoReturn:
    message = f"FHIR validator unavailable: {why}"
    if IN_CI:
        pytest.fail(message + " (CI must run the FHIR check, not skip it)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def fhir_report() -> Any:
    """Every bundle of this module validated in one JVM run (start-up and R4 cost seconds)."""
    fhirvalidator = _load_fhirvalidator()
    try:
        return fhirvalidator.validate_resources(
            [(name, bundle) for name, bundle in VALID]
            + [(name, bundle) for name, bundle, _ in BROKEN]
        )
    except fhirvalidator.ValidatorUnavailableError as exc:
        _unavailable(str(exc))


def test_validator_checked_against_base_r4_offline(fhir_report: Any) -> None:
    assert fhir_report.fhir_version == "4.0.1"
    assert fhir_report.network_attempts == ()
    assert len(fhir_report.files) == len(VALID) + len(BROKEN)


@pytest.mark.parametrize("name", [name for name, _ in VALID])
def test_bundle_has_no_errors(fhir_report: Any, name: str) -> None:
    # Given a bundle regbridge would send, When HAPI FHIR validates it against R4,
    # Then no issue is an error (warnings, e.g. unknown code systems, are allowed)
    result = fhir_report.result(name)
    assert result.errors == (), "\n".join(str(issue) for issue in result.errors)
    assert result.valid


@pytest.mark.parametrize(("name", "expected"), [(name, expected) for name, _, expected in BROKEN])
def test_broken_bundle_is_rejected(fhir_report: Any, name: str, expected: str) -> None:
    # Given a bundle broken on purpose, Then the validator reports an error naming the fault
    result = fhir_report.result(name)
    assert not result.valid
    assert any(expected in str(issue) for issue in result.errors), "\n".join(
        str(issue) for issue in result.issues
    )
