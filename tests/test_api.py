"""REST API: listing, paging, versions, ingest errors, export, problem documents, limits."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import orjson
from conftest import STIX_DIR
from fastapi.testclient import TestClient
from test_store import indicator

from tansiq.api import objects
from tansiq.api.app import create_app
from tansiq.node import Node
from tansiq.stix.extensions import strip_distribution
from tansiq.store.database import StoreBusy

PROBLEM = "application/problem+json"


def bundle(*objects: dict) -> dict:
    return {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": list(objects)}


def test_post_list_get_versions(client: TestClient) -> None:
    r = client.post("/api/bundles", json=bundle(indicator(1), indicator(2)))
    assert r.status_code == 201, r.text
    assert r.json() == {"total": 2, "stored": 2, "unchanged": 0}
    client.post("/api/bundles", json=bundle(indicator(1, "2015-03-01T00:00:00.000Z", name="v2")))
    r = client.get(f"/api/objects/{indicator(1)['id']}")
    assert r.json()["name"] == "v2"
    r = client.get(f"/api/objects/{indicator(1)['id']}", params={"versions": "all"})
    assert [v.get("name") for v in r.json()["versions"]] == [None, "v2"]
    r = client.get("/api/objects", params={"type": "indicator"})
    assert {o["id"] for o in r.json()["objects"]} == {indicator(1)["id"], indicator(2)["id"]}


def test_cursor_paging_visits_each_object_once(client: TestClient) -> None:
    client.post("/api/bundles", json=bundle(*[indicator(i) for i in range(25)]))
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 7, "type": "indicator"}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/api/objects", params=params).json()
        assert set(body) == {"objects", "next"}
        seen += [o["id"] for o in body["objects"]]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            break
    assert pages == 4 and len(seen) == len(set(seen)) == 25


def test_all_versions_come_in_pages(node: Node, client: TestClient) -> None:
    """``?versions=all`` answered every version at once: an object with very many versions gave
    one huge answer.  Now a page (``limit``, else page_size, at most max_page_size), oldest
    first, and ``next`` (null on the last page, also when it is exactly full)."""
    stamps = [f"2015-03-{day:02d}T00:00:00.000Z" for day in range(1, 8)]
    for i in (4, 0, 6, 2, 1, 5, 3):  # stored out of order: pages follow the versions
        node.ingest([indicator(1, stamps[i], name=str(i))])
    url = f"/api/objects/{indicator(1)['id']}"

    def walk(limit: int) -> list[list[str]]:
        pages, cursor = [], None
        while True:
            params = {
                "versions": "all",
                "limit": str(limit),
                **({"cursor": cursor} if cursor else {}),
            }
            r = client.get(url, params=params)
            assert r.status_code == 200, r.text
            assert set(r.json()) == {"versions", "next"}
            pages.append([v["name"] for v in r.json()["versions"]])
            cursor = r.json()["next"]
            if cursor is None:
                return pages

    assert walk(3) == [["0", "1", "2"], ["3", "4", "5"], ["6"]]
    assert walk(7) == [["0", "1", "2", "3", "4", "5", "6"]]  # exactly full: no next
    small = node.settings.with_overrides(page_size=2, max_page_size=4)
    with TestClient(create_app(small, node), headers=dict(client.headers)) as c:
        assert len(c.get(url, params={"versions": "all"}).json()["versions"]) == 2
        assert len(c.get(url, params={"versions": "all", "limit": 100}).json()["versions"]) == 4
    listing = client.get("/api/objects", params={"limit": 1}).json()["next"]  # another kind
    for cursor in ("garbage!", listing):
        r = client.get(url, params={"versions": "all", "cursor": cursor})
        assert r.status_code == 400 and r.headers["content-type"] == PROBLEM, cursor
    assert client.get(url).json()["name"] == "6"  # the latest, as before
    r = client.get(f"/api/objects/{indicator(99)['id']}", params={"versions": "all"})
    assert r.status_code == 404


def test_list_filters_on_created_and_modified(client: TestClient) -> None:
    old = indicator(60)
    new = indicator(61, modified="2015-03-05T00:00:00.000Z", created="2015-03-01T00:00:00.000Z")
    client.post("/api/bundles", json=bundle(old, new))

    def ids(**params: str) -> set[str]:
        r = client.get("/api/objects", params={"type": "indicator", **params})
        assert r.status_code == 200, r.text
        return {o["id"] for o in r.json()["objects"]}

    assert ids(created_from="2015-02-21T00:00:00Z") == {new["id"]}
    assert ids(created_to="2015-02-21T00:00:00Z") == {old["id"]}
    assert ids(modified_from="2015-03-02T00:00:00Z") == {new["id"]}
    assert ids(created_from="2015-02-01T00:00:00Z", modified_to="2015-02-28T00:00:00Z") == {
        old["id"]
    }


def test_invalid_bundle_is_422_with_error_list_and_stores_nothing(client: TestClient) -> None:
    bad = indicator(3)
    bad["created_by_ref"] = "indicator--x"
    r = client.post("/api/bundles", json=bundle(indicator(4), bad))
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["errors"][0]["index"] == 1 and body["errors"][0]["property"] == "created_by_ref"
    assert "detail" in body and body["status"] == 422
    assert client.get(f"/api/objects/{indicator(4)['id']}").status_code == 404


def test_conflict_is_409(client: TestClient) -> None:
    client.post("/api/bundles", json=bundle(indicator(5)))
    r = client.post("/api/bundles", json=bundle(indicator(5, name="other content")))
    assert r.status_code == 409 and r.headers["content-type"] == PROBLEM


def test_bad_input_never_500(client: TestClient) -> None:
    cases = [
        client.post(
            "/api/bundles", content=b"{not json", headers={"content-type": "application/json"}
        ),
        client.post("/api/bundles", content=b"42", headers={"content-type": "application/json"}),
        client.post(
            "/api/bundles", content=b"[1, 2]", headers={"content-type": "application/json"}
        ),
        client.get("/api/objects", params={"cursor": "garbage!"}),
        client.get("/api/objects", params={"limit": "-3"}),
        client.get("/api/objects", params={"modified_from": "yesterday"}),
        client.get("/api/objects", params={"created_to": "2015-13-01T00:00:00Z"}),
        client.get("/api/objects/x", params={"versions": "some"}),
    ]
    for r in cases:
        assert 400 <= r.status_code < 500, (r.request.url, r.status_code, r.text)
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["detail"]
    r = client.post("/api/bundles", content=b"x", headers={"content-type": "text/plain"})
    assert r.status_code == 415


def test_unknown_route_404_problem(client: TestClient) -> None:
    r = client.get("/api/nothing-here")
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM


def test_unauthenticated_is_401(node: Node) -> None:
    with TestClient(create_app(node.settings, node)) as anon:
        r = anon.get("/api/objects")
        assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
        r = anon.get("/api/objects", headers={"Authorization": "Bearer tsq_wrong"})
        assert r.status_code == 401


def test_body_over_limit_is_413(node: Node, admin_token: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = node.settings.with_overrides(max_body_bytes=1000)
    with TestClient(
        create_app(settings, node), headers={"Authorization": f"Bearer {admin_token}"}
    ) as c:
        big = bundle(*[indicator(i) for i in range(20)])
        r = c.post("/api/bundles", json=big)
        assert r.status_code == 413 and r.headers["content-type"] == PROBLEM

        def chunks():  # type: ignore[no-untyped-def]
            yield orjson.dumps(big)  # no content-length: counted while streaming

        r = c.post("/api/bundles", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413


def test_streamed_body_over_limit_is_413_on_every_route(node: Node, admin_token: str) -> None:
    """A chunked body (no Content-Length) over max_body_bytes is 413 wherever a body is read,
    also where FastAPI parses it into a model (POST /api/tokens said 400 'error parsing the
    body') and on the login form."""
    settings = node.settings.with_overrides(max_body_bytes=1000)
    with TestClient(
        create_app(settings, node), headers={"Authorization": f"Bearer {admin_token}"}
    ) as c:
        routes = {
            "/api/tokens": ("application/json", b'{"label": "' + b"x" * 2000 + b'"}'),
            "/api/bundles": ("application/json", orjson.dumps(bundle(indicator(1))) * 5),
            "/login": ("application/x-www-form-urlencoded", b"username=" + b"x" * 2000),
        }
        for path, (ctype, body) in routes.items():

            def chunks(body: bytes = body):  # type: ignore[no-untyped-def]
                for start in range(0, len(body), 100):
                    yield body[start : start + 100]

            r = c.post(path, content=chunks(), headers={"content-type": ctype})
            assert r.status_code == 413, (path, r.text)
            assert r.headers["content-type"] == PROBLEM


def test_head_answers_wherever_get_does(client: TestClient, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """RFC 9110 9.1: HEAD is supported wherever GET is; /docs, /login and every GET of /api
    answered 405.  HEAD gets GET's status and headers, without a body."""
    client.post("/api/bundles", json=bundle(indicator(1)))
    oid = indicator(1)["id"]
    paths = ["/docs", "/login", "/openapi.json", "/api/objects", f"/api/objects/{oid}"]
    paths += ["/api/export", "/api/stats", "/api/node", "/api/session", "/api/tokens"]
    for path in paths:
        get, head = client.get(path), client.head(path)
        assert get.status_code == 200, (path, get.text)
        assert head.status_code == 200, (path, head.text)
        assert head.content == b"", path
        assert head.headers["content-type"] == get.headers["content-type"], path
    assert (
        client.head("/api/objects/indicator--00000000-0000-4000-8000-000000000000").status_code
        == 404
    )
    r = client.head("/api/bundles")  # POST only
    assert r.status_code == 405
    monkeypatch.setattr(objects, "stream_bundle", None)  # HEAD /api/export exports nothing
    assert client.head("/api/export").status_code == 200


def test_export_streams_bundle_of_latest(client: TestClient) -> None:
    data = (STIX_DIR / "poisonivy.json").read_bytes()
    assert (
        client.post(
            "/api/bundles", content=data, headers={"content-type": "application/json"}
        ).status_code
        == 201
    )
    r = client.get("/api/export")
    exported = r.json()
    assert exported["type"] == "bundle"
    originals = {o["id"]: o for o in orjson.loads(data)["objects"]}
    got = {o["id"]: o for o in exported["objects"]}
    for oid, o in originals.items():
        assert strip_distribution(got[oid]) == o


def test_export_store_error_before_first_object_is_a_problem(
    node: Node, client: TestClient, monkeypatch
) -> None:
    """The export's query ran only once the 200 and its headers were sent: a store busy when
    it began gave the client a 200 whose body broke off (no bundle, not JSON) and the server
    an unhandled error.  The first row is now read before answering: a 503 problem document."""
    client.post("/api/bundles", json=bundle(indicator(1)))

    def busy(sql: str, params: object = (), size: int = 2000) -> Iterator[tuple[str]]:
        raise StoreBusy("the store is busy")
        yield ("never",)

    monkeypatch.setattr(node.db, "iterate", busy)
    r = client.get("/api/export")
    assert r.status_code == 503 and r.headers["content-type"] == PROBLEM, r.text
    assert r.headers["retry-after"] == str(StoreBusy.retry_after)
    monkeypatch.undo()
    exported = client.get("/api/export").json()  # (and a working store exports as before)
    assert indicator(1)["id"] in {o["id"] for o in exported["objects"]}


def test_openapi_and_docs(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/api/objects", "/api/objects/{object_id}", "/api/bundles", "/api/export"):
        assert path in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_stats(client: TestClient) -> None:
    client.post("/api/bundles", json=bundle(indicator(1), indicator(2)))
    body = client.get("/api/stats").json()
    assert body["by_type"]["indicator"] == 2 and body["by_type"]["identity"] == 2
