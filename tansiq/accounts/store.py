"""Accounts and API tokens in the node database (argon2id passwords, hashed tokens)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from tansiq.accounts.principal import ROLES, Principal
from tansiq.stix.timestamps import now_micros
from tansiq.store.database import Database

_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters
TOKEN_PREFIX = "tsq_"
DAY_US = 86_400 * 1_000_000


class AccountError(ValueError):
    """An account operation cannot be done as asked."""


@dataclass(frozen=True)
class Account:
    username: str
    role: str
    partner: str | None
    disabled: bool

    def principal(self) -> Principal:
        return Principal(self.username, self.role, self.partner)


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def check_password(stored_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_password() -> str:
    return secrets.token_urlsafe(12)


def create_account(
    db: Database, username: str, password: str, role: str, partner: str | None
) -> Account:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if not username or len(username) > 64 or not username.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise AccountError("username: 1–64 letters, digits, '-', '_' or '.'")
    if len(password) < 10:
        raise AccountError("password: at least 10 characters")
    if get_account(db, username) is not None:
        raise AccountError(f"account {username!r} already exists")
    db.execute(
        "INSERT INTO accounts (username, password_hash, role, partner, created) VALUES (?, ?, ?, ?, ?)",
        (username, hash_password(password), role, partner, now_micros()),
    )
    return Account(username, role, partner, False)


def get_account(db: Database, username: str) -> Account | None:
    row = db.fetchone(
        "SELECT username, role, partner, disabled FROM accounts WHERE username = ?", (username,)
    )
    return None if row is None else Account(row[0], row[1], row[2], bool(row[3]))


def verify_login(db: Database, username: str, password: str) -> Account | None:
    row = db.fetchone(
        "SELECT password_hash, disabled FROM accounts WHERE username = ?", (username,)
    )
    if row is None:
        check_password(_DUMMY_HASH, password)  # same work as a real check: no user enumeration
        return None
    if row[1] or not check_password(row[0], password):
        return None
    return get_account(db, username)


_DUMMY_HASH = _HASHER.hash("not-a-real-password")


def create_token(
    db: Database, username: str, label: str, scopes: str = "api", days: int = 90
) -> str:
    """A new API token for *username*; only its hash is stored, the token is shown once."""
    if get_account(db, username) is None:
        raise AccountError(f"no account {username!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = now_micros()
    db.execute(
        "INSERT INTO tokens (token_hash, username, label, scopes, created, expires) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (token_hash(token), username, label, scopes, now, now + days * DAY_US),
    )
    return token


def account_for_token(db: Database, token: str) -> Account | None:
    """The account a live (unexpired, unrevoked) token belongs to."""
    row = db.fetchone(
        "SELECT a.username, a.role, a.partner, a.disabled FROM tokens t "
        "JOIN accounts a ON a.username = t.username "
        "WHERE t.token_hash = ? AND t.revoked = 0 AND t.expires > ?",
        (token_hash(token), now_micros()),
    )
    if row is None or row[3]:
        return None
    return Account(row[0], row[1], row[2], bool(row[3]))
