"""The node's audit log: an append-only, hash-chained list of who did what.

Each entry is ``(seq, at, actor, action, target, detail)`` plus ``prev_hash`` and ``hash``, where
``hash = sha256(prev_hash + JCS({"seq", "at", "actor", "action", "target", "detail"}))`` in hex
(JCS = RFC 8785 canonical JSON) and the first entry's ``prev_hash`` is 64 zeros.  ``seq`` starts at
1 and grows by exactly one: it is computed under the bookkeeping lock, held until the entry commits
(``BEGIN IMMEDIATE`` on SQLite, the ``bookkeeping_lock`` row lock on PostgreSQL: see
:meth:`tansiq.store.database.Database.bookkeeping`), so concurrent writers, even in several
processes, never fork the chain, and entries commit in ``seq`` order (a reader paging by ``seq``
skips none).  It is not the node write lock: audit entries of logins and reads do not wait for an
ingest on PostgreSQL.  Use :func:`record` on its own, or :func:`record_in` inside a
``with db.write():`` or ``with db.bookkeeping():`` block the caller already holds (the entry then
commits or rolls back with the caller's changes; in an object write, append it last, as the
bookkeeping lock is held from then until the commit), or :func:`record_many_in` for many
entries at once.

Actions are short strings chosen by the callers; the ones in use:

``node_initialised`` (by ``tansiq init``: the first entry, target the partner code, detail the
node's name, its first admin account and that account's token id), ``login``, ``login_failed``,
``token_used``, ``token_rejected`` (at most ``audit_rejected_tokens`` per login window),
``access_refused`` (a suspended partner's account refused on a token, TAXII Basic or session
request: actor and target the account, detail its partner, ``via``, method, path and address;
at most ``audit_rejected_tokens`` per login window, counted apart from rejected tokens; the
login form's refusal is a ``login_failed``),
``token_created``, ``token_revoked``, ``objects_listed``,
``object_read``, ``export``, ``taxii_read``, ``objects_written``, ``distribution_changed``,
``taxii_delete``, ``partner_invited``, ``partner_added``, ``partner_changed``,
``partner_suspended``, ``partner_resumed``,
``group_changed``, ``account_changed``, ``sync_received``, ``sync_rejected``,
``sync_refused`` (a page none of whose versions verifies under the partner's enrolled key),
``withdrawals_read``, ``object_deleted`` and ``object_withdrawn`` (a partner's deletion or
withdrawal applied by sync).  (Logging out is not
recorded.)

``actor`` is a username, or who acted when no account did: ``cli`` (the command line), ``demo``
(the demo's loader), ``sync-CODE`` (what sync applied from partner CODE), ``-`` (an unknown
token) and a failed login's typed name; :data:`tansiq.accounts.store.AUDIT_ACTORS` and
``sync-CODE`` names are refused to accounts made by hand.  ``target`` is what was acted on (an
object id, username, group...), ``detail`` a small JSON object (integers within ±2**53, no NaN).

:func:`verify` walks the chain and names the first entry whose content or stored hash was changed,
that is missing (a gap in ``seq``) or out of order (its ``prev_hash`` does not link to the entry
before it).  A chain can be cut at its end without breaking any link, so every append also writes
the head, ``"seq:hash"``, to ``meta`` (``key = 'audit_head'``) and :func:`verify` compares the end
of the chain with it.  Limitation: the head lives in the same database.  Someone able to rewrite
both tables consistently (recompute every hash after the change and update the head) is caught only
by comparing the head with a copy kept elsewhere: ``tansiq audit verify`` prints it for that.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
import rfc8785

from tansiq.stix.timestamps import from_micros, now_micros
from tansiq.store.database import Database, Row

GENESIS = "0" * 64
HEAD_KEY = "audit_head"
MAX_PAGE = 1000
MAX_SEQ = 2**63 - 1  # seq is a signed 64-bit integer in both databases
_COLUMNS = "seq, at, actor, action, target, detail, prev_hash, hash"


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    entries: int  # entries read: all of them when ok, those up to the first bad one otherwise
    first_bad_seq: int | None
    problem: str  # "" when ok
    head: str = ""  # "seq:hash" of the last good entry (keep a copy elsewhere to catch rewrites)


def entry_hash(
    prev_hash: str, seq: int, at: int, actor: str, action: str, target: str, detail: Any
) -> str:
    """The hash of one entry given the hash of the entry before it."""
    entry = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "target": target,
        "detail": detail,
    }
    return hashlib.sha256(prev_hash.encode() + rfc8785.dumps(entry)).hexdigest()


def record(
    db: Database, actor: str, action: str, target: str = "", detail: dict[str, Any] | None = None
) -> int:
    """Append one entry in a bookkeeping transaction of its own; return its ``seq``."""
    with db.bookkeeping():
        return record_in(db, actor, action, target, detail)


def record_in(
    db: Database, actor: str, action: str, target: str = "", detail: dict[str, Any] | None = None
) -> int:
    """Append one entry inside the caller's open ``db.write()`` or ``db.bookkeeping()``
    transaction; return its ``seq``."""
    return record_many_in(db, [(actor, action, target, detail)])


Entry = tuple[str, str, str, "dict[str, Any] | None"]
"""(actor, action, target, detail) of one entry to append"""


def record_many_in(db: Database, entries: list[Entry]) -> int:
    """Append *entries*, in order, inside the caller's open ``db.write()`` or
    ``db.bookkeeping()`` transaction; return the last one's ``seq`` (0 if none).

    One read of the chain's end and one statement for all rows, so a caller appending many
    (a sync applying a page of deletions) holds the bookkeeping lock for as little as one."""
    if not _in_transaction(db):
        raise RuntimeError(
            "audit.record_in needs the caller's `with db.write():` or `with db.bookkeeping():`"
            " transaction"
        )
    rows: list[tuple[str, str, str, dict[str, Any], str]] = []
    for actor, action, target, detail in entries:
        if not action:
            raise ValueError("audit action must not be empty")
        body = {} if detail is None else detail
        # raises ValueError when not JSON-compatible
        rows.append((actor, action, target, body, rfc8785.dumps(body).decode()))
    if not rows:
        return 0
    db.lock_bookkeeping()  # seq: one appender at a time, until its entries commit
    row = db.fetchone("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
    last_seq, prev_hash = (int(row[0]), str(row[1])) if row else (0, GENESIS)
    # Continue from the recorded head when the table's tail is gone: the gap stays visible.
    head = _parse_head(db.fetchone("SELECT value FROM meta WHERE key = ?", (HEAD_KEY,)))
    if head is not None and head[0] > last_seq:
        last_seq, prev_hash = head
    at = now_micros()
    out = []
    for who, what, target, body, detail_text in rows:
        seq = last_seq + 1
        digest = entry_hash(prev_hash, seq, at, who, what, target, body)
        out.append((seq, at, who, what, target, detail_text, prev_hash, digest))
        last_seq, prev_hash = seq, digest
    db.executemany(f"INSERT INTO audit ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", out)
    db.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (HEAD_KEY, f"{last_seq}:{prev_hash}"),
    )
    return last_seq


def page(db: Database, after_seq: int | None, limit: int) -> list[dict[str, Any]]:
    """Up to *limit* (at most :data:`MAX_PAGE`) entries after *after_seq*, oldest first."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    if after_seq is not None and after_seq >= MAX_SEQ:
        return []  # (no entry can come after it; the database could not even bind it)
    rows = db.fetchall(
        f"SELECT {_COLUMNS} FROM audit WHERE seq > ? ORDER BY seq LIMIT ?",
        (-1 if after_seq is None else max(after_seq, -1), min(limit, MAX_PAGE)),
    )
    return [_as_dict(r) for r in rows]


