"""Differential leak tests of the write paths and of error answers.

:mod:`test_leak_diff` compares every read of two stores that differ only in what is hidden
from partner DZ.  Here the same is done for what writes leave behind and for writes DZ's
accounts try: node EG's editor writes the same visible objects into both stores, and into the
second also objects DZ may not see (through REST, TAXII and a multi-batch bundle), each write
at a fixed instant of its own.  DZ's sync account and DZ's liaison reader then try to write
(REST ``POST /api/bundles``, TAXII ``POST``, ``DELETE``, ``PUT .../distribution``) with the
hidden objects' ids, ask for the status resources of the editor's requests, and read what a
peer's node acts on (the withdrawal feed).  Every answer must be the same bytes in both
stores: a hidden id must look exactly like an absent one.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import PG_SKIP_REASON, PG_URL, PgSchema, make_settings
from fastapi.testclient import TestClient

from tansiq.accounts.store import create_account, create_token
from tansiq.api.app import create_app
from tansiq.api.taxii import SHARED_ID
from tansiq.node import Node, init_node, partner_identity_id
from tansiq.sharing import add_partner
from tansiq.stix.extensions import set_distribution
from tansiq.stix.timestamps import to_micros
from tansiq.store import deletions, ingest

T0 = 1_600_000_000_000_000
STEP = 10**9
TAXII = "application/taxii+json;version=2.1"
OBJECTS = f"/taxii2/api/collections/{SHARED_ID}/objects/"
PASSWORD = "a-long-password-1"
EG = partner_identity_id("EG")


def day(n: int) -> str:
    return f"2016-01-{n:02d}T00:00:00.000Z"


def oid(key: str) -> str:
    return f"note--{uuid.uuid5(uuid.NAMESPACE_URL, key)}"


def note(key: str, modified: str, partners: list[str] | None = None) -> dict[str, Any]:
    """A version of EG's note *key*; with *partners*, carrying that distribution (as a
    re-imported export or history does)."""
    obj: dict[str, Any] = {
        "type": "note",
        "spec_version": "2.1",
        "id": oid(key),
        "created": day(1),
        "modified": modified,
        "created_by_ref": EG,
        "content": f"{key} {modified}",
        "object_refs": [EG],
    }
    return obj if partners is None else set_distribution(obj, "EG", ["EG", *partners])


# Each write: (hidden, how, what).  "bundle": one ingest of versions carrying their own
# distribution, written one per statement batch (ingest_batch=1), as the versions of a large
# bundle may fall into different batches; "rest"/"taxii": the editor posts one new object
# with that distribution; "delete": the editor deletes a version through TAXII.
Write = tuple[bool, str, Any]
WRITES: list[Write] = [
    (False, "rest", (note("a", day(2)), "DZ")),
    # A new object whose last version (TN only) replaces, in a later batch of the same ingest,
    # one released to DZ: DZ never saw any of it.
    (True, "bundle", [note("h-new", day(2), ["DZ"]), note("h-new", day(3), ["TN"])]),
    # An object kept to TN, then released to DZ and taken back within one ingest.
    (True, "bundle", [note("h-old", day(2), ["TN"])]),
    (True, "bundle", [note("h-old", day(3), ["DZ", "TN"]), note("h-old", day(4), ["TN"])]),
    (False, "taxii", (note("b", day(2)), None)),
    (True, "rest", (note("h-rest", day(2)), "TN")),
    (True, "taxii", (note("h-taxii", day(2)), None)),  # kept to EG
    (True, "delete", ("h-new", day(2))),  # the version once meant for DZ
    (False, "rest", (note("a", day(3)), "all")),
]
HIDDEN = ["h-new", "h-old", "h-rest", "h-taxii"]


def build(tmp: Path, url: str, hidden: bool, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Node EG after the writes (the hidden ones too, if *hidden*), DZ's credentials, and the
    ids of the status resources of the editor's TAXII posts."""
    clock = {"now": T0}
    for module in (ingest, deletions):
        monkeypatch.setattr(module, "now_micros", lambda: clock["now"])
    settings = make_settings(tmp, url, ingest_batch=1)
    editor = init_node(settings, "EG", "Egypt", admin_password="admin-password-1").admin_token
    node = Node(settings)
    for code in ("DZ", "TN"):
        add_partner(node.db, code, code, partner_identity_id(code))
    create_account(node.db, "sync-dz", PASSWORD, "sync", "DZ", allow_reserved=True)
    create_account(node.db, "dz-liaison", PASSWORD, "reader", "DZ")
    basic = base64.b64encode(b"dz-liaison:" + PASSWORD.encode()).decode()
    creds = {
        "sync": {"Authorization": "Bearer " + create_token(node.db, "sync-dz", "t", "api sync")},
        "liaison": {"Authorization": "Bearer " + create_token(node.db, "dz-liaison", "t", "api")},
        "basic": {"Authorization": "Basic " + basic},
    }
    statuses = []
    app = create_app(node.settings, node)
    with TestClient(app, headers={"Authorization": f"Bearer {editor}"}) as client:
        for i, (secret, how, what) in enumerate(WRITES):
            clock["now"] = T0 + (2 * i + (1 if secret else 2)) * STEP
            if secret and not hidden:
                continue
            if how == "bundle":
                node.ingest(what)
                continue
            if how == "delete":
                r = client.delete(
                    f"{OBJECTS}{oid(what[0])}/",
                    params={"match[version]": what[1]},
                    headers={"Accept": TAXII},
                )
                assert r.status_code == 200, r.text
                continue
            obj, spec = what
            if how == "rest":
                r = client.post("/api/bundles", params={"distribution": spec}, json=bundle([obj]))
                assert r.status_code == 201, r.text
            else:
                r = client.post(
                    OBJECTS,
                    content=orjson.dumps({"objects": [obj]}),
                    headers={"Content-Type": TAXII, "Accept": TAXII},
                )
                assert r.status_code == 202, r.text
                statuses.append(r.json()["id"])
    clock["now"] = T0 + 1000 * STEP
    return {"node": node, "creds": creds, "statuses": statuses}


