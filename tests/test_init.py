"""`tansiq init` is all or nothing on either database: a failed init leaves the database, the
data dir and its config file as it found them, and can be run again."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from servers import free_port

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
        return schema_rows(conn)


def schema_rows(conn: Any) -> dict[str, list[Any]]:
    """Every row of every table in the current schema of PostgreSQL connection *conn*."""
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


# `tansiq init`, killed (SIGKILL) once its key is written, while it stores its identity.
KILLED_INIT = """
import os, signal, sys
import tansiq.node
from tansiq.cli import main

real = tansiq.node.ingest

def ingest_then_die(*args, **kwargs):
    real(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)

tansiq.node.ingest = ingest_then_die
sys.argv[0] = "tansiq"
main()
"""


def test_init_killed_midway_then_every_command_says_what_to_do(
    tmp_path: Path, database_url: str
) -> None:
    """SIGKILL in the middle of ``tansiq init`` (its key written, its node not yet): init run
    again and any other command name the interrupted init and what to do, and after it the
    next init makes the node.  They contradicted each other: init said the data dir "already
    holds a node (found node_ed25519.pem); choose another --data-dir", the others "holds no
    node; run `tansiq init` first"."""
    import subprocess
    import sys

    from click.testing import CliRunner

    from tansiq.cli import main

    d = tmp_path / "eg"
    args = ["--data-dir", str(d), "--database-url", database_url]
    init = ["init", "--partner", "EG", "--name", "Egypt", *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANSIQ_")}
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_INIT, *init], env=env, capture_output=True, timeout=120
    )
    assert killed.returncode == -9, killed.stderr
    assert (d / "node_ed25519.pem").exists()
    serve = ["serve", *args, "--port", str(free_port())]
    for command in (init, ["account", "list", *args], serve):
        r = CliRunner().invoke(main, command, env={})
        assert r.exit_code == 1, (command, r.output)
        assert f"{d} holds a node's key (node_ed25519.pem), but" in r.stderr, (command, r.stderr)
        assert f"a `tansiq init` there was interrupted (then delete {d} and run init again)" in (
            r.stderr
        )
    shutil.rmtree(d)
    r = CliRunner().invoke(main, init, env={})
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["account", "list", *args], env={})
    assert r.exit_code == 0 and r.stdout.split()[:3] == ["admin", "admin", "EG"], r.output


# `tansiq init`, paused just before it writes its key (its database made, on PostgreSQL its
# transaction open) until the file named by argv[1] appears; it says so by making argv[2].
PAUSED_INIT = """
import sys, time
from pathlib import Path
import tansiq.node
from tansiq.cli import main

go, paused = Path(sys.argv.pop(1)), Path(sys.argv.pop(1))
real = tansiq.node._write_private_key

def wait_then_write(*args, **kwargs):
    paused.touch()
    while not go.exists():
        time.sleep(0.02)
    real(*args, **kwargs)

tansiq.node._write_private_key = wait_then_write
sys.argv[0] = "tansiq"
main()
"""


def test_two_inits_at_once_on_one_data_dir_make_one_node(tmp_path: Path, database_url: str) -> None:
    """Two ``tansiq init`` on one data dir at once (a provisioning script run twice): one
    makes the node, the other says it is there, and the node works.  The second made a node
    while the first was midway, then the first, failing (its key file was there), removed as
    its own what it had found missing: the second's key, database and data dir; "Initialised"
    had been printed for a node that no longer existed.  Another command meanwhile says an
    init is under way."""
    import subprocess
    import sys
    import time

    from click.testing import CliRunner

    from tansiq.cli import main

    d = tmp_path / "eg"
    args = ["init", "--partner", "EG", "--name", "Egypt", "--data-dir", str(d)]
    args += ["--database-url", database_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TANSIQ_")}
    go, paused = tmp_path / "go", tmp_path / "paused"

    def start(*argv: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, *argv, *args], env=env, stderr=subprocess.PIPE, text=True
        )

    started = [start("-c", PAUSED_INIT, str(go), str(paused))]
    try:
        deadline = time.monotonic() + 60
        while not paused.exists() and started[0].poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert paused.exists(), started[0].communicate()
        meanwhile = CliRunner().invoke(main, ["account", "list", "--data-dir", str(d)], env={})
        assert meanwhile.exit_code == 1, meanwhile.output
        assert f"a `tansiq init` is making the node in {d} now: try again" in meanwhile.stderr
        started.append(start("-m", "tansiq"))
        with contextlib.suppress(subprocess.TimeoutExpired):
            started[1].wait(5)  # it made its node meanwhile (or waits for the first)
    finally:
        go.touch()  # (never a paused init left behind, holding its transaction)
        outcomes = []  # (exit code, stderr)
        for p in started:
            try:
                outcomes.append((p.wait(60), p.communicate()[1]))
            except subprocess.TimeoutExpired:
                p.kill()
                raise
    outcomes.sort()
    assert [code for code, _ in outcomes] == [0, 1], outcomes
    assert "already" in outcomes[1][1], outcomes  # holds a node / belongs to a node
    node = Node(make_settings(d, database_url))
    try:
        assert node.code == "EG"
        node.private_key()
        assert [a[0] for a in node.db.fetchall("SELECT username FROM accounts")] == ["admin"]
    finally:
        node.close()