def verify(db: Database) -> VerifyResult:
    """Walk the whole chain in ``seq`` order and report the first bad entry, if any."""
    # The head comes first, from the same snapshot as the entries, so that entries appended while
    # the walk runs are neither reported missing nor unanchored.
    rows = db.iterate(
        f"SELECT 0 AS k, {_COLUMNS} FROM audit "
        "UNION ALL SELECT -1, 0, 0, '', '', '', '', '', value FROM meta WHERE key = ? "
        "ORDER BY 1, 2",
        (HEAD_KEY,),
    )
    walk = _Walk()
    try:
        for row in rows:
            if int(row[0]) < 0:
                walk.head_text = str(row[8])
            elif not walk.step(tuple(row[1:])):
                break
        if walk.problem is None:
            walk.finish()
    finally:
        close = getattr(rows, "close", None)  # a generator: release its connection now
        if close is not None:
            close()
    head = f"{walk.seq}:{walk.hash}" if walk.entries else ""
    if walk.problem is None:
        return VerifyResult(True, walk.entries, None, "", head)
    bad_seq, message = walk.problem
    return VerifyResult(False, walk.entries, bad_seq, message, head)


class _Walk:
    """The state of :func:`verify`: the last good entry and, once found, the problem."""

    def __init__(self) -> None:
        self.head_text: str | None = None
        self.entries = 0
        self.seq = 0  # the last entry accepted
        self.hash = GENESIS
        self.problem: tuple[int | None, str] | None = None
        self._suspect: tuple[int, str | None] | None = None  # (seq, recomputed) of a mismatch

    def step(self, row: Row) -> bool:
        """Check one entry; False once the first problem is known."""
        seq, prev_hash, stored = int(row[0]), str(row[6]), str(row[7])
        if self._suspect is not None:  # the entry after a hash mismatch tells which column changed
            bad, recomputed = self._suspect
            linked = recomputed is not None and (seq, prev_hash) == (bad + 1, recomputed)
            self._hash_mismatch(bad, linked)
            return False
        self.entries += 1
        expected = self.seq + 1
        if seq > expected:
            what = f"entry {expected}" if seq == expected + 1 else f"entries {expected}–{seq - 1}"
            since = f"entries {self.seq} → {seq}" if self.seq else f"chain starts at entry {seq}"
            return self._fail(expected, f"{what} missing ({since})")
        if seq < expected:
            return self._fail(seq, f"entry {seq}: out of order (seq must start at 1)")
        recomputed = _recompute(row)
        if prev_hash != self.hash:
            if recomputed == stored and self.seq:
                return self._fail(
                    self.seq, f"entry {self.seq}: replaced (entry {seq} does not link to it)"
                )
            after = f"entry {self.seq}" if self.seq else "the start of the chain"
            return self._fail(seq, f"entry {seq}: out of order (does not link to {after})")
        if recomputed != stored:
            self._suspect = (seq, recomputed)
            return True
        self.seq, self.hash = seq, stored
        return True

    def finish(self) -> None:
        """Check the end of the chain against the recorded head."""
        if self._suspect is not None:
            bad, recomputed = self._suspect
            head = _parse_head_text(self.head_text)
            self._hash_mismatch(bad, recomputed is not None and head == (bad, recomputed))
            return
        head = _parse_head_text(self.head_text)
        if head is None:
            if self.head_text is not None:
                self._fail(None, f"audit head {self.head_text!r} in meta is malformed")
            elif self.entries:
                self._fail(None, f"audit head missing from meta (chain ends at entry {self.seq})")
            return
        head_seq, head_hash = head
        if head_seq > self.seq:
            n = self.seq + 1
            what = f"entry {n}" if head_seq == n else f"entries {n}–{head_seq}"
            ends = f"chain ends at entry {self.seq}" if self.seq else "no entries left"
            self._fail(n, f"{what} missing ({ends}; head records entry {head_seq})")
        elif head_seq < self.seq:
            self._fail(
                head_seq + 1,
                f"entry {head_seq + 1}: after the recorded audit head "
                f"(head records entry {head_seq})",
            )
        elif head_hash != self.hash:
            self._fail(self.seq, f"entry {self.seq}: replaced (does not match the audit head)")

    def _hash_mismatch(self, seq: int, only_hash_changed: bool) -> None:
        if only_hash_changed:
            self._fail(seq, f"entry {seq}: stored hash changed (content intact)")
        else:
            self._fail(seq, f"entry {seq}: content changed (hash mismatch)")

    def _fail(self, seq: int | None, message: str) -> bool:
        self.problem = (seq, message)
        return False


