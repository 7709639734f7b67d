"""Never a 500 for bad input, on either engine (PostgreSQL refuses what SQLite takes)."""

from __future__ import annotations

import uuid

import orjson
from fastapi.testclient import TestClient
from test_store import indicator

from tansiq.accounts.store import create_account, create_token
from tansiq.node import Node, partner_identity_id
from tansiq.sharing import add_partner

PROBLEM = "application/problem+json"
TAXII = "application/taxii+json;version=2.1"


def sync_headers(node: Node) -> dict[str, str]:
    """The bearer header of partner DZ's sync account."""
    add_partner(node.db, "DZ", "Algeria", partner_identity_id("DZ"))
    create_account(node.db, "sync-dz", "sync-password-1", "sync", "DZ", allow_reserved=True)
    return {"Authorization": "Bearer " + create_token(node.db, "sync-dz", "t", "api sync")}


def test_withdrawals_after_beyond_64_bits_is_an_empty_page(client: TestClient, node: Node) -> None:
    # As GET /api/audit's 'after': nothing can come after it (SQLite could not even bind it).
    headers = sync_headers(node)
    for after in (2**63 - 1, 2**63, 10**40):
        r = client.get("/api/sync/withdrawals", params={"after": after}, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json() == {"withdrawals": [], "more": False}


OBJECT = "indicator--00000000-0000-4000-8000-000000000001"
SHARED = "/taxii2/api/collections/shared"


def test_nul_in_a_url_answers_as_any_value_matching_nothing(client: TestClient) -> None:
    """PostgreSQL text cannot hold a NUL (a 500), SQLite compares it as any other character:
    both now answer a NUL in the path or a query parameter exactly as U+FFFD there, a value no
    id, type or name holds (an unknown id: 404; a filter matching nothing: an empty page)."""
    urls = [
        ("GET", "/api/objects/indicator--{}", 404),
        ("PUT", "/api/objects/{}/distribution?distribution=own", 404),
        ("DELETE", "/api/tokens/{}", 404),
        ("GET", "/api/objects?type=x{}", 200),
        ("GET", "/api/objects?created_by={}", 200),
        ("GET", f"/api/objects/{OBJECT}?versions=all&cursor={{}}", 404),
        ("GET", "/api/tokens?username=admin{}", 404),
        ("GET", "/api/stats?unknown={}", 200),
        ("GET", f"{SHARED}/objects/indicator--{{}}/", 404),
        ("GET", f"{SHARED}/objects/{OBJECT}/versions/?match[spec_version]=2.1{{}}", 404),
        ("DELETE", f"{SHARED}/objects/{{}}/", 404),
        ("GET", "/taxii2/api/status/{}/", 404),
        ("GET", f"{SHARED}/manifest/?match[id]={{}}", 200),
        ("GET", f"{SHARED}/objects/?match[type]=indicator{{}}", 200),
        ("GET", f"{SHARED}/objects/?added_after={{}}", 400),
    ]
    for method, url, status in urls:
        taxii = {"Accept": TAXII} if url.startswith("/taxii2/") else {}
        r = client.request(method, url.format("%00"), headers=taxii)
        same = client.request(method, url.format("%EF%BF%BD"), headers=taxii)
        assert r.status_code == status, (url, r.text)
        assert (r.content, r.headers["content-type"]) == (
            same.content,
            same.headers["content-type"],
        )


def _bundle(*objects: dict[str, object]) -> bytes:
    return orjson.dumps({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects})


def test_a_string_holding_nul_is_refused_at_ingest(client: TestClient, node: Node) -> None:
    """Stored, its JSON text held the escape \\u0000, which PostgreSQL cannot read back as
    text: every TAXII manifest showing it then answered 500.  Refused on every way in."""
    nul_name = indicator(1, name="a\x00b")
    nested = indicator(2, external_references=[{"source_name": "x", "description": "\x00"}])
    nul_key = indicator(3, x_acme={"k\x00": "v"})
    for obj, prop in ((nul_name, "name"), (nested, "external_references"), (nul_key, "x_acme")):
        r = client.post("/api/bundles", content=_bundle(obj))
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["property"] == prop and "NUL" in r.text, r.text
        envelope = orjson.dumps({"objects": [obj]})
        headers = {"Accept": TAXII, "Content-Type": TAXII}
        r = client.post(f"{SHARED}/objects/", content=envelope, headers=headers)
        assert r.status_code == 202 and r.json()["failure_count"] == 1, r.text
    # A backslash and "u0000" (the text, not a NUL) is a string like any other.
    r = client.post("/api/bundles", content=_bundle(indicator(4, name="\\u0000")))
    assert r.status_code == 201, r.text
    for what in ("manifest", "objects"):
        r = client.get(f"{SHARED}/{what}/", headers={"Accept": TAXII})
        assert r.status_code == 200, r.text
    assert indicator(4)["id"] in r.text and "\\\\u0000" in r.text
    r = client.get(f"/api/objects/{indicator(4)['id']}")
    assert r.json()["name"] == "\\u0000"
