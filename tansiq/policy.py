"""Who may see what: the one decision every read path asks.

Two forms of the same rule, tested to agree: :func:`may_see` (one object, one principal) and
:func:`condition` (an SQL fragment placed inside list queries, before ``LIMIT``).
"""

from __future__ import annotations

from typing import Any

from tansiq.accounts.principal import Principal
from tansiq.store.query import Condition

NOTHING: Condition = ("1 = 0", ())


def condition(principal: Principal, node_code: str) -> Condition:
    """SQL over ``objects`` columns selecting exactly what *principal* may see on this node."""
    if principal.partner is None:
        return NOTHING
    return ("1 = 1", ())


def may_see(principal: Principal, node_code: str, obj: dict[str, Any]) -> bool:
    """The same rule as :func:`condition`, for one object."""
    return principal.partner is not None
