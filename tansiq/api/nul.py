"""ASGI middleware that turns a NUL in the URL into U+FFFD before any route sees it.

PostgreSQL text cannot hold U+0000: a NUL sent on to a query (an object id, a ``type`` filter,
a username) failed there with an error, a 500, where SQLite compared it as any other
character.  No stored id, name or column holds one (ingest refuses objects with a NUL in a
string: :func:`tansiq.store.rows.nul_property`), nor U+FFFD where a NUL could be asked for
(ids, types and names have their own syntax; see also
:func:`tansiq.accounts.store.typed_username`, the same rule for login names).  So the
replacement changes no answer but the 500: the request is answered, on both engines, as any
other value matching nothing or malformed (an object id: 404; a ``type`` filter: an empty
page; a cursor or a timestamp: 400).  Both the decoded ``path`` and ``raw_path`` are rewritten,
and ``%00`` in the query string (bytes that are not UTF-8 already reach routes as U+FFFD).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

ENCODED_NUL = b"%00"
ENCODED_REPLACEMENT = b"%EF%BF%BD"  # U+FFFD in UTF-8, percent-encoded


def without_nul(scope: Scope) -> Scope:
    """*scope* with every NUL of its URL (path and query string) made U+FFFD."""
    path = str(scope.get("path", ""))
    raw_path = scope.get("raw_path") or b""
    query = scope.get("query_string") or b""
    if "\x00" not in path and ENCODED_NUL not in raw_path and ENCODED_NUL not in query:
        return scope
    changed = dict(scope)
    changed["path"] = path.replace("\x00", "\ufffd")
    if raw_path:
        changed["raw_path"] = raw_path.replace(ENCODED_NUL, ENCODED_REPLACEMENT)
    changed["query_string"] = query.replace(ENCODED_NUL, ENCODED_REPLACEMENT)
    return changed


class ReplaceNul:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = without_nul(scope)
        await self.app(scope, receive, send)
