"""Logins and reads while a long write (a bulk ingest) holds the node write lock.

On PostgreSQL the write lock is a row lock on ``node_clock``, held for a whole ingest: the
bookkeeping of logins and reads (sessions, the rate limit, audit entries) must not wait for it.
On SQLite every write transaction is exclusive, so there it waits, but at most the busy
timeout, and then answers 503, not 500.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from conftest import BACKENDS
from fastapi.testclient import TestClient
from test_store import indicator

from tansiq.api.app import create_app
from tansiq.node import Node

TAXII = "application/taxii+json;version=2.1"
ADMIN_BASIC = "Basic " + base64.b64encode(b"admin:admin-password-1").decode()
SHARED_OBJECTS = "/taxii2/api/collections/shared/objects/"
POSTGRESQL = [BACKENDS[1]]
SQLITE = ["sqlite"]


@contextmanager
def long_write(node: Node) -> Iterator[None]:
    """Hold ``node.db.write()`` open in another thread (as a long ingest does) until the end."""
    held, release = threading.Event(), threading.Event()
    failed: list[BaseException] = []

    def writer() -> None:
        try:
            with node.db.write():
                held.set()
                release.wait(60)
        except BaseException as exc:  # (shown by the test, not lost in the thread)
            failed.append(exc)
            held.set()

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    assert held.wait(10) and not failed, failed
    try:
        yield
    finally:
        release.set()
        thread.join(30)
    assert not failed, failed


def finishes(call: Callable[[], Any], within: float = 2.0) -> Any:
    """*call*'s result, which must come within *within* seconds (the writer still holding)."""
    out: list[Any] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            out.append(call())
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    start = time.monotonic()
    thread.start()
    thread.join(within)
    assert not thread.is_alive(), f"still waiting after {within} s behind the writer"
    assert time.monotonic() - start <= within
    if error:
        raise error[0]
    return out[0]


def login(c: TestClient, username: str, password: str) -> Any:
    page = c.get("/login").text
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    return c.post("/login", data={"username": username, "password": password, "csrf": csrf})


@pytest.mark.parametrize("database_url", POSTGRESQL, indirect=True)
def test_login_and_reads_do_not_wait_for_a_long_write(node: Node, admin_token: str) -> None:
    bearer = {"Authorization": f"Bearer {admin_token}"}
    app = create_app(node.settings, node)
    with TestClient(app, base_url="http://127.0.0.1") as c, long_write(node):
        r = finishes(lambda: login(c, "admin", "admin-password-1"))
        assert r.status_code == 200, r.text
        assert finishes(lambda: c.get("/api/session")).status_code == 200
        c.cookies.clear()
        r = finishes(lambda: login(c, "admin", "a-wrong-password"))
        assert r.status_code == 401, r.text
        c.cookies.clear()
        r = finishes(lambda: c.get("/api/objects", headers=bearer))
        assert r.status_code == 200, r.text
        headers = {"Accept": TAXII, "Authorization": ADMIN_BASIC}
        r = finishes(lambda: c.get(SHARED_OBJECTS, headers=headers))
        assert r.status_code == 200, r.text
    actions = [a for (a,) in node.db.fetchall("SELECT action FROM audit ORDER BY seq")]
    assert actions[-5:] == ["login", "login_failed", "token_used", "objects_listed", "taxii_read"]


def test_no_write_inside_bookkeeping(node: Node) -> None:
    """The write lock comes first: a bookkeeping transaction never takes it (two transactions
    taking the two locks in opposite orders could each wait for the other)."""
    refused = pytest.raises(RuntimeError, match="write lock is taken first")
    with node.db.bookkeeping(), refused, node.db.write():
        pass
    with node.db.write(), node.db.bookkeeping():  # the other way round joins the write
        node.db.execute("UPDATE accounts SET disabled = 0 WHERE username = 'admin'")


