"""Never a 500 for bad input, on either engine: every REST and TAXII route of the app (listed
from its routes, so a new route is covered without editing this file), as an admin and as a
partner's sync account, with hostile values in each path parameter, each query parameter and
the JSON body it takes: a NUL, a lone surrogate, 10,000 characters, a huge integer, negative
numbers and bytes that are not UTF-8.  Errors come in the route family's format: problem+json
for REST, a TAXII error message under /taxii2/.

PostgreSQL refuses NUL in text (SQLite compares it as any other character), so these found
500s there that SQLite answered 404 or 200."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from test_store import indicator

from tansiq.accounts.store import create_account, create_token
from tansiq.api.app import create_app
from tansiq.api.taxii import SHARED_ID
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


def test_a_peer_s_version_holding_nul_is_rejected_by_sync(node: Node) -> None:
    """Sync stores what it pulls unvalidated again (checked in worker processes): the NUL
    check of the stored row rejects such a version alone, and the rest of the page is kept."""
    from sync_peers import OriginPeer, enrolled

    from tansiq.federation.sync import sync_partner

    with enrolled(node, OriginPeer()) as peer:
        stamp = "2016-01-01T00:00:00.000Z"
        peer.store(peer.signed(1, stamp, name="a\x00b"), peer.signed(2, stamp))
        report = sync_partner(node, "LY")
    assert report.stored == 1 and len(report.rejections) == 1, report
    assert "name: must not hold U+0000" in report.rejections[0], report.rejections


# Hostile values as they go into a URL (already percent-encoded) and into a JSON body.
URL_VALUES = {
    "nul": "%00",
    "surrogate": "%ED%A0%80",
    "overlong": "a" * 10_000,
    "huge": "9" * 40,
    "negative": "-1",
    "huge_negative": "-" + "9" * 40,
    "non_utf8": "%FF%FE%C0",
}
JSON_VALUES: dict[str, bytes] = {
    "nul": b'"\\u0000"',
    "surrogate": b'"\\ud800"',
    "overlong": b'"' + b"a" * 10_000 + b'"',
    "huge": b"9" * 40,
    "negative": b"-1",
    "huge_negative": b"-" + b"9" * 40,
    "non_utf8": b'"\xff\xfe\xc0"',
}
KINDS = list(URL_VALUES)


def routes(app: Any) -> list[tuple[str, str, Any]]:
    """(method, path template, route) of every route the app answers (FastAPI keeps an
    included router as one entry: its routes are listed through it)."""

    def flat(entries: list[Any]) -> Iterator[Any]:
        for entry in entries:
            if hasattr(entry, "effective_candidates"):
                yield from flat(entry.effective_candidates())
            else:
                yield entry

    out = []
    for route in flat(app.router.routes):
        for method in sorted(getattr(route, "methods", None) or ()):
            out.append((method, route.path, route))
    return out


def required_query(route: Any) -> str:
    """Valid values of the query parameters the route requires (``&name=value...``)."""
    params = getattr(getattr(route, "dependant", None), "query_params", [])
    required = [p.alias for p in params if p.field_info.is_required()]
    return "".join(f"&{name}={VALID_QUERY[name]}" for name in required)


def query_names(route: Any, spec: dict[str, Any], method: str) -> list[str]:
    """The query parameters a route reads: FastAPI's, or those its OpenAPI document lists
    (TAXII routes read theirs from the request); a HEAD takes its GET's."""
    names = [p.alias for p in getattr(getattr(route, "dependant", None), "query_params", [])]
    op = spec["paths"].get(route.path, {}).get("get" if method == "HEAD" else method.lower(), {})
    names += [p["name"] for p in op.get("parameters", []) if p.get("in") == "query"]
    return list(dict.fromkeys(names))


def json_template(route: Any, spec: dict[str, Any], method: str) -> dict[str, Any] | None:
    """A valid JSON body for a route that takes one (from its OpenAPI document), else None."""
    op = spec["paths"].get(route.path, {}).get(method.lower(), {})
    content = op.get("requestBody", {}).get("content", {})
    for media in content.values():
        schema = media.get("schema", {})
        if "$ref" in schema:
            schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        props = schema.get("properties", {})
        if "objects" in props:
            body: dict[str, Any] = {"objects": [indicator(2)]}
            if "type" in props:
                body.update(type="bundle", id="bundle--00000000-0000-4000-8000-000000000001")
            return body
        return {name: "x" for name in props}
    return None


