"""Accounts and API tokens in the node database (argon2id passwords, hashed tokens)."""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from tansiq.accounts.principal import ROLES, STAFF_ROLES, Principal
from tansiq.sharing import PARTNER_CODE
from tansiq.stix.timestamps import DAY_US, from_micros, now_micros
from tansiq.store.database import Database

_HASHER = PasswordHasher()  # argon2id with the library's current recommended parameters
TOKEN_PREFIX = "tsq_"


class AccountError(ValueError):
    """An account operation cannot be done as asked."""


class PartnerSuspended(AccountError):
    """Refused: the account is another partner's (its node's sync account, or its liaison
    staff's) and this node has suspended that partnership (``tansiq partner suspend``)."""

    def __init__(self, username: str, partner: str) -> None:
        super().__init__(
            f"the partnership with {partner} is suspended on this node: account {username!r}"
            " is refused until it is resumed"
        )
        self.username = username
        self.partner = partner


@dataclass(frozen=True)
class Account:
    username: str
    role: str
    partner: str | None
    disabled: bool
    suspended: bool = False  # its partner (not this node's agency) is suspended

    def principal(self, own_code: str) -> Principal:
        """Who this account acts as on the node of partner *own_code*.  Writing and
        administering are the node's own agency's: an admin or editor account of another
        partner (which :func:`create_account` refuses to make) acts as a reader."""
        role = self.role
        if role in STAFF_ROLES and self.partner != own_code:
            role = "reader"
        return Principal(self.username, role, self.partner)


ACCOUNT_COLUMNS = "a.username, a.role, a.partner, a.disabled, COALESCE(p.suspended, 0)"
PARTNER_OF = "LEFT JOIN partners p ON p.code = a.partner"
ACCOUNTS = f"accounts a {PARTNER_OF}"
"""An account as every reader here takes it (``SELECT {ACCOUNT_COLUMNS} FROM {ACCOUNTS}``, or
``... JOIN accounts a ON ... {PARTNER_OF}``): with whether its partner is suspended (this
node's own agency is no row of ``partners``)."""


def account_of(row: Sequence[Any]) -> Account:
    """The :class:`Account` of the first five columns of *row* (:data:`ACCOUNT_COLUMNS`)."""
    return Account(row[0], row[1], row[2], bool(row[3]), bool(row[4]))


def admit(account: Account) -> Account:
    """*account*, if its partnership is not suspended; else :class:`PartnerSuspended`.

    The one check of a suspension: every credential resolves to an account here (a token:
    :func:`account_for_token`; a password: :func:`match_login`, which TAXII Basic uses too; a
    web session: :func:`tansiq.accounts.sessions.session_account`), so a suspended partner's
    accounts are refused on every path, and admitted again once it is resumed."""
    if account.suspended:
        raise PartnerSuspended(account.username, str(account.partner))
    return account


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


MIN_PASSWORD_LENGTH = 10


def check_password_rules(password: str, username: str | None = None) -> None:
    """Raise :class:`AccountError` unless *password* may be an account's password (of
    *username*, when given).  Besides its length: not only spaces, not the account's name,
    and no control characters, which a browser's password field cannot take (it drops line
    breaks, and a tab moves on): such a password could never be typed at ``/login``."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(
            f"password: at least {MIN_PASSWORD_LENGTH} characters (this one has {len(password)})"
        )
    if not password.strip():
        raise AccountError("password: not only spaces")
    if any(unicodedata.category(c) == "Cc" for c in password):
        raise AccountError(
            "password: no control characters (a line break, a tab, a carriage return left by"
            " a file read with $(cat …)): a login form cannot take them"
        )
    if username is not None and name_key(password) == name_key(username):
        raise AccountError("password: not the account's name")


def name_key(username: str) -> str:
    """What two usernames that read as one have in common: compatibility-normalised (NFKC:
    fullwidth and other variant forms) and case-folded.  No two accounts share it."""
    return unicodedata.normalize("NFKC", username).casefold()


AUDIT_ACTORS = frozenset({"cli", "demo", "system", "anonymous"})
"""Names the audit log (and the policy) use for who acted when no account did: the command
line, the demo's loader, the node itself, an unauthenticated caller.  No account takes one."""
SYNC_NAME = re.compile(r"sync-[a-z]{2,8}")  # sync-CODE, as name_key reads it


