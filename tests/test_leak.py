"""Leak property test: every read path returns exactly what a small reference model allows.

Random federations (2–6 partners, random sharing groups), random objects with random
distributions and TLP, some re-versioned with another distribution; every principal kind (each
role of the node's own partner, each peer's sync account, anonymous); every read path of the REST
API.  A "case" is one (example, principal, read path) check; the total is printed at the end.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from conftest import PG_URL, PgSchema, make_settings
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tansiq import policy
from tansiq.accounts.principal import ANONYMOUS, Principal
from tansiq.api import deps
from tansiq.api.app import create_app
from tansiq.node import Node
from tansiq.sharing import add_group, add_partner, local_stamp
from tansiq.stix.extensions import set_distribution
from tansiq.store.database import Database
from tansiq.store.ingest import ingest
from tansiq.store.migrations import migrate

CODES = ["DZ", "EG", "TN", "LY", "MA", "SD"]
TLPS = ["clear", "green", "amber", "amber+strict", "red"]
EXAMPLES = int(os.environ.get("TANSIQ_LEAK_EXAMPLES", "290"))
PG_EXAMPLES = int(os.environ.get("TANSIQ_LEAK_PG_EXAMPLES", "25"))
CASES = {"count": 0}


@dataclass
class ObjSpec:
    origin: str
    v1: list[str]  # distribution spec (local) or partner codes (peer)
    v2: list[str] | None
    tlp: str


@dataclass
class Federation:
    codes: list[str]
    node: str
    groups: dict[str, list[str]]
    objects: list[ObjSpec] = field(default_factory=list)


@st.composite
def federations(draw: st.DrawFn) -> Federation:
    codes = CODES[: draw(st.integers(2, 6))]
    node = draw(st.sampled_from(codes))
    groups = {
        f"group-{i}": sorted(draw(st.sets(st.sampled_from(codes), min_size=1)))
        for i in range(draw(st.integers(0, 3)))
    }
    names = codes + list(groups)
    local_spec = st.one_of(
        st.just(["own"]), st.just(["all"]), st.lists(st.sampled_from(names), min_size=1, max_size=4)
    )
    fed = Federation(codes, node, groups)
    for _ in range(draw(st.integers(1, 10))):
        origin = draw(st.sampled_from(codes))
        tlp = draw(st.sampled_from(TLPS))
        if origin == node:
            v1 = draw(local_spec)
            v2 = draw(st.one_of(st.none(), local_spec))
        else:
            others = st.sets(st.sampled_from(codes)).map(lambda s, o=origin: sorted(s | {o}))
            v1 = sorted(set(draw(others)) | {node})  # it reached this node, so node is in it
            v2 = draw(st.one_of(st.none(), others))
        fed.objects.append(ObjSpec(origin, v1, v2, tlp))
    return fed


def expand(fed: Federation, spec: list[str]) -> set[str]:
    out = {fed.node}
    for item in spec:
        if item == "all":
            out |= set(fed.codes)
        elif item in fed.groups:
            out |= set(fed.groups[item])
        elif item != "own":
            out.add(item)
    return out


def build(
    fed: Federation, data_dir: Path, url: str
) -> tuple[Node, dict[str, list[tuple[str, set[str], str]]]]:
    """Store the federation's objects; return the node and the model.

    The model maps id -> [(modified, partners, origin)] for every stored version.
    """
    data_dir.mkdir(parents=True)
    db = Database(url, data_dir)
    migrate(db)
    identity = f"identity--{uuid.uuid5(uuid.NAMESPACE_URL, fed.node)}"
    for k, v in (("partner", fed.node), ("name", fed.node), ("identity_id", identity)):
        db.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (k, v))
    for code in fed.codes:
        if code != fed.node:
            add_partner(db, code, code, f"identity--{uuid.uuid5(uuid.NAMESPACE_URL, code)}")
    for name, members in fed.groups.items():
        add_group(db, name, members, fed.node)
    model: dict[str, list[tuple[str, set[str], str]]] = {}
    for i, spec in enumerate(fed.objects):
        oid = f"note--{uuid.uuid4()}"
        for j, dist in enumerate((spec.v1, spec.v2)):
            if dist is None:
                continue
            modified = f"2015-02-2{j}T00:00:00.000Z"
            obj = {
                "type": "note",
                "spec_version": "2.1",
                "id": oid,
                "created": "2015-02-20T00:00:00.000Z",
                "modified": modified,
                "content": f"object {i} version {j}",
                "object_refs": [identity],
            }
            if spec.origin == fed.node:
                ingest(db, [obj], prepare=local_stamp(db, fed.node, identity, dist, spec.tlp))
                partners = expand(fed, dist)
            else:
                stamped = set_distribution(obj, spec.origin, dist)
                ingest(db, [stamped], prepare=lambda o: o)
                partners = set(dist)
            model.setdefault(oid, []).append((modified, partners, spec.origin))
    db.close()
    node = Node(make_settings(data_dir, url))
    return node, model


def principals(fed: Federation) -> list[Principal]:
    out = [ANONYMOUS]
    for code in fed.codes:
        if code == fed.node:
            out += [Principal(f"{r}-user", r, code) for r in ("admin", "editor", "reader")]
        else:
            out.append(Principal(f"sync-{code}", "sync", code))
    return out


def expected(
    fed: Federation, model: dict[str, list[tuple[str, set[str], str]]], p: Principal
) -> dict[str, list[str]]:
    """id -> visible versions' modified, per the reference model."""
    out: dict[str, list[str]] = {}
    if p.partner is None:
        return out
    for oid, versions in model.items():
        latest = max(versions, key=lambda v: v[0])
        if p.partner not in latest[1]:
            continue
        seen = [
            m
            for m, partners, origin in versions
            if p.partner in partners and (not p.is_sync or origin == fed.node)
        ]
        if seen:
            out[oid] = sorted(seen)
    return out