@pytest.mark.parametrize("database_url", SQLITE, indirect=True)
def test_on_sqlite_a_login_behind_a_long_write_is_503_after_the_busy_timeout(
    node: Node, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite has one writer at a time: the login's bookkeeping waits for the writer, at most
    the busy timeout, and then the answer is a 503 that says so (it was a 500)."""
    from tansiq.store import dialect

    monkeypatch.setattr(dialect, "SQLITE_BUSY_TIMEOUT_S", 0.2)  # connections opened from now on
    bearer = {"Authorization": f"Bearer {admin_token}"}
    taxii = {"Accept": TAXII, "Authorization": ADMIN_BASIC}
    app = create_app(node.settings, node)
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        c.get("/login")
        with long_write(node):
            r = finishes(lambda: login(c, "admin", "admin-password-1"))
            assert r.status_code == 503, r.text
            assert r.headers["content-type"] == "application/problem+json"
            assert "busy with another write" in r.json()["detail"]
            assert int(r.headers["retry-after"]) > 0
            r = finishes(lambda: c.get("/api/objects", headers=bearer))
            assert r.status_code == 503, r.text
            r = finishes(lambda: c.get(SHARED_OBJECTS, headers=taxii))
            assert r.status_code == 503, r.text
            assert r.headers["content-type"] == TAXII
            assert "busy with another write" in r.json()["description"]
        r = login(c, "admin", "admin-password-1")
        assert r.status_code == 200, r.text
        assert c.get("/api/objects", headers=bearer).status_code == 200


@pytest.mark.parametrize("database_url", SQLITE, indirect=True)
def test_a_browser_login_behind_a_long_write_gets_the_login_page_with_a_503(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A person at the login form whose store is busy gets the form back, saying so, with
    the username kept (it was a JSON problem document shown as raw text in the browser)."""
    from tansiq.store import dialect

    monkeypatch.setattr(dialect, "SQLITE_BUSY_TIMEOUT_S", 0.2)  # connections opened from now on
    app = create_app(node.settings, node)
    html = {"Accept": "text/html,application/xhtml+xml"}
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        page = c.get("/login", headers=html).text
        csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        form = {"username": "admin", "password": "admin-password-1", "csrf": csrf}
        with long_write(node):
            r = finishes(lambda: c.post("/login", data=form, headers=html))
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("text/html")
        assert "busy with another write" in r.text
        assert 'value="admin"' in r.text
        assert int(r.headers["retry-after"]) > 0
        r = c.post("/login", data=form, headers=html, follow_redirects=False)
        assert r.status_code == 303, r.text


@pytest.mark.parametrize("database_url", POSTGRESQL, indirect=True)
def test_audit_entries_still_commit_in_seq_order(node: Node) -> None:
    """An object write's audit entry (written last in its transaction) holds the bookkeeping
    lock until it commits: an entry appended meanwhile waits for it and takes the next seq, so
    a reader paging by seq never skips an entry that commits late."""
    from tansiq import audit

    held, release = threading.Event(), threading.Event()

    def writer() -> None:
        with node.db.write():
            audit.record_in(node.db, "cli", "objects_written", "", {})
            held.set()
            release.wait(30)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    assert held.wait(10)
    later = threading.Thread(target=lambda: audit.record(node.db, "cli", "login", "x"))
    later.start()
    later.join(0.5)
    waited = later.is_alive()
    release.set()
    thread.join(10)
    later.join(10)
    assert waited, "the second entry did not wait for the first to commit"
    rows = node.db.fetchall("SELECT seq, action FROM audit ORDER BY seq")
    assert [a for _, a in rows[-2:]] == ["objects_written", "login"]
    assert rows[-1][0] == rows[-2][0] + 1
    assert audit.verify(node.db).ok


@pytest.mark.parametrize("database_url", SQLITE, indirect=True)
def test_a_taxii_post_stored_is_never_answered_503_nothing_stored(
    node: Node, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A TAXII POST saved its status resource after the ingest had committed, in a write of
    its own: a long write starting in between (a `tansiq ingest`) made it wait the busy
    timeout and answer 503 "nothing was stored", the objects stored all the same, and no
    status to read.  Now the status is saved in the ingest's own transaction."""
    from tansiq.store import dialect

    monkeypatch.setattr(dialect, "SQLITE_BUSY_TIMEOUT_S", 0.2)  # connections opened from now on
    ingest, holding = node.ingest, []

    def ingest_then_another_writer(*args: Any, **kwargs: Any) -> Any:
        result = ingest(*args, **kwargs)
        holding.append(long_write(node))  # starts right after the ingest committed
        holding[-1].__enter__()
        return result

    monkeypatch.setattr(node, "ingest", ingest_then_another_writer)
    headers = {"Accept": TAXII, "Content-Type": TAXII, "Authorization": ADMIN_BASIC}
    app = create_app(node.settings, node)
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        body = {"objects": [indicator(1), indicator(2)]}
        try:
            r = finishes(lambda: c.post(SHARED_OBJECTS, json=body, headers=headers))
        finally:
            for held in holding:
                held.__exit__(None, None, None)
        stored = node.db.fetchone("SELECT COUNT(*) FROM objects WHERE type = 'indicator'")
        assert r.status_code == 202, (r.status_code, r.text, "objects stored:", stored)
        status = c.get(f"/taxii2/api/status/{r.json()['id']}/", headers=headers).json()
        assert (status["status"], status["success_count"]) == ("complete", 2), status
        assert stored == (2,)


@pytest.mark.parametrize("database_url", SQLITE, indirect=True)
def test_a_distribution_changed_is_never_answered_503_nothing_stored(
    node: Node, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PUT /api/objects/{id}/distribution audited the change after the new version had
    committed, in a write of its own: a long write starting in between made it answer 503
    "nothing was stored" for a distribution changed all the same, and left it unaudited.
    Now the entry is written in the new version's transaction."""
    from tansiq.store import dialect

    node.ingest([indicator(1)])
    monkeypatch.setattr(dialect, "SQLITE_BUSY_TIMEOUT_S", 0.2)  # connections opened from now on
    ingest, holding = node.ingest, []

    def ingest_then_another_writer(*args: Any, **kwargs: Any) -> Any:
        result = ingest(*args, **kwargs)
        holding.append(long_write(node))  # starts right after the new version committed
        holding[-1].__enter__()
        return result

    monkeypatch.setattr(node, "ingest", ingest_then_another_writer)
    bearer = {"Authorization": f"Bearer {admin_token}"}
    url = f"/api/objects/{indicator(1)['id']}/distribution?distribution=all"
    app = create_app(node.settings, node)
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        try:
            r = finishes(lambda: c.put(url, headers=bearer))
        finally:
            for held in holding:
                held.__exit__(None, None, None)
    versions = node.db.fetchone("SELECT COUNT(*) FROM objects WHERE id = ?", (indicator(1)["id"],))
    assert r.status_code == 200, (r.status_code, r.text, "versions stored:", versions)
    assert versions == (2,)
    row = node.db.fetchone("SELECT target FROM audit WHERE action = 'distribution_changed'")
    assert row == (indicator(1)["id"],)


@pytest.mark.parametrize("database_url", POSTGRESQL, indirect=True)
def test_a_write_finding_no_writer_thread_free_is_503_after_the_busy_timeout(
    node: Node, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writers wait for the write lock on a few threads of their own; one more waits for a
    thread at most the busy timeout, then answers 503 with Retry-After (nothing stored)."""
    from tansiq.api import writes

    monkeypatch.setattr(writes, "WRITER_THREADS", 2)
    monkeypatch.setattr(writes, "gate_wait", lambda: 0.3)  # the two writers wait for the lock
    bearer = {"Authorization": f"Bearer {admin_token}"}
    app = create_app(node.settings, node)

    def post(n: int) -> Any:
        body = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": [indicator(n)]}
        return c.post("/api/bundles", json=body, headers=bearer)

    with TestClient(app, base_url="http://127.0.0.1") as c:
        with long_write(node):
            waiting = [threading.Thread(target=post, args=(n,)) for n in (1, 2)]
            for t in waiting:
                t.start()
            time.sleep(0.5)  # both writer threads now wait for the lock
            r = finishes(lambda: post(3))
            assert r.status_code == 503, r.text
            assert int(r.headers["retry-after"]) > 0
            assert "busy with another write" in r.json()["detail"]
        for t in waiting:
            t.join(10)
        ids = {i for (i,) in node.db.fetchall("SELECT id FROM objects WHERE type = 'indicator'")}
        assert ids == {indicator(1)["id"], indicator(2)["id"]}


@pytest.mark.parametrize("database_url", POSTGRESQL, indirect=True)
def test_on_postgresql_a_write_behind_a_long_write_is_503_after_the_busy_timeout(
    node: Node, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL an object write waits for the node write lock at most the busy timeout,
    as on SQLite, and is then refused with a 503 that says so (it waited as long as the long
    write ran); the transaction's own lock_timeout is left as it was."""
    from tansiq.store import dialect
    from tansiq.store.database import StoreBusy

    monkeypatch.setattr(dialect, "SQLITE_BUSY_TIMEOUT_S", 0.5)
    bearer = {"Authorization": f"Bearer {admin_token}"}
    app = create_app(node.settings, node)
    bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": [indicator(1)]}
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as c:
        with long_write(node):
            r = finishes(lambda: c.post("/api/bundles", json=bundle, headers=bearer), 5)
            assert r.status_code == 503, r.text
            assert "busy with another write" in r.json()["detail"]
            assert int(r.headers["retry-after"]) > 0
            with pytest.raises(StoreBusy):
                finishes(lambda: node.ingest([indicator(2)]), 5)
        r = c.post("/api/bundles", json=bundle, headers=bearer)
        assert r.status_code == 201, r.text
    with node.db.write():
        assert node.db.fetchone("SELECT current_setting('lock_timeout')")[0] == "0"
