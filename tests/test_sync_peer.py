"""Pull sync against peers that misbehave, as an operator meets them: slow, redirecting,
answering nonsense, or signing with a key other than the one enrolled.  Each says what happened
and what to do, moves no cursor past what it did not store, and leaves the other partners alone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from starlette.requests import Request
from starlette.responses import Response
from sync_peers import TAXII, OriginPeer, RawPeer, enrolled
from test_federation import FakePeer

from tansiq.federation import sync
from tansiq.federation.enrol import accept, renew
from tansiq.federation.sync import SyncError, sync_partner
from tansiq.node import Node, partner_identity_id
from tansiq.stix.timestamps import from_micros, now_micros, to_micros


def settings(node: Node, monkeypatch: pytest.MonkeyPatch, **values: Any) -> None:
    monkeypatch.setattr(node, "settings", node.settings.with_overrides(**values))


def audited(node: Node, action: str) -> list[dict[str, Any]]:
    rows = node.db.fetchall("SELECT target, detail FROM audit WHERE action = ?", (action,))
    return [{"target": r[0], **orjson.loads(r[1])} for r in rows]


class SlowPeer(OriginPeer):
    """A peer that takes *pause* seconds before answering anything."""

    pause = 3.0

    async def envelope(self, request: Request) -> Response:
        await asyncio.sleep(self.pause)
        return await super().envelope(request)


@pytest.fixture
def slow(node: Node) -> Iterator[SlowPeer]:
    with enrolled(node, SlowPeer()) as p:
        yield p


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_slow_peer_fails_after_the_read_timeout_set(
    node: Node, slow: SlowPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The timeouts were constants (60 s, 10 s to connect) an operator could not change; a
    timeout said "cannot reach" the peer, which was reached and slow."""
    settings(node, monkeypatch, sync_read_timeout_seconds=1)
    started = time.monotonic()
    with pytest.raises(SyncError) as exc:
        sync_partner(node, "LY")
    assert time.monotonic() - started < 2.5
    message = str(exc.value)
    assert "sent nothing for 1 s" in message and "sync_read_timeout_seconds" in message, message
    assert "cannot reach" not in message


def _trickled_headers(conn: socket.socket, peer: RawPeer) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    while not peer.stopped.wait(0.2):  # a header line every 0.2 s: each read is quick
        conn.sendall(b"X-Pad: 0\r\n")


def _endless_continue(conn: socket.socket, peer: RawPeer) -> None:
    while not peer.stopped.wait(0.001):  # informational answers, which httpx passes over
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("answer", [_trickled_headers, _endless_continue], ids=["headers", "100"])
def test_a_peer_that_never_ends_its_headers_fails_at_the_response_limit(
    node: Node, monkeypatch: pytest.MonkeyPatch, answer: Any
) -> None:
    """sync_response_seconds was counted over the body only: a peer sending its headers a
    line at a time (each well within the read timeout), or 100 Continue without end, held the
    pull, and the pull lock every other partner's pull waits for, as long as it kept on (here
    until the test stopped it; a hostile peer: for good)."""
    settings(node, monkeypatch, sync_response_seconds=1, sync_read_timeout_seconds=1)
    peer = RawPeer(answer)
    try:
        accept(node, peer.invitation())
        started = time.monotonic()
        with pytest.raises(SyncError) as exc:
            threading.Timer(6, peer.stop).start()  # (without the limit: ends after 6 s)
            sync_partner(node, "LY")
        took = time.monotonic() - started
    finally:
        peer.stop()
    assert "took more than 1 s to answer (sync_response_seconds)" in str(exc.value), exc.value
    assert took < 3, took
    assert sync._cursor(node, "LY", sync.SHARED_COLLECTION) is None


class RedirectingPeer(FakePeer):
    """A peer whose objects answer redirects to *target*."""

    target = ""

    async def envelope(self, request: Request) -> Response:
        return Response(status_code=302, headers={"Location": self.target + request.url.path})


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_redirect_is_not_followed_and_says_where_to(node: Node) -> None:
    """The token goes to the enrolled URL only: a redirect elsewhere is refused (it was), and
    the message names where the peer points and what to do, not a bare "answered 302: "."""
    other, peer = OriginPeer(), RedirectingPeer()
    try:
        peer.target = f"http://127.0.0.1:{other.port}"
        accept(node, peer.invitation())
        with pytest.raises(SyncError) as exc:
            sync_partner(node, "LY")
        message = str(exc.value)
        assert f"redirects to {peer.target}/taxii2/" in message, message
        assert "not followed" in message and "partner update" in message, message
        assert other.requests == []  # the token never left for the other host
    finally:
        peer.stop()
        other.stop()