def withdrawn(
    fed: Federation, model: dict[str, list[tuple[str, set[str], str]]], p: Principal
) -> set[str]:
    """Ids the withdrawal feed owes sync principal *p*, per the reference model: this node's
    objects whose latest version is not released to p's partner, but whose latest version was
    at some earlier commit (each version is its own commit, in model order).  Versions stored
    after a newer one never were latest, so they withdraw nothing."""
    owed = set()
    for oid, versions in model.items():
        if versions[0][2] != fed.node:
            continue
        was_visible = False
        running: tuple[str, set[str], str] | None = None
        for version in versions:
            if running is None or version[0] > running[0]:
                running = version
            was_visible = was_visible or p.partner in running[1]
        if running is not None and p.partner not in running[1] and was_visible:
            owed.add(oid)
    return owed


def check_forms_agree(node: Node, fed: Federation) -> None:
    """The predicate and the SQL condition select the same versions, for every principal."""
    rows = node.db.fetchall("SELECT added, id, is_latest, json FROM objects")
    latest = {r[1]: orjson.loads(r[3]) for r in rows if r[2]}
    for p in principals(fed):
        by_predicate = {
            r[0] for r in rows if policy.may_see(p, fed.node, orjson.loads(r[3]), latest[r[1]])
        }
        sql, params = policy.condition(p, fed.node, all_versions=True)
        by_sql = {r[0] for r in node.db.fetchall(f"SELECT added FROM objects WHERE {sql}", params)}
        assert by_predicate == by_sql, p
        CASES["count"] += 1


def check_paths(
    node: Node, fed: Federation, model: dict[str, list[tuple[str, set[str], str]]]
) -> None:
    check_forms_agree(node, fed)
    app = create_app(node.settings, node)
    with TestClient(app) as client:
        for p in principals(fed):
            app.dependency_overrides[deps.principal] = (
                (lambda p=p: p) if p.partner else deps.principal
            )
            want = expected(fed, model, p)
            want_latest = {
                oid: max(v) for oid, v in want.items() if max(v) == max(m for m, _, _ in model[oid])
            }
            if p.partner is None:
                for path in ("/api/objects", "/api/export", "/api/stats"):
                    assert client.get(path).status_code == 401
                    CASES["count"] += 1
                continue
            # list, paged with a small limit
            got: dict[str, str] = {}
            cursor = None
            while True:
                params: dict[str, Any] = {"limit": 2, "type": "note"}
                if cursor:
                    params["cursor"] = cursor
                body = client.get("/api/objects", params=params).json()
                for o in body["objects"]:
                    assert o["id"] not in got
                    got[o["id"]] = o["modified"]
                cursor = body["next"]
                if cursor is None:
                    break
            assert got == want_latest, (p, got, want_latest)
            # get latest, and all versions, of every object that exists
            for oid in model:
                r = client.get(f"/api/objects/{oid}")
                if oid in want_latest:
                    assert r.status_code == 200 and r.json()["modified"] == want_latest[oid]
                else:
                    assert r.status_code == 404, (p, oid)
                r = client.get(f"/api/objects/{oid}", params={"versions": "all"})
                if oid in want:
                    assert sorted(v["modified"] for v in r.json()["versions"]) == want[oid]
                else:
                    assert r.status_code == 404
            # export and counts
            exported = client.get("/api/export").json()["objects"]
            assert {o["id"]: o["modified"] for o in exported if o["type"] == "note"} == want_latest
            stats = client.get("/api/stats").json()["by_type"]
            assert stats.get("note", 0) == len(want_latest)
            # the withdrawal feed: only partners' sync accounts, only what was once theirs
            r = client.get("/api/sync/withdrawals", params={"limit": 10_000})
            if p.is_sync:
                fed_ids = {i["id"] for i in r.json()["withdrawals"]}
                assert fed_ids == withdrawn(fed, model, p), p
            else:
                assert r.status_code == 403
            CASES["count"] += 6
        app.dependency_overrides.clear()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(fed=federations())
