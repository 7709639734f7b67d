"""`tansiq init` is all or nothing on either database: a failed init leaves the database, the
data dir and its config file as it found them, and can be run again."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings

import tansiq.node
from tansiq.node import Node, init_node, partner_identity_id
from tansiq.settings import Settings

PASSWORD = "admin-password-1"


@contextmanager
def _pg(settings: Settings) -> Iterator[Any]:
    import psycopg

    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        yield conn


def _database_state(settings: Settings) -> object:
    """What a failed init must leave as it was: the tables (and their rows) of the PostgreSQL
    schema the node's URL names; for SQLite, the files of the data dir (if any)."""
    if not settings.database_url:
        d = settings.data_path
        return sorted(p.name for p in d.iterdir()) if d.exists() else None
    with _pg(settings) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema() ORDER BY table_name"
            )
        ]
        return {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY 1').fetchall() for t in tables}


def _fail_after(name: str) -> Any:
    """``tansiq.node.<name>`` that does its work, then fails (a full disk, say)."""
    real = getattr(tansiq.node, name)

    def then_fail(*args: Any, **kwargs: Any) -> Any:
        real(*args, **kwargs)
        raise OSError("disk full")

    return then_fail


@pytest.mark.parametrize("step", ["migrate", "ingest", "create_token"])
def test_a_failed_init_leaves_the_database_as_it_found_it(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """On PostgreSQL too (a schema that holds something of its own already): no tables,
    schema rows, objects or accounts of the failed init stay; the next init, as another
    agency even, makes a node holding nothing of the failed one."""
    settings = make_settings(tmp_path / "eg", database_url)
    if database_url:
        with _pg(settings) as conn:
            conn.execute("CREATE TABLE notes (n INTEGER PRIMARY KEY, text TEXT)")
            conn.execute("INSERT INTO notes VALUES (1, 'ours')")
    before = _database_state(settings)
    with monkeypatch.context() as m:
        m.setattr(tansiq.node, step, _fail_after(step))
        with pytest.raises(OSError, match="disk full"):
            init_node(settings, "EG", "Egypt", PASSWORD)
    assert _database_state(settings) == before

    r = init_node(settings, "DZ", "Algeria", PASSWORD)
    node = Node(settings)
    try:
        identities = node.db.fetchall("SELECT id FROM objects WHERE type = 'identity'")
        assert (partner_identity_id("EG"),) not in identities
        assert (r.identity_id,) in identities
        assert [a[0] for a in node.db.fetchall("SELECT username FROM accounts")] == ["admin"]
        assert node.db.fetchall("SELECT COUNT(*) FROM tokens") == [(1,)]
    finally:
        node.close()


def test_a_failed_init_gives_the_config_file_back_its_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Init makes the config file it writes its owner's alone (it may hold a database
    password); a failed init puts back the file it found: its contents and its mode."""
    d = tmp_path / "eg"
    d.mkdir()
    config = d / "tansiq.toml"
    config.write_text("page_size = 50\n", encoding="utf-8")
    config.chmod(0o640)
    settings = make_settings(d, "", port=8477)
    with monkeypatch.context() as m:
        m.setattr(tansiq.node, "create_token", _fail_after("create_token"))
        with pytest.raises(OSError):
            init_node(settings, "EG", "Egypt", PASSWORD)
    assert config.read_text(encoding="utf-8") == "page_size = 50\n"
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o640
    assert sorted(p.name for p in d.iterdir()) == ["tansiq.toml"]


def test_init_on_a_database_left_half_made_says_so(tmp_path: Path, database_url: str) -> None:
    """Objects but no node: what a failed init of an earlier tansiq left on PostgreSQL (or a
    SQLite file named by URL).  Init says what is wrong, exit 1 (it was a traceback: the
    identity of the earlier try, under another name, was refused), and changes nothing."""
    from click.testing import CliRunner

    from tansiq.cli import main
    from tansiq.node import identity_object, open_database
    from tansiq.sharing import local_stamp
    from tansiq.store.ingest import ingest
    from tansiq.store.migrations import migrate

    url = database_url or f"sqlite:///{tmp_path / 'left.db'}"
    earlier = make_settings(tmp_path / "earlier", url)
    earlier.data_path.mkdir()
    db = open_database(earlier)
    try:
        migrate(db)
        identity = identity_object("EG", "Egypt (as first typed)")
        ingest(db, [identity], prepare=local_stamp(db, "EG", identity["id"]))
    finally:
        db.close()
    settings = make_settings(tmp_path / "eg", url)
    before = _database_state(settings) if database_url else None
    args = ["init", "--data-dir", str(settings.data_path), "--partner", "EG", "--name", "Egypt"]
    r = CliRunner().invoke(main, [*args, "--database-url", url], env={})
    assert r.exit_code == 1, r.output
    assert "holds objects or accounts but no node" in r.stderr, r.stderr
    assert "give init an empty database" in r.stderr
    assert not settings.data_path.exists()
    if database_url:
        assert _database_state(settings) == before
