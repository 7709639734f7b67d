"""The TAXII 2.1 server: the real taxii2-client and stix2 against `tansiq serve`, and the
endpoints' rules (media types, errors, paging, filters, delete, visibility) in process."""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import requests
from conftest import PG_SKIP_REASON, PG_URL, PgSchema
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from servers import Server
from test_leak import CASES, build, expected, federations, principals
from test_store import indicator

from tansiq import audit, policy
from tansiq.accounts.principal import Principal
from tansiq.accounts.store import create_account, create_token
from tansiq.api import taxii_http
from tansiq.api.app import create_app
from tansiq.api.taxii import SHARED_ID, scope_collection_id
from tansiq.node import Node, partner_identity_id
from tansiq.sharing import add_partner
from tansiq.stix.extensions import DISTRIBUTION_EXT, set_distribution
from tansiq.stix.timestamps import from_micros, to_micros
from tansiq.store.ingest import ingest

TAXII = "application/taxii+json;version=2.1"
ADMIN_PASSWORD = "admin-password-1"  # conftest's init password
PASSWORD = "taxii-password-1"
COLLECTIONS = "/taxii2/api/collections/"
SHARED = f"{COLLECTIONS}{SHARED_ID}/"
V1, V2, V3 = "2016-01-01T00:00:00.000Z", "2016-02-01T00:00:00.000Z", "2016-03-01T00:00:00.000Z"


@dataclass
class Fed:
    node: Node
    tokens: dict[str, str]  # username -> bearer token

    def client(self, username: str = "admin", **headers: str) -> TestClient:
        auth = {"Authorization": f"Bearer {self.tokens[username]}"} if username else {}
        return TestClient(
            create_app(self.node.settings, self.node),
            headers={"Accept": TAXII, **auth, **headers},
        )


@pytest.fixture
def fed(node: Node, admin_token: str) -> Fed:
    for code in ("DZ", "TN"):
        add_partner(node.db, code, code, partner_identity_id(code))
    tokens = {"admin": admin_token}
    for username, role, partner in (
        ("reader-eg", "reader", "EG"),
        ("editor-eg", "editor", "EG"),
        ("sync-dz", "sync", "DZ"),
    ):
        # (sync-dz as partner enrolment makes it: the name is reserved to that)
        create_account(node.db, username, PASSWORD, role, partner, allow_reserved=role == "sync")
        scope = "sync" if role == "sync" else "api"
        tokens[username] = create_token(node.db, username, "taxii test", scope)
    return Fed(node, tokens)


@pytest.fixture
def tc(fed: Fed) -> Iterator[TestClient]:
    with fed.client() as c:
        yield c


def post(c: TestClient, url: str, *objects: dict[str, Any], **headers: str) -> Any:
    return c.post(
        url,
        content=orjson.dumps({"objects": list(objects)}),
        headers={"Content-Type": TAXII, **headers},
    )


def ids(r: Any) -> list[str]:
    assert r.status_code == 200, r.text
    return [o["id"] for o in r.json().get("objects", [])]


def received(n: int, origin: str, partners: list[str], modified: str = V1) -> dict[str, Any]:
    """A version another partner's node originated (stored as a pull would store it)."""
    obj = {**indicator(n, modified), "created_by_ref": partner_identity_id(origin)}
    return set_distribution(obj, origin, partners)