def test_no_read_path_leaks_sqlite(fed: Federation, tmp_path_factory: Any) -> None:
    node, model = build(fed, tmp_path_factory.mktemp("leak") / "n", "")
    try:
        check_paths(node, fed, model)
    finally:
        node.close()


if PG_URL:

    @settings(max_examples=PG_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(fed=federations())
    def test_no_read_path_leaks_postgresql(fed: Federation, tmp_path_factory: Any) -> None:
        schema = PgSchema()
        try:
            node, model = build(fed, tmp_path_factory.mktemp("leak") / "n", schema.url)
            try:
                check_paths(node, fed, model)
            finally:
                node.close()
        finally:
            schema.drop()


def test_narrowing_withdraws_every_version(node: Node) -> None:
    add_partner(node.db, "DZ", "Algeria", "identity--" + str(uuid.uuid4()))
    add_partner(node.db, "TN", "Tunisia", "identity--" + str(uuid.uuid4()))
    obj = {
        "type": "note",
        "spec_version": "2.1",
        "id": f"note--{uuid.uuid4()}",
        "created": "2015-02-20T00:00:00.000Z",
        "modified": "2015-02-20T00:00:00.000Z",
        "content": "x",
        "object_refs": [node.identity_id],
    }
    node.ingest([obj], distribution=["DZ", "TN"])
    node.ingest([{**obj, "modified": "2015-02-21T00:00:00.000Z"}], distribution=["TN"])
    app = create_app(node.settings, node)
    with TestClient(app) as client:
        for code, status in (("DZ", 404), ("TN", 200)):
            app.dependency_overrides[deps.principal] = lambda c=code: Principal("s", "sync", c)
            assert client.get(f"/api/objects/{obj['id']}").status_code == status
            assert (
                client.get(f"/api/objects/{obj['id']}", params={"versions": "all"}).status_code
                == status
            )
            body = orjson.loads(client.get("/api/export").content)
            assert (obj["id"] in {o["id"] for o in body["objects"]}) == (status == 200)


def _store_migrated_to(tmp_path: Path, database_url: str, steps: int) -> Database:
    """A store made by the first *steps* migrations, partner DZ registered."""
    from tansiq.store import migrations

    db = Database(database_url, tmp_path)
    everything = migrations.MIGRATIONS
    migrations.MIGRATIONS = everything[:steps]
    try:
        migrate(db)
    finally:
        migrations.MIGRATIONS = everything
    add_partner(db, "DZ", "DZ", "identity--" + str(uuid.uuid4()))
    return db


def _note(oid: str, modified: str, partners: list[str], about: str) -> dict[str, Any]:
    """A version of note *oid* by EG released to *partners*."""
    obj = {
        "type": "note",
        "spec_version": "2.1",
        "id": oid,
        "created": "2015-02-20T00:00:00.000Z",
        "modified": modified,
        "content": modified,
        "object_refs": [about],
    }
    return set_distribution(obj, "EG", partners)


def _withdrawn_from_dz(db: Database) -> list[str]:
    """The ids of the withdrawal feed DZ's sync account reads."""
    from tansiq.store import deletions

    who = Principal("sync-DZ", "sync", "DZ")
    rows = deletions.feed(
        db, policy.withdrawn_condition(who, "EG"), policy.deleted_condition(who, "EG"), 0, 100
    )
    return sorted(r[1] for r in rows)


EARLY, LATE = "2015-02-20T00:00:00.000Z", "2015-02-21T00:00:00.000Z"


def test_migration_009_withdraws_nothing_a_partner_never_saw(
    tmp_path: Path, database_url: str
) -> None:
    """A store made by migrations 001-008: a version released to DZ but stored after a newer
    one that excludes DZ was never visible to DZ (the latest never released the object to it),
    so 009's events must not announce the object's id to DZ's sync account, as the write path's
    own events do not (see :func:`withdrawn`)."""
    db = _store_migrated_to(tmp_path, database_url, 8)
    try:
        about = "identity--" + str(uuid.uuid4())
        never, seen = f"note--{uuid.uuid4()}", f"note--{uuid.uuid4()}"
        objects = [
            _note(never, LATE, ["EG"], about),  # the latest from the start
            _note(never, EARLY, ["DZ", "EG"], about),  # stored after it
            _note(seen, EARLY, ["DZ", "EG"], about),  # latest, visible to DZ
            _note(seen, LATE, ["EG"], about),  # then narrowed
        ]
        # one batch, in this order (``added`` follows it): 008's code recorded no withdrawal
        ingest(db, objects, prepare=lambda o: o)
        assert "009_withdrawals" in migrate(db)
        assert _withdrawn_from_dz(db) == [seen]
    finally:
        db.close()


def test_migration_011_deletes_what_009_first_withdrew_from_partners_that_never_saw_it(
    tmp_path: Path, database_url: str
) -> None:
    """A store that ran 009 as first shipped keeps its events for objects a partner never saw
    until 011 deletes them; events for objects it saw are kept."""
    db = _store_migrated_to(tmp_path, database_url, 10)
    try:
        about = "identity--" + str(uuid.uuid4())
        never, seen = f"note--{uuid.uuid4()}", f"note--{uuid.uuid4()}"
        first = [
            _note(never, LATE, ["EG"], about),  # the latest from the start
            _note(never, EARLY, ["DZ", "EG"], about),  # stored after it
            _note(seen, EARLY, ["DZ", "EG"], about),  # latest, seen by DZ
            _note(seen, LATE, ["EG"], about),  # then narrowed (one batch: no event written)
        ]
        ingest(db, first, prepare=lambda o: o)
        # the event the write path of that schema recorded for *seen* (of a later bundle), and
        # what 009 as first shipped left beside it for *never*
        with db.write():
            db.execute(
                "INSERT INTO withdrawals (added, id, origin, partners)"
                " SELECT added, id, origin, ',DZ,' FROM latest_objects WHERE id IN (?, ?)",
                (seen, never),
            )
        assert _withdrawn_from_dz(db) == sorted([never, seen])
        assert "011_unseen_withdrawals" in migrate(db)
        assert _withdrawn_from_dz(db) == [seen]
    finally:
        db.close()


def test_migration_016_keeps_the_tombstones_of_versions_withdrawn_before_it(
    tmp_path: Path, database_url: str
) -> None:
    """Events recorded before 016 get ``since`` = their ``added``: deleting a version DZ saw
    before an earlier write withdrew the object from it still names DZ in the tombstone."""
    from tansiq.stix.timestamps import to_micros
    from tansiq.store import deletions

    db = _store_migrated_to(tmp_path, database_url, 15)
    try:
        about = "identity--" + str(uuid.uuid4())
        seen = f"note--{uuid.uuid4()}"
        versions = [_note(seen, EARLY, ["DZ", "EG"], about), _note(seen, LATE, ["EG"], about)]
        ingest(db, versions, prepare=lambda o: o)  # one batch: no event written
        with db.write():  # the event 015's write path recorded, had they been two bundles
            db.execute(
                "INSERT INTO withdrawals (added, id, origin, partners)"
                " SELECT added, id, origin, ',DZ,' FROM latest_objects WHERE id = ?",
                (seen,),
            )
        assert migrate(db) == ["016_withdrawal_since"]
        with db.write() as last:
            doomed = db.fetchall(
                "SELECT added, version, partners FROM objects WHERE id = ? AND version < ?",
                (seen, to_micros(LATE)),
            )
            deletions.record(db, last, seen, "EG", [(int(a), int(v), p) for a, v, p in doomed])
        assert _withdrawn_from_dz(db) == [seen, seen]  # withdrawn, and the deleted version
    finally:
        db.close()