class GarbagePeer(OriginPeer):
    """A peer whose envelope is *body*, with *headers*."""

    body: bytes = b""
    headers: ClassVar[dict[str, str]] = {}

    async def envelope(self, request: Request) -> Response:
        return Response(self.body, media_type=TAXII, headers=self.headers)


@pytest.fixture
def garbage(node: Node) -> Iterator[GarbagePeer]:
    with enrolled(node, GarbagePeer()) as p:
        yield p


STAMP = {"X-TAXII-Date-Added-Last": "2026-01-01T00:00:00.000001Z"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("body", "headers", "said"),
    [
        (b'{"objects": "abc", "more": false}', STAMP, "'objects' is not a list"),
        (b'{"objects": {"id": "x"}, "more": false}', STAMP, "'objects' is not a list"),
        (b'{"objects": [{"id": "x"}], "more": false}', {}, "no X-TAXII-Date-Added-Last"),
    ],
    ids=["string", "object", "no-date-added"],
)
def test_a_malformed_envelope_is_refused_whole(
    node: Node, garbage: GarbagePeer, body: bytes, headers: dict[str, str], said: str
) -> None:
    """'objects' as a string was taken character by character (each rejected and audited as
    a version), as an object it failed in the checks; objects without the date header ended
    the pull as if there were none, silently, every time."""
    garbage.body, garbage.headers = body, headers
    with pytest.raises(SyncError, match=said):
        sync_partner(node, "LY")
    assert audited(node, "sync_rejected") == []


class EchoPeer(FakePeer):
    """A peer that ignores added_after: its whole list on every answer, "more" always,
    X-TAXII-Date-Added-Last its clock (later every time)."""

    async def envelope(self, request: Request) -> Response:
        body = {"more": True, "objects": self.objects}
        headers = {"X-TAXII-Date-Added-Last": from_micros(now_micros())}
        return Response(orjson.dumps(body), media_type=TAXII, headers=headers)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_peer_repeating_its_pages_under_later_dates_does_not_hold_the_pull(node: Node) -> None:
    """Each answer advanced X-TAXII-Date-Added-Last, so the check that a page advances passed,
    and the pull stored the same page as unchanged, again and again, without end: `tansiq
    sync` never returned, and in `tansiq serve` the pull lock was never released, so no other
    partner was pulled from again.  (Stopped here after 5 s, as `serve` stops a pull.)"""
    stop = threading.Event()
    with enrolled(node, EchoPeer()) as peer:
        peer.objects = [peer.version(1), peer.version(2)]
        threading.Timer(5, stop.set).start()
        started = time.monotonic()
        with pytest.raises(SyncError, match="answered a page it answered before"):
            sync_partner(node, "LY", stop=stop)
        assert time.monotonic() - started < 3
        (report,) = sync.sync_all(node, stop=threading.Event())
    stop.set()
    assert "does not honour added_after" in report.error, report


class FailingLaterPeer(OriginPeer):
    """An OriginPeer that answers 503 to a request after its first page while *failing*."""

    failing = True

    async def envelope(self, request: Request) -> Response:
        if self.failing and request.query_params.get("added_after"):
            return Response(b"overloaded", 503, media_type="text/plain")
        return await super().envelope(request)


def test_a_peer_failing_on_a_page_leaves_the_page_before_it_stored(node: Node) -> None:
    """Pages are fetched one ahead of the one being stored: when the peer failed on the next
    page, the good page fetched and checked before it was dropped with the pull, so a peer
    failing on page n+1 (overloaded, an answer over sync_max_response_mb) kept page n from
    this node on every pull.  It is stored, then the pull fails; a later pull goes on."""
    with enrolled(node, FailingLaterPeer()) as peer:
        peer.store(*(peer.signed(n, "2016-01-01T00:00:00.000Z") for n in (1, 2, 3)))
        report = sync.SyncReport("LY")
        with pytest.raises(SyncError, match="answered 503: overloaded"):
            sync_partner(node, "LY", page_size=2, report=report)
        assert (report.pages, report.stored) == (1, 2), report
        assert sync._cursor(node, "LY", sync.SHARED_COLLECTION) == from_micros(peer.log[1][0])
        peer.failing = False
        again = sync_partner(node, "LY", page_size=2)
    assert (again.stored, again.unchanged, again.rejected) == (1, 0, 0), again


