"""The hash-chained audit log: recording, tamper detection, concurrency and the CLI."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from conftest import make_settings

from tansiq import audit
from tansiq.cli import main
from tansiq.node import Node
from tansiq.settings import Settings

N = 20


def cli(settings: Settings, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main,
        ["audit", *args, "--data-dir", str(settings.data_path)],
        env={},
        catch_exceptions=False,
    )
    return result.exit_code, result.stdout + result.stderr


@pytest.fixture
def chain(node: Node) -> list[int]:
    """N entries (alternating record and record_in) on the node; their seqs."""
    seqs = []
    for i in range(N):
        detail = {"i": i, "ids": [f"indicator--{i}"], "note": "é ✓"}
        if i % 2:
            with node.db.write():
                seqs.append(audit.record_in(node.db, f"u{i % 3}", "object_read", f"t{i}", detail))
        else:
            seqs.append(audit.record(node.db, f"u{i % 3}", "objects_written", f"t{i}", detail))
    return seqs


def check_broken(node: Node, settings: Settings, bad: int | None, message: str) -> None:
    r = audit.verify(node.db)
    assert not r.ok and r.first_bad_seq == bad, r
    assert r.problem == message
    code, out = cli(settings, "verify")
    assert code == 1 and message in out, out


def test_chain_verifies(node: Node, settings: Settings, chain: list[int]) -> None:
    assert chain == list(range(chain[0], chain[0] + N))
    r = audit.verify(node.db)
    assert r.ok and r.first_bad_seq is None and r.problem == ""
    assert r.entries == chain[-1]
    last = node.db.fetchone("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
    assert last is not None and r.head == f"{last[0]}:{last[1]}"
    head = node.db.fetchone("SELECT value FROM meta WHERE key = 'audit_head'")
    assert head == (r.head,)
    code, out = cli(settings, "verify")
    assert code == 0 and f"audit chain intact: {r.entries} entries" in out


def test_first_entry_links_to_zeros(node: Node) -> None:
    first = node.db.fetchone("SELECT seq, prev_hash, action, hash FROM audit ORDER BY seq LIMIT 1")
    assert first is not None and first[:3] == (1, "0" * 64, "node_initialised")  # tansiq init's
    assert audit.verify(node.db) == audit.VerifyResult(True, 1, None, "", f"1:{first[3]}")
    seq = audit.record(node.db, "admin", "login")
    row = node.db.fetchone("SELECT prev_hash, detail FROM audit WHERE seq = ?", (seq,))
    assert row == (first[3], "{}")


@pytest.mark.parametrize("column", ["detail", "actor", "at", "action", "target"])
def test_content_changed(node: Node, settings: Settings, chain: list[int], column: str) -> None:
    value = {"detail": '{"i":999}', "actor": "mallory", "at": 1, "action": "login", "target": "x"}[
        column
    ]
    s = chain[6]
    node.db.execute(f"UPDATE audit SET {column} = ? WHERE seq = ?", (value, s))
    check_broken(node, settings, s, f"entry {s}: content changed (hash mismatch)")


def test_detail_rewritten_non_canonically(node: Node, chain: list[int]) -> None:
    s = chain[3]
    node.db.execute("UPDATE audit SET detail = ' ' || detail WHERE seq = ?", (s,))
    r = audit.verify(node.db)
    assert not r.ok and r.first_bad_seq == s and "content changed" in r.problem


def test_middle_entry_deleted(node: Node, settings: Settings, chain: list[int]) -> None:
    s = chain[10]
    node.db.execute("DELETE FROM audit WHERE seq = ?", (s,))
    check_broken(node, settings, s, f"entry {s} missing (entries {s - 1} → {s + 1})")


def test_several_entries_deleted(node: Node, chain: list[int]) -> None:
    s = chain[10]
    node.db.execute("DELETE FROM audit WHERE seq IN (?, ?)", (s, s + 1))
    r = audit.verify(node.db)
    assert r.first_bad_seq == s
    assert r.problem == f"entries {s}–{s + 1} missing (entries {s - 1} → {s + 2})"


def test_first_entry_deleted(node: Node, chain: list[int]) -> None:
    first = node.db.fetchone("SELECT MIN(seq) FROM audit")
    assert first == (1,)
    node.db.execute("DELETE FROM audit WHERE seq = 1")
    r = audit.verify(node.db)
    assert r.first_bad_seq == 1 and r.problem == "entry 1 missing (chain starts at entry 2)"


def test_last_entry_deleted(node: Node, settings: Settings, chain: list[int]) -> None:
    s = chain[-1]
    node.db.execute("DELETE FROM audit WHERE seq = ?", (s,))
    check_broken(
        node,
        settings,
        s,
        f"entry {s} missing (chain ends at entry {s - 1}; head records entry {s})",
    )
    # Recording again continues from the head, so the gap stays visible.
    assert audit.record(node.db, "admin", "login") == s + 1
    r = audit.verify(node.db)
    assert r.first_bad_seq == s and r.problem == f"entry {s} missing (entries {s - 1} → {s + 1})"


def test_whole_log_deleted(node: Node, chain: list[int]) -> None:
    node.db.execute("DELETE FROM audit")
    r = audit.verify(node.db)
    assert r.first_bad_seq == 1
    n = chain[-1]
    assert r.problem == f"entries 1–{n} missing (no entries left; head records entry {n})"


def test_reordered(node: Node, settings: Settings, chain: list[int]) -> None:
    a, b = chain[5], chain[12]
    node.db.execute("UPDATE audit SET seq = -1 WHERE seq = ?", (a,))
    node.db.execute("UPDATE audit SET seq = ? WHERE seq = ?", (a, b))
    node.db.execute("UPDATE audit SET seq = ? WHERE seq = -1", (b,))
    check_broken(node, settings, a, f"entry {a}: out of order (does not link to entry {a - 1})")


def test_adjacent_swap(node: Node, chain: list[int]) -> None:
    a = chain[7]
    node.db.execute("UPDATE audit SET seq = -1 WHERE seq = ?", (a,))
    node.db.execute("UPDATE audit SET seq = ? WHERE seq = ?", (a, a + 1))
    node.db.execute("UPDATE audit SET seq = ? WHERE seq = -1", (a + 1,))
    r = audit.verify(node.db)
    assert r.first_bad_seq == a and f"entry {a}: out of order" in r.problem


@pytest.mark.parametrize("index", [8, N - 1])
def test_hash_column_changed(node: Node, settings: Settings, chain: list[int], index: int) -> None:
    s = chain[index]
    node.db.execute("UPDATE audit SET hash = ? WHERE seq = ?", ("ab" * 32, s))
    check_broken(node, settings, s, f"entry {s}: stored hash changed (content intact)")


def test_prev_hash_changed(node: Node, chain: list[int]) -> None:
    s = chain[4]
    node.db.execute("UPDATE audit SET prev_hash = ? WHERE seq = ?", ("cd" * 32, s))
    r = audit.verify(node.db)
    assert r.first_bad_seq == s and f"entry {s}: out of order" in r.problem


def _forge(node: Node, seq: int) -> None:
    """Rewrite an entry's actor and recompute its hash consistently."""
    row = node.db.fetchone(
        "SELECT at, action, target, detail, prev_hash FROM audit WHERE seq = ?", (seq,)
    )
    assert row is not None
    at, action, target, detail, prev = row
    h = audit.entry_hash(prev, seq, at, "mallory", action, target, orjson.loads(detail))
    node.db.execute("UPDATE audit SET actor = 'mallory', hash = ? WHERE seq = ?", (h, seq))