def error_ok(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == TAXII
    body: dict[str, Any] = r.json()
    assert set(body) == {"title", "description", "http_status"}
    assert body["http_status"] == str(status) and body["title"] and body["description"]
    return body


# -- the real client against a real server ---------------------------------------------------


def test_taxii2_client_and_stix2_against_server(fed: Fed) -> None:
    from stix2 import Filter, TAXIICollectionSource
    from taxii2client.v21 import ApiRoot, Collection, as_pages
    from taxii2client.v21 import Server as TaxiiServer

    fed.node.ingest([indicator(i) for i in range(7)], distribution=["DZ"])
    server = Server(fed.node.settings.data_path)
    try:
        taxii = TaxiiServer(f"{server.url}/taxii2/", user="admin", password=ADMIN_PASSWORD)
        assert taxii.title == "tansiq node EG"
        assert taxii.default.url == f"{server.url}/taxii2/api/"
        root = taxii.api_roots[0]
        assert isinstance(root, ApiRoot)
        assert root.versions == [TAXII]
        assert root.max_content_length == fed.node.settings.max_body_bytes
        by_id = {c.id: c for c in root.collections}
        assert set(by_id) == {
            SHARED_ID,
            scope_collection_id(",EG,"),
            scope_collection_id(",DZ,EG,"),
        }
        scoped = by_id[scope_collection_id(",DZ,EG,")]
        assert scoped.title == "Released to DZ, EG" and scoped.can_read and scoped.can_write

        seen: list[str] = []
        pages = 0
        for envelope in as_pages(scoped.get_objects, per_request=3):
            pages += 1
            seen += [o["id"] for o in envelope.get("objects", [])]
        assert pages == 3 and seen == [indicator(i)["id"] for i in range(7)]
        manifest = [
            m["id"]
            for page in as_pages(scoped.get_manifest, per_request=4)
            for m in page["objects"]
        ]
        assert manifest == seen

        status = scoped.add_objects({"objects": [indicator(20), indicator(21)]})
        assert status.status == "complete" and status.success_count == 2
        assert {s["id"] for s in status.successes} == {indicator(20)["id"], indicator(21)["id"]}
        again = root.get_status(status.id)
        assert again.id == status.id and again.total_count == 2
        stored = scoped.get_object(indicator(20)["id"])["objects"][0]
        assert stored["extensions"][DISTRIBUTION_EXT]["partners"] == ["DZ", "EG"]
        assert scoped.object_versions(indicator(20)["id"])["versions"]

        # a bearer token works as well as Basic
        bearer = {"Authorization": f"Bearer {fed.tokens['sync-dz']}"}

        class Bearer(requests.auth.AuthBase):
            def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
                r.headers.update(bearer)
                return r

        peer = Collection(f"{server.url}{SHARED}", auth=Bearer())
        assert peer.can_read and not peer.can_write
        source = TAXIICollectionSource(peer, items_per_page=4)
        found = source.query([Filter("type", "=", "indicator")])
        assert {o.id for o in found} == {indicator(i)["id"] for i in [*range(7), 20, 21]}
        assert source.get(indicator(3)["id"]).id == indicator(3)["id"]
        assert len(source.all_versions(indicator(3)["id"])) == 1

        scoped.delete_object(indicator(21)["id"])
        with pytest.raises(requests.HTTPError) as e:
            scoped.get_object(indicator(21)["id"])
        assert e.value.response.status_code == 404
    finally:
        server.stop()


# -- media types, errors, authentication -----------------------------------------------------


def test_discovery_api_root_and_collections(fed: Fed, tc: TestClient) -> None:
    r = tc.get("/taxii2/")
    assert r.status_code == 200 and r.headers["content-type"] == TAXII
    # API roots are HTTPS absolute URLs or relative ones (TAXII 2.1 4.1.1): over plain HTTP,
    # relative; under an https public_url, absolute (with its path, if any)
    assert r.json()["api_roots"] == ["/taxii2/api/"]
    assert r.json()["default"] == "/taxii2/api/"
    for public, root in (
        ("https://eg.example/", "https://eg.example/taxii2/api/"),
        ("https://eg.example/tansiq", "https://eg.example/tansiq/taxii2/api/"),
        ("http://10.0.0.5:8400/tansiq/", "/tansiq/taxii2/api/"),
    ):
        settings = fed.node.settings.with_overrides(public_url=public)
        with TestClient(create_app(settings, fed.node), headers=dict(tc.headers)) as c:
            assert c.get("/taxii2/").json()["default"] == root
    root = tc.get("/taxii2/api/").json()
    assert root["versions"] == [TAXII]
    assert root["max_content_length"] == fed.node.settings.max_body_bytes
    cols = tc.get(COLLECTIONS).json()["collections"]
    assert [c["id"] for c in cols] == [SHARED_ID, scope_collection_id(",EG,")]
    assert cols[0]["alias"] == "shared" and cols[0]["media_types"] == [
        "application/stix+json;version=2.1"
    ]
    assert tc.get(f"{COLLECTIONS}shared/").json()["id"] == SHARED_ID
    assert tc.get(f"{COLLECTIONS}{scope_collection_id(',EG,')}/").json()["title"] == (
        "Released to EG"
    )
    error_ok(tc.get(f"{COLLECTIONS}{uuid.uuid4()}/"), 404)
    error_ok(tc.get(f"{COLLECTIONS}{scope_collection_id(',DZ,EG,')}/objects/"), 404)
    with fed.client("reader-eg") as reader:
        assert {c["can_write"] for c in reader.get(COLLECTIONS).json()["collections"]} == {False}


def test_media_types_406_415_413(fed: Fed, tc: TestClient) -> None:
    for accept in ("application/json", "application/taxii+json;version=2.0", "text/html"):
        error_ok(tc.get("/taxii2/", headers={"Accept": accept}), 406)
    error_ok(tc.get("/taxii2/", headers={"Accept": "application/taxii+json;q=0, text/*"}), 406)
    for accept in (
        TAXII,
        "application/taxii+json",
        "application/taxii+json; version=2.1",
        "text/html, application/taxii+json;version=2.1;q=0.5",
        "*/*",
        "application/*",
    ):
        r = tc.get("/taxii2/api/", headers={"Accept": accept})
        assert r.status_code == 200 and r.headers["content-type"] == TAXII, accept
    body = orjson.dumps({"objects": [indicator(1)]})
    for ctype in ("application/json", "application/stix+json;version=2.1", TAXII + "0"):
        error_ok(tc.post(f"{SHARED}objects/", content=body, headers={"Content-Type": ctype}), 415)
    error_ok(tc.post(f"{SHARED}objects/", content=b"{no", headers={"Content-Type": TAXII}), 400)
    error_ok(tc.post(f"{SHARED}objects/", content=b"[1]", headers={"Content-Type": TAXII}), 400)
    small = fed.node.settings.with_overrides(max_body_bytes=1000)
    with TestClient(create_app(small, fed.node), headers=dict(tc.headers)) as c:
        assert c.get("/taxii2/api/").json()["max_content_length"] == 1000
        envelope = {"objects": [indicator(i) for i in range(20)]}
        big = orjson.dumps(envelope)
        error_ok(c.post(f"{SHARED}objects/", content=big, headers={"Content-Type": TAXII}), 413)

        def chunks() -> Iterator[bytes]:
            yield big  # no content-length: counted while streaming

        r = c.post(f"{SHARED}objects/", content=chunks(), headers={"Content-Type": TAXII})
        assert r.status_code == 413
    assert ids(tc.get(f"{SHARED}objects/", params={"match[type]": "indicator"})) == []


def test_errors_are_taxii_error_messages(tc: TestClient) -> None:
    error_ok(tc.get("/taxii2/api/nothing/"), 404)
    error_ok(tc.get(f"{SHARED}objects/indicator--{uuid.uuid4()}/"), 404)
    error_ok(tc.get(f"{SHARED}objects/indicator--{uuid.uuid4()}/versions/"), 404)
    error_ok(tc.get(f"/taxii2/api/status/{uuid.uuid4()}/"), 404)
    r = tc.put("/taxii2/api/")
    error_ok(r, 405)
    assert r.headers["allow"] == "GET, HEAD"
    for params in (
        {"limit": "0"},
        {"limit": "x"},
        {"added_after": "yesterday"},
        {"match[version]": "newest"},
        {"next": "garbage!"},
        # TAXII 2.1 3.4: each parameter once, values "without any spaces" (none empty)
        {"match[type]": "indicator, malware"},
        {"match[version]": "all,"},
        {"match[type]": "indicator,,malware"},
        [("match[type]", "indicator"), ("match[type]", "malware")],
        [("added_after", V1), ("added_after", V2)],
        [("limit", "1"), ("limit", "2")],
        [("next", "a"), ("next", "b")],
    ):
        error_ok(tc.get(f"{SHARED}objects/", params=params), 400)
        error_ok(tc.get(f"{SHARED}manifest/", params=params), 400)


def test_internal_error_is_a_taxii_error_message(
    fed: Fed, tc: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure under /taxii2/ is answered in TAXII's media type and error format, not as an
    application/problem+json (TAXII 2.1 3.1); elsewhere it stays a problem."""
    from tansiq.store import taxii_query

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(taxii_query, "objects_page", boom)
    app = create_app(fed.node.settings, fed.node)
    with TestClient(app, headers=dict(tc.headers), raise_server_exceptions=False) as c:
        body = error_ok(c.get(f"{SHARED}objects/"), 500)
    assert "boom" not in body["description"]


def test_anonymous_and_bad_credentials_are_401(fed: Fed) -> None:
    basic = base64.b64encode(b"admin:wrong-password-x").decode()
    with fed.client("") as anon:
        for headers in (
            {},
            {"Authorization": "Bearer tsq_unknown"},
            {"Authorization": f"Basic {basic}"},
            {"Authorization": "Basic !!!"},
            {"Authorization": "Negotiate abc"},
        ):
            for url in ("/taxii2/", f"{SHARED}objects/"):
                r = anon.get(url, headers=headers)
                error_ok(r, 401)
                assert r.headers["www-authenticate"] == 'Basic realm="tansiq", Bearer'
    entries = audit.page(fed.node.db, None, 1000)
    assert any(e["action"] == "login_failed" and e["target"] == "admin" for e in entries)


def test_basic_auth_is_cached(fed: Fed, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = taxii_http.verify_login

    def counting(db: Any, username: str, password: str) -> Any:
        calls.append(username)
        return real(db, username, password)

    monkeypatch.setattr(taxii_http, "verify_login", counting)
    basic = base64.b64encode(f"sync-dz:{PASSWORD}".encode()).decode()
    with fed.client("", Authorization=f"Basic {basic}") as c:
        for _ in range(3):
            assert c.get(COLLECTIONS).status_code == 200
        assert calls == ["sync-dz"]
        wrong = base64.b64encode(f"sync-dz:{PASSWORD}x".encode()).decode()
        error_ok(c.get(COLLECTIONS, headers={"Authorization": f"Basic {wrong}"}), 401)
        assert calls == ["sync-dz", "sync-dz"]


def test_basic_login_refused_at_once_when_disabled_or_password_changed(fed: Fed) -> None:
    """The remembered argon2 result never outlives the account's state: a disabled account or
    an old password is refused on the very next request (it used to pass for up to a minute)."""
    from tansiq.accounts.store import set_disabled, set_password

    basic = base64.b64encode(f"sync-dz:{PASSWORD}".encode()).decode()
    with fed.client("", Authorization=f"Basic {basic}") as c:
        assert c.get(COLLECTIONS).status_code == 200  # verified, and now remembered
        set_disabled(fed.node.db, "sync-dz", True)
        error_ok(c.get(COLLECTIONS), 401)
        set_disabled(fed.node.db, "sync-dz", False)
        assert c.get(COLLECTIONS).status_code == 200
        set_password(fed.node.db, "sync-dz", "a-brand-new-password")
        error_ok(c.get(COLLECTIONS), 401)
        fresh = base64.b64encode(b"sync-dz:a-brand-new-password").decode()
        assert c.get(COLLECTIONS, headers={"Authorization": f"Basic {fresh}"}).status_code == 200


def test_basic_login_acts_in_a_new_role_at_once(fed: Fed) -> None:
    """`tansiq account role`: a remembered Basic login keeps no right of the old role (the
    account, and so its role, is read on every request; only the argon2 result is kept)."""
    from tansiq.accounts.store import set_role

    basic = base64.b64encode(f"editor-eg:{PASSWORD}".encode()).decode()
    with fed.client("", Authorization=f"Basic {basic}") as c:
        assert c.get(SHARED).json()["can_write"] is True  # verified, and now remembered
        assert post(c, f"{SHARED}objects/", indicator(1)).status_code == 202
        set_role(fed.node.db, "editor-eg", "reader")
        assert c.get(SHARED).json()["can_write"] is False
        error_ok(post(c, f"{SHARED}objects/", indicator(2)), 403)
        error_ok(c.delete(f"{SHARED}objects/{indicator(1)['id']}/"), 403)
        set_role(fed.node.db, "editor-eg", "editor")
        assert c.get(SHARED).json()["can_write"] is True


def test_basic_auth_is_rate_limited(fed: Fed) -> None:
    strict = fed.node.settings.with_overrides(login_max_failures=2)
    wrong = base64.b64encode(b"reader-eg:not-the-password").decode()
    with TestClient(create_app(strict, fed.node), headers={"Accept": TAXII}) as c:
        for _ in range(2):
            error_ok(c.get(COLLECTIONS, headers={"Authorization": f"Basic {wrong}"}), 401)
        right = base64.b64encode(f"reader-eg:{PASSWORD}".encode()).decode()
        r = c.get(COLLECTIONS, headers={"Authorization": f"Basic {right}"})
        error_ok(r, 429)
        assert int(r.headers["retry-after"]) > 0


def test_sync_only_token_reads_but_never_writes(fed: Fed) -> None:
    token = create_token(fed.node.db, "admin", "sync only", "sync")
    with fed.client("", Authorization=f"Bearer {token}") as c:
        assert c.get(SHARED).json()["can_write"] is False
        error_ok(post(c, f"{SHARED}objects/", indicator(1)), 403)


# -- paging and filters ----------------------------------------------------------------------


def test_added_after_is_exclusive_and_headers_bracket_the_page(fed: Fed, tc: TestClient) -> None:
    result = fed.node.ingest([indicator(i) for i in range(5)])
    first, last = result.first_added, result.last_added
    assert first is not None and last is not None and last - first == 4  # one bundle: consecutive
    q = {"match[type]": "indicator"}
    r = tc.get(f"{SHARED}objects/", params=q)
    assert r.headers["X-TAXII-Date-Added-First"] == from_micros(first)
    assert r.headers["X-TAXII-Date-Added-Last"] == from_micros(last)
    assert r.json()["more"] is False and "next" not in r.json()
    after = {**q, "added_after": r.headers["X-TAXII-Date-Added-First"]}
    assert ids(tc.get(f"{SHARED}objects/", params=after)) == [
        indicator(i)["id"] for i in (1, 2, 3, 4)
    ]
    # an empty page still carries both headers (TAXII 2.1 3.2): the point it starts after
    r = tc.get(f"{SHARED}objects/", params={**q, "added_after": from_micros(last)})
    assert r.json() == {"more": False}
    assert r.headers["X-TAXII-Date-Added-First"] == from_micros(last)
    assert r.headers["X-TAXII-Date-Added-Last"] == from_micros(last)
    oid = indicator(0)["id"]
    for url in (
        f"{SHARED}manifest/",
        f"{SHARED}objects/{oid}/",
        f"{SHARED}objects/{oid}/versions/",
    ):
        r = tc.get(url, params={"added_after": from_micros(last)})
        assert r.status_code == 200 and "objects" not in r.json() and "versions" not in r.json()
        assert r.headers["X-TAXII-Date-Added-Last"] == from_micros(last), url
    r = tc.get(f"{SHARED}objects/", params={"match[type]": "malware"})
    assert r.headers["X-TAXII-Date-Added-Last"] == from_micros(0)  # nothing: resume from start
    r = tc.get(f"{SHARED}manifest/", params={**q, "added_after": from_micros(last - 1)})
    assert [m["id"] for m in r.json()["objects"]] == [indicator(4)["id"]]
    assert r.headers["X-TAXII-Date-Added-Last"] == from_micros(last)


def test_paging_one_bundle_never_loses_or_repeats(fed: Fed, tc: TestClient) -> None:
    fed.node.ingest([indicator(i) for i in range(57)])
    fed.node.ingest([indicator(i, V2) for i in range(0, 57, 5)])  # new versions of some
    for endpoint, params in (
        ("objects/", {"match[type]": "indicator"}),
        ("manifest/", {"match[type]": "indicator"}),
        ("objects/", {"match[type]": "indicator", "match[version]": "all"}),
    ):
        seen: list[tuple[str, str]] = []
        cursor, pages = None, 0
        while True:
            q = {**params, "limit": "5", **({"next": cursor} if cursor else {})}
            r = tc.get(SHARED + endpoint, params=q)
            body = r.json()
            pages += 1
            batch = body.get("objects", [])
            seen += [(o["id"], o.get("version", o.get("modified"))) for o in batch]
            assert r.headers["X-TAXII-Date-Added-Last"] >= r.headers["X-TAXII-Date-Added-First"]
            if not body["more"]:
                assert "next" not in body
                break
            assert len(batch) == 5
            cursor = body["next"]
        total = 57 + 12 if params.get("match[version]") == "all" else 57
        assert len(seen) == len(set(seen)) == total, endpoint
        assert pages == -(-total // 5)
    # the cap: limit above max_page_size gives max_page_size
    capped = fed.node.settings.with_overrides(max_page_size=10, page_size=3)
    with TestClient(create_app(capped, fed.node), headers=dict(tc.headers)) as c:
        assert len(c.get(f"{SHARED}objects/", params={"limit": 500}).json()["objects"]) == 10
        assert len(c.get(f"{SHARED}objects/").json()["objects"]) == 3


def test_match_version_first_last_all_timestamp(fed: Fed, tc: TestClient) -> None:
    for modified in (V1, V3, V2):  # v2 arrives last: added order is not version order
        fed.node.ingest([indicator(1, modified, name=modified)])
    oid = indicator(1)["id"]

    def names(url: str, version: str | None) -> list[str]:
        params = {"match[id]": oid} if url.endswith("objects/") else {}
        if version is not None:
            params["match[version]"] = version
        return [o["name"] for o in tc.get(url, params=params).json().get("objects", [])]

    for url in (f"{SHARED}objects/", f"{SHARED}objects/{oid}/"):
        assert names(url, None) == [V3]
        assert names(url, "last") == [V3]
        assert names(url, "first") == [V1]
        assert names(url, "all") == [V1, V3, V2]  # date_added order
        assert names(url, V2) == [V2]
        assert names(url, "2016-02-01T00:00:00Z") == [V2]  # same instant, other precision
        assert names(url, f"first,{V2}") == [V1, V2]
        assert names(url, "first,last") == [V1, V3]
        assert names(url, "2017-01-01T00:00:00Z") == []
    versions = tc.get(f"{SHARED}objects/{oid}/versions/").json()
    assert versions == {
        "more": False,
        "versions": [V1, V3, V2],  # as the objects write their modified (TAXII 5.3.1)
    }
    paged = tc.get(f"{SHARED}objects/{oid}/versions/", params={"limit": 2}).json()
    assert paged["more"] is True and len(paged["versions"]) == 2
    rest = tc.get(f"{SHARED}objects/{oid}/versions/", params={"next": paged["next"]}).json()
    assert rest["versions"] == [V2]
    manifest = tc.get(f"{SHARED}manifest/", params={"match[id]": oid, "match[version]": "all"})
    assert [m["version"] for m in manifest.json()["objects"]] == versions["versions"]


def test_scope_collection_first_and_last_are_its_own_versions(fed: Fed, tc: TestClient) -> None:
    """A per-scope collection holds the versions carrying exactly its scope: first and last
    (the default) are the first and last of those (TAXII 2.1 3.4.1), not the object's overall
    first or latest version, which may sit in another collection; the policy still decides."""
    fed.node.ingest([indicator(9)], distribution=["DZ"])  # so that the DZ,EG collection exists
    col = f"{COLLECTIONS}{scope_collection_id(',DZ,EG,')}/objects/"

    def names(r: Any) -> list[str]:
        assert r.status_code == 200, r.text
        return [o["name"] for o in r.json().get("objects", [])]

    fed.node.ingest([indicator(7, V1, name="eg")])
    fed.node.ingest([indicator(7, V2, name="dz+eg")], distribution=["DZ"])  # broadened
    fed.node.ingest([indicator(7, V3, name="dz+eg again")], distribution=["DZ"])
    broad = {"match[id]": indicator(7)["id"]}
    assert names(tc.get(col, params={**broad, "match[version]": "first"})) == ["dz+eg"]
    assert names(tc.get(col, params=broad)) == ["dz+eg again"]
    assert names(tc.get(col, params={**broad, "match[version]": "first,last"})) == [
        "dz+eg",
        "dz+eg again",
    ]
    assert names(tc.get(f"{SHARED}objects/", params={**broad, "match[version]": "first"})) == ["eg"]
    fed.node.ingest([indicator(8, V1, name="dz+eg")], distribution=["DZ"])
    fed.node.ingest([indicator(8, V2, name="eg")])  # narrowed
    narrow = indicator(8)["id"]
    assert names(tc.get(col, params={"match[id]": narrow})) == ["dz+eg"]
    assert names(tc.get(f"{col}{narrow}/")) == ["dz+eg"]
    assert names(tc.get(f"{SHARED}objects/", params={"match[id]": narrow})) == ["eg"]
    with fed.client("sync-dz") as dz:  # withdrawn from DZ: in no collection, in no version
        for version in ("first", "last", "all"):
            r = dz.get(f"{SHARED}objects/", params={"match[id]": narrow, "match[version]": version})
            assert names(r) == []
        error_ok(dz.get(f"{col}{narrow}/"), 404)


def test_match_type_id_spec_version_and_manifest(fed: Fed, tc: TestClient) -> None:
    fed.node.ingest([indicator(1), indicator(2), indicator(3)])
    a, b = indicator(1)["id"], indicator(3)["id"]
    assert ids(tc.get(f"{SHARED}objects/", params={"match[id]": f"{a},{b}"})) == [a, b]
    error_ok(tc.get(f"{SHARED}objects/", params=[("match[id]", a), ("match[id]", b)]), 400)
    got = ids(tc.get(f"{SHARED}objects/", params={"match[type]": "indicator,identity"}))
    assert len(got) == 3 + 2 and set(got) >= {a, b}  # the node's identity and tansiq's
    assert ids(tc.get(f"{SHARED}objects/", params={"match[type]": "malware"})) == []
    both = {"match[type]": "indicator", "match[spec_version]": "2.1"}
    assert len(ids(tc.get(f"{SHARED}objects/", params=both))) == 3
    both["match[spec_version]"] = "2.0"
    assert ids(tc.get(f"{SHARED}objects/", params=both)) == []
    r = tc.get(f"{SHARED}manifest/", params={"match[id]": a})
    entry = r.json()["objects"][0]
    assert entry == {
        "id": a,
        "date_added": r.headers["X-TAXII-Date-Added-First"],
        "version": "2015-02-20T10:00:00.000Z",  # the modified property itself (TAXII 5.3.1)
        "media_type": "application/stix+json;version=2.1",
    }
    # An SCO has no created or modified: the version a status reports is the one served
    # (its date_added), and asking for it finds the object.
    sco = {
        "type": "ipv4-addr",
        "spec_version": "2.1",
        "id": "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd",
        "value": "198.51.100.3",
    }
    reported = post(tc, f"{SHARED}objects/", sco).json()["successes"][0]["version"]
    assert tc.get(f"{SHARED}objects/{sco['id']}/versions/").json()["versions"] == [reported]
    r = tc.get(f"{SHARED}manifest/", params={"match[id]": sco["id"]})
    assert r.json()["objects"][0]["version"] == reported
    r = tc.get(f"{SHARED}objects/{sco['id']}/", params={"match[version]": reported})
    assert ids(r) == [sco["id"]]
    again = post(tc, f"{SHARED}objects/", sco).json()  # the same SCO again: the same version
    assert again["successes"][0]["version"] == reported


# -- writing and deleting --------------------------------------------------------------------


def test_add_objects_status_and_distribution(fed: Fed, tc: TestClient) -> None:
    fed.node.ingest([indicator(1)], distribution=["DZ", "TN"])
    scope = f"{COLLECTIONS}{scope_collection_id(',DZ,EG,TN,')}/"
    r = post(tc, f"{scope}objects/", indicator(2), indicator(3, V2))
    assert r.status_code == 202 and r.headers["content-type"] == TAXII
    status = r.json()
    assert status["status"] == "complete" and status["total_count"] == 2
    assert status["success_count"] == 2 and status["failure_count"] == status["pending_count"] == 0
    assert status["successes"][1] == {"id": indicator(3)["id"], "version": V2}
    assert tc.get(f"/taxii2/api/status/{status['id']}/").json() == status
    with fed.client("editor-eg") as editor:
        error_ok(editor.get(f"/taxii2/api/status/{status['id']}/"), 404)  # not the requester
        r = post(editor, f"{SHARED}objects/", indicator(4))
        assert r.json()["success_count"] == 1
    got = tc.get(f"{scope}objects/").json()["objects"]
    assert [o["id"] for o in got] == [indicator(i)["id"] for i in (1, 2, 3)]
    own = tc.get(f"{SHARED}objects/{indicator(4)['id']}/").json()["objects"][0]
    assert own["extensions"][DISTRIBUTION_EXT]["partners"] == ["EG"]  # shared: the default

    bad = indicator(6)
    bad["created_by_ref"] = "indicator--x"
    r = post(tc, f"{SHARED}objects/", indicator(5), bad, {"type": "indicator"})
    status = r.json()
    assert r.status_code == 202 and status["success_count"] == 0 and status["failure_count"] == 3
    failures = status["failures"]
    assert [f["id"] for f in failures] == [indicator(5)["id"], bad["id"], ""]
    assert "not stored" in failures[0]["message"] and "created_by_ref" in failures[1]["message"]
    assert failures[2]["message"]
    error_ok(tc.get(f"{SHARED}objects/{indicator(5)['id']}/"), 404)  # all or nothing
    r = post(tc, f"{SHARED}objects/", 42, "text", [])  # type: ignore[arg-type]
    assert r.status_code == 202 and r.json()["failure_count"] == 3
    assert {f["id"] for f in r.json()["failures"]} == {""}
    empty = post(tc, f"{SHARED}objects/").json()
    assert empty["total_count"] == 0 and "successes" not in empty and "failures" not in empty
    with fed.client("reader-eg") as reader:
        error_ok(post(reader, f"{SHARED}objects/", indicator(7)), 403)
    with fed.client("sync-dz") as peer:
        error_ok(post(peer, f"{SHARED}objects/", indicator(7)), 403)


def test_status_resources_expire_after_taxii_status_days(fed: Fed, tc: TestClient) -> None:
    """A status resource is kept ``taxii_status_days`` (30) after its request: older ones answer
    404 and the next POST deletes them (the table grew without bound)."""
    first = post(tc, f"{SHARED}objects/", indicator(1)).json()["id"]
    kept = post(tc, f"{SHARED}objects/", indicator(2)).json()["id"]
    day = 86_400 * 1_000_000
    fed.node.db.execute(
        "UPDATE taxii_status SET request_timestamp = request_timestamp - ? WHERE id = ?",
        (31 * day, first),
    )
    error_ok(tc.get(f"/taxii2/api/status/{first}/"), 404)
    assert tc.get(f"/taxii2/api/status/{kept}/").status_code == 200
    post(tc, f"{SHARED}objects/", indicator(3))
    left = {r[0] for r in fed.node.db.fetchall("SELECT id FROM taxii_status")}
    assert first not in left and kept in left and len(left) == 2


def test_exact_duplicate_of_a_partner_object_is_no_error(fed: Fed, tc: TestClient) -> None:
    """TAXII 2.1 5.5: an exact duplicate of an object already in the collection is not an error,
    even one another partner originated (which this node may not publish): it is unchanged.
    Changed in any way, it is refused as before, and the rest of its envelope with it."""
    theirs = received(2, "DZ", ["DZ", "EG"])
    ingest(fed.node.db, [theirs], prepare=lambda o: o)  # as a pull from DZ stores it
    stored = tc.get(f"{SHARED}objects/{theirs['id']}/").json()["objects"][0]
    status = post(tc, f"{SHARED}objects/", stored, indicator(30)).json()
    assert status["failure_count"] == 0 and status["success_count"] == 2, status
    assert len(tc.get(f"{SHARED}objects/{theirs['id']}/versions/").json()["versions"]) == 1
    r = tc.post(
        "/api/bundles",
        content=orjson.dumps(
            {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": [stored]}
        ),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    assert r.status_code == 201 and r.json()["unchanged"] == 1, r.text
    changed = {**stored, "name": "altered"}
    status = post(tc, f"{SHARED}objects/", changed, indicator(31)).json()
    assert status["failure_count"] == 2 and "only DZ's node" in status["failures"][0]["message"]
    assert tc.get(f"{SHARED}objects/{indicator(31)['id']}/").status_code == 404


def test_delete_by_originator_only(fed: Fed, tc: TestClient) -> None:
    for modified in (V1, V2, V3):
        fed.node.ingest([indicator(1, modified, name=modified)], distribution=["DZ"])
    oid, url = indicator(1)["id"], f"{SHARED}objects/{indicator(1)['id']}/"
    with fed.client("reader-eg") as reader:
        error_ok(reader.delete(url), 403)
        # can_write is false for a reader: 403 whether the object exists or not (TAXII 5.7)
        error_ok(reader.delete(f"{SHARED}objects/indicator--{uuid.uuid4()}/"), 403)
    assert tc.delete(url, params={"match[version]": V3}).status_code == 200
    assert [o["name"] for o in tc.get(url).json()["objects"]] == [V2]  # v2 is latest now
    assert [
        o["name"] for o in tc.get(f"{SHARED}objects/", params={"match[id]": oid}).json()["objects"]
    ] == [V2]
    error_ok(tc.delete(url, params={"match[version]": V3}), 404)  # nothing matches any more
    with fed.client("sync-dz") as peer:  # the peer sees the change
        assert [o["name"] for o in peer.get(url).json()["objects"]] == [V2]
    r = tc.delete(url)  # every remaining version
    assert r.status_code == 200 and r.headers["content-type"] == TAXII
    error_ok(tc.get(url), 404)
    error_ok(tc.get(f"{url}versions/"), 404)
    assert any(
        e["action"] == "taxii_delete" and e["target"] == oid
        for e in audit.page(fed.node.db, None, 1000)
    )
    # received from DZ: visible, but only DZ's node may delete it
    theirs = received(2, "DZ", ["DZ", "EG"])
    ingest(fed.node.db, [theirs], prepare=lambda o: o)
    error_ok(tc.delete(f"{SHARED}objects/{theirs['id']}/"), 403)
    assert ids(tc.get(f"{SHARED}objects/{theirs['id']}/")) == [theirs["id"]]
    # not visible: 404, whether it exists or not
    hidden = received(3, "TN", ["TN"])
    ingest(fed.node.db, [hidden], prepare=lambda o: o)
    error_ok(tc.delete(f"{SHARED}objects/{hidden['id']}/"), 404)
    error_ok(tc.delete(f"{SHARED}objects/indicator--{uuid.uuid4()}/"), 404)


def test_delete_never_changes_who_holds_the_current_version(fed: Fed, tc: TestClient) -> None:
    """Deleting the current version may not make current one released to other partners."""
    create_account(fed.node.db, "sync-tn", PASSWORD, "sync", "TN", allow_reserved=True)
    fed.tokens["sync-tn"] = create_token(fed.node.db, "sync-tn", "taxii test", "sync")
    fed.node.ingest([indicator(1, V1, name="wide")], distribution=["DZ", "TN"])
    fed.node.ingest([indicator(1, V2, name="narrow")], distribution=["DZ"])  # withdrawn from TN
    url = f"{SHARED}objects/{indicator(1)['id']}/"
    r = tc.delete(url, params={"match[version]": V2})
    body = error_ok(r, 409)
    assert "released to TN, who may not see" in body["description"]
    assert "DZ" not in body["description"]
    assert [o["name"] for o in tc.get(url).json()["objects"]] == ["narrow"]  # nothing deleted
    with fed.client("sync-tn") as tn:
        error_ok(tn.get(url), 404)
    # narrowing back to EG alone, then deleting that: the successor (DZ) is wider too
    fed.node.ingest([indicator(1, V3, name="own")])
    body = error_ok(tc.delete(url, params={"match[version]": V3}), 409)
    assert "released to DZ, who may not see" in body["description"]
    # deleting an old version, or every version, re-shares nothing and is allowed
    assert tc.delete(url, params={"match[version]": V1}).status_code == 200
    assert tc.delete(url).status_code == 200
    error_ok(tc.get(url), 404)
    # deleting a widening version would take the object from TN without TN's node being told
    fed.node.ingest([indicator(2, V1, name="dz")], distribution=["DZ"])
    fed.node.ingest([indicator(2, V2, name="dz+tn")], distribution=["DZ", "TN"])
    url2 = f"{SHARED}objects/{indicator(2)['id']}/"
    body = error_ok(tc.delete(url2, params={"match[version]": V2}), 409)
    assert "not released to TN" in body["description"]
    # a version with the same partners as its successor may go
    fed.node.ingest([indicator(2, V3, name="dz+tn again")], distribution=["DZ", "TN"])
    assert tc.delete(url2, params={"match[version]": V3}).status_code == 200
    assert [o["name"] for o in tc.get(url2).json()["objects"]] == ["dz+tn"]


def test_withdrawal_feed_names_deletions_only_to_the_partners_released_to(
    fed: Fed, tc: TestClient
) -> None:
    """Tombstones of deleted versions, in clock order with withdrawals, per partner."""
    create_account(fed.node.db, "sync-tn", PASSWORD, "sync", "TN", allow_reserved=True)
    for user in ("sync-dz", "sync-tn"):  # scopes as enrolment gives them
        fed.tokens[user] = create_token(fed.node.db, user, "feed test", "api sync")
    ingest = fed.node.ingest
    ingest([indicator(6, V1)], distribution=["DZ", "TN"])
    ingest([indicator(6, V2)], distribution=["DZ"])  # withdrawn from TN
    ingest([indicator(3, V1)], distribution=["DZ", "TN"])
    ingest([indicator(3, V2)], distribution=["DZ", "TN"])
    ingest([indicator(4, V1)], distribution=["DZ"])
    ingest([indicator(5, V1)])  # EG only: its deletion tells no one
    url = f"{SHARED}objects/indicator--00000000-0000-4000-8000-%012d/"
    assert tc.delete(url % 3, params={"match[version]": V1}).status_code == 200
    assert tc.delete(url % 4).status_code == 200
    assert tc.delete(url % 5).status_code == 200

    def feed(user: str, **params: Any) -> Any:
        with fed.client(user, Accept="application/json") as c:
            r = c.get("/api/sync/withdrawals", params=params)
        assert r.status_code == 200, r.text
        return r.json()

    def items(body: Any) -> list[tuple[str, str, str | None]]:
        v = {to_micros(V1): V1, to_micros(V2): V2}
        return [
            (i["id"][-2:], i["reason"], v.get(i["version"]) if "version" in i else None)
            for i in body["withdrawals"]
        ]

    assert items(feed("sync-dz")) == [("03", "deleted", V1), ("04", "deleted", V1)]
    assert items(feed("sync-tn")) == [("06", "withdrawn", None), ("03", "deleted", V1)]
    first = feed("sync-dz", limit=1)
    assert first["more"] is True and items(first) == [("03", "deleted", V1)]
    rest = feed("sync-dz", after=first["withdrawals"][0]["after"])
    assert rest["more"] is False and items(rest) == [("04", "deleted", V1)]
    with fed.client("reader-eg", Accept="application/json") as c:
        assert c.get("/api/sync/withdrawals").status_code == 403
    # a deleted version stored again is no longer to be deleted on partners' nodes
    ingest([indicator(4, V1)], distribution=["DZ"])
    assert items(feed("sync-dz")) == [("03", "deleted", V1)]


def test_withdrawal_feed_names_a_withdrawal_once_and_only_what_was_seen(fed: Fed) -> None:
    """A withdrawal keeps the position of the version that withdrew the object: later versions
    hidden from the partner do not announce the id (and their date_added) again; a version
    released to the partner but stored after a newer one that excludes it was never visible,
    so it withdraws nothing; released again and narrowed again, the object is withdrawn again."""
    create_account(fed.node.db, "sync-tn", PASSWORD, "sync", "TN", allow_reserved=True)
    fed.tokens["sync-tn"] = create_token(fed.node.db, "sync-tn", "feed test", "api sync")
    ingest = fed.node.ingest

    def feed(after: int = 0) -> list[tuple[str, int]]:
        with fed.client("sync-tn", Accept="application/json") as c:
            r = c.get("/api/sync/withdrawals", params={"after": after})
        assert r.status_code == 200, r.text
        return [(i["id"][-2:], i["after"]) for i in r.json()["withdrawals"]]

    ingest([indicator(1, V1)], distribution=["DZ", "TN"])
    ingest([indicator(1, V2)], distribution=["DZ"])  # withdrawn from TN
    first = feed()
    assert [i for i, _ in first] == ["01"]
    ingest([indicator(1, V3, name="for DZ only")], distribution=["DZ"])
    assert feed() == first and feed(after=first[-1][1]) == []
    # an older version released to TN, stored after a newer one that is not: never visible
    ingest([indicator(2, V2)], distribution=["DZ"])
    ingest([indicator(2, V1)], distribution=["TN"])
    with fed.client("sync-tn") as tn:
        error_ok(tn.get(f"{SHARED}objects/{indicator(2)['id']}/"), 404)
    assert feed() == first
    # released to TN again: no withdrawal owed; narrowed again: a new one, after the first
    ingest([indicator(1, "2016-04-01T00:00:00.000Z")], distribution=["DZ", "TN"])
    assert feed() == []
    ingest([indicator(1, "2016-05-01T00:00:00.000Z")], distribution=["DZ"])
    again = feed()
    assert [i for i, _ in again] == ["01"] and again[0][1] > first[0][1]


def test_withdrawal_feed_names_no_deletion_of_a_version_never_shown(
    fed: Fed, tc: TestClient
) -> None:
    """A version released to TN but stored after a newer one that excludes TN was never
    visible to TN: deleting it, or the whole object, must not name the object (and the
    version) to TN's node.  A version TN did see, withdrawn since, still leaves it one."""
    create_account(fed.node.db, "sync-tn", PASSWORD, "sync", "TN", allow_reserved=True)
    fed.tokens["sync-tn"] = create_token(fed.node.db, "sync-tn", "feed test", "api sync")
    ingest = fed.node.ingest
    ingest([indicator(1, V2)], distribution=["DZ"])
    ingest([indicator(1, V1)], distribution=["DZ", "TN"])  # older: never visible to TN
    ingest([indicator(2, V2)], distribution=["DZ"])
    ingest([indicator(2, V1)], distribution=["TN"])  # older: never visible to TN
    ingest([indicator(3, V1)], distribution=["DZ", "TN"])  # seen by TN...
    ingest([indicator(3, V2)], distribution=["DZ"])  # ...then withdrawn from it
    url = f"{SHARED}objects/indicator--00000000-0000-4000-8000-%012d/"
    with fed.client("sync-tn") as tn:
        for n in (1, 2, 3):
            error_ok(tn.get(url % n), 404)
    assert tc.delete(url % 1, params={"match[version]": V1}).status_code == 200
    assert tc.delete(url % 2).status_code == 200
    assert tc.delete(url % 3).status_code == 200
    with fed.client("sync-tn", Accept="application/json") as c:
        r = c.get("/api/sync/withdrawals")
    assert r.status_code == 200, r.text
    got = [(i["id"][-2:], i["reason"], i.get("version")) for i in r.json()["withdrawals"]]
    assert got == [("03", "deleted", to_micros(V1))]


# -- visibility and audit --------------------------------------------------------------------


def test_sync_principal_sees_only_own_objects_released_to_it(fed: Fed) -> None:
    node = fed.node
    node.ingest([indicator(1)])  # EG only
    node.ingest([indicator(2)], distribution=["DZ"])
    node.ingest([indicator(3)], distribution=["TN"])
    node.ingest([indicator(4), indicator(5)], distribution=["DZ", "TN"])
    ingest(node.db, [received(6, "DZ", ["DZ", "EG"])], prepare=lambda o: o)  # DZ's own
    ingest(node.db, [received(7, "TN", ["DZ", "EG", "TN"])], prepare=lambda o: o)  # TN's
    node.ingest([indicator(8)], distribution=["DZ"])
    node.ingest([indicator(8, V2)], distribution=["TN"])  # narrowed: withdrawn from DZ
    node.ingest([indicator(9, name="v1")])
    node.ingest([indicator(9, V2, name="v2")], distribution=["DZ"])  # widened: v2 only
    want = {indicator(i)["id"] for i in (2, 4, 5, 9)}
    peer = Principal("sync-dz", "sync", "DZ")
    visible = policy.condition(peer, node.code)
    rows = node.db.fetchall(f"SELECT id FROM latest_objects WHERE {visible[0]}", visible[1])
    assert {r[0] for r in rows} == want  # the rule itself, as the reference
    with fed.client("sync-dz") as c:
        cols = c.get(COLLECTIONS).json()["collections"]
        assert {col["id"]: col["can_write"] for col in cols} == {
            SHARED_ID: False,
            scope_collection_id(",DZ,EG,"): False,
            scope_collection_id(",DZ,EG,TN,"): False,
        }
        for version in ("last", "all", "first"):
            r = c.get(f"{SHARED}objects/", params={"match[version]": version})
            assert set(ids(r)) == want and len(ids(r)) == 4, version
            assert [o.get("name") for o in r.json()["objects"]][-1] == "v2"  # first it may see
        assert set(ids(c.get(f"{COLLECTIONS}{scope_collection_id(',DZ,EG,TN,')}/objects/"))) == {
            indicator(4)["id"],
            indicator(5)["id"],
        }
        for hidden in (1, 3, 6, 7, 8):
            error_ok(c.get(f"{SHARED}objects/{indicator(hidden)['id']}/"), 404)
            error_ok(c.get(f"{SHARED}objects/{indicator(hidden)['id']}/versions/"), 404)
        error_ok(c.get(f"{COLLECTIONS}{scope_collection_id(',EG,TN,')}/"), 404)
        manifest = c.get(f"{SHARED}manifest/", params={"match[version]": "all"}).json()
        assert {m["id"] for m in manifest["objects"]} == want
    with fed.client() as admin:  # staff of EG see every version, scopes included
        got = ids(admin.get(f"{SHARED}objects/", params={"match[type]": "indicator"}))
        assert set(got) == {indicator(i)["id"] for i in range(1, 10)}
        scoped = f"{COLLECTIONS}{scope_collection_id(',DZ,EG,')}/objects/"
        assert ids(admin.get(scoped, params={"match[version]": "all"})) == [
            indicator(2)["id"],
            indicator(6)["id"],
            indicator(8)["id"],  # its first version, released to DZ
            indicator(9)["id"],
        ]
        # each object's last version in this collection: 8's is its first (DZ), though its
        # latest (TN) sits in another collection; 9's v1 (EG only) is in none of DZ's
        assert ids(admin.get(scoped)) == [
            indicator(2)["id"],
            indicator(6)["id"],
            indicator(8)["id"],
            indicator(9)["id"],
        ]
        first = admin.get(
            f"{SHARED}objects/{indicator(9)['id']}/", params={"match[version]": "first"}
        )
        assert [o["name"] for o in first.json()["objects"]] == ["v1"]


def test_one_audit_entry_per_read(fed: Fed, tc: TestClient) -> None:
    fed.node.ingest([indicator(i) for i in range(4)])

    def count() -> int:
        row = fed.node.db.fetchone("SELECT COUNT(*) FROM audit")
        assert row is not None
        return int(row[0])

    for url, action in (
        (f"{SHARED}objects/", "objects"),
        (f"{SHARED}manifest/", "manifest"),
        (f"{SHARED}objects/{indicator(1)['id']}/", "object"),
        (f"{SHARED}objects/{indicator(1)['id']}/versions/", "versions"),
    ):
        before = count()
        assert tc.get(url, params={"limit": 2}).status_code == 200
        assert count() == before + 1
        entry = audit.page(fed.node.db, before, 1)[0]
        assert entry["action"] == "taxii_read" and entry["actor"] == "admin"
        assert entry["target"] == SHARED_ID and entry["detail"]["endpoint"] == action
    assert audit.verify(fed.node.db).ok


def test_a_read_of_one_object_names_it_in_its_audit_entry(fed: Fed, tc: TestClient) -> None:
    """A reviewer asking who read an object finds its TAXII reads too (as /api/objects/ID's
    object_read names it): the object and versions endpoints put its id in the entry."""
    fed.node.ingest([indicator(i) for i in range(3)])
    oid = indicator(2)["id"]
    for url, named in (
        (f"{SHARED}objects/{oid}/", oid),
        (f"{SHARED}objects/{oid}/versions/", oid),
        (f"{SHARED}objects/", None),
        (f"{SHARED}manifest/", None),
    ):
        row = fed.node.db.fetchone("SELECT MAX(seq) FROM audit")
        assert row is not None and tc.get(url).status_code == 200
        [entry] = audit.page(fed.node.db, int(row[0]), 10)
        assert entry["action"] == "taxii_read" and entry["target"] == SHARED_ID
        assert entry["detail"].get("object") == named, (url, entry)


# -- the leak property test's federations, read through TAXII ---------------------------------

LEAK_EXAMPLES = int(os.environ.get("TANSIQ_TAXII_LEAK_EXAMPLES", "30"))
LEAK_PG_EXAMPLES = int(os.environ.get("TANSIQ_TAXII_LEAK_PG_EXAMPLES", "8"))
Model = dict[str, list[tuple[str, set[str], str]]]


def _walk(c: TestClient, url: str, params: dict[str, str], key: str = "objects") -> list[Any]:
    """Every item of a paged TAXII list, two per page, checking nothing repeats."""
    items: list[Any] = []
    cursor = None
    while True:
        body = c.get(url, params={**params, "limit": "2", **({"next": cursor} if cursor else {})})
        assert body.status_code == 200, body.text
        items += body.json().get(key, [])
        if not body.json()["more"]:
            return items
        cursor = body.json()["next"]


def check_taxii(node: Node, fed: Any, model: Model) -> None:
    app = create_app(node.settings, node)
    note = {"match[type]": "note"}
    with TestClient(app, headers={"Accept": TAXII}) as c:
        for p in principals(fed):
            if p.partner is None:
                error_ok(c.get(f"{SHARED}objects/"), 401)
                continue
            app.dependency_overrides[taxii_http.client] = lambda p=p: taxii_http.Client(
                p, "test", True
            )
            want = expected(fed, model, p)
            latest = {oid: v[-1] for oid, v in want.items()}
            got = _walk(c, f"{SHARED}objects/", note)
            assert {o["id"]: o["modified"] for o in got} == latest and len(got) == len(latest)
            every = _walk(c, f"{SHARED}objects/", {**note, "match[version]": "all"})
            pairs = sorted((o["id"], o["modified"]) for o in every)
            assert pairs == sorted((oid, m) for oid, ms in want.items() for m in ms), p
            first = _walk(c, f"{SHARED}objects/", {**note, "match[version]": "first"})
            assert {o["id"]: o["modified"] for o in first} == {k: v[0] for k, v in want.items()}
            manifest = _walk(c, f"{SHARED}manifest/", {**note, "match[version]": "all"})
            assert sorted((m["id"], to_micros(m["version"])) for m in manifest) == sorted(
                (oid, to_micros(m)) for oid, ms in want.items() for m in ms
            )
            # A scope's collection holds the visible versions carrying exactly that scope, and
            # answers each object's last of them; one is listed per scope of a latest version.
            by_scope: dict[str, dict[str, str]] = {}
            scope_of: dict[tuple[str, str], str] = {}
            for oid, ms in want.items():
                released = {m: partners for m, partners, _ in model[oid]}
                for m in ms:  # oldest first: each scope keeps its last
                    scope = scope_collection_id("," + ",".join(sorted(released[m])) + ",")
                    by_scope.setdefault(scope, {})[oid] = m
                    scope_of[oid, m] = scope
            listed = [col["id"] for col in c.get(COLLECTIONS).json()["collections"][1:]]
            assert sorted(listed) == sorted({scope_of[oid, m] for oid, m in latest.items()})
            for col_id in listed:
                in_scope: dict[str, str] = {}
                for o in _walk(c, f"{COLLECTIONS}{col_id}/objects/", note):
                    codes = o["extensions"][DISTRIBUTION_EXT]["partners"]
                    assert col_id == scope_collection_id("," + ",".join(codes) + ",")
                    assert o["id"] not in in_scope
                    in_scope[o["id"]] = o["modified"]
                assert in_scope == by_scope.get(col_id, {}), (p, col_id)
            for oid in model:
                r = c.get(f"{SHARED}objects/{oid}/", params={"match[version]": "all"})
                v = c.get(f"{SHARED}objects/{oid}/versions/")
                if oid in want:
                    assert [o["modified"] for o in r.json()["objects"]] == want[oid]
                    assert [to_micros(x) for x in v.json()["versions"]] == [
                        to_micros(m) for m in want[oid]
                    ]
                else:
                    error_ok(r, 404)
                    error_ok(v, 404)
            CASES["count"] += 7
        app.dependency_overrides.clear()


@hsettings(max_examples=LEAK_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(fed=federations())
def test_taxii_never_leaks_sqlite(fed: Any, tmp_path_factory: Any) -> None:
    node, model = build(fed, tmp_path_factory.mktemp("taxii-leak") / "n", "")
    try:
        check_taxii(node, fed, model)
    finally:
        node.close()


@pytest.mark.skipif(not PG_URL, reason=PG_SKIP_REASON)
@hsettings(max_examples=LEAK_PG_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(fed=federations())
def test_taxii_never_leaks_postgresql(fed: Any, tmp_path_factory: Any) -> None:
    schema = PgSchema()
    try:
        node, model = build(fed, tmp_path_factory.mktemp("taxii-leak") / "n", schema.url)
        try:
            check_taxii(node, fed, model)
        finally:
            node.close()
    finally:
        schema.drop()


def test_head_answers_like_get_without_a_body(fed: Fed, tc: TestClient) -> None:
    """HTTP (RFC 9110 9.1): a server supporting GET on a resource supports HEAD; the TAXII
    endpoints answered 405 to it."""
    fed.node.ingest([indicator(1, V1), indicator(1, V2)])
    oid = indicator(1)["id"]
    for url in (
        "/taxii2/",
        "/taxii2/api/",
        COLLECTIONS,
        SHARED,
        f"{SHARED}manifest/",
        f"{SHARED}objects/",
        f"{SHARED}objects/{oid}/",
        f"{SHARED}objects/{oid}/versions/",
    ):
        get, head = tc.get(url), tc.head(url)
        assert head.status_code == get.status_code == 200, (url, head.text)
        assert head.content == b""
        for name in ("content-type", "x-taxii-date-added-first", "x-taxii-date-added-last"):
            assert head.headers.get(name) == get.headers.get(name), (url, name)
    error_ok(tc.get(f"{SHARED}objects/indicator--{uuid.uuid4()}/"), 404)
    r = tc.put("/taxii2/api/")
    assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD"}
