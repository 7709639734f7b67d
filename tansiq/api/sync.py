"""What peers' sync needs beside TAXII: the feed of withdrawn and deleted objects."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from tansiq import audit, policy
from tansiq.accounts.principal import Principal
from tansiq.api.deps import get_node, principal
from tansiq.api.problems import Problem
from tansiq.node import Node
from tansiq.store import deletions

router = APIRouter(prefix="/api/sync", tags=["sync"])


@router.get(
    "/withdrawals", summary="Objects of this node withdrawn from, or deleted for, the caller"
)
def withdrawals(
    node: Annotated[Node, Depends(get_node)],
    who: Annotated[Principal, Depends(principal)],
    after: Annotated[int, Query(ge=0, description="'after' of the last item already handled")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Response:
    """What the caller's node must delete, in the order of this node's ``date_added`` clock:
    objects this node once released to the caller's partner and has since narrowed away from it
    (``{"id", "after", "reason": "withdrawn"}``: every version goes), and versions this node
    deleted that were released to that partner (``"reason": "deleted"``, ``"version"`` in µs)."""
    if not who.is_sync:
        raise Problem(403, "only partners' sync accounts read the withdrawal feed")
    rows = deletions.feed(
        node.db,
        policy.withdrawn_condition(who, node.code),
        policy.deleted_condition(who, node.code),
        after,
        limit + 1,
    )
    more = len(rows) > limit
    items: list[dict[str, Any]] = []
    for kind, oid, version, added in rows[:limit]:
        item: dict[str, Any] = {"id": oid, "after": added, "reason": kind}
        if version is not None:
            item["version"] = version
        items.append(item)
    if items:
        audit.record(node.db, who.username, "withdrawals_read", "", {"count": len(items)})
    return Response(
        orjson.dumps({"withdrawals": items, "more": more}), media_type="application/json"
    )
