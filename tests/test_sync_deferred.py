"""Versions a pull keeps aside until the withdrawal feed is applied (a version after a revoked
one its originator deleted): a crash in between loses none, and the feed's deletions reach
them too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sync_peers import OriginPeer, enrolled
from test_revocation import V1, V2, V3, versions
from test_store import indicator

from tansiq import audit
from tansiq.federation import sync
from tansiq.node import Node
from tansiq.stix.timestamps import to_micros

OID = indicator(13)["id"]


class Crash(Exception):
    """Stands for the process dying at the injected point."""


@pytest.fixture
def peer(node: Node) -> Iterator[OriginPeer]:
    with enrolled(node, OriginPeer()) as p:
        yield p


def crash_at(monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    """Make the next pull die before the withdrawal feed is read, or right after it is
    applied (before the versions kept aside are stored again)."""
    real = sync._withdrawals

    def dying(*args: Any, **kwargs: Any) -> None:
        monkeypatch.setattr(sync, "_withdrawals", real)  # once
        if point == "after feed":
            real(*args, **kwargs)
        raise Crash(point)

    monkeypatch.setattr(sync, "_withdrawals", dying)


def keep_aside(
    node: Node, peer: OriginPeer, monkeypatch: pytest.MonkeyPatch, name: str
) -> dict[str, Any]:
    """Pull v1 and revoked v2; on LY, delete v2 and store v3 (named *name*, returned); a pull
    then dies before the withdrawal feed, with v3 kept aside here."""
    v1, v2 = peer.signed(13, V1), peer.signed(13, V2, revoked=True)
    peer.store(v1, v2)
    sync.sync_partner(node, "LY")
    peer.delete(v2)
    v3 = peer.signed(13, V3, name=name)
    peer.store(v3)
    crash_at(monkeypatch, "before feed")
    with pytest.raises(Crash):
        sync.sync_partner(node, "LY")
    return v3


@pytest.mark.parametrize("point", ["before feed", "after feed"])
def test_a_crash_before_the_deferred_retry_loses_nothing(
    node: Node, peer: OriginPeer, monkeypatch: pytest.MonkeyPatch, point: str
) -> None:
    v1, v2 = peer.signed(13, V1), peer.signed(13, V2, revoked=True)
    peer.store(v1, v2)
    first = sync.sync_partner(node, "LY")
    assert (first.stored, first.rejected) == (2, 0), first.rejections
    # On LY: the revoked version deleted, a later one stored.
    peer.delete(v2)
    peer.store(peer.signed(13, V3, name="after"))
    crash_at(monkeypatch, point)
    with pytest.raises(Crash):
        sync.sync_partner(node, "LY")
    again = sync.sync_partner(node, "LY")
    assert versions(node, OID) == [(to_micros(V1), 0, 0), (to_micros(V3), 0, 1)], str(again)
    assert again.rejected == 0, again.rejections
    assert audit.verify(node.db).ok
    last = sync.sync_partner(node, "LY")  # nothing left over
    assert (last.stored, last.rejected, last.deleted) == (0, 0, 0), str(last)


def test_a_deferred_version_the_feed_deletes_is_not_stored(
    node: Node, peer: OriginPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pull that kept the version aside died; meanwhile its originator deleted it too:
    the next pull must not store it after applying the feed."""
    v3 = keep_aside(node, peer, monkeypatch, "after")
    peer.delete(v3)
    again = sync.sync_partner(node, "LY")
    assert versions(node, OID) == [(to_micros(V1), 0, 1)], str(again)
    assert again.rejected == 0, again.rejections


@pytest.mark.parametrize("revoked", [True, False])
def test_an_earlier_version_stored_after_deleting_the_latest_reaches_the_partner(
    node: Node, peer: OriginPeer, revoked: bool
) -> None:
    """The originator deleted its latest version and stored an earlier one (revoked, or a
    correction).  The page brings the earlier version before the feed deletes the later copy
    held here: it was rejected as a replay, then the feed deleted the later copy, and this node
    held only the first version (a revocation lost) while the originator held two."""
    v1, v3 = peer.signed(13, V1), peer.signed(13, V3)
    peer.store(v1, v3)
    sync.sync_partner(node, "LY")
    peer.delete(v3)
    peer.store(peer.signed(13, V2, revoked=revoked))
    report = sync.sync_partner(node, "LY")
    assert versions(node, OID) == [(to_micros(V1), 0, 0), (to_micros(V2), int(revoked), 1)], (
        report.rejections
    )
    assert (report.deleted, report.rejected) == (1, 0)


