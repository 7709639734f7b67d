"""Sync rules that need no running peer: one scheduler per database; no token over plain HTTP."""

from __future__ import annotations

import pytest

from tansiq.federation import credentials
from tansiq.federation.enrol import Invitation, accept
from tansiq.federation.sync import Scheduler, SyncError, client_for, peer_token
from tansiq.node import Node, init_node, partner_identity_id
from tansiq.settings import load
from tansiq.sharing import list_partners


def test_one_scheduler_per_database(node: Node) -> None:
    other = Node(node.settings)
    first, second = Scheduler(node), Scheduler(other)
    try:
        assert first._acquire() is True
        assert second._acquire() is False  # e.g. a second server process on the same database
    finally:
        first.close()
        second.close()
        other.close()
    third = Scheduler(Node(node.settings))
    try:
        assert third._acquire() is True  # released when the holder stops
    finally:
        third.close()
        third.node.close()


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:8400", True),
        ("http://localhost:8400", True),
        ("https://dz.example:8443", True),
        ("http://10.1.2.3:8400", False),
        ("http://dz.example", False),
    ],
)
def test_sync_token_never_in_clear_over_http(node: Node, url: str, allowed: bool) -> None:
    accept(node, Invitation("DZ", "Algeria", partner_identity_id("DZ"), url, "PEM", "tsq_x"))
    partner = next(p for p in list_partners(node.db) if p.code == "DZ")
    if allowed:
        client_for(node, partner).close()
    else:
        with pytest.raises(SyncError, match="plain HTTP"):
            client_for(node, partner)
        relaxed = Node(node.settings.with_overrides(allow_plain_http=True))
        try:
            client_for(relaxed, partner).close()
        finally:
            relaxed.close()


def test_prefetch_thread_stops_when_the_consumer_stops_early() -> None:
    import threading

    from tansiq.federation.sync import _prefetch

    def endless():  # type: ignore[no-untyped-def]
        n = 0
        while True:
            n += 1
            yield [n], str(n), b""

    pages = _prefetch(endless())
    assert next(pages)[1] == "1"
    pages.close()  # the consumer gives up (e.g. storing a page failed)
    assert not any(t.name == "tansiq-sync-fetch" and t.is_alive() for t in threading.enumerate())


def test_peer_tokens_are_encrypted_at_rest(node: Node, tmp_path) -> None:  # type: ignore[no-untyped-def]
    token = "tsq_peer-secret-token-0123456789"
    accept(node, Invitation("DZ", "Algeria", partner_identity_id("DZ"), "https://dz", "PEM", token))
    stored = node.db.fetchone("SELECT token FROM peer_credentials WHERE partner = 'DZ'")
    assert stored is not None and token not in stored[0] and stored[0].startswith("fernet:")
    assert peer_token(node, "DZ") == token
    # a token stored in clear by an earlier version is sealed on the next sync
    with node.db.write():
        node.db.execute("UPDATE peer_credentials SET token = ? WHERE partner = 'DZ'", (token,))
    assert peer_token(node, "DZ") == token
    assert credentials.seal_legacy(node) == 1 and credentials.seal_legacy(node) == 0
    stored = node.db.fetchone("SELECT token FROM peer_credentials WHERE partner = 'DZ'")
    assert stored is not None and token not in stored[0] and peer_token(node, "DZ") == token
    # another node's key cannot open it: a clear error, not a garbled token
    other_dir = tmp_path / "other"
    init_node(load({"data_dir": str(other_dir)}, env={}), "TN", "Tunisia", "x" * 16)
    stranger = Node(node.settings.with_overrides(data_dir=str(other_dir)))
    stranger.db.close()
    stranger.db = node.db
    with pytest.raises(SyncError, match="does not open"):
        peer_token(stranger, "DZ")


def test_invite_hands_out_only_a_sync_account_of_the_invited_partner(node: Node) -> None:
    """An existing account named like DZ's sync account but of another kind (here TN's
    reader) must not be handed to DZ's node: its token would read what is released to TN."""
    from fastapi.testclient import TestClient

    from tansiq.accounts.store import create_account
    from tansiq.api.app import create_app
    from tansiq.federation.enrol import EnrolmentError, invite, sync_username
    from tansiq.sharing import add_partner

    for code in ("DZ", "TN"):
        add_partner(node.db, code, code, partner_identity_id(code))
    # (taken before sync-CODE names were reserved: create_account refuses it to operators now)
    create_account(
        node.db, sync_username("DZ"), "reader-password-1", "reader", "TN", allow_reserved=True
    )
    node.ingest(
        [
            {
                "type": "note",
                "spec_version": "2.1",
                "id": "note--7b0e4f1e-3f3c-4f69-9b8e-2b7a1c1d0e01",
                "created": "2016-01-01T00:00:00.000Z",
                "modified": "2016-01-01T00:00:00.000Z",
                "content": "for TN only",
                "object_refs": [node.identity_id],
            }
        ],
        distribution=["TN"],
    )
    try:
        token = invite(node, "DZ").token
    except EnrolmentError as exc:
        assert sync_username("DZ") in str(exc)
        return
    with TestClient(
        create_app(node.settings, node), headers={"Authorization": f"Bearer {token}"}
    ) as c:
        seen = [
            o["content"] for o in c.get("/api/objects", params={"type": "note"}).json()["objects"]
        ]
    assert seen == [], "DZ's sync token reads what is released to TN"


def test_a_new_invitation_revokes_the_tokens_of_earlier_ones(node: Node) -> None:
    """Re-inviting a partner (a new invitation for `tansiq partner update` on its node) leaves
    only the newest invitation reading: a leaked older one must not, and its revocation is
    audited.  Other tokens of the sync account are left alone."""
    from fastapi.testclient import TestClient

    from tansiq import audit
    from tansiq.accounts.store import create_token, token_id
    from tansiq.api.app import create_app
    from tansiq.federation.enrol import invite, sync_username
    from tansiq.sharing import add_partner

    add_partner(node.db, "DZ", "Algeria", partner_identity_id("DZ"))
    first = invite(node, "DZ").token
    other = create_token(node.db, sync_username("DZ"), "made by hand", "api sync", 30)
    second = invite(node, "DZ").token
    third = invite(node, "DZ").token

    def status(token: str) -> int:
        with TestClient(
            create_app(node.settings, node), headers={"Authorization": f"Bearer {token}"}
        ) as c:
            return c.get("/api/objects").status_code

    assert [status(t) for t in (first, second, third, other)] == [401, 401, 200, 200]
    entries = audit.page(node.db, None, 1000)
    revoked = [(e["target"], e["detail"]["id"]) for e in entries if e["action"] == "token_revoked"]
    assert revoked == [(sync_username("DZ"), token_id(t)) for t in (first, second)]
    invited = [e["detail"]["revoked"] for e in entries if e["action"] == "partner_invited"]
    assert invited == [[], [token_id(first)], [token_id(second)]]
    assert audit.verify(node.db).ok
