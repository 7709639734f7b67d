"""What peers' sync needs beside TAXII: the feed of withdrawn objects."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from tansiq import audit, policy
from tansiq.accounts.principal import Principal
from tansiq.api.deps import get_node, principal
from tansiq.api.problems import Problem
from tansiq.node import Node

router = APIRouter(prefix="/api/sync", tags=["sync"])


@router.get("/withdrawals", summary="Objects of this node withdrawn from the calling partner")
def withdrawals(
    node: Annotated[Node, Depends(get_node)],
    who: Annotated[Principal, Depends(principal)],
    after: Annotated[int, Query(ge=0, description="'after' of the last item already handled")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Response:
    """Ids of objects this node once released to the caller's partner and has since narrowed
    away from it, in the order of the withdrawing version's ``date_added``."""
    if not who.is_sync:
        raise Problem(403, "only partners' sync accounts read the withdrawal feed")
    sql, params = policy.withdrawn_condition(who, node.code)
    rows = node.db.fetchall(
        f"SELECT id, added FROM latest_objects WHERE {sql} AND added > ? ORDER BY added LIMIT ?",
        [*params, after, limit + 1],
    )
    more = len(rows) > limit
    items = [{"id": r[0], "after": int(r[1])} for r in rows[:limit]]
    if items:
        audit.record(node.db, who.username, "withdrawals_read", "", {"count": len(items)})
    return Response(
        orjson.dumps({"withdrawals": items, "more": more}), media_type="application/json"
    )
