"""A fake originator for pull-sync tests: a date_added log honouring ``added_after`` and
``limit``, and a withdrawal feed of the deletions it made."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response
from test_federation import FakePeer
from test_store import indicator

from tansiq.federation.enrol import Invitation, accept
from tansiq.federation.signing import sign
from tansiq.node import Node, partner_identity_id
from tansiq.stix.extensions import set_distribution
from tansiq.stix.timestamps import from_micros, to_micros

TAXII = "application/taxii+json;version=2.1"
EPOCH = to_micros("2026-01-01T00:00:00Z")
P = TypeVar("P", bound=FakePeer)


@contextmanager
def enrolled(node: Node, peer: P) -> Iterator[P]:
    """``peer`` enrolled at ``node`` with its own invitation, stopped when the block ends."""
    try:
        accept(node, peer.invitation())
        yield peer
    finally:
        peer.stop()


class OriginPeer(FakePeer):
    """Partner "LY" as its node would serve it: every version it stores gets the next
    ``date_added``; a deletion leaves a tombstone in its feed."""

    def __init__(self, to: tuple[str, ...] = ("EG", "LY")) -> None:
        self.to = list(to)
        self.log: list[tuple[int, dict[str, Any]]] = []  # (date_added µs, version)
        self.feed: list[dict[str, Any]] = []
        self.clock = EPOCH
        self.requests: list[str] = []
        super().__init__()

    def signed(self, n: int, modified: str, **extra: Any) -> dict[str, Any]:
        obj = {**indicator(n, modified), "created_by_ref": partner_identity_id("LY"), **extra}
        return sign(set_distribution(obj, "LY", self.to), self.key, "LY")

    def store(self, *versions: dict[str, Any]) -> None:
        for v in versions:
            self.clock += 1
            self.log.append((self.clock, v))

    def delete(self, version: dict[str, Any]) -> None:
        self.log = [(a, v) for a, v in self.log if v is not version]
        self.clock += 1
        self.feed.append(
            {
                "id": version["id"],
                "version": to_micros(version["modified"]),
                "reason": "deleted",
                "after": self.clock,
            }
        )

    async def envelope(self, request: Request) -> Response:
        self.requests.append(str(request.url))
        after = request.query_params.get("added_after")
        start = to_micros(after) if after else 0
        limit = int(request.query_params.get("limit", "1000"))
        rows = [(a, v) for a, v in self.log if a > start]
        page, more = rows[:limit], len(rows) > limit
        headers = {"X-TAXII-Date-Added-Last": from_micros(page[-1][0])} if page else {}
        body = {"more": more, "objects": [v for _, v in page]}
        return Response(orjson.dumps(body), media_type=TAXII, headers=headers)

    async def withdrawals(self, request: Request) -> Response:
        after = int(request.query_params.get("after", "0"))
        items = [item for item in self.feed if item["after"] > after]
        body = {"withdrawals": items, "more": False}
        return Response(orjson.dumps(body), media_type="application/json")


class RawPeer:
    """A peer below HTTP: each connection gets whatever ``answer(conn, peer)`` writes on the
    socket after the request is read (until ``stopped``), for answers no HTTP server sends."""

    def __init__(self, answer: Callable[[socket.socket, RawPeer], None]) -> None:
        self.answer = answer
        self.stopped = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.recv(65536)
            self.answer(conn, self)

    def invitation(self) -> Invitation:
        """LY's invitation (a key no version here is signed with), pointing at this peer."""
        peer = OriginPeer()
        peer.stop()
        return dataclasses.replace(peer.invitation(), url=f"http://127.0.0.1:{self.port}")

    def stop(self) -> None:
        self.stopped.set()
        self.sock.close()
