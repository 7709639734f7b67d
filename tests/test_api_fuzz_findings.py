"""Findings of a schemathesis run against /openapi.json, kept as fast, deterministic tests.

Each request below is one schemathesis reproduced (or a sibling of it); the app answered it
correctly, but the OpenAPI document said otherwise: FastAPI's default 422 ``HTTPValidationError``
where the app answers 400 ``application/problem+json``, no 401/403/404 at all, TAXII answers
documented as ``application/json``, and the bodies of the two ingest routes not documented."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tansiq.accounts.store import create_account, create_token
from tansiq.node import Node

PROBLEM = "application/problem+json"
TAXII = "application/taxii+json;version=2.1"
TAXII_HEADERS = {"Accept": TAXII}
NO_OBJECT = "indicator--00000000-0000-4000-8000-000000000000"
NO_COLLECTION = "00000000-0000-4000-8000-000000000000"


def operation(spec: dict[str, Any], method: str, url: str) -> tuple[str, dict[str, Any]]:
    """The path template and operation of *spec* that *url* (a path) is an instance of."""
    for template, ops in spec["paths"].items():
        rx = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(rx, url) and method.lower() in ops:
            return template, ops[method.lower()]
    raise AssertionError(f"{method} {url} is not in the OpenAPI document")


def assert_documented(spec: dict[str, Any], r: httpx.Response) -> None:
    """Does the document list *r*'s status for its operation, with *r*'s content type?"""
    template, op = operation(spec, r.request.method, r.request.url.path)
    status = str(r.status_code)
    where = f"{r.request.method} {template} -> {status}: {r.text[:200]}"
    assert status in op["responses"], where
    content = op["responses"][status].get("content", {})
    ctype = r.headers.get("content-type", "")
    if r.content:
        assert ctype in content, f"{where}: {ctype!r} not in {sorted(content)}"


@pytest.fixture
def spec(client: TestClient) -> dict[str, Any]:
    return client.get("/openapi.json").json()


@pytest.fixture
def reader(client: TestClient, node: Node) -> TestClient:
    create_account(node.db, "rita", "reader-password-1", "reader", "EG")
    token = create_token(node.db, "rita", "fuzz", "api", 1)
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def test_no_fastapi_validation_error_in_document(spec: dict[str, Any]) -> None:
    # The app answers a request validation error with 400 application/problem+json
    # (tansiq.api.problems), never FastAPI's 422 {"detail": [...]}.
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for template, ops in spec["paths"].items():
        for method, op in ops.items():
            for status, resp in op["responses"].items():
                for media in resp.get("content", {}).values():
                    ref = media.get("schema", {}).get("$ref", "")
                    assert not ref.endswith("/HTTPValidationError"), (method, template, status)


def test_rest_errors_are_documented(client: TestClient, spec: dict[str, Any]) -> None:
    answers = [
        client.get("/api/audit", params={"limit": 0}),  # 400
        client.get("/api/objects", params={"created_from": ""}),  # 400
        client.get(f"/api/objects/{NO_OBJECT}", params={"versions": ""}),  # 400
        client.get(f"/api/objects/{NO_OBJECT}"),  # 404
        client.put(f"/api/objects/{NO_OBJECT}/distribution", params={"distribution": "own"}),
        client.put(
            f"/api/objects/{NO_OBJECT}/distribution", params={"tlp": "x", "distribution": ""}
        ),
        client.get("/api/sync/withdrawals"),  # 403: not a sync account
        client.get("/api/tokens", params={"username": "null"}),  # 404
        client.get("/api/tokens", params={"all": "maybe"}),  # 400
        client.post("/api/tokens"),  # 400: no body
        client.post("/api/tokens", json={"scopes": "I5"}),  # 400
        client.post("/api/tokens", json={"username": "nobody"}),  # 404
        client.delete("/api/tokens/0"),  # 404
        client.post("/api/bundles", content=b""),  # 400
        client.post("/api/bundles", content=b"{}", headers={"content-type": "text/plain"}),  # 415
        client.post("/api/bundles", json={"type": "bundle", "id": "x", "objects": [{}]}),  # 422
        client.get("/api/objects", headers={"Authorization": "Bearer nope"}),  # 401
    ]
    for r in answers:
        assert r.status_code >= 400, r.request.url
        assert r.headers["content-type"] == PROBLEM
        assert_documented(spec, r)


def test_reader_refusals_are_documented(reader: TestClient, spec: dict[str, Any]) -> None:
    answers = [
        reader.get("/api/audit"),  # 403
        reader.get("/api/tokens", params={"all": "true"}),  # 403
        reader.post("/api/tokens", json={"username": "admin"}),  # 403
        reader.post("/api/bundles", json={"type": "bundle", "id": "x", "objects": []}),  # 403
        reader.delete(f"/taxii2/api/collections/{NO_COLLECTION}/objects/{NO_OBJECT}/"),
    ]
    for r in answers:
        assert r.status_code in (403, 404), (r.request.url, r.text)
        assert_documented(spec, r)


def test_taxii_answers_are_documented(client: TestClient, spec: dict[str, Any]) -> None:
    coll = f"/taxii2/api/collections/{NO_COLLECTION}"
    answers = [
        client.get("/taxii2/", headers=TAXII_HEADERS),  # 200
        client.get("/taxii2/api/", headers=TAXII_HEADERS),
        client.get("/taxii2/api/collections/", headers=TAXII_HEADERS),
        client.get("/taxii2/api/collections/", headers={"Accept": "text/html"}),  # 406
        client.get(f"{coll}/", headers=TAXII_HEADERS),  # 404 from here on
        client.get(f"{coll}/manifest/", headers=TAXII_HEADERS),
        client.get(f"{coll}/objects/", headers=TAXII_HEADERS),
        client.get(f"{coll}/objects/{NO_OBJECT}/", headers=TAXII_HEADERS),
        client.get(f"{coll}/objects/{NO_OBJECT}/versions/", headers=TAXII_HEADERS),
        client.delete(f"{coll}/objects/{NO_OBJECT}/", headers=TAXII_HEADERS),
        client.get(f"/taxii2/api/status/{NO_COLLECTION}/", headers=TAXII_HEADERS),
        client.post(f"{coll}/objects/", headers=TAXII_HEADERS),  # 415: no content type
    ]
    for r in answers:
        assert r.headers["content-type"] == TAXII, (r.request.url, r.text)
        assert_documented(spec, r)


def test_ingest_bodies_are_documented(spec: dict[str, Any]) -> None:
    # Both routes read the raw body (to stream it); undocumented, a client (or a fuzzer) sends
    # none, and the "valid" request is refused.
    bundles = spec["paths"]["/api/bundles"]["post"]["requestBody"]
    assert bundles["required"] is True
    assert bundles["content"]["application/json"]["schema"]["required"] == ["type", "objects"]
    objects = "/taxii2/api/collections/{collection_id}/objects/"
    envelope = spec["paths"][objects]["post"]["requestBody"]
    assert envelope["required"] is True
    assert envelope["content"][TAXII]["schema"]["required"] == ["objects"]


def test_timestamp_parameters_say_their_format(spec: dict[str, Any]) -> None:
    # An empty or free-form string was "valid" by the document and refused (400) by the app.
    params = spec["paths"]["/api/objects"]["get"]["parameters"]
    stamps = [p for p in params if p["name"].endswith(("_from", "_to"))]
    assert len(stamps) == 4
    for p in stamps:
        pattern = p["schema"]["pattern"]  # beside anyOf [string, null]: applies to strings
        assert re.match(pattern, "2024-01-31T12:00:00.5Z"), p["name"]
        assert not re.match(pattern, ""), p["name"]


def test_405_allow_lists_every_method_of_the_path(client: TestClient) -> None:
    # Starlette's Allow named the methods of the first route on the path only:
    # OPTIONS /api/tokens said "Allow: POST" though GET /api/tokens is served too.
    r = client.options("/api/tokens")
    assert r.status_code == 405 and r.headers["content-type"] == PROBLEM
    assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
    r = client.patch("/api/objects")
    assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD"}