def test_rehashed_middle_entry(node: Node, chain: list[int]) -> None:
    s = chain[9]
    _forge(node, s)
    r = audit.verify(node.db)
    assert r.first_bad_seq == s
    assert r.problem == f"entry {s}: replaced (entry {s + 1} does not link to it)"


def test_rehashed_last_entry(node: Node, chain: list[int]) -> None:
    s = chain[-1]
    _forge(node, s)
    r = audit.verify(node.db)
    assert r.first_bad_seq == s
    assert r.problem == f"entry {s}: replaced (does not match the audit head)"


def test_head_missing_or_behind(node: Node, chain: list[int]) -> None:
    behind = f"{chain[-2]}:{'0' * 64}"
    node.db.execute("UPDATE meta SET value = ? WHERE key = 'audit_head'", (behind,))
    r = audit.verify(node.db)
    assert r.first_bad_seq == chain[-1] and "after the recorded audit head" in r.problem
    node.db.execute("DELETE FROM meta WHERE key = 'audit_head'")
    r = audit.verify(node.db)
    assert not r.ok and r.first_bad_seq is None and "audit head missing" in r.problem


@pytest.mark.parametrize("kind", ["superscript", "arabic-indic"])
def test_head_with_non_ascii_digits_is_malformed(
    node: Node, settings: Settings, chain: list[int], kind: str
) -> None:
    """An edited head whose seq holds other Unicode digits is named malformed: verify raised
    ValueError on '²' (str.isdigit() takes it, int() does not) and read '٠'..'٩' as 0..9, so
    such an edit of the head went unseen."""
    row = node.db.fetchone("SELECT value FROM meta WHERE key = 'audit_head'")
    assert row is not None
    n, digest = str(row[0]).split(":")
    arabic = n[:-1] + chr(0x0660 + int(n[-1]))  # the same number to int()
    seq = n + "\u00b2" if kind == "superscript" else arabic
    bad = f"{seq}:{digest}"
    node.db.execute("UPDATE meta SET value = ? WHERE key = 'audit_head'", (bad,))
    check_broken(node, settings, None, f"audit head {bad!r} in meta is malformed")
    assert audit.record(node.db, "admin", "login") == chain[-1] + 1  # (appending goes on)