def check_reserved(username: str) -> None:
    """Raise :class:`AccountError` when *username* reads as a name an operator may not take:
    ``sync-CODE`` (a partner's sync account, which enrolment makes) or an audit actor."""
    key = name_key(username)
    if SYNC_NAME.fullmatch(key):
        raise AccountError(
            f"username {username!r}: sync-CODE names are the partners' sync accounts, made by"
            " partner enrolment (`tansiq partner invite CODE`); choose another name"
        )
    if key in AUDIT_ACTORS:
        raise AccountError(
            f"username {username!r}: kept for the audit log's actors that are no account"
            f" ({', '.join(sorted(AUDIT_ACTORS))}); choose another name"
        )


def create_account(
    db: Database,
    username: str,
    password: str,
    role: str,
    partner: str | None,
    *,
    allow_reserved: bool = False,
) -> Account:
    """Create an account of agency *partner* (a partner code).  Admins and editors belong to the
    node's own agency: they write and administer as it.  A reader may be another partner's
    (it sees what is released to that partner); a sync account is a peer node's.  Reserved
    names (:func:`check_reserved`) are refused unless *allow_reserved* (partner enrolment
    making ``sync-CODE``)."""
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if partner is None or not PARTNER_CODE.match(partner):
        raise AccountError(f"partner code {partner!r}: use 2–8 capital letters")
    own = db.fetchone("SELECT value FROM meta WHERE key = 'partner'")
    if role in STAFF_ROLES and own is not None and partner != own[0]:
        raise AccountError(
            f"an {role} account belongs to this node's agency ({own[0]}), not to {partner}:"
            " give another partner's staff a reader account, and its node a sync account"
        )
    if role == "sync" and own is not None and partner == own[0]:
        # It would read, as a partner's node, everything the agency keeps to itself.
        raise AccountError(
            f"a sync account is a partner node's, not this node's agency's ({own[0]}): give"
            " --partner CODE, or let `tansiq partner invite CODE` make it"
        )
    plain = username.replace("-", "").replace("_", "").replace(".", "")
    if not username or len(username) > 64 or not plain.isalnum():
        raise AccountError("username: 1–64 letters, digits, '-', '_' or '.'")
    if not allow_reserved:
        check_reserved(username)
    check_password_rules(password, username)
    hashed = hash_password(password)  # (argon2 is slow: not inside the transaction if we can)
    # The check and the insert under the bookkeeping lock, or two could pass (in the caller's
    # transaction, if it has one open: a db.write() or a db.bookkeeping()).
    with db.bookkeeping():
        _insert_account(db, username, hashed, role, partner)
    return Account(username, role, partner, False)


def same_name(db: Database, username: str) -> str | None:
    """The stored account whose name reads as *username* (see :func:`name_key`), if any."""
    key = name_key(username)
    for (existing,) in db.fetchall("SELECT username FROM accounts"):
        if name_key(existing) == key:
            return str(existing)
    return None


def no_account(db: Database, username: str, hint: str = "") -> AccountError:
    """The error for *username* naming no account: with the account whose name differs from it
    only in case or width, if there is one (names are exact: ``BOB`` is not ``bob``), else
    with *hint*."""
    near = same_name(db, username)
    if near is not None and near != username:
        return AccountError(f"no account {username!r}: names are exact; did you mean {near!r}?")
    return AccountError(f"no account {username!r}{hint}")


def _already_exists(existing: str, username: str) -> AccountError:
    same = "" if existing == username else f" ({username!r} reads the same)"
    return AccountError(f"account {existing!r} already exists{same}")


def _insert_account(db: Database, username: str, hashed: str, role: str, partner: str) -> None:
    existing = same_name(db, username)
    if existing is not None:
        raise _already_exists(existing, username)
    try:
        db.execute(
            "INSERT INTO accounts (username, password_hash, role, partner, created) "
            "VALUES (?, ?, ?, ?, ?)",
            (username, hashed, role, partner, now_micros()),
        )
    except Exception as exc:
        # Only a row written without the lock (by hand, say) gets past the check; the name is
        # then taken all the same.  (On PostgreSQL the transaction is spoilt: the caller's
        # db.bookkeeping() or db.write() rolls it back as the error leaves it.)
        if not db.dialect.is_unique_violation(exc):
            raise
        raise _already_exists(username, username) from None


