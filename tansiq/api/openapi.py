"""``/openapi.json`` as the app answers: its error statuses, media types and request bodies.

FastAPI documents every operation with parameters as answering 422 ``HTTPValidationError``; this
app answers a request it cannot validate with 400 ``application/problem+json``
(:mod:`tansiq.api.problems`), refuses with 401/403/404 and more, answers TAXII in
``application/taxii+json;version=2.1`` (errors as TAXII error messages), and reads the bodies of
its two ingest routes raw (so FastAPI cannot see them).  :func:`refine` rewrites the generated
document to say so; a schemathesis run against the old one found each of these differences.
It also gives the shape of the object routes' answers, whose JSON they write themselves."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from tansiq.api.problems import PROBLEM, TITLES
from tansiq.api.taxii_http import TAXII

JSON = "application/json"
TAXII_PREFIX = "/taxii2/"

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; 'detail' says what was wrong, for a person.",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
}
TAXII_ERROR_SCHEMA: dict[str, Any] = {
    "title": "TaxiiError",
    "description": "A TAXII 2.1 error message (section 3.6.1).",
    "type": "object",
    "required": ["title", "description", "http_status"],
    "properties": {
        "title": {"type": "string"},
        "description": {"type": "string"},
        "http_status": {"type": "string"},
    },
}
BUNDLE_BODY: dict[str, Any] = {
    "required": True,
    "description": "A STIX 2.1 bundle (also accepted as application/stix+json).",
    "content": {
        JSON: {
            "schema": {
                "type": "object",
                "required": ["type", "objects"],
                "properties": {
                    "type": {"const": "bundle"},
                    "id": {"type": "string", "pattern": "^bundle--"},
                    "objects": {"type": "array", "items": {"type": "object"}},
                },
            }
        }
    },
}
ENVELOPE_BODY: dict[str, Any] = {
    "required": True,
    "description": "A TAXII 2.1 envelope of STIX objects.",
    "content": {
        TAXII: {
            "schema": {
                "type": "object",
                "required": ["objects"],
                "properties": {"objects": {"type": "array", "items": {"type": "object"}}},
            }
        }
    },
}

STIX_OBJECT_SCHEMA: dict[str, Any] = {
    "title": "StixObject",
    "description": "A STIX 2.1 object version, its JSON as stored.",
    "type": "object",
    "required": ["type", "id"],
    "properties": {"type": {"type": "string"}, "id": {"type": "string"}},
}
STIX_OBJECT = {"$ref": "#/components/schemas/StixObject"}
NEXT_CURSOR: dict[str, Any] = {
    "description": "Give it as 'cursor' for the next page; null on the last page.",
    "anyOf": [{"type": "string"}, {"type": "null"}],
}
OBJECTS_PAGE_SCHEMA: dict[str, Any] = {
    "title": "ObjectsPage",
    "description": "A page of objects, the latest version of each.",
    "type": "object",
    "required": ["objects", "next"],
    "properties": {"objects": {"type": "array", "items": STIX_OBJECT}, "next": NEXT_CURSOR},
}
VERSIONS_PAGE_SCHEMA: dict[str, Any] = {
    "title": "VersionsPage",
    "description": "With versions=all: a page of the object's versions, oldest first.",
    "type": "object",
    "required": ["versions", "next"],
    "properties": {"versions": {"type": "array", "items": STIX_OBJECT}, "next": NEXT_CURSOR},
}
SCHEMAS = {
    "StixObject": STIX_OBJECT_SCHEMA,
    "ObjectsPage": OBJECTS_PAGE_SCHEMA,
    "VersionsPage": VERSIONS_PAGE_SCHEMA,
}
# What a success answers, where the route builds its JSON itself (FastAPI sees no model).
SUCCESS_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("get", "/api/objects"): {"$ref": "#/components/schemas/ObjectsPage"},
    ("get", "/api/objects/{object_id}"): {
        "oneOf": [STIX_OBJECT, {"$ref": "#/components/schemas/VersionsPage"}]
    },
}

# Every authenticated operation: no or a bad credential (401), a token without the scope or a
# suspended partner (403), a store that cannot write or stays busy (503).
COMMON = (401, 403, 503)
# Statuses particular to an operation, beyond COMMON, 400 (when it takes parameters or a body)
# and 404 (when its path has parameters).
EXTRA: dict[tuple[str, str], tuple[int, ...]] = {
    ("post", "/api/bundles"): (409, 413, 415, 422),
    ("put", "/api/objects/{object_id}/distribution"): (409,),
    ("post", "/api/tokens"): (404, 413),
    ("get", "/api/tokens"): (404,),
    ("post", "/taxii2/api/collections/{collection_id}/objects/"): (413, 415, 422),
    ("delete", "/taxii2/api/collections/{collection_id}/objects/{object_id}/"): (409,),
}
REQUEST_BODIES = {
    ("post", "/api/bundles"): BUNDLE_BODY,
    ("post", "/taxii2/api/collections/{collection_id}/objects/"): ENVELOPE_BODY,
}


def refine(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite FastAPI's generated *schema* (in place) to document what the app answers."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["TaxiiError"] = TAXII_ERROR_SCHEMA
    schemas.update(SCHEMAS)
    seen = set()
    for path, ops in schema.get("paths", {}).items():
        taxii = path.startswith(TAXII_PREFIX)
        media = TAXII if taxii else PROBLEM
        ref = {"$ref": "#/components/schemas/" + ("TaxiiError" if taxii else "Problem")}
        for method, op in ops.items():
            key = (method, path)
            responses = op.setdefault("responses", {})
            responses.pop("422", None)  # FastAPI's HTTPValidationError: never answered
            if taxii:  # successes too are TAXII (or STIX inside an envelope)
                for resp in responses.values():
                    if JSON in resp.get("content", {}):
                        resp["content"] = {TAXII: resp["content"].pop(JSON)}
            if key in SUCCESS_BODIES:
                success = next(code for code in responses if code.startswith("2"))
                responses[success]["content"] = {JSON: {"schema": SUCCESS_BODIES[key]}}
                seen.add(key)
            if key in REQUEST_BODIES:
                op["requestBody"] = REQUEST_BODIES[key]
                seen.add(key)
            statuses = set(COMMON) | set(EXTRA.get(key, ()))
            if key in EXTRA:
                seen.add(key)
            if op.get("parameters") or "requestBody" in op:
                statuses.add(400)
            if "{" in path:
                statuses.add(404)
            if taxii:
                statuses |= {406, 429}  # Accept not TAXII; Basic logins locked out
            for status in sorted(statuses):
                responses.setdefault(
                    str(status),
                    {
                        "description": TITLES.get(status, "Error"),
                        "content": {media: {"schema": ref}},
                    },
                )
    missing = (set(EXTRA) | set(REQUEST_BODIES) | set(SUCCESS_BODIES)) - seen
    if missing:  # a route renamed without this table: fail loudly, not document less
        raise RuntimeError(f"tansiq.api.openapi names operations the app lacks: {missing}")
    return schema


def install(app: FastAPI) -> None:
    """Serve the refined document at ``/openapi.json`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = refine(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    openapi_version=app.openapi_version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