class BadStampPeer(OriginPeer):
    """An OriginPeer whose answers carry X-TAXII-Date-Added-Last *stamp* while it is set."""

    stamp = ""

    async def envelope(self, request: Request) -> Response:
        answer = await super().envelope(request)
        if self.stamp and "X-TAXII-Date-Added-Last" in answer.headers:
            answer.headers["X-TAXII-Date-Added-Last"] = self.stamp
        return answer


@pytest.mark.parametrize(
    "stamp", ["yesterday", "-0001-01-01T00:00:00Z", "2026-01-01T00:00:00+01:00"]
)
def test_a_first_page_with_a_bad_date_added_stores_nothing_and_leaves_no_cursor(
    node: Node, stamp: str
) -> None:
    """Only the pages after the first had their X-TAXII-Date-Added-Last parsed: the first
    page's was stored as the cursor whatever it was, so every later pull asked the peer for
    added_after=<it>, which it refuses (400), even once fixed; nothing came from it again."""
    with enrolled(node, BadStampPeer()) as peer:
        peer.store(peer.signed(1, "2016-01-01T00:00:00.000Z"))
        peer.stamp = stamp
        with pytest.raises(SyncError, match="sent a bad X-TAXII-Date-Added-Last"):
            sync_partner(node, "LY")
        assert sync._cursor(node, "LY", sync.SHARED_COLLECTION) is None
        peer.stamp = ""  # fixed
        peer.store(peer.signed(2, "2016-01-01T00:00:00.000Z"))
        report = sync_partner(node, "LY")
    assert (report.stored, report.rejected) == (2, 0), report.rejections


def test_a_cursor_that_is_no_timestamp_is_pulled_from_the_start(node: Node) -> None:
    """A store where an earlier tansiq kept a peer's bad X-TAXII-Date-Added-Last as the cursor
    (see above) asked the peer for added_after=<it> on every pull, which it refuses (a tansiq
    node: 400): nothing came from it again until an operator thought of --from-start.  Such a
    cursor is passed over: the pull starts from the start, as --from-start does."""
    with enrolled(node, OriginPeer()) as peer:
        peer.store(*(peer.signed(n, "2016-01-01T00:00:00.000Z") for n in (1, 2)))
        with node.db.write():
            sync._set_cursor(node, "LY", sync.SHARED_COLLECTION, "yesterday")
        report = sync_partner(node, "LY")
        assert (report.stored, report.rejected) == (2, 0), report
        assert sync._cursor(node, "LY", sync.SHARED_COLLECTION) == from_micros(peer.log[-1][0])


@pytest.fixture
def origin(node: Node) -> Iterator[OriginPeer]:
    p = OriginPeer()
    try:
        yield p
    finally:
        p.stop()


def test_a_peer_whose_key_changed_is_refused_once_audited_and_resumed_after_update(
    node: Node, origin: OriginPeer
) -> None:
    """A peer signing with another key than the one enrolled (it changed keys, or the key was
    mistyped): each version was rejected and audited on its own, the cursor moved past them,
    and `tansiq sync` said "0 stored, 3 rejected" and exited 0, on every pull.  The pull now
    stops at the first page none of whose versions verifies, says what to do, audits it once,
    and leaves the cursor there: after `partner update` the next pull takes them."""
    invitation = origin.invitation()
    old = Ed25519PrivateKey.generate()
    origin.key, real = old, origin.key
    origin.store(origin.signed(1, "2016-01-01T00:00:00.000Z"))
    accept(node, dataclasses.replace(invitation, public_key=_pem(old)))
    assert sync_partner(node, "LY").stored == 1
    origin.key = real  # LY's node has a new key now
    origin.store(*(origin.signed(n, "2016-01-01T00:00:00.000Z") for n in (2, 3, 4)))
    before = sync._cursor(node, "LY", sync.SHARED_COLLECTION)
    for _ in range(2):
        with pytest.raises(SyncError) as exc:
            sync_partner(node, "LY")
        message = str(exc.value)
        assert "none of the 3 versions" in message and "LY's enrolled key" in message, message
        assert "tansiq partner update LY" in message, message
    assert sync._cursor(node, "LY", sync.SHARED_COLLECTION) == before
    assert audited(node, "sync_rejected") == []
    refused = audited(node, "sync_refused")
    assert len(refused) == 2 and refused[0]["target"] == "LY", refused
    assert "key" in refused[0]["reason"] and refused[0]["versions"] == 3, refused
    renew(node, invitation)
    report = sync_partner(node, "LY")
    assert (report.stored, report.rejected) == (3, 0), report.rejections


