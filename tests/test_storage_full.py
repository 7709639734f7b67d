"""A database that cannot grow: 503 (REST and TAXII) or a clean CLI error, and nothing stored.

On SQLite the store's own connections get ``PRAGMA max_page_count`` a few pages above the
database's size, so SQLite itself answers SQLITE_FULL ("database or disk is full") to a large
write while small ones (audit entries, a login) still fit.  PostgreSQL's DiskFull (SQLSTATE
53100) is mapped by the same code; it is tested by raising it inside a real write.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from conftest import BACKENDS
from fastapi.testclient import TestClient
from test_store import count, indicator

from tansiq.api.taxii import SHARED_ID
from tansiq.api.taxii_http import TAXII
from tansiq.cli import main
from tansiq.node import Node
from tansiq.stix.timestamps import now_micros
from tansiq.store import database
from tansiq.store.database import StorageFull, is_storage_full

SLACK_PAGES = 6  # room for an audit entry or one small object, not for a large bundle
ON_SQLITE = pytest.mark.parametrize("database_url", [BACKENDS[0]], indirect=True)
ON_POSTGRESQL = pytest.mark.parametrize("database_url", [BACKENDS[1]], indirect=True)


def bundle(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "bundle",
        "id": "bundle--00000000-0000-4000-8000-000000000001",
        "objects": objects,
    }


LARGE = [indicator(i, description="x" * 400) for i in range(1000, 1600)]


@pytest.fixture
def full(node: Node, monkeypatch: pytest.MonkeyPatch) -> Iterator[Node]:
    """*node*, every store connection opened from now on capped near the database's size."""
    real = database.connect_sqlite

    def capped(path: Path, cache_mb: int = 128) -> sqlite3.Connection:
        conn = real(path, cache_mb)
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
        conn.execute(f"PRAGMA max_page_count = {pages + SLACK_PAGES}")
        return conn

    monkeypatch.setattr(database, "connect_sqlite", capped)
    node.db.close()  # its connections reopen capped
    yield node


def _still_works(node: Node, before: int) -> None:
    """Nothing of the refused write is stored, and the store takes a small write again."""
    assert count(node) == before
    assert node.db.fetchone("PRAGMA integrity_check") == ("ok",)
    node.ingest([indicator(1)])
    assert count(node) == before + 1


@ON_SQLITE
def test_sqlite_full_is_storage_full_and_rolls_back(full: Node) -> None:
    before = count(full)
    with pytest.raises(StorageFull, match=r"storage is full.*nothing was stored"):
        full.ingest(LARGE)
    assert not full.db.in_transaction()
    _still_works(full, before)


@ON_SQLITE
def test_rest_post_on_a_full_store_is_503_and_stores_nothing(
    full: Node, client: TestClient
) -> None:
    before = count(full)
    r = client.post("/api/bundles", json=bundle(LARGE))
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == 503 and body["title"]
    assert "storage is full" in body["detail"] and "nothing was stored" in body["detail"]
    assert client.post("/api/bundles", json=bundle([indicator(1)])).status_code == 201
    assert count(full) == before + 1


@ON_SQLITE
def test_taxii_post_on_a_full_store_is_503_and_stores_nothing(
    full: Node, client: TestClient
) -> None:
    before = count(full)
    r = client.post(
        f"/taxii2/api/collections/{SHARED_ID}/objects/",
        content=orjson.dumps({"objects": LARGE}),
        headers={"Content-Type": TAXII, "Accept": TAXII},
    )
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == TAXII
    body = r.json()
    assert set(body) == {"title", "description", "http_status"}
    assert body["http_status"] == "503"
    assert "storage is full" in body["description"]
    assert "nothing was stored" in body["description"]
    _still_works(full, before)


@ON_SQLITE
def test_cli_ingest_on_a_full_store_is_a_clean_error(full: Node, tmp_path: Path) -> None:
    before = count(full)
    f = tmp_path / "large.json"
    f.write_text(json.dumps(bundle(LARGE)))
    result = CliRunner().invoke(
        main, ["ingest", "--data-dir", str(full.settings.data_path), str(f)], env={}
    )
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "storage is full" in result.stderr and "nothing was stored" in result.stderr
    assert "Traceback" not in result.stderr
    _still_works(full, before)


def test_postgresql_disk_full_is_recognised() -> None:
    import psycopg.errors

    assert is_storage_full(psycopg.errors.DiskFull("could not extend file"))
    assert psycopg.errors.DiskFull.sqlstate == "53100"
    assert not is_storage_full(psycopg.errors.UniqueViolation("duplicate key"))
    assert not is_storage_full(sqlite3.OperationalError("database is locked"))
    assert not is_storage_full(ValueError("database or disk is full"))


@ON_POSTGRESQL
def test_postgresql_disk_full_inside_a_write_rolls_back(node: Node) -> None:
    import psycopg.errors

    with pytest.raises(StorageFull, match=r"storage is full.*nothing was stored"), node.db.write():
        node.db.execute("INSERT INTO meta (key, value) VALUES ('half', 'written')")
        raise psycopg.errors.DiskFull("could not extend file: No space left on device")
    assert node.db.fetchone("SELECT value FROM meta WHERE key = 'half'") is None


