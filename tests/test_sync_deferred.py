"""Versions a pull keeps aside until the withdrawal feed is applied (a version after a revoked
one its originator deleted): a crash in between loses none, and the feed's deletions reach
them too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sync_peers import OriginPeer
from test_revocation import V1, V2, V3, versions
from test_store import indicator

from tansiq import audit
from tansiq.federation import sync
from tansiq.federation.enrol import accept
from tansiq.node import Node
from tansiq.stix.timestamps import to_micros

OID = indicator(13)["id"]


class Crash(Exception):
    """Stands for the process dying at the injected point."""


@pytest.fixture
def peer(node: Node) -> Iterator[OriginPeer]:
    p = OriginPeer()
    try:
        accept(node, p.invitation())
        yield p
    finally:
        p.stop()


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
    v1, v2 = peer.signed(13, V1), peer.signed(13, V2, revoked=True)
    peer.store(v1, v2)
    sync.sync_partner(node, "LY")
    peer.delete(v2)
    v3 = peer.signed(13, V3, name="after")
    peer.store(v3)
    crash_at(monkeypatch, "before feed")
    with pytest.raises(Crash):
        sync.sync_partner(node, "LY")
    peer.delete(v3)
    again = sync.sync_partner(node, "LY")
    assert versions(node, OID) == [(to_micros(V1), 0, 1)], str(again)
    assert again.rejected == 0, again.rejections