def storable(text: str) -> bool:
    """Can *text* be stored (or looked up) in either database: no NUL, which PostgreSQL text
    cannot hold, and no lone surrogate, which is no UTF-8 (JSON's ``"\\ud800"`` decodes to
    one).  No account's name holds either: looking one up is simply not finding it."""
    return "\x00" not in text and _utf8(text)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def get_account(db: Database, username: str) -> Account | None:
    if not storable(username):
        return None  # no account's name; the query would fail (PostgreSQL, or any lone surrogate)
    row = db.fetchone(f"SELECT {ACCOUNT_COLUMNS} FROM {ACCOUNTS} WHERE a.username = ?", (username,))
    return None if row is None else account_of(row)


def login_record(db: Database, username: str) -> tuple[str, Account] | None:
    """(password hash, account) of *username*, as stored now."""
    row = db.fetchone(
        f"SELECT {ACCOUNT_COLUMNS}, a.password_hash FROM {ACCOUNTS} WHERE a.username = ?",
        (username,),
    )
    return None if row is None else (row[5], account_of(row))


def typed_username(text: str) -> str:
    """A username as typed at a login, fit to store (rate limit, audit) in either database:
    PostgreSQL text cannot hold NUL, which no account's name holds either, so it becomes
    U+FFFD (in no account's name as well): the login then fails like any other."""
    return text.replace("\x00", "\ufffd")


def verify_login(db: Database, username: str, password: str) -> Account | None:
    matched = match_login(db, username, password)
    return None if matched is None else matched[0]


def match_login(db: Database, username: str, password: str) -> tuple[Account, str] | None:
    """The enabled account *password* logs in as, with the stored hash it matched (a session
    opened on the strength of this check names that hash: see
    :func:`tansiq.accounts.sessions.start_session`).  The right password of an account whose
    partnership is suspended raises :class:`PartnerSuspended` (see :func:`admit`)."""
    record = login_record(db, username)
    if record is None:
        check_password(_DUMMY_HASH, password)  # same work as a real check: no user enumeration
        return None
    stored, account = record
    # The hash is checked for a disabled account too: answering it at once would tell by the
    # speed which names are disabled accounts.
    if not check_password(stored, password) or account.disabled:
        return None
    return admit(account), stored


Record = Callable[[], object] | None
"""Called inside the change's transaction (e.g. to append its audit entry with
:func:`tansiq.audit.record_in`): the change and the record commit together or not at all."""


class LastAdmin(AccountError):
    """The change would leave the node with no enabled admin account."""


def enabled_admins(db: Database) -> list[str]:
    """The enabled accounts that administer this node: role admin, of the node's own agency
    (another partner's admin account acts as a reader: see :meth:`Account.principal`)."""
    rows = db.fetchall(
        "SELECT username FROM accounts WHERE role = 'admin' AND disabled = 0 "
        "AND partner = (SELECT value FROM meta WHERE key = 'partner')"
        f" ORDER BY {db.dialect.bytewise('username')}"
    )
    return [str(r[0]) for r in rows]


def keep_an_admin(db: Database, username: str) -> None:
    """Raise :class:`LastAdmin` when *username* is the node's only enabled admin.  Call it
    inside the ``db.bookkeeping()`` transaction of the change that would disable, demote or
    remove *username*: its lock then keeps two such changes from both seeing another admin."""
    admins = enabled_admins(db)
    if admins == [username]:
        raise LastAdmin(
            f"{username!r} is the last enabled admin account of this node: nobody could"
            " administer it then.  Create, enable or promote another admin first"
            " (`tansiq account add NAME --role admin`, `tansiq account enable NAME`,"
            " `tansiq account role NAME admin`), then try again"
        )