def test_a_forged_version_among_good_ones_is_still_rejected_alone(
    node: Node, origin: OriginPeer
) -> None:
    """Only a page none of whose versions verifies stops the pull: a forged or tampered
    version among good ones is rejected and audited, the rest stored."""
    accept(node, origin.invitation())
    forged = origin.signed(2, "2016-01-01T00:00:00.000Z")
    forged = {**forged, "name": "changed after signing"}
    origin.store(origin.signed(1, "2016-01-01T00:00:00.000Z"), forged)
    report = sync_partner(node, "LY")
    assert (report.stored, report.rejected) == (1, 1), report.rejections
    assert "bad signature" in report.rejections[0]


def _pem(key: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


class RejectingPeer(OriginPeer):
    """A peer that no longer accepts this node's token (it invited this node again)."""

    async def envelope(self, request: Request) -> Response:
        body = {"title": "Unauthorized", "description": "the token is unknown, expired or revoked"}
        return Response(orjson.dumps(body), 401, media_type=TAXII)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_refused_token_says_how_to_get_a_new_one(node: Node) -> None:
    """Inviting a partner again revokes the tokens of its earlier invitations: the node using
    one only heard "answered 401: the token is unknown, expired or revoked"."""
    with enrolled(node, RejectingPeer()), pytest.raises(SyncError) as exc:
        sync_partner(node, "LY")
    message = str(exc.value)
    assert "answered 401: the token is unknown, expired or revoked" in message, message
    assert "new invitation" in message and "tansiq partner update" in message, message


class BigIntegerPeer(OriginPeer):
    """A peer serving, as JSON text, an integer beyond 64 bits that its signature covers
    (read as a double, as orjson reads it)."""

    async def envelope(self, request: Request) -> Response:
        response = await super().envelope(request)
        body = bytes(response.body).replace(BIG_AS_DOUBLE, BIG)
        last = response.headers.get("X-TAXII-Date-Added-Last")
        headers = {} if last is None else {"X-TAXII-Date-Added-Last": last}
        return Response(body, media_type=TAXII, headers=headers)


BIG = b"123456789012345678901234567890"
BIG_AS_DOUBLE = orjson.dumps(float(BIG))


def test_an_integer_beyond_64_bits_is_refused_as_every_other_way_in_refuses_it(
    node: Node,
) -> None:
    """orjson reads an integer beyond 64 bits as a double: a page holding one was verified
    and stored as 1.2345678901234568e+29, where ingest, REST and TAXII refuse such a number
    ("it would not be kept exactly").  The page is refused now, saying so, and nothing of it
    is stored."""
    with enrolled(node, BigIntegerPeer()) as peer:
        good = peer.signed(1, "2016-01-01T00:00:00.000Z")
        big = peer.signed(2, "2016-01-01T00:00:00.000Z", x_count=float(BIG))
        peer.store(good, big)
        assert BIG_AS_DOUBLE in orjson.dumps(big)
        with pytest.raises(SyncError, match="beyond 64 bits"):
            sync_partner(node, "LY")
        assert node.db.fetchone("SELECT COUNT(*) FROM objects WHERE origin = 'LY'") == (0,)


@pytest.mark.parametrize("page_size", [1000, 2])
def test_versions_held_signed_by_a_partners_old_key_are_unchanged_when_pulled_again(
    node: Node, origin: OriginPeer, page_size: int
) -> None:
    """After a partner's new key is taken, the versions held stay, signed by its old key.
    Pulled again (`tansiq sync --from-start`) they were each rejected and audited as forged
    ("bad signature: the object was changed"), exit 3, and a page of nothing else refused the
    whole pull, telling the operator to take the new key already taken.  A version exactly as
    held is now counted unchanged; a changed one still must verify under the new key."""
    from cryptography.hazmat.primitives import serialization

    from tansiq.sharing import update_partner

    accept(node, origin.invitation())
    origin.store(*(origin.signed(n, "2016-01-01T00:00:00.000Z") for n in (1, 2, 3)))
    assert sync_partner(node, "LY").stored == 3
    old, origin.key = origin.key, Ed25519PrivateKey.generate()
    new = origin.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    update_partner(node.db, "LY", public_key=new.decode())
    new_key, origin.key = origin.key, old  # version 1 changed, by the old key: refused
    origin.store(origin.signed(1, "2016-01-01T00:00:00.000Z", name="changed"))
    origin.key = new_key
    origin.store(origin.signed(4, "2016-01-01T00:00:00.000Z"))
    first = sync_partner(node, "LY")
    assert (first.stored, first.rejected) == (1, 1), first.rejections
    report = sync_partner(node, "LY", from_start=True, page_size=page_size)
    assert (report.unchanged, report.stored, report.rejected) == (4, 0, 1), report.rejections
    assert "bad signature" in report.rejections[0], report.rejections
    changed = "indicator--00000000-0000-4000-8000-000000000001"
    assert [r["target"] for r in audited(node, "sync_rejected")] == [changed, changed]


class DuplicateKeysPeer(OriginPeer):
    """A peer whose envelope text gives keys twice in its objects: *first* is spliced in
    before the object's own members, which orjson (and every reader here) keeps."""

    first: bytes = b""

    async def envelope(self, request: Request) -> Response:
        response = await super().envelope(request)
        body = bytes(response.body).replace(b'{"type":"indicator",', self.first, 1)
        last = response.headers.get("X-TAXII-Date-Added-Last")
        headers = {} if last is None else {"X-TAXII-Date-Added-Last": last}
        return Response(body, media_type=TAXII, headers=headers)


def test_keys_given_twice_are_read_alike_by_the_verifier_the_store_and_the_readers(
    node: Node, client: TestClient
) -> None:
    """JSON allows a key twice; the verifier, the indexed columns (creator, version,
    partners, as the policy reads them), the stored JSON and the TAXII manifest (the
    database's JSON functions over the stored text) must all read the same one: the last,
    orjson's (the stored JSON is orjson's text of what was verified, each key once)."""
    from tansiq.stix.extensions import DISTRIBUTION_EXT

    other = partner_identity_id("DZ")
    spliced = (
        b'{"type":"indicator","id":"indicator--00000000-0000-4000-8000-000000000009",'
        b'"created_by_ref":"' + other.encode() + b'","modified":"2030-01-01T00:00:00.000Z",'
        b'"extensions":{"' + DISTRIBUTION_EXT.encode() + b'":{"extension_type":'
        b'"property-extension","origin":"LY","partners":["DZ","EG","LY","TN"]}},'
    )
    with enrolled(node, DuplicateKeysPeer()) as peer:
        peer.first = spliced
        peer.store(peer.signed(1, "2016-01-01T00:00:00.000Z"))
        served = httpx.get(f"http://127.0.0.1:{peer.port}/taxii2/api/collections/shared/objects/")
        assert spliced in served.content and served.content.count(b'"created_by_ref"') == 2
        report = sync_partner(node, "LY")
        assert (report.stored, report.rejected) == (1, 0), report.rejections
        oid = "indicator--00000000-0000-4000-8000-000000000001"
        row = node.db.fetchone(
            "SELECT created_by_ref, modified, partners, json FROM objects WHERE id = ?", (oid,)
        )
        assert row is not None
        assert row[:3] == (partner_identity_id("LY"), to_micros("2016-01-01T00:00:00Z"), ",EG,LY,")
        assert other not in row[3] and "2030" not in row[3] and "TN" not in row[3]
        assert node.db.fetchone("SELECT 1 FROM objects WHERE id LIKE '%000000000009'") is None
        r = client.get("/taxii2/api/collections/shared/manifest/", headers={"Accept": TAXII}).json()
        mine = [m for m in r["objects"] if m["id"] == oid]
        assert [m["version"] for m in mine] == ["2016-01-01T00:00:00.000Z"], r
