"""Pull sync against peers that misbehave, as an operator meets them: slow, redirecting,
answering nonsense, or signing with a key other than the one enrolled.  Each says what happened
and what to do, moves no cursor past what it did not store, and leaves the other partners alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.requests import Request
from starlette.responses import Response
from sync_peers import TAXII, OriginPeer
from test_federation import FakePeer

from tansiq.federation.enrol import accept
from tansiq.federation.sync import SyncError, sync_partner
from tansiq.node import Node


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
    p = SlowPeer()
    try:
        accept(node, p.invitation())
        yield p
    finally:
        p.stop()


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
    p = GarbagePeer()
    try:
        accept(node, p.invitation())
        yield p
    finally:
        p.stop()


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


def _pem(key: Ed25519PrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