def set_disabled(db: Database, username: str, disabled: bool, record: Record = None) -> Account:
    """Disable *username* (or enable it again).  A disabled account's password, API tokens and
    web sessions are all refused from the next request on; disabling also ends its sessions.
    The node's last enabled admin is not disabled (:class:`LastAdmin`).  An account disabled
    (or enabled) already is left as it is, and *record* not called."""
    with db.bookkeeping():
        account = get_account(db, username)
        if account is None:
            raise no_account(db, username)
        if account.disabled == disabled:
            return account
        if disabled:
            keep_an_admin(db, username)
        db.execute("UPDATE accounts SET disabled = ? WHERE username = ?", (int(disabled), username))
        if disabled:
            db.execute("DELETE FROM sessions WHERE username = ?", (username,))
        if record is not None:
            record()
    return replace(account, disabled=disabled)


def set_password(db: Database, username: str, password: str, record: Record = None) -> None:
    """Give *username* a new password and end its web sessions (its API tokens stay valid:
    revoke them with ``tansiq token revoke``).  The old password is refused at once."""
    check_password_rules(password, username)
    hashed = hash_password(password)  # (argon2 is slow: not inside the transaction)
    with db.bookkeeping():
        if get_account(db, username) is None:
            raise no_account(db, username)
        db.execute("UPDATE accounts SET password_hash = ? WHERE username = ?", (hashed, username))
        db.execute("DELETE FROM sessions WHERE username = ?", (username,))
        if record is not None:
            record()


@dataclass(frozen=True)
class RoleChange:
    """What :func:`set_role` did: the account as it is now, its role before, and the ids of the
    tokens it revoked (live ones holding a scope the new role may not hold)."""

    account: Account
    before: str
    revoked: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.account.role != self.before


def set_role(
    db: Database,
    username: str,
    role: str,
    record: Callable[[RoleChange], object] | None = None,
) -> RoleChange:
    """Give *username* another *role*: from its next request on, its tokens act in it, and
    its web sessions end (their CSRF pages were of the old role).  Its live tokens holding a
    scope the new role may not hold (:data:`ROLE_SCOPES`: a former admin's ``admin``) are
    revoked.  *record* is called with the change inside its transaction (not when *role*
    is the account's already: nothing is done then).

    Refused: the node's last enabled admin losing admin (:class:`LastAdmin`); admin and editor
    for another agency's account (as :func:`create_account`); and any change to or from
    ``sync``: a sync account is a partner node's (``tansiq partner invite`` makes
    ``sync-CODE``), its role is no person's to take or leave."""
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    with db.bookkeeping():
        account = get_account(db, username)
        if account is None:
            raise no_account(db, username)
        if account.role == role:
            return RoleChange(account, role)
        _check_role_change(db, account, role)
        if account.role == "admin":
            keep_an_admin(db, username)
        db.execute("UPDATE accounts SET role = ? WHERE username = ?", (role, username))
        db.execute("DELETE FROM sessions WHERE username = ?", (username,))
        allowed = ROLE_SCOPES[role]
        now = now_micros()
        revoked = [
            t
            for t in list_tokens(db, username)
            if t.state(now) == "live" and not set(t.scopes) <= allowed
        ]
        for t in revoked:
            db.execute("UPDATE tokens SET revoked = 1 WHERE token_hash = ?", (t.hash,))
        change = RoleChange(replace(account, role=role), account.role, tuple(t.id for t in revoked))
        if record is not None:
            record(change)
    return change


def _check_role_change(db: Database, account: Account, role: str) -> None:
    name = account.username
    if account.role == "sync":
        raise AccountError(
            f"{name!r} is a sync account, partner {account.partner}'s node's: it stays one."
            f" To stop it, disable it (`tansiq account disable {name}`) or suspend the"
            f" partner (`tansiq partner suspend {account.partner}`)"
        )
    if role == "sync":
        raise AccountError(
            f"{name!r} does not become a sync account: those are partners' nodes',"
            " made by `tansiq partner invite CODE`"
        )
    own = db.fetchone("SELECT value FROM meta WHERE key = 'partner'")
    if role in STAFF_ROLES and own is not None and account.partner != own[0]:
        raise AccountError(
            f"{name!r} is an account of {account.partner}: an {role} account belongs to this"
            f" node's agency ({own[0]}); another partner's staff stay readers"
        )


