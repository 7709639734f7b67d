"""Who is asking: the input of every policy decision."""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("admin", "editor", "reader", "sync")
STAFF_ROLES = ("admin", "editor")  # write and administer as the node's own agency


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated account (or anonymous) acting on a node.

    ``partner`` is the agency the account belongs to: the node's own code for its staff, the
    peer's code for a sync account, ``None`` for anonymous.
    """

    username: str
    role: str
    partner: str | None

    @property
    def is_anonymous(self) -> bool:
        return self.partner is None

    @property
    def is_sync(self) -> bool:
        return self.role == "sync"

    def can(self, action: str) -> bool:
        """Role permissions: ``read``, ``write`` (own agency's objects), ``admin``."""
        if self.partner is None:
            return False
        if action == "read":
            return True
        if action == "write":
            return self.role in ("admin", "editor")
        if action == "admin":
            return self.role == "admin"
        return False


ANONYMOUS = Principal("anonymous", "anonymous", None)
