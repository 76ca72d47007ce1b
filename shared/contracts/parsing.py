"""The event registry and `parse_event`: bytes from Kafka to the right contract model."""

from typing import Any, TypeAlias

import orjson
from pydantic import ValidationError

from shared.contracts.care_contact import CARE_CONTACT_KINDS, CareContactEvent
from shared.contracts.care_wait import CareWaitEvent
from shared.contracts.envelope import SCHEMA_VERSION
from shared.contracts.errors import ROOT, ContractViolationError
from shared.contracts.hsa import HsaUnitNotificationEvent
from shared.contracts.vaccination import VaccinationEvent

Event: TypeAlias = CareContactEvent | CareWaitEvent | VaccinationEvent | HsaUnitNotificationEvent
"""Any version-1 event."""

EVENT_TYPES: dict[str, type[Event]] = {
    model.EVENT_TYPE: model
    for model in (CareContactEvent, CareWaitEvent, VaccinationEvent, HsaUnitNotificationEvent)
}
"""event_type → the model of that event (version 1)."""

MAX_EVENT_BYTES = 256 * 1024
"""The largest message value the contract accepts (256 KiB), checked before any JSON parsing.

A real event is a few KiB; the bound keeps one producer's mistake (a runaway list, a file in a
field) from costing a worker memory and time, and stays well under Kafka's default 1 MB."""

_UNION_TAGS: dict[type[Event], frozenset[str]] = {CareContactEvent: frozenset(CARE_CONTACT_KINDS)}


def _decode(raw: bytes) -> tuple[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ContractViolationError.single(
            ROOT, f"not UTF-8 text (invalid byte at position {error.start})"
        ) from None
    try:  # orjson: a tenth of json's time; NaN and Infinity are not JSON to it either
        return text, orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise ContractViolationError.single(ROOT, f"not valid JSON ({error.msg})") from None


def _model_for(data: dict[str, Any]) -> type[Event]:
    if "event_type" not in data:
        raise ContractViolationError.single("event_type", "required field is missing")
    model = EVENT_TYPES.get(data["event_type"]) if isinstance(data["event_type"], str) else None
    if model is None:
        known = ", ".join(sorted(EVENT_TYPES))
        raise ContractViolationError.single("event_type", f"unknown event type (known: {known})")
    version = data.get("schema_version", SCHEMA_VERSION)
    if type(version) is not int or version != SCHEMA_VERSION:
        raise ContractViolationError.single(
            "schema_version",
            f"unsupported schema version (this contract is version {SCHEMA_VERSION})",
        )
    return model


def parse_event(raw: bytes) -> Event:
    """Validate one Kafka message value against the contract and return its model.

    A value over `MAX_EVENT_BYTES` is refused whole, before it is decoded. Raises
    `ContractViolationError` naming the field path and the rule of every failure; its
    message never contains the offending values (so no personal identity number leaks into logs).
    """
    if len(raw) > MAX_EVENT_BYTES:
        raise ContractViolationError.single(
            ROOT, f"message is {len(raw)} bytes; the contract allows at most {MAX_EVENT_BYTES}"
        )
    text, data = _decode(raw)
    if not isinstance(data, dict):
        raise ContractViolationError.single(ROOT, "an event must be a JSON object")
    model = _model_for(data)
    try:
        return model.model_validate_json(text)
    except ValidationError as error:
        raise ContractViolationError.from_validation_error(
            error, union_tags=_UNION_TAGS.get(model, frozenset())
        ) from None
