"""Web security review findings: caching of classified answers, hostile credentials, timing."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from test_auth import login, web

from tansiq.accounts import store
from tansiq.accounts.store import create_account, set_disabled
from tansiq.node import Node

TAXII_ACCEPT = {"Accept": "application/taxii+json;version=2.1"}


def indicator() -> dict:
    now = "2024-01-01T00:00:00.000Z"
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid4()}",
        "created": now,
        "modified": now,
        "name": "classified",
        "pattern": "[ipv4-addr:value = '198.51.100.7']",
        "pattern_type": "stix",
        "valid_from": now,
    }


def test_answers_carrying_objects_are_not_kept_by_caches(client: TestClient, node: Node) -> None:
    """A shared browser (or a proxy) must not keep classified objects, sessions or tokens:
    every dynamic answer - objects, TAXII, errors, the docs page - says ``no-store``; only the
    vendored static files may be cached."""
    obj = indicator()
    bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": [obj]}
    r = client.post("/api/bundles", json=bundle)
    assert r.status_code == 201, r.text
    assert r.headers.get("cache-control") == "no-store"
    for path in (
        "/api/objects",
        f"/api/objects/{obj['id']}",
        f"/api/objects/{obj['id']}?versions=all",
        "/api/export",
        "/api/stats",
        "/api/node",
        "/api/audit",
        "/api/nothing",
        "/docs",
        "/openapi.json",
    ):
        r = client.get(path)
        assert r.status_code in (200, 404), (path, r.text)
        assert r.headers.get("cache-control") == "no-store", path
    shared = f"/taxii2/api/collections/shared/objects/{obj['id']}/"
    for path in ("/taxii2/", "/taxii2/api/collections/", shared, "/taxii2/nothing/"):
        r = client.get(path, headers=TAXII_ACCEPT)
        assert r.status_code in (200, 404), (path, r.text)
        assert r.headers.get("cache-control") == "no-store", path
    with web(node) as anon:
        for r in (anon.get("/api/objects"), anon.post("/logout")):
            assert r.headers.get("cache-control") == "no-store"
    r = client.get("/static/docs-init.js")
    assert r.status_code == 200 and "no-store" not in r.headers.get("cache-control", "")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("value", [b"Basic \xff\xfe", "Basic é==".encode("latin-1")])
def test_basic_credentials_with_non_ascii_bytes_are_401_not_500(node: Node, value: bytes) -> None:
    """Header bytes outside ASCII reach the app as latin-1 text, which base64 refuses with a
    ValueError (not binascii.Error): it answered 500."""
    with web(node) as c:
        r = c.get("/taxii2/", headers={"Authorization": value, **TAXII_ACCEPT})
        assert r.status_code == 401, r.text
        assert r.json()["description"] == "malformed Basic credentials"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_disabled_account_costs_a_password_check_like_any_other(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong login for a disabled account skipped argon2 and answered at once, while unknown
    and enabled names took the hash's time: the speed told which names are disabled accounts."""
    create_account(node.db, "dora", "dora-password-1", "reader", "EG")
    set_disabled(node.db, "dora", True)
    checks: list[str] = []
    real = store.check_password

    def counting(stored: str, password: str) -> bool:
        checks.append(password)
        return real(stored, password)

    monkeypatch.setattr(store, "check_password", counting)
    for username in ("nobody", "dora", "admin"):
        checks.clear()
        assert store.match_login(node.db, username, "wrong-password") is None
        assert checks == ["wrong-password"], username
    checks.clear()  # the right password of a disabled account does not log in either
    assert store.match_login(node.db, "dora", "dora-password-1") is None
    assert checks == ["dora-password-1"]
    with web(node) as c:
        r = login(c, "dora", "dora-password-1")
        assert r.status_code == 401 and r.json()["detail"] == "invalid username or password"


def test_a_flood_of_bad_tokens_is_refused_but_recorded_only_up_to_the_limit(
    node: Node, admin_token: str
) -> None:
    """Each rejected bearer token was an audit entry: anyone could grow the log without bound.
    Beyond ``audit_rejected_tokens`` per window they are refused alike but not written; a valid
    token and a web login from the same client still work."""
    from tansiq import audit

    rejected = "SELECT COUNT(*) FROM audit WHERE action = 'token_rejected'"
    with web(node, audit_rejected_tokens=3) as c:
        for i in range(5):
            bad = {"Authorization": f"Bearer not-a-token-{i}"}
            assert c.get("/api/objects", headers=bad).status_code == 401
            assert c.get("/taxii2/api/collections/", headers=bad).status_code == 401
        assert node.db.fetchone(rejected) == (3,)
        good = {"Authorization": f"Bearer {admin_token}"}
        assert c.get("/api/objects", headers=good).status_code == 200
        assert login(c, "admin", "admin-password-1").status_code == 200
    assert audit.verify(node.db).ok


