"""A fake originator for pull-sync tests: a date_added log honouring ``added_after`` and
``limit``, and a withdrawal feed of the deletions it made."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response
from test_federation import FakePeer
from test_store import indicator

from tansiq.federation.enrol import accept
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
