"""The store: versions, latest view, date_added, all-or-nothing bundles, round trips."""

from __future__ import annotations

import copy
import re
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import SHARED_FILES

from tansiq.accounts.store import token_hash
from tansiq.node import Node
from tansiq.stix.bundles import iter_file
from tansiq.stix.timestamps import SECOND_US, now_micros, to_micros
from tansiq.store import query
from tansiq.store.ingest import CONFLICT, IngestError, ingest
from tansiq.store.query import ALL, ObjectFilter

IDENTITY = "identity--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"


def indicator(n: int, modified: str = "2015-02-20T10:00:00.000Z", **extra: Any) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--00000000-0000-4000-8000-{n:012d}",
        "created": "2015-02-20T10:00:00.000Z",
        "modified": modified,
        "created_by_ref": IDENTITY,
        "pattern": "[ipv4-addr:value = '198.51.100.1']",
        "pattern_type": "stix",
        "valid_from": "2015-02-20T10:00:00Z",
        **extra,
    }


def count(node: Node) -> int:
    return query.count_versions(node.db, ALL)


def test_versions_latest_and_date_added(node: Node) -> None:
    before = count(node)
    ingest(node.db, [indicator(1)])
    ingest(node.db, [indicator(1, "2015-02-21T10:00:00.000Z", name="v2")])
    ingest(node.db, [indicator(1, "2015-02-20T12:00:00.000Z", name="between")])  # older than v2
    assert count(node) == before + 3
    latest = orjson.loads(
        query.get_versions(node.db, ALL, indicator(1)["id"], all_versions=False)[0]
    )
    assert latest["name"] == "v2"
    versions = query.get_versions(node.db, ALL, indicator(1)["id"], all_versions=True)
    assert [orjson.loads(v)["modified"] for v in versions] == [
        "2015-02-20T10:00:00.000Z",
        "2015-02-20T12:00:00.000Z",
        "2015-02-21T10:00:00.000Z",
    ]
    added = [r[0] for r in node.db.fetchall("SELECT added FROM objects ORDER BY added")]
    assert added == sorted(set(added))  # unique and strictly increasing


def test_many_versions_in_one_bundle(node: Node) -> None:
    objs = [indicator(2, f"2015-03-0{d}T00:00:00.000Z", name=str(d)) for d in (3, 1, 5, 2)]
    ingest(node.db, objs, batch_size=2)
    latest = orjson.loads(query.get_versions(node.db, ALL, objs[0]["id"], all_versions=False)[0])
    assert latest["name"] == "5"
    assert len(query.get_versions(node.db, ALL, objs[0]["id"], all_versions=True)) == 4


def test_background_writer_stores_every_row_in_order(node: Node) -> None:
    """Batches written beside the validating thread (multi-row statements, a partial last one)
    are stored whole and in order; the interpreter's switch interval is restored after."""
    import sys

    from tansiq.store.database import ROWS_PER_INSERT

    interval = sys.getswitchinterval()
    n = 3 * ROWS_PER_INSERT + 7
    objs = [indicator(1000 + i, name=str(i)) for i in range(n)]
    result = ingest(node.db, objs, batch_size=ROWS_PER_INSERT + 3)  # several batches
    assert result.stored == n
    rows = node.db.fetchall("SELECT id, json FROM objects WHERE type = 'indicator' ORDER BY added")
    assert [r[0] for r in rows] == [o["id"] for o in objs]
    assert [orjson.loads(r[1])["name"] for r in rows] == [str(i) for i in range(n)]
    assert sys.getswitchinterval() == interval


