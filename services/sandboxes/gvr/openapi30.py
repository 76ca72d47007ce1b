"""FastAPI writes OpenAPI 3.1; GVR documents its API in OpenAPI 3.0. This rewrites one to the other.

Only the constructs pydantic and FastAPI emit are handled: ``anyOf``/``type`` with ``null`` become
``nullable``, ``const`` an ``enum``, a list of ``examples`` one ``example``, a numeric
``exclusiveMinimum``/``exclusiveMaximum`` the boolean form; ``$schema``, ``contentMediaType`` and
``contentEncoding`` (not in 3.0) are dropped, ``info.summary`` becomes the description.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

OPENAPI_VERSION = "3.0.3"
_DROPPED = frozenset({"$schema", "contentMediaType", "contentEncoding"})
_NULL = {"type": "null"}


def add_schemas(document: dict[str, Any], models: list[type[BaseModel]]) -> None:
    """Put each model's JSON schema (and the models it uses) under components/schemas."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, definition in schema.pop("$defs", {}).items():
            schemas.setdefault(name, definition)
        schemas.setdefault(model.__name__, schema)


def to_openapi_30(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of the 3.1 `document`, written as OpenAPI 3.0.3."""
    converted = _convert(document)
    converted["openapi"] = OPENAPI_VERSION
    converted.pop("jsonSchemaDialect", None)
    info = converted.get("info", {})
    summary = info.pop("summary", None)  # info.summary is 3.1
    if summary and not info.get("description"):
        info["description"] = summary
    converted.pop("webhooks", None)
    return dict(converted)


def _convert(node: Any) -> Any:
    """Walk the document outside schemas; hand each schema (``schema``, ``schemas``) to _schema."""
    if isinstance(node, list):
        return [_convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted: dict[str, Any] = {}
    for key, value in node.items():
        if key == "schema":
            converted[key] = _schema(value)
        elif key == "schemas" and isinstance(value, dict):
            converted[key] = {name: _schema(schema) for name, schema in value.items()}
        else:
            converted[key] = _convert(value)
    return converted


def _schema(node: Any) -> Any:
    """One schema object, recursively."""
    if isinstance(node, list):
        return [_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    schema = {key: value for key, value in node.items() if key not in _DROPPED}
    for keyword in ("anyOf", "oneOf"):
        options = schema.get(keyword)
        if isinstance(options, list) and _NULL in options:
            rest = [option for option in options if option != _NULL]
            del schema[keyword]
            schema["nullable"] = True
            if len(rest) == 1 and "$ref" not in rest[0]:
                schema = rest[0] | schema
            elif len(rest) == 1:
                schema["allOf"] = rest
            else:
                schema[keyword] = rest
    types = schema.get("type")
    if isinstance(types, list):
        rest = [t for t in types if t != "null"]
        schema["type"] = rest[0] if len(rest) == 1 else rest
        if "null" in types:
            schema["nullable"] = True
    if "const" in schema:
        schema["enum"] = [schema.pop("const")]
    if isinstance(schema.get("examples"), list):
        examples = schema.pop("examples")
        if examples:
            schema["example"] = examples[0]
    for bound, keyword in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        value = schema.get(keyword)
        if isinstance(value, int | float) and not isinstance(value, bool):
            schema[bound] = value
            schema[keyword] = True
    if "$ref" in schema and len(schema) > 1:  # 3.0 ignores siblings of $ref: wrap it
        schema = {key: value for key, value in schema.items() if key != "$ref"} | {
            "allOf": [{"$ref": schema["$ref"]}]
        }
    return {
        key: _schema(value)
        if key in ("items", "not", "additionalProperties")
        else {name: _schema(s) for name, s in value.items()}
        if key == "properties" and isinstance(value, dict)
        else [_schema(s) for s in value]
        if key in ("allOf", "anyOf", "oneOf") and isinstance(value, list)
        else value
        for key, value in schema.items()
    }