@ON_SQLITE
def test_every_command_ends_cleanly_on_a_full_store(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not only ingest: any command whose write meets a full store says so and exits 1."""
    from tansiq.accounts import store

    def full_disk(*_: object, **__: object) -> None:
        raise StorageFull(database.STORAGE_FULL)

    monkeypatch.setattr(store, "create_account", full_disk)
    args = ["account", "add", "ann", "--role", "reader"]
    result = CliRunner().invoke(main, [*args, "--data-dir", str(node.settings.data_path)], env={})
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: storage is full")


@ON_SQLITE
def test_a_migration_on_a_full_store_names_the_full_store(
    full: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite rolls a transaction back itself on SQLITE_FULL; the migration runner's own
    ROLLBACK then failed ("no transaction is active") and hid why the migration failed."""
    from tansiq.store import migrations

    def grow(d: object) -> list[str]:
        # One row a statement: SQLite rolls the whole transaction back on SQLITE_FULL in a
        # statement without a statement journal (a multi-row INSERT only undoes itself).
        return ["CREATE TABLE filler (x BLOB)"] + [
            "INSERT INTO filler VALUES (randomblob(4000))"
        ] * 200

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, ("999_grow", grow)])
    with pytest.raises(StorageFull) as caught:
        migrations.migrate(full.db)
    assert is_storage_full(caught.value.__cause__), caught.value.__cause__
    assert "999_grow" not in migrations.applied(full.db)
    assert not full.db.fetchone("SELECT 1 FROM sqlite_master WHERE name = 'filler'")


@pytest.fixture
def filled(node: Node, monkeypatch: pytest.MonkeyPatch) -> Iterator[Node]:
    """*node* with every page it may have in use, and no room left in ``login_failures``' own
    pages: from now on recording a login attempt fails for want of a page, on every connection
    (each server thread has its own, all capped at the same size)."""
    real = database.connect_sqlite
    path = node.db.path
    assert path is not None
    node.db.close()
    conn = real(path)
    cap = int(conn.execute("PRAGMA page_count").fetchone()[0]) + SLACK_PAGES

    def capped(path: Path, cache_mb: int = 128) -> sqlite3.Connection:
        conn = real(path, cache_mb)
        conn.execute(f"PRAGMA max_page_count = {cap}")
        return conn

    monkeypatch.setattr(database, "connect_sqlite", capped)
    conn.execute(f"PRAGMA max_page_count = {cap}")
    try:
        conn.execute("CREATE TABLE filler (x BLOB)")
        with pytest.raises(sqlite3.OperationalError, match="full"):
            for _ in range(10 * SLACK_PAGES):
                conn.execute("INSERT INTO filler VALUES (randomblob(2000))")
        # Rows smaller than a real one's, counting for no account or address that logs in.
        with pytest.raises(sqlite3.OperationalError, match="full"):
            for seq in range(1, 100_000):
                conn.execute(
                    "INSERT INTO login_failures (seq, username, address, at) VALUES (?, '', '', ?)",
                    (seq, now_micros()),
                )
    finally:
        conn.close()
    yield node


def _make_room(node: Node) -> None:
    node.db.execute("DROP TABLE filler")
    node.db.execute("DELETE FROM login_failures WHERE username = ''")


@ON_SQLITE
def test_login_on_a_full_store_is_503(filled: Node) -> None:
    """POST /login writes its rate-limit row outside ``Database.write()``: 503, not 500."""
    from test_auth import login

    from tansiq.api.app import create_app

    with TestClient(create_app(filled.settings, filled), base_url="http://127.0.0.1") as c:
        r = login(c, "admin", "admin-password-1")
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == "application/problem+json"
        assert "storage is full" in r.json()["detail"]
        _make_room(filled)
        assert login(c, "admin", "admin-password-1").status_code == 200


@ON_SQLITE
def test_taxii_basic_login_on_a_full_store_is_503(filled: Node) -> None:
    import base64

    from tansiq.api.app import create_app

    basic = "Basic " + base64.b64encode(b"admin:admin-password-1").decode()
    headers = {"Accept": TAXII, "Authorization": basic}
    with TestClient(create_app(filled.settings, filled), base_url="http://127.0.0.1") as c:
        r = c.get("/taxii2/api/collections/", headers=headers)
        assert r.status_code == 503, r.text
        assert r.headers["content-type"] == TAXII
        assert r.json()["http_status"] == "503"
        assert "storage is full" in r.json()["description"]
        _make_room(filled)
        assert c.get("/taxii2/api/collections/", headers=headers).status_code == 200


def test_a_statement_outside_write_on_a_full_store_is_storage_full(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mapping holds for any statement, on either backend's error (PostgreSQL's DiskFull
    cannot be caused for real here: a stand-in connection raises it)."""
    import psycopg.errors

    class Full:
        closed = False

        def execute(self, *_: object) -> None:
            raise psycopg.errors.DiskFull("could not extend file: No space left on device")

    monkeypatch.setattr(node.db, "connection", Full)
    with pytest.raises(StorageFull, match="storage is full"):
        node.db.execute("DELETE FROM sessions WHERE username = ?", ("ann",))