def test_a_version_after_a_revoked_one_is_refused_whatever_the_page_size(
    node: Node, peer: OriginPeer
) -> None:
    """A store from before the revocation rule may hold a version later than a revoked one
    (here stored before it).  Whether this node ended up holding the object as revoked or not
    depended on the page boundaries: one page made the revoked version refuse the later one,
    separate pages kept the later one and refused the revoked one as a replay.  Two partners
    pulling with different limits disagreed; now the revocation wins either way."""
    v1, v2, v3 = peer.signed(13, V1), peer.signed(13, V2, revoked=True), peer.signed(13, V3)
    peer.store(v1, v3, v2)
    outcome, said = {}, {}
    for limit in (1000, 1):
        with node.db.write():
            node.db.execute("DELETE FROM objects WHERE origin = 'LY'")
            node.db.execute("DELETE FROM sync_cursors WHERE partner = 'LY'")
        report = sync.sync_partner(node, "LY", page_size=limit)
        outcome[limit] = versions(node, OID)
        said[limit] = (report.rejected, report.deleted)
    # one page: the later version refused; one per page: stored, then deleted (audited)
    assert said == {1000: (1, 0), 1: (0, 1)}, said
    assert outcome[1] == outcome[1000] == [(to_micros(V1), 0, 0), (to_micros(V2), 1, 1)]
    again = sync.sync_partner(node, "LY", from_start=True)
    assert versions(node, OID) == outcome[1]
    assert (again.stored, again.rejected) == (0, 1), again.rejections
    deleted = node.db.fetchall("SELECT detail FROM audit WHERE action = 'object_deleted'")
    assert len(deleted) == 1 and "revoked" in deleted[0][0]


def test_versions_kept_aside_wait_out_a_suspension(
    node: Node, peer: OriginPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pull dies with a version kept aside, then the partner is suspended: nothing pulls
    from it, and the version stays kept (as its cursors stay) until the partner is resumed;
    the first pull after that stores it, and nothing is left kept."""
    from tansiq.sharing import set_suspended

    keep_aside(node, peer, monkeypatch, "after")
    kept = "SELECT partner, id, version FROM sync_deferred"
    assert node.db.fetchall(kept) == [("LY", OID, to_micros(V3))]
    set_suspended(node.db, "LY", node.code, True, "review")
    assert [r.skipped != "" for r in sync.sync_all(node)] == [True]
    assert node.db.fetchall(kept) == [("LY", OID, to_micros(V3))]
    set_suspended(node.db, "LY", node.code, False)
    report = sync.sync_partner(node, "LY")
    assert versions(node, OID) == [(to_micros(V1), 0, 0), (to_micros(V3), 0, 1)], str(report)
    assert node.db.fetchall(kept) == []


def test_a_version_kept_aside_is_verified_again_under_the_key_enrolled_then(
    node: Node, peer: OriginPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The partner's key changed (say it leaked) while a version signed by the old key was
    kept aside: once the new key was taken (`tansiq partner update`), the next pull stored that
    version all the same, as it was verified when kept.  It is verified again when offered
    again, so a version stored after the update verifies under the key enrolled then."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tansiq.sharing import update_partner

    keep_aside(node, peer, monkeypatch, "signed by the old key")
    peer.key = Ed25519PrivateKey.generate()
    new = peer.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    update_partner(node.db, "LY", public_key=new.decode())
    again = sync.sync_partner(node, "LY")
    assert versions(node, OID) == [(to_micros(V1), 0, 1)], str(again)
    assert again.rejected == 1 and "bad signature" in again.rejections[0], again.rejections
    last = sync.sync_partner(node, "LY")  # nothing left over
    assert (last.stored, last.rejected) == (0, 0), str(last)
