"""Logins, sessions, CSRF, rate limiting, API tokens, security headers and HTTPS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from servers import Server
from test_store import indicator

from tansiq.accounts.store import create_account, create_token, get_account
from tansiq.api.app import create_app
from tansiq.node import Node
from tansiq.settings import Settings

PROBLEM = "application/problem+json"
LOCAL = "http://127.0.0.1"  # plain http to loopback: the session cookie comes without Secure
PASSWORD = "reader-password-1"
CSRF_FAILED = "CSRF token missing or wrong"


def bundle(*objects: dict) -> dict:
    return {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": list(objects)}


def web(
    node: Node, base_url: str = LOCAL, address: str = "10.0.0.1", **overrides: object
) -> TestClient:
    settings = node.settings.with_overrides(**overrides) if overrides else node.settings
    return TestClient(create_app(settings, node), base_url=base_url, client=(address, 50000))


def form_csrf(page: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', page)
    assert m, page
    return m.group(1)


def login(c: httpx.Client | TestClient, username: str, password: str) -> httpx.Response:
    csrf = form_csrf(c.get("/login").text)
    return c.post("/login", data={"username": username, "password": password, "csrf": csrf})


@pytest.fixture
def reader(node: Node) -> str:
    create_account(node.db, "rita", PASSWORD, "reader", "EG")
    return "rita"


@pytest.fixture
def admin_web(node: Node) -> Iterator[TestClient]:
    with web(node) as c:
        r = login(c, "admin", "admin-password-1")
        assert r.status_code == 200, r.text
        c.headers["X-Test-CSRF"] = r.json()["csrf"]  # kept at hand, sent only when a test says
        yield c


# -- login -----------------------------------------------------------------------------------
def test_login_page_is_a_plain_form_with_csrf(node: Node) -> None:
    with web(node) as c:
        r = c.get("/login")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "<script" not in r.text and "<style" not in r.text and "style=" not in r.text
        assert form_csrf(r.text) == c.cookies.get("tansiq_login_csrf_eg")
        # without the pre-session cookie the form's token is worth nothing
        data = {"username": "admin", "password": "admin-password-1", "csrf": form_csrf(r.text)}
        c.cookies.clear()
        r = c.post("/login", data=data)
        assert r.status_code == 403 and r.json()["detail"] == CSRF_FAILED


def test_login_sets_hardened_session_cookie(node: Node) -> None:
    for base, secure in (
        ("https://tansiq.example", True),
        ("http://tansiq.example", True),
        (LOCAL, False),
        ("http://localhost", False),
    ):
        prefix = "__Host-" if secure else ""  # (only from this host over https: see deps)
        with web(node, base) as c:
            page = c.get("/login")
            pre = cookie_attrs(page, f"{prefix}tansiq_login_csrf_eg")
            assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= set(pre)
            assert ("Secure" in pre) is secure
            # a client keeps Secure cookies from plain http to itself: send the cookie by hand
            csrf = form_csrf(page.text)
            c.cookies.clear()
            r = c.post(
                "/login",
                headers={"Cookie": f"{prefix}tansiq_login_csrf_eg={csrf}"},
                data={"username": "admin", "password": "admin-password-1", "csrf": csrf},
            )
            assert r.status_code == 200, r.text
            attrs = cookie_attrs(r, f"{prefix}tansiq_session_eg")
            assert {"HttpOnly", "SameSite=Strict", "Path=/"} <= set(attrs), attrs
            assert f"Max-Age={node.settings.session_minutes * 60}" in attrs
            assert ("Secure" in attrs) is secure, (base, attrs)


def cookie_attrs(r: httpx.Response, name: str) -> list[str]:
    cookie = next(v for v in r.headers.get_list("set-cookie") if v.startswith(name + "="))
    return [a.strip() for a in cookie.split(";")]


def test_browser_login_redirects_and_wrong_password_is_generic(node: Node, reader: str) -> None:
    html = {"Accept": "text/html"}
    with web(node) as c:
        csrf = form_csrf(c.get("/login").text)
        r = c.post(
            "/login",
            data={"username": reader, "password": "nope-nope-nope", "csrf": csrf},
            headers=html,
        )
        assert r.status_code == 401 and "invalid username or password" in r.text
        r = c.post(
            "/login",
            data={
                "username": reader,
                "password": PASSWORD,
                "csrf": csrf,
                "next": "//evil.example/",
            },
            headers=html,
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == "/docs"


def test_browser_login_lands_on_a_page(node: Node, reader: str) -> None:
    """The form's default destination is the node's web page, not a 404 problem document."""
    with web(node) as c:
        csrf = form_csrf(c.get("/login").text)
        r = c.post(
            "/login",
            data={"username": reader, "password": PASSWORD, "csrf": csrf},
            headers={"Accept": "text/html"},
        )
        assert r.status_code == 200, (r.url, r.text)
        assert r.headers["content-type"].startswith("text/html")


def test_wrong_password_and_unknown_user_answer_alike(node: Node, reader: str) -> None:
    with web(node) as c:
        wrong = login(c, reader, "wrong-password")
        unknown = login(c, "nobody", "wrong-password")
        for r in (wrong, unknown):
            assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
            assert r.json()["detail"] == "invalid username or password"
        assert "tansiq_session_eg" not in c.cookies


def test_lockout_per_account(node: Node, reader: str) -> None:
    with (
        web(node, address="10.0.0.1", login_max_failures=3) as a,
        web(node, address="10.0.0.2", login_max_failures=3) as b,
    ):
        for _ in range(3):
            assert login(a, reader, "wrong-password").status_code == 401
        for c in (a, b):  # the right password does not help, from any address
            r = login(c, reader, PASSWORD)
            assert r.status_code == 429 and r.headers["content-type"] == PROBLEM
            assert 0 < int(r.headers["retry-after"]) <= node.settings.login_window_seconds
        assert login(b, "admin", "admin-password-1").status_code == 200  # others unaffected


def test_lockout_per_address(node: Node, reader: str) -> None:
    with (
        web(node, address="10.0.0.7", login_max_failures=3) as a,
        web(node, address="10.0.0.8", login_max_failures=3) as b,
    ):
        for name in ("x1", "x2", "x3"):  # unknown accounts count too
            assert login(a, name, "wrong-password").status_code == 401
        assert login(a, reader, PASSWORD).status_code == 429
        assert login(b, reader, PASSWORD).status_code == 200


def test_lockout_per_address_counts_an_ipv6_subscriber_as_one(node: Node, reader: str) -> None:
    """Each IPv6 address was counted apart: from one /64 (a single subscriber's) a password
    sprayed over many accounts, one address per guess, was never limited.  Now a /64 is
    counted as one address (and an IPv4-mapped address as its IPv4 one)."""
    create_account(node.db, "sami", PASSWORD, "reader", "EG")
    for n, name in enumerate(("x1", "x2", "x3"), start=1):  # unknown accounts: one guess each
        with web(node, address=f"2001:db8:0:7::{n}", login_max_failures=3) as c:
            assert login(c, name, "Summer2026!").status_code == 401
    with web(node, address="2001:db8:0:7:ffff::9", login_max_failures=3) as c:
        assert login(c, reader, PASSWORD).status_code == 429
    with web(node, address="2001:db8:0:8::1", login_max_failures=3) as c:  # another /64
        assert login(c, reader, PASSWORD).status_code == 200
    for name in ("y1", "y2", "y3"):
        with web(node, address="192.0.2.5", login_max_failures=3) as c:
            assert login(c, name, "Summer2026!").status_code == 401
    with web(node, address="::ffff:192.0.2.5", login_max_failures=3) as c:
        assert login(c, "sami", PASSWORD).status_code == 429


def test_lock_lifts_after_window_and_success_clears(node: Node, reader: str) -> None:
    with web(node, login_max_failures=3) as c:
        for _ in range(2):
            login(c, reader, "wrong-password")
        assert login(c, reader, PASSWORD).status_code == 200  # clears the account's failures
        for _ in range(2):
            assert login(c, reader, "wrong-password").status_code == 401
        assert login(c, reader, "wrong-password").status_code == 401
        assert login(c, reader, PASSWORD).status_code == 429
        node.db.execute("UPDATE login_failures SET at = at - ?", (3600 * 1_000_000,))
        assert login(c, reader, PASSWORD).status_code == 200


def test_lockout_holds_against_concurrent_guesses(node: Node, reader: str) -> None:
    """Guesses sent at once, each checked against the limit before any failure was recorded,
    must not get more than login_max_failures password checks between them."""
    from concurrent.futures import ThreadPoolExecutor

    with web(node, login_max_failures=3) as c:
        csrf = form_csrf(c.get("/login").text)
        data = {"username": reader, "password": "wrong-password", "csrf": csrf}
        with ThreadPoolExecutor(12) as pool:
            codes = list(pool.map(lambda _: c.post("/login", data=data).status_code, range(12)))
        checked = codes.count(401)  # passwords checked (and wrong)
        assert set(codes) <= {401, 429} and checked <= 3, codes
        # Guesses refused while others were in progress are no failures: if all of them met
        # the limit at once, none was checked and the right password still works.
        assert login(c, reader, PASSWORD).status_code == (429 if checked == 3 else 200), codes


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_lockout_holds_across_server_processes(settings: Settings, node: Node, reader: str) -> None:
    env = {"TANSIQ_LOGIN_MAX_FAILURES": "3"}
    servers = [Server(settings.data_path, env=env), Server(settings.data_path, env=env)]
    try:
        one, two = (httpx.Client(base_url=s.url, timeout=30) for s in servers)
        with one, two:
            for _ in range(3):
                assert login(one, reader, "wrong-password").status_code == 401
            r = login(two, reader, PASSWORD)
            assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    finally:
        for s in servers:
            s.stop()


# -- sessions and CSRF -----------------------------------------------------------------------
def test_session_cookie_authenticates(admin_web: TestClient) -> None:
    assert admin_web.get("/api/objects").status_code == 200
    me = admin_web.get("/api/session").json()
    assert me["username"] == "admin" and me["via"] == "session"
    assert me["csrf"] == admin_web.headers["X-Test-CSRF"]


def test_expired_session_is_401(admin_web: TestClient, node: Node) -> None:
    node.db.execute("UPDATE sessions SET expires = ?", (1,))
    r = admin_web.get("/api/objects")
    assert r.status_code == 401 and "log in again" in r.json()["detail"]


def test_an_idle_session_ends(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    """A session unused for ``session_idle_minutes`` is refused like an expired one (long
    before ``session_minutes``); use is recorded at most once a minute, not on every request."""
    from tansiq.accounts import sessions
    from tansiq.stix.timestamps import MINUTE_US, now_micros

    clock = [now_micros()]
    monkeypatch.setattr(sessions, "now_micros", lambda: clock[0])
    last_used = "SELECT last_used FROM sessions"
    with web(node, session_idle_minutes=30, session_minutes=480) as c:
        assert login(c, "admin", "admin-password-1").status_code == 200
        assert node.db.fetchone(last_used) == (clock[0],)
        for step in (29, 29, 29):  # each use within the idle time keeps the session alive
            clock[0] += step * MINUTE_US
            assert c.get("/api/session").status_code == 200
            assert node.db.fetchone(last_used) == (clock[0],)
        used = clock[0]
        clock[0] += 30 * 1_000_000  # half a minute later: used, not written again
        assert c.get("/api/session").status_code == 200
        assert node.db.fetchone(last_used) == (used,)
        clock[0] = used + 30 * MINUTE_US  # idle for session_idle_minutes: ended
        r = c.get("/api/objects")
        assert r.status_code == 401 and "log in again" in r.json()["detail"]
        assert node.db.fetchone(last_used) == (used,)  # a refused session is not revived


def test_csrf_required_for_cookie_writes(admin_web: TestClient) -> None:
    csrf = admin_web.headers["X-Test-CSRF"]
    for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": ""}):
        r = admin_web.post("/api/bundles", json=bundle(indicator(1)), headers=headers)
        assert r.status_code == 403 and r.json()["detail"] == CSRF_FAILED
        r = admin_web.post("/api/tokens", json={"label": "x"}, headers=headers)
        assert r.status_code == 403
    r = admin_web.post("/api/bundles", json=bundle(indicator(1)), headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201, r.text
    r = admin_web.post("/api/tokens", json={"label": "x"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 201


def test_logout_needs_csrf_and_ends_session(admin_web: TestClient) -> None:
    cookie = admin_web.cookies["tansiq_session_eg"]
    assert admin_web.post("/logout").status_code == 403
    assert admin_web.post("/logout", data={"csrf": "wrong"}).status_code == 403
    r = admin_web.post("/logout", data={"csrf": admin_web.headers["X-Test-CSRF"]})
    assert r.status_code == 204
    assert admin_web.get("/api/objects").status_code == 401
    admin_web.cookies.set("tansiq_session_eg", cookie)  # a stolen copy is dead too
    assert admin_web.get("/api/objects").status_code == 401


def test_logout_with_a_stale_csrf_from_the_browser_is_a_page(admin_web: TestClient) -> None:
    """The docs page's Log out form with an outdated CSRF token (the page was loaded for an
    earlier session) answered a JSON problem to the browser: now a 403 HTML page saying the
    session was not ended, with the way back; the session stays.  API clients keep the
    problem+json 403."""
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    for data in ({"csrf": "stale"}, {}):
        r = admin_web.post("/logout", data=data, headers=html, follow_redirects=False)
        assert r.status_code == 403 and r.headers["content-type"].startswith("text/html")
        assert "not logged out" in r.text and 'href="/docs"' in r.text
        assert "<script" not in r.text and r.headers["cache-control"] == "no-store"
        assert "set-cookie" not in r.headers  # the session is left as it is
        assert admin_web.get("/api/session").status_code == 200
    r = admin_web.post("/logout", data={"csrf": "stale"}, headers={"Accept": "application/json"})
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    assert r.json()["detail"] == CSRF_FAILED
    csrf = admin_web.headers["X-Test-CSRF"]
    r = admin_web.post("/logout", data={"csrf": csrf}, headers=html, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"


def test_a_form_with_too_many_fields_is_400_not_500(node: Node, admin_web: TestClient) -> None:
    """parse_qs(max_num_fields=...) raises ValueError: the login form (and a cookie-authenticated
    form's CSRF field) answered 500 'internal server error' to a form with many fields."""
    many = {f"f{i}": "1" for i in range(150)}
    with web(node) as c:
        csrf = form_csrf(c.get("/login").text)
        r = c.post("/login", data={"username": "admin", "csrf": csrf, **many})
        assert r.status_code == 400, r.text
    r = admin_web.post("/logout", data={"csrf": admin_web.headers["X-Test-CSRF"], **many})
    assert r.status_code == 400, r.text


def test_nodes_on_one_host_keep_their_own_sessions(node: Node, tmp_path: Path) -> None:
    """Cookies are per host, not per port: the demo's three nodes on 127.0.0.1 share a browser's
    cookie jar, so logging in (or out) on one node must not end the session on another."""
    from conftest import make_settings

    from tansiq.node import init_node

    other_settings = make_settings(tmp_path / "dz")  # (its own database: SQLite will do)
    init_node(other_settings, "DZ", "Algeria", admin_password="dz-admin-password")
    other = Node(other_settings)
    try:
        with web(node) as eg, web(other) as dz:  # one browser: the jar goes from tab to tab
            assert login(eg, "admin", "admin-password-1").status_code == 200
            dz.cookies = eg.cookies
            assert login(dz, "admin", "dz-admin-password").status_code == 200
            eg.cookies = dz.cookies
            assert eg.get("/api/session").json()["partner"] == "EG"
            assert dz.get("/api/session").json()["partner"] == "DZ"
            csrf = dz.get("/api/session").json()["csrf"]
            assert dz.post("/logout", data={"csrf": csrf}).status_code == 204
            eg.cookies = dz.cookies
            assert eg.get("/api/session").status_code == 200
            assert dz.get("/api/session").status_code == 401
    finally:
        other.close()


def test_bearer_requests_need_no_csrf(client: TestClient) -> None:
    assert client.post("/api/bundles", json=bundle(indicator(2))).status_code == 201


def test_reader_may_not_write(node: Node, reader: str) -> None:
    token = create_token(node.db, reader, "test")
    with web(node) as c:
        r = c.post(
            "/api/bundles", json=bundle(indicator(3)), headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
        csrf = login(c, reader, PASSWORD).json()["csrf"]
        r = c.post("/api/bundles", json=bundle(indicator(3)), headers={"X-CSRF-Token": csrf})
        assert r.status_code == 403
        assert c.get("/api/objects").status_code == 200


def test_staff_accounts_belong_to_the_node_agency(node: Node) -> None:
    """Admins and editors write and administer as the node's agency (EG): another partner's
    admin or editor account is refused, and one stored anyway (by hand, or before this rule)
    acts as a reader: it cannot probe hidden ids by conflicts, change a distribution, delete, or
    read the audit log, while it still reads what is released to its partner."""
    from tansiq.accounts.store import AccountError, hash_password
    from tansiq.node import partner_identity_id
    from tansiq.sharing import add_partner

    for role in ("admin", "editor"):
        with pytest.raises(AccountError, match="belongs to this node's agency"):
            create_account(node.db, f"{role}-tn", PASSWORD, role, "TN")
    for code in ("tn", "D,Z", "%", "", None):
        with pytest.raises(AccountError, match="partner code"):
            create_account(node.db, "odd", PASSWORD, "reader", code)
    create_account(node.db, "reader-tn", PASSWORD, "reader", "TN")  # a liaison reader is fine
    node.db.execute(
        "INSERT INTO accounts (username, password_hash, role, partner, created)"
        " VALUES ('staff-tn', ?, 'admin', 'TN', 0)",
        (hash_password(PASSWORD),),
    )
    token = create_token(node.db, "staff-tn", "test", "api")
    add_partner(node.db, "TN", "Tunisia", partner_identity_id("TN"))
    hidden = indicator(40)
    node.ingest([hidden])  # EG only
    shared = indicator(41)
    node.ingest([shared], distribution=["TN"])
    auth = {"Authorization": f"Bearer {token}"}
    with web(node) as c:
        probe = c.post("/api/bundles", json=bundle({**hidden, "name": "guess"}), headers=auth)
        assert probe.status_code == 403, probe.text
        r = c.put(
            f"/api/objects/{shared['id']}/distribution",
            params={"distribution": "all"},
            headers=auth,
        )
        assert r.status_code == 403, r.text
        assert c.get("/api/audit", headers=auth).status_code == 403
        assert c.get(f"/api/objects/{shared['id']}", headers=auth).status_code == 200
        assert c.get(f"/api/objects/{hidden['id']}", headers=auth).status_code == 404


def test_reading_the_audit_log_needs_the_admin_scope(node: Node) -> None:
    """The audit log is administration: an admin's token without the 'admin' scope (say, one
    made for a script that lists objects) does not read it."""
    api_only = create_token(node.db, "admin", "script", "api")
    full = create_token(node.db, "admin", "console", "api admin")
    with web(node) as c:
        r = c.get("/api/audit", headers={"Authorization": f"Bearer {api_only}"})
        assert r.status_code == 403 and "'admin' scope" in r.json()["detail"]
        r = c.get("/api/audit", headers={"Authorization": f"Bearer {full}"})
        assert r.status_code == 200 and r.json()["entries"]


# -- API tokens ------------------------------------------------------------------------------
def test_token_create_list_revoke(client: TestClient) -> None:
    r = client.post("/api/tokens", json={"label": "ci", "days": 7, "scopes": "api"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["token"].startswith("tsq_") and made["scopes"] == ["api"]
    assert r.headers["cache-control"] == "no-store"
    auth = {"Authorization": f"Bearer {made['token']}"}
    assert client.get("/api/objects", headers=auth).status_code == 200
    listed = client.get("/api/tokens").json()["tokens"]
    assert made["id"] in [t["id"] for t in listed]
    assert all("token" not in t for t in listed)
    r = client.delete(f"/api/tokens/{made['id'][:8]}")
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    r = client.get("/api/objects", headers=auth)
    assert r.status_code == 401 and r.json()["detail"] == "the token is unknown, expired or revoked"
    assert client.delete("/api/tokens/ffffffffffff").status_code == 404
    r = client.post("/api/tokens", json=["not", "an", "object"])  # the whole body is wrong
    assert r.status_code == 400 and r.json()["detail"].startswith("request body: ")


def test_expired_token_is_401(client: TestClient, node: Node) -> None:
    token = client.post("/api/tokens", json={"label": "short"}).json()["token"]
    node.db.execute("UPDATE tokens SET expires = ? WHERE label = 'short'", (1,))
    assert (
        client.get("/api/objects", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )


def test_token_permissions(client: TestClient, node: Node, reader: str) -> None:
    admin_tok = client.post("/api/tokens", json={"label": "a"}).json()
    mine = create_token(node.db, reader, "own")
    auth = {"Authorization": f"Bearer {mine}"}
    r = client.post("/api/tokens", json={"label": "r2"}, headers=auth)
    assert r.status_code == 201 and r.json()["username"] == reader
    assert client.post("/api/tokens", json={"username": "admin"}, headers=auth).status_code == 403
    assert client.post("/api/tokens", json={"scopes": "admin"}, headers=auth).status_code == 400
    assert client.post("/api/tokens", json={"scopes": "root"}, headers=auth).status_code == 400
    assert client.get("/api/tokens", params={"all": "true"}, headers=auth).status_code == 403
    assert {t["username"] for t in client.get("/api/tokens", headers=auth).json()["tokens"]} == {
        reader
    }
    assert client.delete(f"/api/tokens/{admin_tok['id']}", headers=auth).status_code == 404
    # the admin (bearer token with the admin scope) may act for others
    r = client.post("/api/tokens", json={"username": reader, "label": "for rita"})
    assert r.status_code == 201 and r.json()["username"] == reader
    assert client.delete(f"/api/tokens/{r.json()['id']}").status_code == 200
    assert [t["username"] for t in client.get(f"/api/tokens?username={reader}").json()["tokens"]]
    # an account that does not exist is a 404 (as for `tansiq token list`), not an empty list
    r = client.get("/api/tokens", params={"username": "nobody"})
    assert r.status_code == 404 and r.json()["detail"] == "no account 'nobody'", r.text
    # an admin token without the admin scope may not, nor widen its own scopes
    narrow = client.post("/api/tokens", json={"scopes": "api"}).json()["token"]
    n_auth = {"Authorization": f"Bearer {narrow}"}
    assert client.post("/api/tokens", json={"username": reader}, headers=n_auth).status_code == 403
    assert (
        client.post("/api/tokens", json={"scopes": "api admin"}, headers=n_auth).status_code == 403
    )


def test_sync_only_token_cannot_use_rest_api(client: TestClient, node: Node) -> None:
    create_account(node.db, "peer-dz", "sync-password-1", "sync", "DZ")
    r = client.post("/api/tokens", json={"username": "peer-dz", "scopes": "sync"})
    assert r.status_code == 201
    token = r.json()["token"]
    r = client.get("/api/objects", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403 and "'api' scope" in r.json()["detail"]


# -- security headers ------------------------------------------------------------------------
def assert_security_headers(r: httpx.Response, https: bool = False) -> None:
    csp = r.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ):
        assert directive in csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-frame-options"] == "DENY"
    assert ("strict-transport-security" in r.headers) is https


def test_security_headers_everywhere(client: TestClient, node: Node) -> None:
    cases = {
        "/api/objects": 200,
        "/api/nothing": 404,
        "/static/docs-init.js": 200,
        "/static/vendor/swagger-ui/swagger-ui.css": 200,
        "/static/missing.js": 404,
        "/docs": 200,
        "/login": 200,
        "/openapi.json": 200,
    }
    for path, status in cases.items():
        r = client.get(path)
        assert r.status_code == status, path
        assert_security_headers(r)
    with web(node, "https://tansiq.example") as anon:
        r = anon.get("/api/objects")
        assert r.status_code == 401
        assert_security_headers(r, https=True)
    with web(node, max_body_bytes=10) as small:
        r = small.post("/api/bundles", content=b"x" * 100, headers={"content-type": "text/plain"})
        assert r.status_code == 413
        assert_security_headers(r)


def test_unhandled_error_is_500_problem_with_headers(node: Node) -> None:
    app = create_app(node.settings, node)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/boom")
        assert r.status_code == 500 and r.headers["content-type"] == PROBLEM
        assert_security_headers(r)


# -- HTTPS -----------------------------------------------------------------------------------
def self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_https_server(settings: Settings, admin_token: str, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server = Server(settings.data_path, "--certfile", str(cert), "--keyfile", str(key))
    try:
        assert server.url.startswith("https://127.0.0.1:")
        trust = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=server.url, verify=trust, timeout=30) as c:
            r = c.get("/api/objects", headers={"Authorization": f"Bearer {admin_token}"})
            assert r.status_code == 200
            assert_security_headers(r, https=True)
            r = login(c, "admin", "admin-password-1")
            assert r.status_code == 200
            assert "Secure" in cookie_attrs(r, "__Host-tansiq_session_eg")
            assert c.get("/api/session").json()["via"] == "session"  # the client sends it back
        with pytest.raises(httpx.ConnectError):  # the default trust store does not know it
            httpx.get(server.url + "/api/objects", timeout=30)
    finally:
        server.stop()


# -- command line ----------------------------------------------------------------------------
def test_cli_accounts_and_tokens(settings: Settings, node: Node) -> None:
    from click.testing import CliRunner

    from tansiq.accounts.store import account_for_token, verify_login
    from tansiq.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        r = CliRunner().invoke(main, [*args, "--data-dir", str(settings.data_path)], env={})
        return r.exit_code, r.stdout, r.stderr

    code, out, _ = run("account", "add", "sami", "--role", "editor")
    assert code == 0, out
    password = out.split("password: ")[1].split()[0]
    assert verify_login(node.db, "sami", password) is not None
    assert run("account", "add", "sami", "--role", "editor")[0] == 1  # exists
    # an unknown role is a usage error (2), naming the roles; a known one in any case is taken
    code, _, err = run("account", "add", "x", "--role", "boss", "--password", "long-enough-1")
    assert code == 2 and "--role" in err and "'admin', 'editor', 'reader', 'sync'" in err, err
    assert run("account", "add", "rana", "--role", "Reader", "--password", "long-enough-1")[0] == 0
    rana = get_account(node.db, "rana")
    assert rana is not None and rana.role == "reader"
    code, out, _ = run("account", "list")
    assert code == 0 and "sami" in out and "editor" in out
    code, out, _ = run("token", "create", "sami", "--label", "ci", "--days", "3")
    token = out.strip()
    assert code == 0 and token.startswith("tsq_")
    assert account_for_token(node.db, token) is not None
    assert run("token", "create", "sami", "--scopes", "admin")[0] == 1
    listed = run("token", "list", "sami")[1]
    code, out, _ = run("token", "revoke", listed.split()[0][:8])
    assert code == 0 and "revoked" in out
    assert account_for_token(node.db, token) is None


def test_cli_disable_enable_and_new_password(settings: Settings, node: Node, reader: str) -> None:
    from click.testing import CliRunner

    from tansiq import audit
    from tansiq.cli import main

    def run(*args: str) -> tuple[int, str]:
        r = CliRunner().invoke(main, [*args, "--data-dir", str(settings.data_path)], env={})
        return r.exit_code, r.output

    token = create_token(node.db, reader, "t")
    bearer = {"Authorization": f"Bearer {token}"}
    with web(node) as c:
        assert login(c, reader, PASSWORD).status_code == 200
        assert c.get("/api/session").status_code == 200
        assert c.get("/api/objects", headers=bearer).status_code == 200

        code, out = run("account", "disable", reader)
        assert code == 0 and "disabled" in out
        assert c.get("/api/session").status_code == 401  # the session ended
        assert c.get("/api/objects", headers=bearer).status_code == 401
        assert login(c, reader, PASSWORD).status_code == 401
        assert "(disabled)" in run("account", "list")[1]

        assert run("account", "enable", reader)[0] == 0
        assert c.get("/api/objects", headers=bearer).status_code == 200  # the token again
        assert login(c, reader, PASSWORD).status_code == 200

        code, out = run("account", "password", reader)
        assert code == 0
        new = out.split(": ")[1].split()[0]
        assert c.get("/api/session").status_code == 401  # sessions end with the old password
        assert login(c, reader, PASSWORD).status_code == 401
        assert login(c, reader, new).status_code == 200
        assert c.get("/api/objects", headers=bearer).status_code == 200  # tokens stay

    assert run("account", "disable", "nobody")[0] == 1
    assert run("account", "password", reader, "--password", "short")[0] == 1
    ops = [
        e["detail"]["op"]
        for e in audit.page(node.db, None, 1000)
        if e["action"] == "account_changed" and e["target"] == reader
    ]
    assert ops == ["disabled", "enabled", "password"]


def test_login_racing_a_password_change_keeps_no_session(
    node: Node, reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A login whose (slow) argon2 check of the old password overlaps `account password` must
    not open a session after the change committed: set_password ends the account's sessions,
    and one started with the old password just after would outlive it."""
    from tansiq.accounts import store

    real = store.check_password
    changed: list[bool] = []

    def check_then_change(stored: str, password: str) -> bool:
        ok = real(stored, password)
        if ok and not changed:  # the password changes while this login is being checked
            changed.append(True)
            store.set_password(node.db, reader, "a-new-password-2")
        return ok

    monkeypatch.setattr(store, "check_password", check_then_change)
    with web(node) as c:
        r = login(c, reader, PASSWORD)
        assert changed
        assert r.status_code == 401, r.text
        assert c.get("/api/session").status_code == 401
    assert node.db.fetchone("SELECT COUNT(*) FROM sessions WHERE username = ?", (reader,)) == (0,)
    monkeypatch.setattr(store, "check_password", real)
    with web(node) as c:
        assert login(c, reader, "a-new-password-2").status_code == 200


def test_login_with_a_nul_in_the_username_is_a_plain_failure(node: Node, reader: str) -> None:
    """No account's name holds NUL, which PostgreSQL text cannot store either: such a login (web
    form or TAXII Basic) is an ordinary failed login, counted and audited, on both databases
    (on PostgreSQL it was a 500 from the rate limiter's insert, and neither)."""
    import base64

    from tansiq import audit

    odd = "ri\x00ta"
    basic = base64.b64encode(f"{odd}:{PASSWORD}".encode()).decode()
    with web(node, login_max_failures=2) as c:
        assert login(c, odd, PASSWORD).status_code == 401
        r = c.get("/taxii2/", headers={"Authorization": f"Basic {basic}"})
        assert r.status_code == 401
        assert login(c, odd, PASSWORD).status_code == 429  # both failures counted
    failed = [e for e in audit.page(node.db, None, 1000) if e["action"] == "login_failed"]
    assert len(failed) == 2 and all(e["target"][:2] + e["target"][3:] == "rita" for e in failed)
    assert audit.verify(node.db).ok


def test_a_token_cannot_create_a_token_that_outlives_it(
    client: TestClient, node: Node, reader: str
) -> None:
    """Like its scopes, a token's lifetime bounds what it can hand itself: a token due to expire
    tomorrow minting one for ten years would make its expiry (and, once leaked, its revocation)
    meaningless.  (Sessions and admins acting for other accounts are not bounded by it.)"""
    from tansiq.accounts.store import find_token, token_id

    short = create_token(node.db, reader, "one day", days=1)
    limit = find_token(node.db, short).expires
    auth = {"Authorization": f"Bearer {short}"}
    r = client.post("/api/tokens", json={"label": "long", "days": 3650}, headers=auth)
    assert r.status_code == 201, r.text
    child = find_token(node.db, r.json()["token"])
    assert child.id != token_id(short) and child.expires <= limit
    r = client.post("/api/tokens", json={"label": "default"}, headers=auth)
    assert r.status_code == 201 and find_token(node.db, r.json()["token"]).expires <= limit
    # the admin's token (90 days) may still give rita a longer one
    r = client.post("/api/tokens", json={"username": reader, "days": 365})
    assert r.status_code == 201 and find_token(node.db, r.json()["token"]).expires > limit


def test_usernames_differing_only_in_case_or_width_are_one_name(node: Node, reader: str) -> None:
    """'Rita' or fullwidth 'ｒｉｔａ' beside 'rita' would read as the same person in the audit
    log (actor and target are usernames) and invite logging in as the wrong one."""
    from tansiq.accounts.store import AccountError, list_accounts

    for name in ("Rita", "RITA", "\uff52\uff49\uff54\uff41", "ADMIN"):
        with pytest.raises(AccountError, match="already exists"):
            create_account(node.db, name, "some-password-1", "reader", "EG")
    assert sorted(a.username for a in list_accounts(node.db)) == ["admin", "rita"]
