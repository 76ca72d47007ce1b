"""JSON Schema export of the contract, one self-describing file per event type."""

import json
from pathlib import Path
from typing import Any

from shared.contracts.envelope import SCHEMA_VERSION
from shared.contracts.examples import (
    CARE_CONTACT_EXAMPLES,
    CARE_WAIT_EXAMPLES,
    EXAMPLE_SETS,
    EXAMPLES,
)
from shared.contracts.parsing import EVENT_TYPES

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
DEFAULT_BASE_URI = "urn:regbridge:schema:"


def named_examples(event_type: str) -> dict[str, dict[str, Any]]:
    """The contract's examples of one event type by name ('care.contact.admission' …): one per
    care-contact kind and per waiting-list outcome, so vendors see every payload shape."""
    if event_type in EXAMPLE_SETS:
        return {f"{event_type}.{name}": e for name, e in EXAMPLE_SETS[event_type].items()}
    return {event_type: EXAMPLES[event_type]}


def event_examples(event_type: str) -> list[dict[str, Any]]:
    """The contract's examples of one event type (one per kind of care contact …)."""
    return list(named_examples(event_type).values())


def schema_file_name(event_type: str) -> str:
    """'care.contact' → 'care.contact.v1.schema.json'."""
    return f"{event_type}.v{SCHEMA_VERSION}.schema.json"


def event_schema(event_type: str, *, base_uri: str = DEFAULT_BASE_URI) -> dict[str, Any]:
    """The JSON Schema of one event type, with $id, title, description and its example."""
    model = EVENT_TYPES[event_type]
    body = model.model_json_schema(mode="validation")
    body.pop("title", None)
    body.pop("description", None)
    description = (
        f"{(model.__doc__ or '').strip()} Version {SCHEMA_VERSION} of the regbridge event "
        "contract: a JSON object on Kafka, keyed by record_id, with the common envelope "
        "(event_id, event_type, schema_version, occurred_at, source_system, record_id, "
        "record_version, operation) and the payload below. Unknown fields are rejected; every "
        "timestamp carries a zone offset."
    )
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{base_uri}{schema_file_name(event_type)}",
        "title": f"{event_type} event, version {SCHEMA_VERSION}",
        "description": description,
        **body,
        "examples": event_examples(event_type),
    }


def export_schemas(out_dir: Path, *, base_uri: str = DEFAULT_BASE_URI) -> list[Path]:
    """Write one JSON Schema per event type into `out_dir` (created if needed); return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type in sorted(EVENT_TYPES):
        path = out_dir / schema_file_name(event_type)
        schema = event_schema(event_type, base_uri=base_uri)
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


__all__ = [
    "CARE_CONTACT_EXAMPLES",
    "CARE_WAIT_EXAMPLES",
    "EXAMPLES",
    "event_examples",
    "event_schema",
    "export_schemas",
    "named_examples",
    "schema_file_name",
]
