"""Web sessions: a random cookie value whose sha256 is the only thing stored, plus a CSRF token.

The session token is a bearer secret like an API token, so the database holds only its hash (a
copy of the table does not let anyone log in).  The CSRF token is not a credential on its own -
it is useless without the session cookie - and is stored as is so pages can be rendered with it.

A session ends at its ``expires`` (``session_minutes`` after the login) or once unused for
``session_idle_minutes``; each login deletes the sessions that have ended (see
:func:`start_session`).  ``last_used`` is recorded at most once a minute per session, by one
``UPDATE`` that commits alone (no bookkeeping lock), so most requests read only; the idle time
is therefore counted from up to a minute before the last request.
"""

from __future__ import annotations

import logging
import secrets

from tansiq.accounts.store import (
    ACCOUNT_COLUMNS,
    PARTNER_OF,
    Account,
    account_of,
    admit,
    token_hash,
)
from tansiq.stix.timestamps import MINUTE_US, now_micros
from tansiq.store.database import Database, StoreUnavailable

log = logging.getLogger(__name__)

TOUCH_EVERY_US = MINUTE_US  # how stale ``last_used`` may grow before a request records its use


def start_session(
    db: Database,
    username: str,
    minutes: int,
    password_hash: str | None = None,
    *,
    idle_minutes: int,
) -> tuple[str, str] | None:
    """Open a session for *username*; return ``(session_token, csrf_token)``.  Every session
    that has ended (past its lifetime, or unused for *idle_minutes*) is deleted with it, so
    the table holds the live sessions and those that ended since the last login, no more.

    With *password_hash* (the stored hash the login's password matched), only while the
    account still has that password and is enabled, else ``None``: checked under the bookkeeping
    lock (see :meth:`Database.bookkeeping`), which a password change also takes, so a password
    change (which ends the account's sessions) that commits while the password
    is being checked cannot leave a session opened with the old password behind it."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    with db.bookkeeping():
        if password_hash is not None:
            row = db.fetchone(
                "SELECT password_hash, disabled FROM accounts WHERE username = ?", (username,)
            )
            if row is None or row[0] != password_hash or row[1]:
                return None
        now = now_micros()
        db.execute(
            "INSERT INTO sessions (session_hash, username, csrf_token, created, expires, "
            "last_used) VALUES (?, ?, ?, ?, ?, ?)",
            (token_hash(token), username, csrf, now, now + minutes * MINUTE_US, now),
        )
        # Housekeeping: sessions expired or idle (see session_account) are never used again.
        db.execute(
            "DELETE FROM sessions WHERE expires <= ? OR last_used <= ?",
            (now, now - idle_minutes * MINUTE_US),
        )
    return token, csrf


def session_account(db: Database, token: str, idle_minutes: int) -> tuple[Account, str] | None:
    """The account and CSRF token of a live session; ``None`` when unknown, expired or unused
    for *idle_minutes*; :class:`~tansiq.accounts.store.PartnerSuspended` when the account's
    partnership is suspended (see :func:`~tansiq.accounts.store.admit`).  Records the use when
    the last one recorded is a minute old or more."""
    if not token:
        return None
    now = now_micros()
    digest = token_hash(token)
    row = db.fetchone(
        f"SELECT {ACCOUNT_COLUMNS}, s.csrf_token, s.last_used FROM sessions s "
        f"JOIN accounts a ON a.username = s.username {PARTNER_OF} "
        "WHERE s.session_hash = ? AND s.expires > ? AND s.last_used > ?",
        (digest, now, now - idle_minutes * MINUTE_US),
    )
    if row is None or row[3]:
        return None
    account = admit(account_of(row))
    if int(row[-1]) <= now - TOUCH_EVERY_US:
        _touch(db, digest, now)
    return account, str(row[-2])


def _touch(db: Database, digest: str, now: int) -> None:
    """Record a use: one statement committing alone, and only if no other request (in any
    process) recorded one within the minute.  A store that is full or busy (SQLite, during a
    long ingest) skips it: the request goes on, and a later one records the use."""
    try:
        db.execute(
            "UPDATE sessions SET last_used = ? WHERE session_hash = ? AND last_used <= ?",
            (now, digest, now - TOUCH_EVERY_US),
        )
    except StoreUnavailable as exc:
        log.warning("session use not recorded: %s", exc)


def end_session(db: Database, token: str) -> None:
    """Log out: forget the session (no-op when it is unknown)."""
    db.execute("DELETE FROM sessions WHERE session_hash = ?", (token_hash(token),))


def end_all_sessions(db: Database, username: str) -> int:
    """Forget every session of *username* (e.g. after a password change); return how many."""
    cur = db.execute("DELETE FROM sessions WHERE username = ?", (username,))
    return int(cur.rowcount or 0)