def test_overlapping_ingests_restore_the_switch_interval() -> None:
    """Two ingests whose background writers overlap and end out of order (server threads)
    leave the interpreter's switch interval as they found it."""
    import sys

    from tansiq.store.ingest import SWITCH_INTERVAL, _switch_often

    before = sys.getswitchinterval()
    _switch_often(True)  # ingest A starts
    _switch_often(True)  # ingest B starts
    assert sys.getswitchinterval() == min(before, SWITCH_INTERVAL)
    _switch_often(False)  # A ends first
    assert sys.getswitchinterval() == min(before, SWITCH_INTERVAL)  # B still running
    _switch_often(False)
    assert sys.getswitchinterval() == before


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_overlapping_ingests_leave_the_cyclic_collector_on(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each ingest turned the cyclic collector off and back on if it had found it on: one
    beginning as another ended (it saw it off, the other then turned it on, it turned it off)
    left it off for good, and a server's memory grew with every cycle made after."""
    import gc
    import threading
    import types

    from tansiq.store import ingest as ingest_module

    b_checked, a_done = threading.Event(), threading.Event()
    b_thread: list[threading.Thread] = []

    def isenabled() -> bool:
        enabled = gc.isenabled()
        if b_thread and threading.current_thread() is b_thread[0]:
            b_checked.set()
            a_done.wait(5)  # A ends here, between B's look and B's switch
        return enabled

    fake = types.SimpleNamespace(isenabled=isenabled, enable=gc.enable, disable=gc.disable)
    monkeypatch.setattr(ingest_module, "gc", fake)

    def a_objects() -> Any:
        yield indicator(1)
        b_checked.wait(2)  # B begins while A runs
        yield indicator(2)

    def b() -> None:
        other = Node(node.settings)
        try:
            ingest(other.db, [indicator(3)])
        finally:
            other.close()

    assert gc.isenabled()
    try:
        b_thread.append(threading.Thread(target=b))
        a = threading.Thread(target=lambda: ingest(node.db, a_objects()))
        a.start()
        time.sleep(0.2)  # A has the collector off
        b_thread[0].start()
        a.join(10)
        a_done.set()
        b_thread[0].join(10)
        assert node.db.fetchone("SELECT COUNT(*) FROM objects WHERE type = 'indicator'") == (3,)
        assert gc.isenabled(), "the cyclic collector was left off"
    finally:
        gc.enable()


def test_same_content_is_noop_different_is_conflict(node: Node) -> None:
    ingest(node.db, [indicator(3)])
    before = count(node)
    again = copy.deepcopy(indicator(3))
    r = ingest(node.db, [dict(reversed(list(again.items())))])  # key order does not matter
    assert (r.stored, r.unchanged) == (0, 1)
    with pytest.raises(IngestError) as exc:
        ingest(node.db, [indicator(4), indicator(3, name="changed")])
    assert exc.value.only_conflicts
    assert exc.value.errors[0].reason == CONFLICT and exc.value.errors[0].index == 1
    assert count(node) == before  # indicator(4) was not stored either


def test_one_invalid_object_rejects_bundle_with_all_errors(node: Node) -> None:
    before = count(node)
    bad1 = indicator(6)
    del bad1["pattern"]
    bad2 = indicator(7, modified="2014-01-01T00:00:00.000Z")  # before created
    with pytest.raises(IngestError) as exc:
        ingest(node.db, [indicator(5), bad1, indicator(8), bad2], batch_size=1)
    errors = exc.value.errors
    assert {(e.index, e.id) for e in errors} == {(1, bad1["id"]), (3, bad2["id"])}
    assert {e.property for e in errors if e.index == 1} == {"pattern"}
    assert count(node) == before


def test_stored_json_is_exact(node: Node) -> None:
    obj = indicator(9, x_custom={"nested": [1, 2.5, "ع", None, True]}, extensions={})
    obj["extensions"] = {"x-acme-ext": {"extension_type": "property-extension", "value": 1}}
    ingest(node.db, [obj])
    stored = query.get_versions(node.db, ALL, obj["id"], all_versions=False)[0]
    assert orjson.loads(stored) == obj
    assert list(orjson.loads(stored)) == list(obj)  # key order kept


def test_large_json_is_exact_and_lz4_on_postgresql(node: Node) -> None:
    """An object over PostgreSQL's TOAST threshold (~2 KB) comes back byte for byte; on
    PostgreSQL its JSON is stored compressed with lz4 (migration 005), not pglz."""
    obj = indicator(10, description="عملية في سرت. Opération près de Syrte. " * 300)
    ingest(node.db, [obj])
    stored = query.get_versions(node.db, ALL, obj["id"], all_versions=False)[0]
    assert stored == orjson.dumps(obj).decode()
    if not node.db.dialect.is_sqlite:
        row = node.db.fetchone(
            "SELECT pg_column_compression(json) FROM objects WHERE id = ?", (obj["id"],)
        )
        assert row == ("lz4",)


def test_filters_and_paging(node: Node) -> None:
    ingest(node.db, [indicator(100 + i, f"2015-04-{10 + i:02d}T00:00:00.000Z") for i in range(10)])
    seen: list[str] = []
    cursor = None
    while True:
        page = query.list_latest(
            node.db, ALL, ObjectFilter(types=["indicator"]), limit=3, cursor=cursor
        )
        seen.extend(orjson.loads(t)["id"] for t in page.texts)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 10
    flt = ObjectFilter(modified_from=1428969600000000, modified_to=1429142400000000)  # 14th..16th
    page = query.list_latest(node.db, ALL, flt, limit=100)
    assert sorted(orjson.loads(t)["modified"][:10] for t in page.texts) == [
        "2015-04-14",
        "2015-04-15",
        "2015-04-16",
    ]


@pytest.mark.parametrize("path", SHARED_FILES, ids=lambda p: p.name)
def test_shared_files_round_trip(node: Node, path: Path) -> None:
    originals = list(iter_file(path))
    ingest(node.db, originals)
    by_id = {}
    for text in query.iterate_latest(node.db, ALL):
        o = orjson.loads(text)
        by_id[o["id"]] = o
    for o in originals:
        assert by_id[o["id"]] == o


def test_sqlite_page_size_new_store_and_existing_store(tmp_path: Path) -> None:
    """New SQLite stores use SQLITE_PAGE_SIZE pages; a store made with SQLite's default 4 KiB
    pages keeps them (the page size of a WAL database is fixed) and still reads and writes."""
    import sqlite3

    from conftest import make_settings

    from tansiq.node import init_node
    from tansiq.store.dialect import SQLITE_PAGE_SIZE, connect_sqlite

    settings = make_settings(tmp_path / "new")
    init_node(settings, "EG", "Egypt", admin_password="admin-password-1")
    new = Node(settings)
    try:
        assert new.db.fetchone("PRAGMA page_size")[0] == SQLITE_PAGE_SIZE == 8192
    finally:
        new.close()

    old = tmp_path / "old.db"
    plain = sqlite3.connect(old)
    plain.execute("PRAGMA page_size=4096")
    plain.execute("PRAGMA journal_mode=WAL")
    plain.execute("CREATE TABLE t (x TEXT)")
    plain.close()
    conn = connect_sqlite(old)
    conn.execute("INSERT INTO t VALUES ('kept')")
    assert conn.execute("PRAGMA page_size").fetchone()[0] == 4096
    assert conn.execute("SELECT x FROM t").fetchall() == [("kept",)]
    conn.close()


def test_versions_across_batches_and_committed_ones(node: Node) -> None:
    """Several batches (on PostgreSQL with versions looked up ahead on a second connection):
    versions committed before the ingest, and versions of ids written by earlier batches of the
    same ingest, are found; the latest mark, no-ops and conflicts come out as in one batch."""
    day = "2015-03-0{}T00:00:00.000Z".format
    ingest(node.db, [indicator(20, day(2), name="old"), indicator(21, day(2), name="kept")])
    objs = [
        indicator(22, day(1), name="a1"),
        indicator(20, day(3), name="newer"),  # newer than the committed version: demotes it
        indicator(22, day(4), name="a4"),  # newer than batch 1's version of 22
        indicator(21, day(2), name="kept"),  # committed, identical: no-op
        indicator(22, day(1), name="a1"),  # written by batch 1, identical: no-op
        indicator(22, day(2), name="a2"),  # older than batch 2's: stored, not latest
    ]
    result = ingest(node.db, objs, batch_size=2)
    assert (result.stored, result.unchanged) == (4, 2)
    latest = {
        r[0]: orjson.loads(r[1])["name"]
        for r in node.db.fetchall("SELECT id, json FROM objects WHERE is_latest = 1")
        if r[0].startswith("indicator--")
    }
    assert latest == {
        indicator(n)["id"]: name for n, name in ((20, "newer"), (21, "kept"), (22, "a4"))
    }
    versions = query.get_versions(node.db, ALL, indicator(22)["id"], all_versions=True)
    assert len(versions) == 3
    for bad in (indicator(21, day(2), name="changed"), indicator(22, day(4), name="changed")):
        with pytest.raises(IngestError) as exc:
            ingest(node.db, [indicator(30), indicator(31), bad, indicator(32)], batch_size=1)
        assert exc.value.only_conflicts and [e.index for e in exc.value.errors] == [2]
    assert not node.db.fetchall("SELECT id FROM objects WHERE id = ?", (indicator(30)["id"],))


def test_writer_does_not_ask_for_committed_versions(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The background writer asks its own connection only about ids this ingest wrote already
    (the look-ahead asked about the rest on a connection of its own while the previous batch
    was being written)."""
    from tansiq.store import ingest as ingest_module

    asked: list[str] = []
    real = ingest_module._stored_versions

    def spy(db: Any, ids: list[str]) -> Any:
        asked.extend(ids)
        return real(db, ids)

    monkeypatch.setattr(ingest_module, "_stored_versions", spy)
    objs = [indicator(40 + i) for i in range(6)] + [indicator(40, "2015-03-01T00:00:00.000Z")]
    result = ingest(node.db, objs, batch_size=2)
    assert result.stored == 7
    assert asked == [indicator(40)["id"]]  # batch 4 holds a version of batch 1's id


def test_unique_key_stops_a_statement_midway_and_nothing_is_stored(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unique ``(id, version)`` key is the last word: when the version lookups miss a stored
    version (here made blind), the insert fails on it in the middle of a many-row statement
    (SQLite ``INSERT OR FAIL`` keeps the rows before it) and the rollback removes every row of
    the ingest."""
    from concurrent.futures import Future

    from tansiq.store import ingest as ingest_module

    stored = indicator(110)
    ingest(node.db, [stored])
    before = count(node)

    class Blind:
        def __init__(self, db: Any) -> None:
            pass

        def committed(self, rows: Any) -> Future[list[Any]]:
            done: Future[list[Any]] = Future()
            done.set_result([])
            return done

        def close(self) -> None:
            pass

    monkeypatch.setattr(ingest_module, "Lookahead", Blind)
    monkeypatch.setattr(ingest_module, "_stored_versions", lambda db, ids: iter(()))
    batch = [indicator(111), indicator(112), indicator(113), indicator(114)]
    again = [indicator(115), indicator(116), stored, indicator(117)]
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        ingest(node.db, batch + again + [indicator(118)], batch_size=4)
    assert count(node) == before
    monkeypatch.undo()
    assert ingest(node.db, batch + again).stored == 7
    assert count(node) == before + 7


def test_postgresql_copy_stays_open_across_batches(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: a bulk ingest of new objects writes every batch into one open COPY (the
    server never idles between batches); a batch that needs a statement (here a version of an
    id written earlier in the ingest) ends it and the next write opens another.  SQLite
    inserts with statements and opens none."""
    from tansiq.store import database
    from tansiq.store import ingest as ingest_module

    opened: list[int] = []
    real = database.CopyStream.__init__

    def spy(self: Any, *args: Any) -> None:
        opened.append(1)
        real(self, *args)

    monkeypatch.setattr(ingest_module.CopyStream, "__init__", spy)
    fresh = [indicator(60 + i) for i in range(8)]
    assert ingest(node.db, fresh, batch_size=2).stored == 8
    assert len(opened) == (0 if node.db.dialect.is_sqlite else 1)
    opened.clear()
    more = [indicator(70 + i) for i in range(4)] + [indicator(70, "2015-03-01T00:00:00.000Z")]
    more += [indicator(80 + i) for i in range(3)]
    assert ingest(node.db, more, batch_size=2).stored == 8
    assert len(opened) == (0 if node.db.dialect.is_sqlite else 2)
    assert count_ids(node, "indicator--") >= 16


def test_failure_inside_an_open_copy_stores_nothing(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer failing in the middle of a multi-batch ingest (on PostgreSQL, with its COPY
    open) rolls everything back, and the node goes on working."""
    from tansiq.store import database

    before = count(node)
    calls: list[int] = []
    real_copy = database.Database.copy_rows
    real_write = database.CopyStream.write

    def failing_copy(self: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk on fire")
        real_copy(self, *args, **kwargs)

    def failing_write(self: Any, rows: Any) -> None:
        calls.append(1)
        real_write(self, rows)
        if len(calls) == 3:
            raise RuntimeError("disk on fire")

    monkeypatch.setattr(database.Database, "copy_rows", failing_copy)
    monkeypatch.setattr(database.CopyStream, "write", failing_write)
    with pytest.raises(RuntimeError, match="disk on fire"):
        ingest(node.db, [indicator(90 + i) for i in range(8)], batch_size=2)
    assert count(node) == before
    monkeypatch.undo()
    assert ingest(node.db, [indicator(99)]).stored == 1
    assert count(node) == before + 1


def count_ids(node: Node, prefix: str) -> int:
    rows = node.db.fetchall("SELECT id FROM objects")
    return sum(1 for r in rows if str(r[0]).startswith(prefix))


def test_postgresql_nested_ingest_sees_its_transaction(node: Node) -> None:
    """Inside an enclosing write (which the look-ahead's second connection cannot see into), a
    version deleted earlier in that transaction does not count as stored."""
    if node.db.dialect.is_sqlite:
        pytest.skip("SQLite write transactions do not nest")
    from tansiq.store import deletions

    first = indicator(50, name="first")
    ingest(node.db, [first])
    origin = orjson.loads(query.get_versions(node.db, ALL, first["id"], all_versions=False)[0])
    with node.db.write():
        assert deletions.remove(node.db, first["id"], "") == 1
        again = [indicator(51), indicator(52), indicator(50, name="second"), indicator(53)]
        assert ingest(node.db, again, batch_size=1).stored == 4
    stored = query.get_versions(node.db, ALL, first["id"], all_versions=True)
    assert [orjson.loads(t)["name"] for t in stored] == ["second"]
    assert origin["name"] == "first"


def _object_indexes(db: Any) -> dict[str, str]:
    """name -> definition of every index on ``objects``."""
    if db.dialect.is_sqlite:
        sql = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'objects'"
    else:
        sql = (
            "SELECT indexname, indexdef FROM pg_indexes"
            " WHERE tablename = 'objects' AND schemaname = current_schema()"
        )
    return {str(r[0]): str(r[1] or "") for r in db.fetchall(sql)}


def test_store_indexes_the_promised_columns(node: Node) -> None:
    """type, created_by_ref, created, modified and revoked each lead an index on ``objects``,
    and the ``created`` and ``modified`` filters are answered through theirs."""
    defs = _object_indexes(node.db).values()
    for column in ("type", "created_by_ref", "created", "modified", "revoked"):
        leads = re.compile(rf"\(\s*{column}\s*[,)]")
        assert any(leads.search(d.replace('"', "")) for d in defs), column
    objects = [indicator(800 + i, modified=f"2015-03-0{i + 1}T10:00:00.000Z") for i in range(3)]
    objects[2]["created"] = "2015-03-01T00:00:00.000Z"
    ingest(node.db, objects)
    since = to_micros("2015-02-20T10:00:00.001Z")
    page = query.list_latest(
        node.db, ALL, ObjectFilter(types=["indicator"], created_from=since), limit=10
    )
    assert [orjson.loads(t)["id"] for t in page.texts] == [objects[2]["id"]]
    until = to_micros("2015-02-20T10:00:00.000Z")
    page = query.list_latest(
        node.db, ALL, ObjectFilter(types=["indicator"], created_to=until), limit=10
    )
    assert sorted(orjson.loads(t)["id"] for t in page.texts) == [o["id"] for o in objects[:2]]
    if node.db.dialect.is_sqlite:
        for column, index in (("created", "objects_created"), ("modified", "objects_modified")):
            plan = node.db.fetchall(
                f"EXPLAIN QUERY PLAN SELECT added FROM objects WHERE {column} >= ?", [since]
            )
            assert any(index in str(r[-1]) for r in plan), plan


def _migrate_up_to(db: Any, count: int) -> list[str]:
    """Apply the first *count* migrations (as an earlier version of tansiq would have)."""
    from tansiq.store import migrations

    applied = migrations.MIGRATIONS
    migrations.MIGRATIONS = applied[:count]
    try:
        return migrations.migrate(db)
    finally:
        migrations.MIGRATIONS = applied


def test_migrations_007_and_008_drop_and_restore_the_created_index(
    tmp_path: Path, database_url: str
) -> None:
    """A store made by migrations 001-006 has the index on ``created``; 007 dropped it, 008 puts
    it back, the other indexes stay, and the rows and the filters are as before."""
    from tansiq.store.database import Database

    db = Database(database_url, tmp_path)
    try:
        _migrate_up_to(db, 6)
        objects = [indicator(700 + i, modified=f"2015-02-2{i}T10:00:00.000Z") for i in range(3)]
        ingest(db, objects)
        before = set(_object_indexes(db))
        assert "objects_created" in before
        assert _migrate_up_to(db, 7) == ["007_no_created_index"]
        assert set(_object_indexes(db)) == before - {"objects_created"}
        assert _migrate_up_to(db, 8) == ["008_created_index"]
        assert set(_object_indexes(db)) == before
        since = to_micros("2015-02-21T00:00:00Z")
        page = query.list_latest(db, ALL, ObjectFilter(modified_from=since), limit=10)
        assert sorted(orjson.loads(t)["id"] for t in page.texts) == [o["id"] for o in objects[1:]]
    finally:
        db.close()


def test_migration_009_records_the_withdrawals_of_a_store(
    tmp_path: Path, database_url: str
) -> None:
    """A store made by migrations 001-008 holds objects narrowed away from partners; 009 turns
    them into withdrawal events, one per object and partner it was withdrawn from, which the
    feed then serves as before (and nothing for what is still released, or never was)."""
    from tansiq import policy
    from tansiq.accounts.principal import Principal
    from tansiq.sharing import add_partner
    from tansiq.stix.extensions import set_distribution
    from tansiq.store import deletions, migrations
    from tansiq.store.database import Database

    db = Database(database_url, tmp_path)
    try:
        _migrate_up_to(db, 8)
        for code in ("DZ", "TN"):
            add_partner(db, code, code, f"identity--{code.lower()}")

        def released(n: int, modified: str, partners: list[str]) -> dict[str, Any]:
            return set_distribution(indicator(n, modified=modified), "EG", partners)

        v1, v2 = "2015-02-20T10:00:00.000Z", "2015-02-21T10:00:00.000Z"
        objects = [
            released(1, v1, ["DZ", "EG", "TN"]),  # narrowed to EG: withdrawn from DZ and TN
            released(1, v2, ["EG"]),
            released(2, v1, ["DZ", "EG", "TN"]),  # narrowed to DZ: withdrawn from TN
            released(2, v2, ["DZ", "EG"]),
            released(3, v1, ["DZ", "EG", "TN"]),  # still released to both
        ]
        ingest(db, objects, prepare=lambda o: o)  # one batch: no withdrawal recorded by 008's code
        assert migrations.migrate(db)[0] == "009_withdrawals"  # (and any later ones)

        def owed(code: str) -> list[str]:
            who = Principal(f"sync-{code}", "sync", code)
            rows = deletions.feed(
                db,
                policy.withdrawn_condition(who, "EG"),
                policy.deleted_condition(who, "EG"),
                0,
                100,
            )
            return sorted(r[1][-2:] for r in rows)

        assert owed("DZ") == ["01"]
        assert owed("TN") == ["01", "02"]
    finally:
        db.close()


def test_migration_006_upgrades_a_store_with_objects(tmp_path: Path, database_url: str) -> None:
    """A store made by migrations 001-005 keeps every row through 006, and on PostgreSQL its id,
    type and creator columns then compare byte by byte (``COLLATE "C"``)."""
    from tansiq.store import migrations
    from tansiq.store.database import Database

    db = Database(database_url, tmp_path)
    try:
        applied = migrations.MIGRATIONS
        migrations.MIGRATIONS = applied[:5]
        try:
            assert migrations.migrate(db)[-1] == "005_json_lz4"
        finally:
            migrations.MIGRATIONS = applied
        objects = [indicator(600 + i) for i in range(5)]
        ingest(db, objects)
        assert migrations.migrate(db) == [name for name, _ in applied[5:]]
        rows = db.fetchall("SELECT id FROM latest_objects ORDER BY id")
        assert [r[0] for r in rows] == sorted(o["id"] for o in objects)
        if not db.dialect.is_sqlite:
            collations = db.fetchall(
                "SELECT a.attname, c.collname FROM pg_attribute a"
                " JOIN pg_collation c ON c.oid = a.attcollation"
                " WHERE a.attrelid = 'objects'::regclass"
                " AND a.attname IN ('id', 'type', 'created_by_ref', 'json') ORDER BY a.attname"
            )
            assert dict(collations) == {
                "created_by_ref": "C",
                "id": "C",
                "json": "default",
                "type": "C",
            }
    finally:
        db.close()


def test_migration_014_keeps_open_sessions_alive(tmp_path: Path, database_url: str) -> None:
    """Sessions open before ``last_used`` existed count as used at the upgrade: not as idle
    since 1970, which would have logged everyone out."""
    from tansiq.accounts.sessions import session_account
    from tansiq.store.database import Database

    db = Database(database_url, tmp_path)
    try:
        assert _migrate_up_to(db, 13)[-1] == "013_partner_suspension"
        now = now_micros()
        db.execute(
            "INSERT INTO accounts (username, password_hash, role, partner, created)"
            " VALUES ('ann', 'x', 'reader', NULL, ?)",
            (now,),
        )
        db.execute(
            "INSERT INTO sessions (session_hash, username, csrf_token, created, expires)"
            " VALUES (?, 'ann', 'c', ?, ?)",
            (token_hash("cookie"), now - 3600 * SECOND_US, now + 3600 * SECOND_US),
        )
        assert _migrate_up_to(db, 14) == ["014_session_last_used"]
        [(last_used,)] = db.fetchall("SELECT last_used FROM sessions")
        assert last_used >= now
        found = session_account(db, "cookie", idle_minutes=30)
        assert found is not None and found[0].username == "ann"
    finally:
        db.close()
