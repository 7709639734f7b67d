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
    with pytest.raises(sqlite3.Error) as caught:
        migrations.migrate(full.db)
    assert is_storage_full(caught.value), caught.value
    assert "999_grow" not in migrations.applied(full.db)
    assert not full.db.fetchone("SELECT 1 FROM sqlite_master WHERE name = 'filler'")
