"""``tansiq account`` and ``tansiq token``: the node's accounts and their API tokens."""

from __future__ import annotations

from typing import Any

import click
import orjson

from tansiq.cli import _open_node, _password_option, _settings, _settings_options, _shown

SEE_LIST = "; see `tansiq account list`"


@click.group()
def account() -> None:
    """Manage the node's accounts."""


@account.command("add")
@click.argument("username")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["admin", "editor", "reader", "sync"], case_sensitive=False),
    help="admin, editor, reader or sync (any case).",
)
@click.option(
    "--partner",
    default=None,
    help="Agency code (default: this node's; a peer's code for a sync account).",
)
@_password_option("--password", "Password")
@_settings_options
def account_add(
    username: str, role: str, partner: str | None, password: str | None, **kwargs: Any
) -> None:
    """Create an account.  Names sync-CODE are left to partner enrolment (`tansiq partner
    invite CODE` makes them), and cli, demo, system and anonymous to the audit log's actors."""
    from tansiq.accounts.store import AccountError, check_reserved, create_account, new_password
    from tansiq.sharing import partner_codes

    node = _open_node(_settings(kwargs))
    try:
        check_reserved(username)  # before the partner check: the name is refused whatever CODE
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    code = (partner or node.code).upper()
    if role == "reader" and code != node.code and code not in partner_codes(node.db):
        # It would see only what is released to CODE, and nothing can be until CODE is known.
        raise click.ClickException(
            f"no partner {code}: a reader account of another agency needs that partner "
            "registered first (see `tansiq partner list`; `tansiq partner add`)"
        )
    generated = password is None
    secret = password or new_password()
    from tansiq import audit

    try:
        with node.db.bookkeeping():  # the account and its audit entry commit together
            a = create_account(node.db, username, secret, role, code)
            audit.record_in(
                node.db,
                "cli",
                "account_changed",
                a.username,
                {"op": "created", "role": a.role, "partner": a.partner},
            )
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created account {a.username!r} (role {a.role}, partner {a.partner})")
    if generated:
        click.echo(f"  password: {secret}  (shown once)")


@account.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the accounts as one JSON array.")
@_settings_options
def account_list(as_json: bool, **kwargs: Any) -> None:
    """List accounts."""
    from tansiq.accounts.store import list_accounts

    node = _open_node(_settings(kwargs))
    accounts = list_accounts(node.db)
    if as_json:
        rows = [
            {
                "username": a.username,
                "role": a.role,
                "partner": a.partner,
                "disabled": a.disabled,
                "partner_suspended": a.suspended,
            }
            for a in accounts
        ]
        click.echo(orjson.dumps(rows).decode())
        return
    for a in accounts:
        flag = "  (disabled)" if a.disabled else ""
        flag += "  (partner suspended)" if a.suspended else ""
        click.echo(f"{a.username:<24} {a.role:<8} {a.partner or '-':<8}{flag}".rstrip())


def _account_change(kwargs: dict[str, Any], username: str, op: str, change: Any) -> bool:
    """Run *change(db, record)* on the node's accounts, where *record* audits it as *op* in the
    change's own transaction, and turn errors into exits; whether it recorded a change."""
    from tansiq import audit
    from tansiq.accounts.store import AccountError

    node = _open_node(_settings(kwargs))
    recorded = []

    def record() -> None:
        audit.record_in(node.db, "cli", "account_changed", username, {"op": op})
        recorded.append(op)

    try:
        change(node.db, record)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    return bool(recorded)


@account.command("disable")
@click.argument("username")
@_settings_options
def account_disable(username: str, **kwargs: Any) -> None:
    """Disable an account: its password, API tokens and web sessions are refused at once.
    The node's last enabled admin account is not disabled: enable or add another first."""
    from tansiq.accounts.store import set_disabled

    if _account_change(
        kwargs, username, "disabled", lambda db, rec: set_disabled(db, username, True, rec)
    ):
        click.echo(f"disabled account {username!r}; its web sessions are ended")
    else:
        click.echo(f"account {username!r} is disabled already; nothing changed")


@account.command("enable")
@click.argument("username")
@_settings_options
def account_enable(username: str, **kwargs: Any) -> None:
    """Enable a disabled account again (its unexpired, unrevoked tokens work again)."""
    from tansiq.accounts.store import set_disabled

    if _account_change(
        kwargs, username, "enabled", lambda db, rec: set_disabled(db, username, False, rec)
    ):
        click.echo(f"enabled account {username!r}")
    else:
        click.echo(f"account {username!r} is not disabled; nothing changed")


@account.command("password")
@click.argument("username")
@_password_option("--password", "New password")
@_settings_options
def account_password(username: str, password: str | None, **kwargs: Any) -> None:
    """Set a new password; the old one is refused at once and web sessions are ended (API
    tokens stay valid: revoke them with `tansiq token revoke`)."""
    from tansiq.accounts.store import new_password, set_password

    secret = password or new_password()
    _account_change(
        kwargs, username, "password", lambda db, rec: set_password(db, username, secret, rec)
    )
    click.echo(f"new password for {username!r}" + ("" if password else f": {secret}  (shown once)"))


