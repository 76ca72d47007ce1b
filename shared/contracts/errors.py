"""ContractViolationError: an event that breaks the contract, described by field path and rule."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from shared.identifiers import mask_personal_ids

ROOT = "(event)"
"""The path used for a failure that concerns the whole event rather than one field."""


_RULES_BY_TYPE = {
    "missing": "required field is missing",
    "extra_forbidden": "unknown field (not part of the contract)",
    "timezone_aware": "timestamp must include a time zone offset",
    "union_tag_not_found": "required field is missing",
}


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: where (dotted field path) and what (the rule, never the input value)."""

    path: str
    rule: str

    def __str__(self) -> str:
        return f"{self.path}: {self.rule}"


class ContractViolationError(ValueError):
    """The event is not a valid version-1 event; permanent, so it becomes a dead letter at once."""

    def __init__(self, violations: Sequence[Violation]) -> None:
        self.violations: tuple[Violation, ...] = tuple(violations)
        super().__init__("; ".join(str(violation) for violation in self.violations))

    @classmethod
    def single(cls, path: str, rule: str) -> "ContractViolationError":
        """An error with exactly one violation."""
        return cls([Violation(redact(path), redact(rule))])

    @classmethod
    def from_validation_error(
        cls, error: ValidationError, *, union_tags: Iterable[str] = ()
    ) -> "ContractViolationError":
        """Translate pydantic's errors, dropping their input values so nothing personal leaks.

        `union_tags` are the discriminator values that pydantic inserts into locations after the
        union field (``payload.outpatient_visit.patient``); they are not JSON fields, so the first
        one after the top level is left out of the path.
        """
        tags = frozenset(union_tags)
        violations = []
        for detail in error.errors(include_url=False, include_input=False, include_context=True):
            loc = list(detail["loc"])
            tag_at = next((i for i, part in enumerate(loc) if i > 0 and part in tags), None)
            if tag_at is not None:
                del loc[tag_at]
            rule = _RULES_BY_TYPE.get(detail["type"], detail["msg"])
            context = detail.get("ctx", {})
            if detail["type"].startswith("union_tag_"):
                loc.append(str(context.get("discriminator", "")).strip("'"))
            if detail["type"] == "union_tag_invalid":
                rule = f"unknown value (expected one of {context.get('expected_tags', '')})"
            violations.append(Violation(redact(format_path(loc)), redact(rule)))
        return cls(violations)


def format_path(loc: Sequence[int | str]) -> str:
    """('payload', 'procedures', 0, 'code') → 'payload.procedures.0.code'; () → the root marker."""
    return ".".join(str(part) for part in loc) if loc else ROOT


def redact(text: str) -> str:
    """Mask anything shaped like a personal identity number (a last line of defence)."""
    return mask_personal_ids(text)
