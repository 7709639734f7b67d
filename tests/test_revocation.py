"""Revocation is permanent (STIX 2.1, 3.6 ``revoked``): no version later than a revoked one is
stored, on any write path (store, REST, TAXII, CLI, sync) nor by a distribution change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
import test_cli
from fastapi.testclient import TestClient
from test_api import bundle
from test_federation import FakePeer
from test_store import indicator

from tansiq import audit
from tansiq.federation.enrol import accept
from tansiq.federation.signing import sign
from tansiq.federation.sync import sync_partner
from tansiq.node import Node, partner_identity_id
from tansiq.settings import load
from tansiq.stix.extensions import set_distribution
from tansiq.stix.timestamps import to_micros
from tansiq.store.ingest import REVOKED_NOT_LAST, IngestError, ingest

run = test_cli.run

V1, V2, V3 = "2016-01-01T00:00:00.000Z", "2016-02-01T00:00:00.000Z", "2016-03-01T00:00:00.000Z"
V0 = "2015-12-01T00:00:00.000Z"


def versions(node: Node, oid: str) -> list[tuple[int, int, int]]:
    """(version µs, revoked, is_latest) of every stored version of *oid*, oldest first."""
    rows = node.db.fetchall(
        "SELECT version, revoked, is_latest FROM objects WHERE id = ? ORDER BY version", (oid,)
    )
    return [(int(r[0]), int(r[1]), int(r[2])) for r in rows]


def revoked_object(n: int) -> list[dict[str, Any]]:
    """Version 1 of indicator *n*, then version 2 revoking it."""
    return [indicator(n, V1), indicator(n, V2, revoked=True)]


def test_no_version_after_a_revoked_one_in_the_store(node: Node) -> None:
    ingest(node.db, revoked_object(1))
    oid = indicator(1)["id"]
    before = versions(node, oid)
    with pytest.raises(IngestError) as exc:
        ingest(node.db, [indicator(2), indicator(1, V3, name="after revocation")])
    [error] = exc.value.errors
    assert (error.index, error.id, error.property) == (1, oid, "modified")
    assert "revoked" in error.reason and "permanent" in error.reason
    assert not exc.value.only_conflicts
    assert versions(node, oid) == before
    assert not node.db.fetchall("SELECT 1 FROM objects WHERE id = ?", (indicator(2)["id"],))
    # the identical revoked version again: a no-op; an older version: backfill, stored
    result = ingest(node.db, [indicator(1, V2, revoked=True), indicator(1, V0, name="backfill")])
    assert (result.stored, result.unchanged) == (1, 1)
    assert versions(node, oid) == [
        (to_micros(V0), 0, 0),
        (to_micros(V1), 0, 0),
        (to_micros(V2), 1, 1),
    ]


def test_a_refused_revoked_version_refuses_nothing_else(node: Node) -> None:
    """A revoked version older than a stored one is refused (REVOKED_NOT_LAST): it revokes
    nothing, so a later version beside it in the same batch is judged without it."""
    ingest(node.db, [indicator(5, V2)])
    oid = indicator(5)["id"]
    later = "2016-04-01T00:00:00.000Z"
    with pytest.raises(IngestError) as exc:
        ingest(node.db, [indicator(5, V1, revoked=True), indicator(5, later, name="v4")])
    assert [(e.index, e.property, e.reason) for e in exc.value.errors] == [
        (0, "revoked", REVOKED_NOT_LAST)
    ]
    assert versions(node, oid) == [(to_micros(V2), 0, 1)]


@pytest.mark.parametrize("batch_size", [1, 10])
def test_revoked_and_later_version_in_one_bundle(node: Node, batch_size: int) -> None:
    """Whatever their order and batches, a bundle holding a revoked version and a later one is
    refused."""
    for n, objs in (
        (3, [indicator(3, V3), indicator(3, V2, revoked=True)]),
        (4, [indicator(4, V2, revoked=True), indicator(4, V3)]),
    ):
        with pytest.raises(IngestError) as exc:
            ingest(node.db, objs, batch_size=batch_size)
        assert [e.id for e in exc.value.errors] == [indicator(n)["id"]]
        assert versions(node, indicator(n)["id"]) == []


def test_a_revoked_version_older_than_a_stored_one_is_refused(node: Node) -> None:
    ingest(node.db, [indicator(5, V3)])
    with pytest.raises(IngestError) as exc:
        ingest(node.db, [indicator(5, V2, revoked=True)])
    [error] = exc.value.errors
    assert (error.property, error.reason) == ("revoked", REVOKED_NOT_LAST)
    assert versions(node, indicator(5)["id"]) == [(to_micros(V3), 0, 1)]


def test_rest_bundle_after_revocation_is_refused_whole(client: TestClient, node: Node) -> None:
    assert client.post("/api/bundles", json=bundle(*revoked_object(6))).status_code == 201
    r = client.post("/api/bundles", json=bundle(indicator(7), indicator(6, V3)))
    assert r.status_code == 422, r.text
    [error] = r.json()["errors"]
    assert error["index"] == 1 and error["id"] == indicator(6)["id"]
    assert error["property"] == "modified" and "revoked" in error["reason"]
    assert client.get(f"/api/objects/{indicator(7)['id']}").status_code == 404
    latest = client.get(f"/api/objects/{indicator(6)['id']}").json()
    assert latest["modified"] == V2 and latest["revoked"] is True


def test_distribution_change_of_a_revoked_object_is_a_conflict(
    client: TestClient, node: Node
) -> None:
    client.post("/api/bundles", json=bundle(*revoked_object(8)))
    oid = indicator(8)["id"]
    r = client.put(f"/api/objects/{oid}/distribution", params={"distribution": "all"})
    assert r.status_code == 409, r.text
    assert "revoked" in r.json()["detail"]
    assert versions(node, oid) == [(to_micros(V1), 0, 0), (to_micros(V2), 1, 1)]


def test_taxii_add_after_revocation_fails_in_the_status(client: TestClient, node: Node) -> None:
    from tansiq.api.taxii import SHARED_ID

    node.ingest(revoked_object(9))
    taxii = "application/taxii+json;version=2.1"
    r = client.post(
        f"/taxii2/api/collections/{SHARED_ID}/objects/",
        content=orjson.dumps({"objects": [indicator(9, V3)]}),
        headers={"Content-Type": taxii, "Accept": taxii},
    )
    assert r.status_code == 202, r.text
    status = r.json()
    assert (status["success_count"], status["failure_count"]) == (0, 1)
    assert "revoked" in status["failures"][0]["message"]
    assert len(versions(node, indicator(9)["id"])) == 2


def test_cli_ingest_after_revocation_fails_and_stores_nothing(
    data_dir: Path, tmp_path: Path
) -> None:
    first = tmp_path / "first.json"
    first.write_text(json.dumps(bundle(*revoked_object(10))))
    assert run("ingest", "--data-dir", str(data_dir), str(first))[0] == 0
    later = tmp_path / "later.json"
    later.write_text(json.dumps(bundle(indicator(11), indicator(10, V3))))
    code, _, err = run("ingest", "--data-dir", str(data_dir), str(later))
    assert code == 1 and "object 1" in err and "revoked" in err and "nothing stored" in err
    _, out, _ = run("stats", "--data-dir", str(data_dir), "--json")
    assert json.loads(out)["indicator"] == 1  # indicator 10 only, not 11
    node = Node(load({"data_dir": str(data_dir)}, env={}))
    try:
        assert len(versions(node, indicator(10)["id"])) == 2
    finally:
        node.close()


def test_sync_rejects_and_audits_a_version_after_revocation(node: Node) -> None:
    peer = FakePeer()  # "LY", releasing to this node (EG)

    def version(modified: str, **extra: Any) -> dict[str, Any]:
        obj = {**indicator(12, modified), "created_by_ref": partner_identity_id("LY"), **extra}
        return sign(set_distribution(obj, "LY", ["EG", "LY"]), peer.key, "LY")

    try:
        accept(node, peer.invitation())
        peer.objects = [version(V1), version(V2, revoked=True)]
        report = sync_partner(node, "LY")
        assert (report.stored, report.rejected) == (2, 0), report.rejections
        peer.objects = [version(V1), version(V2, revoked=True), version(V3, name="after")]
        report = sync_partner(node, "LY")
        assert (report.stored, report.unchanged, report.rejected) == (0, 2, 1), report.rejections
        assert "revoked" in report.rejections[0]
        oid = indicator(12)["id"]
        assert versions(node, oid) == [(to_micros(V1), 0, 0), (to_micros(V2), 1, 1)]
        rejected = [e for e in audit.page(node.db, None, 1000) if e["action"] == "sync_rejected"]
        assert [e["target"] for e in rejected] == [oid]
        assert audit.verify(node.db).ok
    finally:
        peer.stop()


class DeletingPeer(FakePeer):
    """A FakePeer whose withdrawal feed serves :attr:`feed` (deletions it made)."""

    def __init__(self) -> None:
        self.feed: list[dict[str, Any]] = []
        super().__init__()

    async def withdrawals(self, request: Any) -> Any:
        from starlette.responses import Response

        after = int(request.query_params.get("after", "0"))
        items = [item for item in self.feed if item["after"] > after]
        body = {"withdrawals": items, "more": False}
        return Response(orjson.dumps(body), media_type="application/json")


def test_sync_takes_a_version_after_a_revoked_one_its_originator_deleted(node: Node) -> None:
    """The originator deleted its revoked version and stored a later one (its store holds no
    revocation then).  Sync reads the pages before the deletion feed: the later version must
    not be refused for the revoked copy the feed deletes right after, or this node would hold
    less than its originator until a `sync --from-start`."""
    peer = DeletingPeer()

    def version(modified: str, **extra: Any) -> dict[str, Any]:
        obj = {**indicator(13, modified), "created_by_ref": partner_identity_id("LY"), **extra}
        return sign(set_distribution(obj, "LY", ["EG", "LY"]), peer.key, "LY")

    oid = indicator(13)["id"]
    try:
        accept(node, peer.invitation())
        peer.objects = [version(V1), version(V2, revoked=True)]
        report = sync_partner(node, "LY")
        assert (report.stored, report.rejected) == (2, 0), report.rejections
        # On LY: the revoked version deleted, a later one stored.
        peer.objects = [version(V1), version(V3, name="after")]
        peer.feed = [{"id": oid, "version": to_micros(V2), "reason": "deleted", "after": 10}]
        report = sync_partner(node, "LY")
        assert (report.deleted, report.rejected) == (1, 0), report.rejections
        assert versions(node, oid) == [(to_micros(V1), 0, 0), (to_micros(V3), 0, 1)]
        assert audit.verify(node.db).ok
    finally:
        peer.stop()