def test_record_in_joins_the_callers_transaction(node: Node, chain: list[int]) -> None:
    with pytest.raises(RuntimeError, match=r"db\.write"):
        audit.record_in(node.db, "admin", "login")

    class Boom(Exception):
        pass

    with pytest.raises(Boom), node.db.write():
        audit.record_in(node.db, "admin", "account_changed", "bob")
        raise Boom
    assert audit.verify(node.db).entries == chain[-1]  # rolled back with the caller
    with pytest.raises(ValueError):
        audit.record(node.db, "admin", "export", detail={"n": 2**60})
    with pytest.raises(ValueError):
        audit.record(node.db, "admin", "")
    assert audit.record(node.db, "admin", "export") == chain[-1] + 1
    assert audit.verify(node.db).ok


def test_page(node: Node, settings: Settings, chain: list[int]) -> None:
    first = audit.page(node.db, None, 5)
    assert [e["seq"] for e in first] == list(range(1, 6))
    e = audit.page(node.db, chain[2] - 1, 1)[0]
    assert e["seq"] == chain[2] and e["action"] == "objects_written" and e["target"] == "t2"
    assert e["detail"] == {"i": 2, "ids": ["indicator--2"], "note": "é ✓"}
    assert e["time"].endswith("Z") and len(e["hash"]) == 64
    assert audit.page(node.db, chain[-1], 10) == []
    with pytest.raises(ValueError):
        audit.page(node.db, None, 0)
    code, out = cli(settings, "list", "--after", str(chain[-3]), "--json")
    assert code == 0 and [x["seq"] for x in orjson.loads(out)] == chain[-2:]
    code, out = cli(settings, "list", "--after", "1", "--limit", "2")  # (1: tansiq init)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2 and "objects_written" in lines[0] and '"i":0' in lines[0]


def test_concurrent_writers(node: Node) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work(t: int) -> None:
        try:
            start.wait()
            for i in range(25):
                if i % 2:
                    audit.record(node.db, f"thread{t}", "token_used", str(i), {"i": i})
                else:
                    with node.db.write():
                        audit.record_in(node.db, f"thread{t}", "object_read", str(i))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    r = audit.verify(node.db)
    assert r.ok, r.problem
    assert r.entries >= 100
    count = node.db.fetchone("SELECT COUNT(*), MIN(seq), MAX(seq) FROM audit")
    assert count is not None and count[0] == count[2] - count[1] + 1 == r.entries


# -- tansiq init -------------------------------------------------------------------------------
def test_init_opens_the_audit_log(tmp_path: Path, database_url: str) -> None:
    """`tansiq init` is recorded: the first entry names the partner, the first admin account
    and its token (by id)."""
    from tansiq.accounts.store import token_id
    from tansiq.node import init_node

    settings = make_settings(tmp_path / "eg", database_url)
    r = init_node(settings, "EG", "مصر", "admin-password-1")
    node = Node(settings)
    try:
        entries = audit.page(node.db, None, 10)
        assert audit.verify(node.db).ok
    finally:
        node.close()
    assert [(e["seq"], e["actor"], e["action"], e["target"]) for e in entries] == [
        (1, "cli", "node_initialised", "EG")
    ]
    assert entries[0]["detail"] == {
        "name": "مصر",
        "admin": "admin",
        "token": token_id(r.admin_token),
    }


def test_init_without_its_audit_entry_leaves_no_node(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The entry commits with the node: when it cannot be written, no node is left behind (and
    `tansiq init` can be run again)."""
    from tansiq.node import NodeError, init_node

    settings = make_settings(tmp_path / "eg", database_url)
    real = audit.record_in

    def down(db: Any, actor: str, action: str, *args: Any) -> int:
        if action == "node_initialised":
            raise OSError("disk full")
        return real(db, actor, action, *args)

    with monkeypatch.context() as m:
        m.setattr(audit, "record_in", down)
        with pytest.raises(OSError):
            init_node(settings, "EG", "Egypt", "admin-password-1")
    with pytest.raises(NodeError, match="no node"):
        Node(settings)
    init_node(settings, "EG", "Egypt", "admin-password-1")
    node = Node(settings)
    try:
        assert [e["action"] for e in audit.page(node.db, None, 10)] == ["node_initialised"]
    finally:
        node.close()


def test_audit_list_shows_control_characters_typed_at_a_login_escaped(
    settings: Settings, node: Node
) -> None:
    """Anyone can type a username at /login: it is the failed login's actor and target.  With
    a line break and a terminal escape in it, ``tansiq audit list`` printed them as is: a
    forged row in an admin's terminal (or the screen cleared).  Now they are shown escaped."""
    from test_auth import login, web

    forged = "\x1b[2Jx\r\n    999  2026-01-01T00:00:00Z  admin  login\x9b"
    with web(node) as c:
        assert login(c, forged, "wrong-password").status_code == 401
    code, out = cli(settings, "list")
    assert code == 0, out
    row = next(line for line in out.splitlines() if "login_failed" in line)
    assert "\\x1b[2Jx\\r\\n" in row and row.count("\\x9b") == 2, row
    assert not any(ch in out for ch in "\x1b\r\x9b"), out
    assert not any(line.lstrip().startswith("999") for line in out.splitlines()), out
