"""Partners, sharing groups, and stamping the originator's distribution on its objects.

A distribution is asked for as ``own``, ``all``, or a list of partner codes and/or group names; it
is expanded here, at the time of the version, to the partner codes it releases to (originator
included).  Later changes to a group do not re-share old versions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tansiq.stix.extensions import (
    DISTRIBUTION_EXT,
    distribution_of,
    distribution_value,
    set_distribution,
    with_distribution,
)
from tansiq.stix.markings import TLP1_IDS, TLP_IDS
from tansiq.stix.timestamps import now_micros
from tansiq.store.database import Database
from tansiq.store.ingest import ObjectRejected, Prepare

GROUP_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{1,62}\Z")
PARTNER_CODE = re.compile(r"[A-Z]{2,8}\Z")
"""A partner's code.  The policy's SQL matches codes with ``LIKE '%,DZ,%'`` over the
``partners`` column: a code with a comma, a wildcard or a lower-case letter (SQLite's ``LIKE``
ignores case) would match other codes there, so no other form is ever stored."""


def odd_codes(codes: object) -> list[str] | None:
    """The entries of a distribution's *codes* that are not partner codes (None: not a list)."""
    if not isinstance(codes, list):
        return None
    return [repr(c) for c in codes if not isinstance(c, str) or not PARTNER_CODE.match(c)]


TLP_MARKING_IDS = frozenset(TLP_IDS.values()) | TLP1_IDS


class SharingError(ValueError):
    """A partner, group or distribution that cannot be used as given."""


@dataclass(frozen=True)
class Partner:
    code: str
    name: str
    identity_id: str
    public_key: str
    base_url: str
    suspended: int = 0  # since when (µs), 0: not suspended (see suspend_partner)
    suspended_reason: str = ""


def add_partner(
    db: Database, code: str, name: str, identity_id: str, public_key: str = "", base_url: str = ""
) -> Partner:
    if not PARTNER_CODE.match(code):
        raise SharingError(f"partner code {code!r}: use 2–8 capital letters")
    if db.fetchone("SELECT 1 FROM partners WHERE code = ?", (code,)):
        raise SharingError(
            f"partner {code} is already registered: `tansiq partner update` changes it (its"
            " --enrolment takes a new invitation)"
        )
    # Pull sync accepts a peer's objects created by its identity: an identity that is already
    # this node's or another partner's would let the peer publish as that agency.
    taken = db.fetchone(
        "SELECT code FROM partners WHERE identity_id = ?"
        " UNION ALL SELECT 'this node' FROM meta WHERE key = 'identity_id' AND value = ?",
        (identity_id, identity_id),
    )
    if taken is not None:
        raise SharingError(f"identity {identity_id} is {taken[0]}'s: not registered for {code}")
    db.execute(
        "INSERT INTO partners (code, name, identity_id, public_key, base_url, created) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (code, name, identity_id, public_key, base_url, now_micros()),
    )
    return Partner(code, name, identity_id, public_key, base_url)


def update_partner(
    db: Database, code: str, *, name: str = "", public_key: str = "", base_url: str = ""
) -> Partner:
    """Replace the name, key and/or URL of registered partner *code* (empty: keep); its code
    and identity stay (another identity is another agency: register it as a partner).

    Call it inside the caller's write transaction: it takes the bookkeeping lock there first,
    before the partner's row (see :meth:`~tansiq.store.database.Database.bookkeeping`).  A
    suspension (:func:`set_suspended`) changes that row under the bookkeeping lock alone; an
    update holding the row and only then taking the lock (for its audit entry) would wait for
    a suspension waiting for the row, a deadlock PostgreSQL ends by failing one of them."""
    db.lock_bookkeeping()
    old = get_partner(db, code)
    new = replace(
        old,
        name=name or old.name,
        public_key=public_key or old.public_key,
        base_url=base_url or old.base_url,
    )
    db.execute(
        "UPDATE partners SET name = ?, public_key = ?, base_url = ? WHERE code = ?",
        (new.name, new.public_key, new.base_url, code),
    )
    return new


_PARTNER_COLUMNS = "code, name, identity_id, public_key, base_url, suspended, suspended_reason"


def list_partners(db: Database) -> list[Partner]:
    rows = db.fetchall(
        f"SELECT {_PARTNER_COLUMNS} FROM partners ORDER BY {db.dialect.bytewise('code')}"
    )
    return [Partner(*r) for r in rows]


