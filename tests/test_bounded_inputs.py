"""Every input is bounded in the contract itself: each text field of every service's OpenAPI
document has a maximum length and each number a range, so callers see the limits and no
100,000-character name or 10^30 size gets in."""

from __future__ import annotations

import pytest

from services.console.app import create_app as console_app
from services.documents.app import create_app as documents_app
from services.intake.app import create_app as intake_app
from services.notify.app import create_app as notify_app
from services.postal.app import create_app as postal_app
from services.routing.app import create_app as routing_app
from shared.settings import settings_class

APPS = {
    "intake": intake_app,
    "routing": routing_app,
    "postal": postal_app,
    "notify": notify_app,
    "documents": documents_app,
    "console": console_app,
}
BOUNDED_FORMATS = {"uuid", "date-time", "date"}  # fixed shapes: their length is bounded by the format


def unbounded(schema: dict, components: dict, where: str, seen: set[str]) -> list[str]:
    """Paths of the fields in ``schema`` that lack a length or range bound."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return []
        return unbounded(components[name], components, f"{where}<{name}>", seen | {name})
    found: list[str] = []
    for key in ("anyOf", "oneOf", "allOf"):
        for i, sub in enumerate(schema.get(key, ())):
            found += unbounded(sub, components, where, seen)
    kind = schema.get("type")
    if (
        kind == "string"
        and "enum" not in schema
        and "const" not in schema
        and schema.get("format") not in BOUNDED_FORMATS
        and "maxLength" not in schema
    ):
        found.append(f"{where}: text without maxLength")
    if kind in ("integer", "number") and (
        "minimum" not in schema
        and "exclusiveMinimum" not in schema
        or "maximum" not in schema
        and "exclusiveMaximum" not in schema
    ):
        found.append(f"{where}: number without a range")
    if kind == "array":
        if "maxItems" not in schema:
            found.append(f"{where}: list without maxItems")
        found += unbounded(schema.get("items", {}), components, f"{where}[]", seen)
    for name, sub in schema.get("properties", {}).items():
        found += unbounded(sub, components, f"{where}.{name}", seen)
    if isinstance(schema.get("additionalProperties"), dict):
        found += unbounded(schema["additionalProperties"], components, f"{where}.*", seen)
    return found


@pytest.mark.parametrize("service", sorted(APPS))
def test_every_input_in_the_openapi_document_is_bounded(service):
    doc = APPS[service](settings_class(service)(service_name=service, profile="local")).openapi()
    components = doc.get("components", {}).get("schemas", {})
    problems: list[str] = []
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            for p in op.get("parameters", ()):
                problems += unbounded(p["schema"], components, f"{method.upper()} {path} {p['in']}:{p['name']}", set())
            body = op.get("requestBody", {}).get("content", {})
            for media in body.values():
                problems += unbounded(media["schema"], components, f"{method.upper()} {path} body", set())
    assert problems == []