@account.command("role")
@click.argument("username")
@click.argument("role", type=click.Choice(["admin", "editor", "reader"], case_sensitive=False))
@_settings_options
def account_role(username: str, role: str, **kwargs: Any) -> None:
    """Give an account another role: admin, editor or reader (any case).  Its web sessions
    end, and its tokens holding a scope the new role may not hold (a former admin's 'admin')
    are revoked; its other tokens act in the new role.  The node's last enabled admin keeps
    admin; sync accounts (partners' nodes) keep their role, and no account becomes one."""
    from tansiq import audit
    from tansiq.accounts.store import AccountError, RoleChange, set_role

    node = _open_node(_settings(kwargs))

    def record(change: RoleChange) -> None:
        detail = {"op": "role", "from": change.before, "to": role, "revoked": list(change.revoked)}
        audit.record_in(node.db, "cli", "account_changed", username, detail)

    try:
        change = set_role(node.db, username, role, record)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    if not change.changed:
        click.echo(f"account {username!r} is {_a(role)} already; nothing changed")
        return
    click.echo(f"account {username!r}: role {change.before} -> {role}; its web sessions are ended")
    for token_id in change.revoked:
        click.echo(f"  revoked token {token_id} (it held a scope {_a(role)} may not hold)")


def _a(role: str) -> str:
    return f"{'an' if role[0] in 'aeiou' else 'a'} {role}"


@click.group()
def token() -> None:
    """Manage API tokens."""


@token.command("create")
@click.argument("username")
@click.option("--label", default="created with tansiq token create", help="What it is for.")
@click.option(
    "--days",
    type=click.IntRange(1, 3650),  # (tansiq.accounts.store.MAX_TOKEN_DAYS)
    default=None,
    help="Lifetime, 1 to 3650 days (default: token_days).",
)
@click.option(
    "--scopes", default="api", show_default=True, help="Space-separated scopes: api, admin, sync."
)
@_settings_options
def token_create(username: str, label: str, days: int | None, scopes: str, **kwargs: Any) -> None:
    """Create an API token; it is printed once, on stdout."""
    from tansiq.accounts.store import (
        AccountError,
        check_token_days,
        create_token,
        get_account,
        no_account,
        parse_scopes,
        token_id,
    )

    settings = _settings(kwargs)
    node = _open_node(settings)
    from tansiq import audit

    try:
        lifetime = check_token_days(days if days is not None else settings.token_days)
        with node.db.bookkeeping():  # no token without its audit entry
            a = get_account(node.db, username)
            if a is None:
                raise no_account(node.db, username, SEE_LIST)
            if a.disabled:  # (POST /api/tokens refuses alike)
                raise AccountError(
                    f"account {username!r} is disabled: a token of it would be refused; enable"
                    f" it first (`tansiq account enable {username}`)"
                )
            value = create_token(node.db, username, label, parse_scopes(scopes, a.role), lifetime)
            audit.record_in(node.db, "cli", "token_created", username, {"id": token_id(value)})
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"token {token_id(value)} for {username!r}, {lifetime} days (shown once):", err=True)
    click.echo(value)


@token.command("list")
@click.argument("username", required=False)
@_settings_options
def token_list(username: str | None, **kwargs: Any) -> None:
    """List tokens (of USERNAME, or every account's)."""
    from tansiq.accounts.store import get_account, list_tokens, no_account

    node = _open_node(_settings(kwargs))
    if username is not None and get_account(node.db, username) is None:
        raise click.ClickException(str(no_account(node.db, username, SEE_LIST)))
    for t in list_tokens(node.db, username):
        d = t.as_dict()
        click.echo(
            f"{t.id}  {t.username:<16} {d['state']:<8} {d['expires']}  "
            f"{' '.join(t.scopes):<15} {_shown(t.label)}"
        )


@token.command("revoke")
@click.argument("token_prefix")
@_settings_options
def token_revoke(token_prefix: str, **kwargs: Any) -> None:
    """Revoke a token named by its id (or a unique prefix of it) or the token itself."""
    from tansiq import audit
    from tansiq.accounts.store import AccountError, TokenInfo, revoke_token

    node = _open_node(_settings(kwargs))

    def record(t: TokenInfo) -> None:  # in the revocation's transaction
        audit.record_in(node.db, "cli", "token_revoked", t.username, {"id": t.id})

    try:
        t, revoked = revoke_token(node.db, token_prefix, record=record)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    if not revoked:
        click.echo(f"token {t.id} of {t.username!r} was revoked already; nothing changed")
        return
    click.echo(f"revoked token {t.id} of {t.username!r} ({_shown(t.label)})")