@pytest.mark.parametrize(
    "body",
    [
        '{"label": "ci\\u0000job"}',  # NUL: PostgreSQL text cannot hold it
        '{"label": "ci\\u001b[2J\\nfake row"}',  # a terminal escape and a line break
        '{"username": "ad\\u0000min"}',
        '{"username": "\\ud800"}',  # a lone surrogate: no UTF-8, on either database
    ],
)
def test_token_requests_with_unstorable_text_are_refused_not_500(
    node: Node, admin_token: str, body: str
) -> None:
    """POST /api/tokens with a NUL in the label or the username answered 500 on PostgreSQL,
    and a lone surrogate in the username 500 on both databases; GET /api/tokens?username= with
    a NUL too.  A label with control characters was stored, and ``tansiq token list`` printed
    it to an admin's terminal as is.  Now: 400 for such a label, 404 for such a name."""
    from tansiq.api.app import create_app

    auth = {"Authorization": f"Bearer {admin_token}"}
    app = create_app(node.settings, node)
    with TestClient(app, raise_server_exceptions=False, headers=auth) as c:
        r = c.post("/api/tokens", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == (400 if "label" in body else 404), r.text
        assert node.db.fetchone("SELECT COUNT(*) FROM tokens") == (1,)  # the admin's only
        r = c.get("/api/tokens", params={"username": "ad\x00min"})
        assert r.status_code == 404, r.text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_login_form_is_read_only_up_to_a_small_size(node: Node) -> None:
    """Anyone may post /login, and the whole body (up to max_body_bytes, 64 MiB) was read,
    decoded and parsed before anything else: a few such posts at once held gigabytes.  A form
    over LOGIN_FORM_BYTES is 413, sent with a Content-Length or streamed without one."""
    from tansiq.api.auth import LOGIN_FORM_BYTES

    with web(node) as c:
        csrf = c.get("/login").cookies["tansiq_login_csrf_eg"]
        padding = "x" * (LOGIN_FORM_BYTES + 1)
        data = {"username": "admin", "password": padding, "csrf": csrf}
        r = c.post("/login", data=data)
        assert r.status_code == 413, r.text
        body = f"username=admin&csrf={csrf}&password={padding}".encode()
        chunks = (body[i : i + 4096] for i in range(0, len(body), 4096))
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        r = c.post("/login", content=chunks, headers=form)
        assert r.status_code == 413, r.text
        assert login(c, "admin", "admin-password-1").status_code == 200


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_cookies_planted_by_another_host_are_not_the_node_s(node: Node) -> None:
    """Over https the login CSRF and session cookies were plain names: a neighbouring host of
    the domain (``Domain=``), or anyone answering for the node on plain http, could plant
    them.  A planted CSRF cookie made a cross-site login form pass the double-submit check
    (login CSRF: the victim works in the attacker's account); a planted session cookie was
    taken as the victim's.  Now over https they are ``__Host-`` cookies, which browsers take
    only from the node itself, and a cookie without the prefix is not looked at."""
    from tansiq.accounts.sessions import start_session

    planted = "a" * 40
    form = {"username": "admin", "password": "admin-password-1", "csrf": planted}
    with web(node, "https://eg.partners.example") as c:
        r = c.post("/login", data=form, headers={"Cookie": f"tansiq_login_csrf_eg={planted}"})
        assert r.status_code == 403, r.text
        r = c.post(
            "/login", data=form, headers={"Cookie": f"__Host-tansiq_login_csrf_eg={planted}"}
        )
        assert r.status_code == 200, r.text  # the node's own cookie (as a browser keeps it)
        started = start_session(node.db, "admin", 60, idle_minutes=30)
        assert started is not None
        c.cookies.clear()
        r = c.get("/api/session", headers={"Cookie": f"tansiq_session_eg={started[0]}"})
        assert r.status_code == 401, r.text
        r = c.get("/api/session", headers={"Cookie": f"__Host-tansiq_session_eg={started[0]}"})
        assert r.status_code == 200 and r.json()["via"] == "session"
    with web(node) as local:  # plain http to loopback: no Secure, so no prefix either
        assert login(local, "admin", "admin-password-1").status_code == 200
        assert "tansiq_session_eg" in local.cookies


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_basic_credentials_in_latin_1_log_in_as_in_utf_8(node: Node) -> None:
    """Python's requests (and so taxii2-client) sends Basic credentials given as text in
    ISO-8859-1: a password with an accented letter, which logs in at /login, was 401
    "malformed Basic credentials" on TAXII.  Bytes that are not UTF-8 are now read as
    ISO-8859-1; UTF-8 ones as before, and a wrong password stays wrong."""
    import base64

    password = "sécurité-été-2026"
    create_account(node.db, "hela", password, "reader", "EG")
    with web(node) as c:
        for encoding in ("latin-1", "utf-8"):
            for secret, status in ((password, 200), ("sécurité-hiver", 401)):
                raw = base64.b64encode(f"hela:{secret}".encode(encoding)).decode()
                auth = {"Authorization": f"Basic {raw}", **TAXII_ACCEPT}
                r = c.get("/taxii2/api/collections/", headers=auth)
                assert r.status_code == status, (encoding, secret, r.text)


def test_a_trailing_slash_redirect_names_no_host_the_client_chose(
    client: TestClient, node: Node
) -> None:
    """REST and web paths with a "/" too many (or too few) are redirected with 307 to the
    route, the query kept; the Location is relative: Starlette's own built it from the Host
    header (any host the client named, and http:// behind a TLS proxy)."""
    evil = {"Host": "evil.example"}
    for sent, where in (
        ("/api/objects/?limit=1", "/api/objects?limit=1"),
        ("/login/", "/login"),
        ("/docs/", "/docs"),
        ("/taxii2", "/taxii2/"),
    ):
        r = client.get(sent, headers=evil, follow_redirects=False)
        assert r.status_code == 307 and r.headers["location"] == where, (sent, r.headers)
    r = client.post("/api/bundles/", headers=evil, json={}, follow_redirects=False)
    assert r.status_code == 307 and r.headers["location"] == "/api/bundles"
    r = client.get("/api/objects/", params={"limit": 1}, follow_redirects=True)
    assert r.status_code == 200 and "objects" in r.json()
    r = client.get("/api/no-such-thing/", headers=evil, follow_redirects=False)
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
