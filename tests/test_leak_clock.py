"""Known gap: the node's one ``date_added`` clock counts hidden rows.

Rows written in one transaction take consecutive ``added`` values (µs), and so do the
tombstones of one TAXII DELETE.  A partner sees the ``added`` of what it may see (TAXII
``date_added``, ``X-TAXII-Date-Added-*``, paging cursors, the withdrawal feed's ``after``): a gap
between two of them in one transaction is the exact count of rows hidden from it (objects of a
bundle, or deleted versions of an object it sees).  Each test builds the same store twice, with
and without rows hidden from DZ, under one fixed clock, and compares what DZ's sync account
reads: it must not differ.  Strict xfails until the clock stops counting (no fix yet)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import make_settings
from fastapi.testclient import TestClient

from tansiq.accounts.store import create_account, create_token
from tansiq.api.app import create_app
from tansiq.node import Node, init_node, partner_identity_id
from tansiq.sharing import add_partner
from tansiq.stix.extensions import set_distribution
from tansiq.store import deletions, ingest

T0 = 1_600_000_000_000_000


def _note(key: str, modified: str) -> dict[str, Any]:
    return {
        "type": "note",
        "spec_version": "2.1",
        "id": f"note--{uuid.uuid5(uuid.NAMESPACE_URL, key)}",
        "created": "2015-02-01T00:00:00.000Z",
        "modified": modified,
        "content": key,
        "object_refs": [f"note--{uuid.uuid5(uuid.NAMESPACE_URL, 'x')}"],
    }


def _reads(tmp: Path, hidden: bool, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What DZ's sync account reads after one bundle and one delete, each at a fixed time."""
    clock = {"now": T0}
    for module in (ingest, deletions):
        monkeypatch.setattr(module, "now_micros", lambda: clock["now"])
    settings = make_settings(tmp, "")
    editor = init_node(settings, "EG", "Egypt", admin_password="admin-password-1").admin_token
    node = Node(settings)
    try:
        for code in ("DZ", "TN"):
            add_partner(node.db, code, code, partner_identity_id(code))
        create_account(node.db, "sync-dz", "a-long-password-1", "sync", "DZ", allow_reserved=True)
        token = create_token(node.db, "sync-dz", "t", "api sync")

        def released(key: str, modified: str, partners: list[str]) -> dict[str, Any]:
            return set_distribution(_note(key, modified), "EG", partners)

        day = "2015-02-{}T00:00:00.000Z".format
        bundle = [released("a", day(20), ["DZ", "EG"]), released("b", day(20), ["DZ", "EG"])]
        deleted = [released("d", day(20), ["DZ", "EG"]), released("d", day(22), ["DZ", "EG", "TN"])]
        if hidden:  # released to TN only
            bundle.insert(1, released("h", day(20), ["EG", "TN"]))
            deleted.insert(1, released("d", day(21), ["EG", "TN"]))
        node.ingest(bundle)
        clock["now"] += 10**9
        node.ingest(deleted[:1] + deleted[-1:])
        if hidden:
            clock["now"] += 10**9
            node.ingest(deleted[1:2])  # stored after the latest: hidden from DZ
        clock["now"] = T0 + 10 * 10**9
        app = create_app(node.settings, node)
        with TestClient(app) as client:
            oid = deleted[0]["id"]
            admin = {"Authorization": f"Bearer {editor}"}
            r = client.delete(f"/taxii2/api/collections/shared/objects/{oid}/", headers=admin)
            assert r.status_code == 200, r.text
            dz = {"Authorization": f"Bearer {token}"}
            manifest = client.get("/taxii2/api/collections/shared/manifest/", headers=dz).json()
            feed = client.get("/api/sync/withdrawals", headers=dz).json()
        return [manifest, feed]
    finally:
        node.close()


@pytest.mark.xfail(strict=True, reason="known gap: date_added counts rows hidden from DZ")
def test_date_added_does_not_count_hidden_objects_of_a_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = _reads(tmp_path / "a", False, monkeypatch)
    assert shown[0] == _reads(tmp_path / "b", True, monkeypatch)[0]


@pytest.mark.xfail(strict=True, reason="known gap: tombstone clock counts hidden versions")
def test_withdrawal_feed_does_not_count_hidden_deleted_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = _reads(tmp_path / "a", False, monkeypatch)
    assert shown[1] == _reads(tmp_path / "b", True, monkeypatch)[1]


def test_the_same_store_reads_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison itself is sound: without hidden rows both builds read alike."""
    assert _reads(tmp_path / "a", False, monkeypatch) == _reads(tmp_path / "b", False, monkeypatch)
