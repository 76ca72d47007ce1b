"""The contract's whole-message bound: an oversized value is refused before it is parsed."""

import copy
import json
from typing import Any

import pytest

from shared.contracts import MAX_EVENT_BYTES, ContractViolationError, parse_event
from shared.contracts.examples import CARE_CONTACT_EXAMPLES
from shared.delivery.classify import classify_exception


def visit_of_size(size: int) -> bytes:
    """A valid outpatient visit padded (with whitespace, which JSON allows) to exactly `size`."""
    raw = json.dumps(copy.deepcopy(CARE_CONTACT_EXAMPLES["outpatient_visit"])).encode()
    assert len(raw) <= size
    return raw[:-1] + b" " * (size - len(raw)) + b"}"


def rejection(raw: bytes) -> ContractViolationError:
    with pytest.raises(ContractViolationError) as caught:
        parse_event(raw)
    return caught.value


def test_the_limit_is_256_kib() -> None:
    assert MAX_EVENT_BYTES == 256 * 1024


def test_an_event_of_exactly_the_limit_is_accepted() -> None:
    event = parse_event(visit_of_size(MAX_EVENT_BYTES))
    assert event.event_type == "care.contact"


def test_one_byte_over_the_limit_is_refused_with_both_sizes() -> None:
    error = rejection(visit_of_size(MAX_EVENT_BYTES + 1))
    assert [str(v) for v in error.violations] == [
        f"(event): message is {MAX_EVENT_BYTES + 1} bytes; the contract allows at most "
        f"{MAX_EVENT_BYTES}"
    ]


def test_the_size_is_checked_before_the_bytes_are_decoded() -> None:
    # Given half a megabyte that is neither UTF-8 nor JSON
    raw = b"\xff" * 500_000
    # Then the size is the one reason given: nothing was decoded
    assert str(rejection(raw)) == (
        f"(event): message is 500000 bytes; the contract allows at most {MAX_EVENT_BYTES}"
    )


def test_sixty_thousand_diagnoses_are_an_invalid_event() -> None:
    event: dict[str, Any] = copy.deepcopy(CARE_CONTACT_EXAMPLES["outpatient_visit"])
    event["payload"]["diagnoses"] = ["J069"] * 60_000
    error = rejection(json.dumps(event).encode())
    assert "the contract allows at most" in str(error)
    assert classify_exception(error).error_class == "invalid_event"