def get_partner(db: Database, code: str) -> Partner:
    """Registered partner *code*; :class:`SharingError` if there is none."""
    row = db.fetchone(f"SELECT {_PARTNER_COLUMNS} FROM partners WHERE code = ?", (code,))
    if row is None:
        raise SharingError(f"no partner {code}; see `tansiq partner list`")
    return Partner(*row)


def set_suspended(
    db: Database,
    code: str,
    own_code: str,
    suspended: bool,
    reason: str = "",
    record: Callable[[Partner], object] | None = None,
) -> tuple[Partner, bool]:
    """Suspend partner *code* (or resume it); return it as now stored and whether it changed
    (suspending a suspended partner, or resuming an active one, changes nothing and records
    nothing).  *record* is called with the changed partner inside the change's transaction (to
    append its audit entry): both commit or neither.

    While suspended, every account of the partner (its node's sync account, its liaison staff)
    is refused however it authenticates (:func:`tansiq.accounts.store.admit`), and this node
    does not pull from it (:mod:`tansiq.federation.sync`).  Nothing else changes: its
    enrolment, tokens, sync cursor and the distributions naming it stay, so resuming restores
    it all.  Suspending also ends its accounts' web sessions (they log in again after)."""
    if code == own_code:
        raise SharingError(f"{code} is this node's own partner code: it cannot be suspended")
    with db.bookkeeping():  # the accounts' lock: a login checks the account under it
        partner = get_partner(db, code)
        if bool(partner.suspended) == suspended:
            return partner, False
        since = now_micros() if suspended else 0
        reason = reason if suspended else ""
        db.execute(
            "UPDATE partners SET suspended = ?, suspended_reason = ? WHERE code = ?",
            (since, reason, code),
        )
        if suspended:
            db.execute(
                "DELETE FROM sessions WHERE username IN"
                " (SELECT username FROM accounts WHERE partner = ?)",
                (code,),
            )
        changed = replace(partner, suspended=since, suspended_reason=reason)
        if record is not None:
            record(changed)
    return changed, True


def partner_codes(db: Database) -> set[str]:
    return {r[0] for r in db.fetchall("SELECT code FROM partners")}


def add_group(db: Database, name: str, members: Sequence[str], own_code: str) -> None:
    if not GROUP_NAME.match(name) or name in ("own", "all"):
        raise SharingError(f"group name {name!r}: 2–63 lowercase letters, digits, '-', '_', '.'")
    known = partner_codes(db) | {own_code}
    unknown = sorted(set(members) - known)
    if unknown:
        raise SharingError(
            f"unknown partner(s) {', '.join(unknown)}: add them with `tansiq partner add`"
        )
    if not members:
        # An empty group must never mean "everyone": refuse it outright.
        raise SharingError("a sharing group needs at least one member")
    if db.fetchone("SELECT 1 FROM sharing_groups WHERE name = ?", (name,)):
        raise SharingError(f"group {name!r} already exists")
    db.execute("INSERT INTO sharing_groups (name, created) VALUES (?, ?)", (name, now_micros()))
    for code in sorted(set(members)):
        db.execute("INSERT INTO group_members (group_name, partner) VALUES (?, ?)", (name, code))


def set_group_members(db: Database, name: str, members: Sequence[str], own_code: str) -> None:
    if not db.fetchone("SELECT 1 FROM sharing_groups WHERE name = ?", (name,)):
        raise SharingError(f"no group {name!r}")
    unknown = sorted(set(members) - (partner_codes(db) | {own_code}))
    if unknown or not members:
        raise SharingError(f"members must be known partners, at least one (unknown: {unknown})")
    db.execute("DELETE FROM group_members WHERE group_name = ?", (name,))
    for code in sorted(set(members)):
        db.execute("INSERT INTO group_members (group_name, partner) VALUES (?, ?)", (name, code))


def list_groups(db: Database) -> dict[str, list[str]]:
    d = db.dialect
    groups: dict[str, list[str]] = {
        r[0]: []
        for r in db.fetchall(f"SELECT name FROM sharing_groups ORDER BY {d.bytewise('name')}")
    }
    members = f"SELECT group_name, partner FROM group_members ORDER BY {d.bytewise('partner')}"
    for name, code in db.fetchall(members):
        groups[name].append(code)
    return groups