_DUMMY_HASH = _HASHER.hash("not-a-real-password")


def create_token(
    db: Database,
    username: str,
    label: str,
    scopes: str = "api",
    days: int = 90,
    not_after: int | None = None,
) -> str:
    """A new API token for *username*; only its hash is stored, the token is shown once.
    It expires in *days*, or at *not_after* (µs) if that comes first."""
    if get_account(db, username) is None:
        raise no_account(db, username)
    check_label(label)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = now_micros()
    expires = now + days * DAY_US
    if not_after is not None:
        expires = min(expires, not_after)
    db.execute(
        "INSERT INTO tokens (token_hash, username, label, scopes, created, expires) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (token_hash(token), username, label, scopes, now, expires),
    )
    return token


def check_label(label: str) -> None:
    """Raise :class:`AccountError` unless *label* may be a token's label: no control
    characters (``tansiq token list`` prints labels to an admin's terminal, where an escape
    sequence or a line break in one could forge or hide rows) and nothing neither database can
    store (see :func:`storable`)."""
    if not storable(label) or any(unicodedata.category(c) == "Cc" for c in label):
        raise AccountError("label: no control characters (line breaks, tabs, escapes, NUL)")


def account_for_token(db: Database, token: str) -> Account | None:
    """The enabled account a live (unexpired, unrevoked) token belongs to;
    :class:`PartnerSuspended` when its partnership is suspended (see :func:`admit`)."""
    row = db.fetchone(
        f"SELECT {ACCOUNT_COLUMNS} FROM tokens t JOIN accounts a ON a.username = t.username "
        f"{PARTNER_OF} WHERE t.token_hash = ? AND t.revoked = 0 AND t.expires > ?",
        (token_hash(token), now_micros()),
    )
    if row is None or row[3]:
        return None
    return admit(account_of(row))


# -- accounts and tokens: listing, scopes, revocation ------------------------------------------

SCOPES = ("api", "admin", "sync")
"""``api``: the REST API under /api; ``admin``: administer other accounts and their tokens
(admin role only); ``sync``: the federation endpoints partners pull from."""
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "admin": frozenset(SCOPES),
    "editor": frozenset({"api"}),
    "reader": frozenset({"api"}),
    "sync": frozenset({"api", "sync"}),
}
TOKEN_ID_LENGTH = 16  # shown id: the first hex digits of the token's sha256
MIN_ID_PREFIX = 6
MAX_TOKEN_DAYS = 3650


class TokenNotFound(AccountError):
    """No token matches."""


def list_accounts(db: Database) -> list[Account]:
    order = db.dialect.bytewise("a.username")
    rows = db.fetchall(f"SELECT {ACCOUNT_COLUMNS} FROM {ACCOUNTS} ORDER BY {order}")
    return [account_of(r) for r in rows]


def parse_scopes(scopes: str | Iterable[str], role: str | None = None) -> str:
    """Validate scopes (space- or comma-separated) and return them space-separated, in order.

    With *role*, every scope must be one the role may hold (see :data:`ROLE_SCOPES`).
    """
    words = scopes.replace(",", " ").split() if isinstance(scopes, str) else list(scopes)
    if not words:
        raise AccountError(f"give at least one scope: {', '.join(SCOPES)}")
    unknown = sorted(set(words) - set(SCOPES))
    if unknown:
        raise AccountError(f"unknown scope {unknown[0]!r}; choose from {', '.join(SCOPES)}")
    if role is not None:
        denied = sorted(set(words) - ROLE_SCOPES.get(role, frozenset()))
        if denied:
            raise AccountError(f"role {role!r} may not hold scope {denied[0]!r}")
    return " ".join(s for s in SCOPES if s in words)


