"""Applying a peer's withdrawal feed: a long catch-up does not hold up the node's bookkeeping
(logins, token use: the audit log's lock)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import PG_SKIP_REASON, PG_URL
from fastapi.testclient import TestClient
from sync_peers import OriginPeer, enrolled

from tansiq.federation import sync
from tansiq.node import Node
from tansiq.store import deletions

COUNT = 300


@pytest.fixture
def peer(node: Node) -> Iterator[OriginPeer]:
    with enrolled(node, OriginPeer()) as p:
        yield p


def held(node: Node) -> int:
    return int(node.db.fetchone("SELECT COUNT(*) FROM objects WHERE origin = 'LY'")[0])


@pytest.mark.parametrize(
    "database_url",
    [pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason=PG_SKIP_REASON))],
    indirect=True,
)
def test_a_long_withdrawal_page_does_not_hold_up_token_use(
    node: Node, peer: OriginPeer, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: object writes and bookkeeping take different locks, so a request's
    ``token_used`` entry does not wait for an ingest.  Applying a withdrawal page appended each
    item's audit entry as it went, so the audit log's lock was held from the first item to the
    page's commit, and every token request of the node waited for the whole page.  (On SQLite
    every write transaction is exclusive: bookkeeping waits for any, at most the busy timeout.)"""
    versions = [peer.signed(20_000 + i, "2016-01-01T00:00:00.000Z") for i in range(COUNT)]
    peer.store(*versions)
    sync.sync_partner(node, "LY")
    assert held(node) == COUNT
    for v in versions:
        peer.delete(v)
    real = deletions.remove
    started = threading.Event()

    def slow(*args: Any, **kwargs: Any) -> int:  # 300 x 10 ms: a 3 s page
        started.set()
        time.sleep(0.01)
        return real(*args, **kwargs)

    monkeypatch.setattr(deletions, "remove", slow)
    puller = Node(node.settings)  # as the scheduler's pull: connections of its own
    errors: list[BaseException] = []

    def pull() -> None:
        try:
            sync.sync_partner(puller, "LY")
        except BaseException as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=pull)
    thread.start()
    try:
        assert started.wait(30)
        time.sleep(0.3)  # well into the page
        began = time.monotonic()
        r = client.get("/api/session")
        waited = time.monotonic() - began
        assert r.status_code == 200, r.text
        assert waited < 1.0, f"a token request waited {waited:.1f} s for the withdrawal page"
        assert thread.is_alive(), "the page ended before the request: the test proves nothing"
    finally:
        thread.join(60)
        puller.close()
    assert not errors, errors
    assert held(node) == 0


def test_a_page_that_fails_to_store_leaves_no_rejection_audited_twice(
    node: Node, peer: OriginPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rejections of a page were audited as they were found, each in a transaction of its
    own, before the page was stored: a page that then failed (a full store, a crash) was pulled
    again and every rejection audited again.  Now they commit with the page."""
    from tansiq.federation import received
    from tansiq.store.database import STORAGE_FULL, StorageFull

    good = peer.signed(1, "2016-01-01T00:00:00.000Z")
    tampered = {**peer.signed(2, "2016-01-01T00:00:00.000Z"), "name": "changed after signing"}
    peer.store(good, tampered)
    set_cursor, calls = received.set_cursor, []

    def full_once(*args: Any) -> None:
        calls.append(args)
        if len(calls) == 1:
            raise StorageFull(STORAGE_FULL)  # the disk fills up as the first page is stored
        set_cursor(*args)

    monkeypatch.setattr(received, "set_cursor", full_once)
    with pytest.raises(StorageFull):
        sync.sync_partner(node, "LY")
    report = sync.sync_partner(node, "LY")
    assert (report.stored, report.rejected) == (1, 1), report
    rows = node.db.fetchall("SELECT target FROM audit WHERE action = 'sync_rejected'")
    assert rows == [(tampered["id"],)]
    assert held(node) == 1


def test_feed_items_for_objects_not_held_from_the_peer_are_no_withdrawals(
    node: Node, peer: OriginPeer
) -> None:
    """Every feed item was counted and audited as a withdrawal or deletion, whatever it named:
    an object never held here, or this node's own identity, made `tansiq sync` say "2
    withdrawn" and the audit log say sync-LY withdrew them (nothing was deleted: the rows are
    LY's only).  Now only what goes is counted and audited; an item naming an object of
    another originator is a rejection, audited."""
    held_v1 = peer.signed(1, "2016-01-01T00:00:00.000Z")
    never = peer.signed(2, "2016-01-01T00:00:00.000Z")
    peer.store(held_v1)
    sync.sync_partner(node, "LY")
    peer.delete(held_v1)
    peer.feed += [
        {"id": never["id"], "reason": "withdrawn", "after": peer.clock + 1},
        {"id": node.identity_id, "reason": "withdrawn", "after": peer.clock + 2},
    ]
    report = sync.sync_partner(node, "LY")
    assert (report.deleted, report.withdrawn, report.rejected) == (1, 0, 1), report
    assert "names an object of" in report.rejections[0], report.rejections
    rows = node.db.fetchall(
        "SELECT action, target FROM audit WHERE action IN"
        " ('object_deleted', 'object_withdrawn', 'sync_rejected') ORDER BY action"
    )
    assert rows == [("object_deleted", held_v1["id"]), ("sync_rejected", node.identity_id)], rows
    assert node.db.fetchone("SELECT 1 FROM objects WHERE id = ?", (node.identity_id,))
    assert sync._cursor(node, "LY", "withdrawals") == str(peer.clock + 2)
    again = sync.sync_partner(node, "LY")
    assert (again.deleted, again.withdrawn, again.rejected) == (0, 0, 0), again


@pytest.mark.parametrize(
    ("key", "value"), [("after", 1e30), ("after", 2**63), ("version", 2**64 - 1)]
)
def test_a_feed_item_with_an_absurd_number_is_refused_and_moves_no_cursor(
    node: Node, peer: OriginPeer, key: str, value: float
) -> None:
    """A feed item's "after" went through int(): a float (1e30) or a number beyond the 64-bit
    clock became the feed's cursor, and every later pull asked the peer for what came after
    it: nothing, so no withdrawal reached this node again.  A "version" beyond 64 bits failed
    with an OverflowError on SQLite (a traceback from `tansiq sync`), and matched nothing on
    PostgreSQL.  The pull now fails with a SyncError and the cursor stays; once the peer
    sends its feed right, the deletion is applied."""
    v1 = peer.signed(1, "2016-01-01T00:00:00.000Z")
    peer.store(v1)
    sync.sync_partner(node, "LY")
    peer.delete(v1)
    item = peer.feed[-1]
    right, item[key] = item[key], value
    with pytest.raises(sync.SyncError, match="malformed withdrawal item"):
        sync.sync_partner(node, "LY")
    assert sync._cursor(node, "LY", "withdrawals") is None
    item[key] = right
    assert sync.sync_partner(node, "LY").deleted == 1
    assert held(node) == 0