def leaves(body: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(body, dict):
        for k, v in body.items():
            yield from leaves(v, (*path, k))
    elif isinstance(body, list):
        for i, v in enumerate(body):
            yield from leaves(v, (*path, i))
    else:
        yield path


def with_hostile(body: Any, where: tuple[Any, ...], kind: str) -> bytes:
    """*body* as JSON with the value at *where* replaced by the hostile JSON value *kind*."""
    marker = "\x01HOSTILE\x01"
    target = orjson.loads(orjson.dumps(body))
    parent = target
    for step in where[:-1]:
        parent = parent[step]
    parent[where[-1]] = marker
    return orjson.dumps(target).replace(orjson.dumps(marker), JSON_VALUES[kind])


@pytest.fixture
def world(node: Node, admin_token: str) -> Iterator[dict[str, Any]]:
    sync = sync_headers(node)
    node.ingest([indicator(1)], distribution=["DZ"])
    app = create_app(node.settings, node)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield {
            "client": client,
            "spec": client.get("/openapi.json").json(),
            "routes": routes(app),
            "accounts": {"admin": {"Authorization": f"Bearer {admin_token}"}, "sync": sync},
        }


VALID_QUERY = {"distribution": "own"}
VALID_PATH = {
    "object_id": OBJECT,
    "collection_id": SHARED_ID,
    "status_id": "00000000-0000-4000-8000-000000000000",
    "token": "0000",
    "rest": "nothing",
}


def check(r: Any, method: str, where: str) -> None:
    if r.status_code < 400:
        return
    assert r.status_code < 500, f"{where}: {r.status_code} {r.text[:300]}"
    ctype = r.headers.get("content-type", "")
    path = r.request.url.path
    if path.startswith("/taxii2/"):
        assert ctype == TAXII, f"{where}: {ctype}"
        if method != "HEAD":
            body = r.json()
            assert body["http_status"] == str(r.status_code) and body["description"], where
    else:
        assert ctype == PROBLEM, f"{where}: {ctype}"
        if method != "HEAD":
            body = r.json()
            assert body["status"] == r.status_code and body["detail"], where


def requests_for(world: dict[str, Any]) -> Iterator[tuple[str, str, str, bytes | None, str]]:
    """(account, method, url, body, what): every (route, parameter, kind), as each account."""
    spec = world["spec"]
    for method, template, route in world["routes"]:
        if route.path.startswith("/static") or method == "OPTIONS":
            continue
        path_names = [p.strip("{}").split(":")[0] for p in template.split("/") if "{" in p]
        queries = query_names(route, spec, method)
        body = json_template(route, spec, method)
        targets = [("path", n) for n in path_names] + [("query", n) for n in queries]
        if body is not None:
            targets += [("body", leaf) for leaf in leaves(body)]
        if not targets:
            targets = [("query", "unknown")]  # the route still meets each hostile value
        for (place, name), kind, who in itertools.product(targets, KINDS, ("admin", "sync")):
            hostile = URL_VALUES[kind]
            values = dict(VALID_PATH)
            if place == "path":  # alone, and after a valid value ("indicator--%00")
                values[name] = hostile if who == "admin" else values[name] + hostile
            url = template
            for n in path_names:
                url = url.replace("{" + n + "}", values[n]).replace("{" + n + ":path}", values[n])
            data: bytes | None = None
            query = required_query(route)  # valid, unless it is the one made hostile
            if "versions" in queries and name != "versions":
                query += "&versions=all"  # (a REST object's cursor and limit page its versions)
            if place == "query":
                query = f"&{name}={hostile}" + query.replace(f"&{name}=", "&_=")
            elif place == "body":
                data = with_hostile(body, name, kind)
            url += "?" + query[1:] if query else ""
            yield who, method, url, data, f"{who} {method} {template} {place} {name} {kind}"


def test_no_hostile_value_answers_500(world: dict[str, Any]) -> None:
    client: TestClient = world["client"]
    seen: set[str] = set()
    failed: list[str] = []
    for who, method, url, data, what in requests_for(world):
        headers = dict(world["accounts"][who])
        if url.startswith("/taxii2/"):
            headers["Accept"] = TAXII
            headers["Content-Type"] = TAXII
        else:
            headers["Content-Type"] = "application/json"
        r = client.request(method, url, content=data, headers=headers)
        try:
            check(r, method, what)
        except AssertionError as exc:
            failed.append(str(exc))
        seen.add(what.split(" ")[2])
    assert not failed, f"{len(failed)} bad answers:\n" + "\n".join(failed)
    # The routes were found (FastAPI keeps included routers' routes behind one entry each).
    assert {"/api/objects/{object_id}/distribution", "/api/sync/withdrawals"} <= seen
    assert {"/taxii2/api/collections/{collection_id}/objects/{object_id}/versions/"} <= seen