def check_token_days(days: int) -> int:
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise AccountError(f"days: 1 to {MAX_TOKEN_DAYS}, got {days}")
    return days


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: never the token itself, which only its owner saw once."""

    id: str
    username: str
    label: str
    scopes: tuple[str, ...]
    created: int
    expires: int
    revoked: bool
    hash: str = field(default="", repr=False, compare=False)  # full sha256, never listed

    def state(self, now: int | None = None) -> str:
        if self.revoked:
            return "revoked"
        return "expired" if self.expires <= (now or now_micros()) else "live"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "username": self.username,
            "label": self.label,
            "scopes": list(self.scopes),
            "created": from_micros(self.created),
            "expires": from_micros(self.expires),
            "state": self.state(),
        }


_TOKEN_COLUMNS = "token_hash, username, label, scopes, created, expires, revoked"


def _info(row: Sequence[Any]) -> TokenInfo:
    return TokenInfo(
        str(row[0])[:TOKEN_ID_LENGTH],
        row[1],
        row[2],
        tuple(str(row[3]).split()),
        int(row[4]),
        int(row[5]),
        bool(row[6]),
        str(row[0]),
    )


def token_id(token: str) -> str:
    """The listed id of *token* (a prefix of its hash)."""
    return token_hash(token)[:TOKEN_ID_LENGTH]


def token_scopes(db: Database, token: str) -> frozenset[str] | None:
    """The scopes of a live (unexpired, unrevoked) token, or ``None``."""
    grant = token_grant(db, token)
    return None if grant is None else grant[0]


def token_grant(db: Database, token: str) -> tuple[frozenset[str], int] | None:
    """The scopes and expiry (µs) of a live (unexpired, unrevoked) token, or ``None``."""
    row = db.fetchone(
        "SELECT scopes, expires FROM tokens WHERE token_hash = ? AND revoked = 0 AND expires > ?",
        (token_hash(token), now_micros()),
    )
    return None if row is None else (frozenset(str(row[0]).split()), int(row[1]))


def list_tokens(db: Database, username: str | None = None) -> list[TokenInfo]:
    """Tokens of *username* (every account's when ``None``), newest first."""
    if username is None:
        rows = db.fetchall(f"SELECT {_TOKEN_COLUMNS} FROM tokens ORDER BY created DESC")
    else:
        rows = db.fetchall(
            f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE username = ? ORDER BY created DESC",
            (username,),
        )
    return [_info(r) for r in rows]


_HEX = frozenset("0123456789abcdef")


def find_token(db: Database, token_or_hash: str, username: str | None = None) -> TokenInfo:
    """The one token named by the token itself, its sha256, or a prefix of its id/hash.

    With *username*, only that account's tokens are considered.  Raises :class:`TokenNotFound`
    or, for a prefix matching several tokens, :class:`AccountError`.
    """
    key = token_or_hash.strip()
    if key.startswith(TOKEN_PREFIX):
        where, params = "token_hash = ?", [token_hash(key)]
    else:
        key = key.lower()
        if len(key) < MIN_ID_PREFIX or not set(key) <= _HEX:
            raise TokenNotFound(
                f"name a token by its id (at least {MIN_ID_PREFIX} hex digits) or the token itself"
            )
        # Hex digits only, so the pattern holds no LIKE wildcards.
        where, params = "token_hash LIKE ?", [key + "%"]
    if username is not None:
        where += " AND username = ?"
        params.append(username)
    rows = db.fetchall(f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE {where} LIMIT 2", params)
    if not rows:
        raise TokenNotFound(f"no token {token_or_hash[:TOKEN_ID_LENGTH]!r}")
    if len(rows) > 1:
        raise AccountError(f"{key!r} matches several tokens; give more of the id")
    return _info(rows[0])


def revoke_token(
    db: Database,
    token_or_hash: str,
    username: str | None = None,
    record: Callable[[TokenInfo], object] | None = None,
) -> tuple[TokenInfo, bool]:
    """Revoke a token (see :func:`find_token` for how it is named); return it as now stored,
    and whether this revoked it: ``False`` when it was revoked already, and then nothing is
    done, nor recorded.  *record* is called with it inside the revocation's transaction (e.g.
    to append its audit entry), when this revoked it."""
    with db.bookkeeping():
        found = find_token(db, token_or_hash, username)
        if found.revoked:
            return found, False
        db.execute("UPDATE tokens SET revoked = 1 WHERE token_hash = ?", (found.hash,))
        info = replace(found, revoked=True)
        if record is not None:
            record(info)
    return info, True