def expand(db: Database, spec: Sequence[str], own_code: str) -> list[str]:
    """Partner codes a distribution spec releases to, originator always included."""
    if not spec:
        raise SharingError("empty distribution: give 'own', 'all', partner codes or group names")
    codes = {own_code}
    groups = list_groups(db)
    known = partner_codes(db)
    for item in spec:
        item = item.strip()
        # Any case, as `partner suspend eg` and `group add --members eg` take it: codes are
        # capitals and group names lowercase (add_group); an exact match comes first.
        word = item if item in ("own", "all") or item in groups else item.lower()
        code = item.upper()
        if item in known or item == own_code:
            codes.add(item)
        elif word == "own":
            continue
        elif word == "all":
            codes |= known
        elif word in groups:
            codes |= set(groups[word])
        elif code in known or code == own_code:
            codes.add(code)
        else:
            raise SharingError(
                f"unknown partner or group {item!r} in distribution; give own, all, partner"
                f" codes ({', '.join(sorted(known | {own_code}))}) or group names"
                f" ({', '.join(groups) or 'none yet: `tansiq group add`'})"
            )
    return sorted(codes)


def parse_spec(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [x.strip() for x in text.split(",") if x.strip()]


def tlp_level(text: str) -> str:
    """The TLP 2.0 level *text* names, in any case, with or without ``TLP:`` (``red``, ``Red``,
    ``TLP:RED``: ``red``); :class:`SharingError` listing the levels for anything else."""
    level = text.strip().lower()
    if level.startswith("tlp:"):
        level = level[len("tlp:") :]
    if level not in TLP_IDS:
        raise SharingError(
            f"unknown TLP {text!r}; use one of {', '.join(TLP_IDS)} "
            "(any case, with or without 'TLP:')"
        )
    return level


def with_tlp(obj: dict[str, Any], tlp: str) -> dict[str, Any]:
    """*obj* marked with TLP 2.0 *tlp* (any other TLP marking, 2.0 or 1.0, replaced)."""
    tlp = tlp_level(tlp)
    refs = [r for r in obj.get("object_marking_refs", []) if r not in TLP_MARKING_IDS]
    out = dict(obj)
    out["object_marking_refs"] = [TLP_IDS[tlp], *refs]
    return out


def local_stamp(
    db: Database,
    own_code: str,
    own_identity: str,
    distribution: Sequence[str] | None = None,
    tlp: str | None = None,
) -> Prepare:
    """The write-path hook for objects entering through this node's own CLI or API.

    Objects carrying a distribution keep it (re-import of an export) unless one is asked for;
    objects without one get the originator alone.  Objects of another registered partner's
    identity, or stamped with another origin, are refused: only that partner's node publishes them.
    """
    partners = expand(db, distribution, own_code) if distribution is not None else None
    if tlp is not None:
        tlp = tlp_level(tlp)
    registered = list_partners(db)
    foreign = {p.identity_id: p.code for p in registered if p.identity_id != own_identity}
    # A kept distribution may name only partners registered now: a code registered later
    # would otherwise see what was never released to it (as "all" does not, either).
    known = {p.code for p in registered} | {own_code}
    # Built once, shared by every object this hook stamps.
    asked = None if partners is None else distribution_value(own_code, partners)
    own_only = distribution_value(own_code, [own_code])

    def stamp(obj: dict[str, Any]) -> dict[str, Any]:
        owner = foreign.get(obj.get("created_by_ref", ""))
        if owner is not None:
            raise ObjectRejected(
                "created_by_ref", f"created by partner {owner}: only {owner}'s node may publish it"
            )
        current = distribution_of(obj)
        if current is not None and current.get("origin") not in (own_code, None):
            raise ObjectRejected(
                f"extensions.{DISTRIBUTION_EXT}.origin",
                f"originated by {current.get('origin')}: only that node may change it",
            )
        if asked is not None:
            obj = with_distribution(obj, asked)
        elif current is None:
            obj = with_distribution(obj, own_only)
        else:
            codes = current.get("partners")
            odd = odd_codes(codes)
            if not odd and isinstance(codes, list):
                odd = [repr(c) for c in codes if c not in known]
            if not isinstance(codes, list) or odd or own_code not in codes:
                more = f" ({', '.join(odd)} is not one)" if odd else ""
                raise ObjectRejected(
                    f"extensions.{DISTRIBUTION_EXT}.partners",
                    f"must be a list of partner codes that includes the originator{more}",
                )
            obj = set_distribution(obj, own_code, [str(c) for c in codes])
        if tlp is not None:
            obj = with_tlp(obj, tlp)
        return obj

    return stamp
