"""Login rate limiting with its state in the database, so it holds across server processes.

Every failed login is a row in ``login_failures`` (username as typed, client address, time).  A
login is refused - before the password is even checked - while the failures for the account *or*
for the address within the last ``window_s`` seconds number ``max_failures`` or more.  The lock
lifts by itself once enough of those failures are older than the window; a successful login
clears the account's failures.

:func:`attempt` records each login attempt as a failure *before* the password is checked and
only then counts: guesses sent at once see each other's rows, so together they get no more than
``max_failures`` password checks.  A refused attempt takes its row back (being locked out does
not lengthen the lock) and so does a successful one (:func:`succeeded`).

Addresses are the TCP peer as the server sees it.  Behind a reverse proxy every client shares the
proxy's address, so the per-address limit then applies to all clients together.  An IPv6 address
counts as its /64 (:func:`address_key`): one subscriber holds a whole /64, and one address per
guess would otherwise get past the per-address limit, the only one that stops a password sprayed
over many accounts.
"""

from __future__ import annotations

import ipaddress
import math
import secrets

from tansiq.stix.timestamps import SECOND_US, now_micros
from tansiq.store.database import Database

MAX_NAME = 100  # usernames are at most 64 characters; longer input is cut the same everywhere


def _name(username: str) -> str:
    return username[:MAX_NAME]


IPV6_PREFIX = 64  # the addresses of one subscriber (RFC 6177): counted as one


def address_key(address: str) -> str:
    """What failures are counted by for the client *address*: an IPv4 address itself (an
    IPv4-mapped IPv6 one too), an IPv6 address's /64 (``2001:db8::/64``); other text (no
    address known) as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
    return str(ip)


class LockedOut(Exception):
    """Too many recent failures; try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: int, by: str) -> None:
        super().__init__(retry_after, by)
        self.retry_after = retry_after
        self.by = by  # "account" or "address"

    def __str__(self) -> str:
        return f"too many failed logins; try again in {self.retry_after} s"


def _seconds_left(
    db: Database, column: str, value: str, max_failures: int, window_us: int, now: int
) -> int:
    """Seconds until the failures for ``column = value`` drop below the limit (0: not locked)."""
    # The max_failures-th newest failure in the window: once it ages out, fewer than the limit
    # remain.  ``column`` is one of two fixed names, never user input.
    row = db.fetchone(
        f"SELECT at FROM login_failures WHERE {column} = ? AND at > ? "
        "ORDER BY at DESC LIMIT 1 OFFSET ?",
        (value, now - window_us, max(max_failures, 1) - 1),
    )
    if row is None:
        return 0
    return max(1, math.ceil((int(row[0]) + window_us - now) / SECOND_US))


def locked_for(
    db: Database, username: str, address: str, max_failures: int, window_s: int
) -> LockedOut | None:
    """The lock-out in force for this account or address, or ``None``."""
    if max_failures <= 0:
        return None  # rate limiting switched off
    now = now_micros()
    window_us = window_s * SECOND_US
    by_account = _seconds_left(db, "username", _name(username), max_failures, window_us, now)
    by_address = _seconds_left(db, "address", address_key(address), max_failures, window_us, now)
    if by_account == by_address == 0:
        return None
    if by_account >= by_address:
        return LockedOut(by_account, "account")
    return LockedOut(by_address, "address")


def check(db: Database, username: str, address: str, max_failures: int, window_s: int) -> None:
    """Raise :class:`LockedOut` when this account or address may not try to log in now."""
    locked = locked_for(db, username, address, max_failures, window_s)
    if locked is not None:
        raise locked


def note_failure(db: Database, username: str, address: str, window_s: int) -> int:
    """Record a failed login (also for unknown usernames: no account enumeration); its seq."""
    now = now_micros()
    # ``seq`` is a plain BIGINT key on PostgreSQL (no sequence): a random 62-bit value avoids a
    # MAX()+1 race between server processes.
    seq = secrets.randbits(62)
    db.execute(
        "INSERT INTO login_failures (seq, username, address, at) VALUES (?, ?, ?, ?)",
        (seq, _name(username), address_key(address), now),
    )
    # Rows older than the window count for nothing; keep the table small.
    db.execute("DELETE FROM login_failures WHERE at <= ?", (now - window_s * SECOND_US,))
    return seq


def attempt(db: Database, username: str, address: str, max_failures: int, window_s: int) -> int:
    """Start a login attempt: recorded as a failure until :func:`succeeded`; its seq.

    Raises :class:`LockedOut` (taking the row back) when the account or address already has
    ``max_failures`` failures or attempts in progress within the window."""
    seq = note_failure(db, username, address, window_s)
    limit = max_failures + 1 if max_failures > 0 else 0  # this attempt's own row counts too
    locked = locked_for(db, username, address, limit, window_s)
    if locked is not None:
        forget(db, seq)
        raise locked
    return seq


REJECTED_TOKENS = "*rejected-token*"  # the keys of their counts: no account has such a name
REFUSED_ACCOUNTS = "*refused-account*"  # (a suspended partner's account: access_refused)


def within_audit_quota(db: Database, key: str, limit: int, window_s: int) -> bool:
    """Count one refused request of kind *key* (:data:`REJECTED_TOKENS`,
    :data:`REFUSED_ACCOUNTS`); ``True`` while fewer than *limit* were counted in the last
    *window_s* seconds (write it to the audit log), ``False`` beyond: the request is refused
    alike, unrecorded, so a flood cannot grow the audit log without bound.  Each kind is counted
    apart (neither crowds the other out of the log) and node-wide, not per address: it locks no
    address out of logging in."""
    now = now_micros()
    if limit <= 0 or _seconds_left(db, "username", key, limit, window_s * SECOND_US, now):
        return False
    note_failure(db, key, "", window_s)
    return True


def forget(db: Database, seq: int) -> None:
    db.execute("DELETE FROM login_failures WHERE seq = ?", (seq,))


def succeeded(db: Database, username: str, seq: int) -> None:
    """The attempt *seq* logged in as *username*: drop it and the account's failures."""
    forget(db, seq)
    clear(db, username)


def clear(db: Database, username: str) -> None:
    """Forget the account's failures after a successful login (the address's others remain)."""
    db.execute("DELETE FROM login_failures WHERE username = ?", (_name(username),))