def _recompute(row: Row) -> str | None:
    """The hash an entry should have, or None when its detail is not canonical JSON."""
    seq, at, actor, action, target, detail_text, prev_hash = row[:7]
    try:
        detail = orjson.loads(detail_text)
        if rfc8785.dumps(detail).decode() != detail_text:
            return None
        return entry_hash(str(prev_hash), int(seq), int(at), actor, action, target, detail)
    except (ValueError, TypeError):
        return None


def _parse_head_text(text: str | None) -> tuple[int, str] | None:
    if text is None:
        return None
    seq, sep, digest = text.partition(":")
    # (ASCII digits only: str.isdigit() takes '²', which int() refuses, and '١', which it reads)
    if not sep or not (seq.isascii() and seq.isdigit()) or len(digest) != 64:
        return None
    return int(seq), digest


def _parse_head(row: Row | None) -> tuple[int, str] | None:
    return None if row is None else _parse_head_text(str(row[0]))


def _as_dict(row: Row) -> dict[str, Any]:
    seq, at, actor, action, target, detail_text, prev_hash, digest = row
    try:
        detail: Any = orjson.loads(detail_text)
    except orjson.JSONDecodeError:
        detail = detail_text
    return {
        "seq": int(seq),
        "at": int(at),
        "time": from_micros(int(at)),
        "actor": actor,
        "action": action,
        "target": target,
        "detail": detail,
        "prev_hash": prev_hash,
        "hash": digest,
    }


def _in_transaction(db: Database) -> bool:
    conn = db.connection()
    if db.dialect.is_sqlite:
        return bool(conn.in_transaction)
    return str(conn.info.transaction_status.name) != "IDLE"