def bundle(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": objects}


def requests(statuses: list[str]) -> Iterator[tuple[str, str, dict[str, str], bytes | None]]:
    """(method, path, params, JSON body) of what DZ's accounts try."""
    yield "GET", "/api/sync/withdrawals", {}, None
    yield "GET", "/api/sync/withdrawals", {"after": str(T0 + 3 * STEP)}, None
    for status in statuses:
        yield "GET", f"/taxii2/api/status/{status}/", {}, None
    for key in HIDDEN:
        i = oid(key)
        for modified in (day(2), day(3), day(9)):
            obj = note(key, modified)
            yield "POST", "/api/bundles", {}, orjson.dumps(bundle([obj]))
            yield "POST", OBJECTS, {}, orjson.dumps({"objects": [obj]})
            yield "DELETE", f"{OBJECTS}{i}/", {"match[version]": modified}, None
        yield "DELETE", f"{OBJECTS}{i}/", {}, None
        yield "PUT", f"/api/objects/{i}/distribution", {"distribution": "all"}, None
        yield "GET", f"/api/objects/{i}", {}, None
        yield "GET", f"{OBJECTS}{i}/", {}, None


def answers(store: dict[str, Any], statuses: list[str]) -> list[tuple[Any, ...]]:
    node: Node = store["node"]
    out: list[tuple[Any, ...]] = []
    with TestClient(create_app(node.settings, node)) as client:
        for who, auth in store["creds"].items():
            for method, path, params, body in requests(statuses):
                if who == "basic" and not path.startswith("/taxii2/"):
                    continue  # (Basic: TAXII only)
                media = TAXII if path.startswith("/taxii2/") else "application/json"
                headers = {**auth, "Accept": TAXII, "Content-Type": media}
                r = client.request(method, path, params=params, content=body, headers=headers)
                out.append((who, method, path, params, r.status_code, r.content))
    return out


@pytest.mark.parametrize(
    "engine",
    [
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason=PG_SKIP_REASON)),
    ],
)
def test_hidden_writes_change_nothing_dz_is_told(
    engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    schemas = [PgSchema(), PgSchema()] if engine == "postgresql" else []
    urls = [s.url for s in schemas] or ["", ""]
    try:
        plain = build(tmp_path / "plain", urls[0], False, monkeypatch)
        secret = build(tmp_path / "secret", urls[1], True, monkeypatch)
        try:
            # The editor's status ids of the second store, asked of both (the first has none).
            statuses = secret["statuses"]
            shown, other = answers(plain, statuses), answers(secret, statuses)
        finally:
            plain["node"].close()
            secret["node"].close()
    finally:
        for s in schemas:
            s.drop()
    feed = orjson.loads(shown[0][5])["withdrawals"]
    assert [item["id"] for item in feed] == [], feed  # "a" only grew
    differ = [(a, b) for a, b in zip(shown, other, strict=True) if a != b]
    for a, b in differ[:10]:
        print(a[:5], "\n  ", a[5][:300], "\n  ", b[5][:300])
    assert not differ, f"{len(differ)} of {len(shown)} answers differ"


def test_a_version_stored_with_its_withdrawal_is_never_named_to_the_partner(
    tmp_path: Path, database_url: str
) -> None:
    """One bundle stores an older version released to DZ and a newer one that withdraws the
    object from DZ, in that order (so the older one's ``date_added`` comes first): DZ never
    saw the older one, so deleting it must leave DZ no tombstone, which would tell DZ that
    version exists.  Deleting the version DZ did see tells it."""
    settings = make_settings(tmp_path, database_url)
    editor = init_node(settings, "EG", "Egypt", admin_password="admin-password-1").admin_token
    node = Node(settings)
    try:
        for code in ("DZ", "TN"):
            add_partner(node.db, code, code, partner_identity_id(code))
        create_account(node.db, "sync-dz", PASSWORD, "sync", "DZ", allow_reserved=True)
        sync = create_token(node.db, "sync-dz", "t", "api sync")
        node.ingest([note("s", day(3), ["DZ"])])  # DZ sees it
        node.ingest([note("s", day(2), ["DZ"]), note("s", day(4), ["TN"])])
        with TestClient(create_app(node.settings, node)) as client:
            admin = {"Authorization": f"Bearer {editor}", "Accept": TAXII}

            def feed() -> list[tuple[str, int | None]]:
                headers = {"Authorization": f"Bearer {sync}"}
                items = client.get("/api/sync/withdrawals", headers=headers).json()
                return [(i["reason"], i.get("version")) for i in items["withdrawals"]]

            for modified in (day(2), day(3)):
                r = client.delete(
                    f"{OBJECTS}{oid('s')}/", params={"match[version]": modified}, headers=admin
                )
                assert r.status_code == 200, r.text
                if modified == day(2):
                    assert feed() == [("withdrawn", None)]
            assert feed() == [("withdrawn", None), ("deleted", to_micros(day(3)))]
    finally:
        node.close()
