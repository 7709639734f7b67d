"""The ``tansiq`` command: a thin layer over the library.

Global settings flags are derived from :data:`tansiq.settings.SETTINGS`; each command accepts them.
Exit codes: 0 success, 1 rejected input or failed operation, 2 usage error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import orjson

from tansiq import __version__
from tansiq.settings import SETTINGS, Settings, SettingsError, load


def _settings_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add one ``--flag`` per setting (all optional; unset flags fall through to lower layers)."""
    for s in reversed(SETTINGS):
        kind: Any = {int: int, float: float, bool: bool}.get(s.type, str)
        func = click.option(s.flag, s.name, type=kind, default=None, help=s.help)(func)
    return func


def _settings(kwargs: dict[str, Any]) -> Settings:
    flags = {s.name: kwargs.pop(s.name) for s in SETTINGS if s.name in kwargs}
    try:
        return load(flags)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _open_node(settings: Settings) -> Any:
    from tansiq.node import Node, NodeError
    from tansiq.store.database import StoreError

    try:
        node = Node(settings)
    except (NodeError, StoreError) as exc:
        raise click.ClickException(str(exc)) from None
    click.get_current_context().call_on_close(node.close)
    return node


def _operator_view(node: Any) -> Any:
    """What the node's operator at the command line may read: the policy for a local admin."""
    from tansiq import policy
    from tansiq.accounts.principal import Principal

    return policy.condition(Principal("cli", "admin", node.code), node.code)


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from tansiq import native

    click.echo(f"tansiq {__version__} ({native.describe()})")
    ctx.exit()


class _Main(click.Group):
    """The command group; a store that cannot grow (or a SQLite store busy with another write
    past the busy timeout) ends any command with a message, exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        from tansiq.store.database import StoreUnavailable

        try:
            return super().invoke(ctx)
        except StoreUnavailable as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_version,
    help="Show the version, and whether the ingest hot path is compiled, and exit.",
)
def main() -> None:
    """tansiq: a partner's node for coordinated STIX 2.1 / TAXII 2.1 information exchange."""


@main.command()
@click.option("--partner", required=True, help="This node's partner code, e.g. EG.")
@click.option("--name", required=True, help="The partner agency's name.")
@click.option("--admin-password", default=None, help="Password for 'admin' (default: generated).")
@_settings_options
def init(partner: str, name: str, admin_password: str | None, **kwargs: Any) -> None:
    """Create a node: data dir, database, STIX identity, Ed25519 key and the first admin.

    Settings given here as flags (--port, --host, --database-url, ...) are kept in
    DATA_DIR/tansiq.toml, so that later commands on the data dir use them.  A failed init
    leaves DATA_DIR as it found it."""
    from tansiq.accounts.store import AccountError
    from tansiq.node import NodeError, init_node
    from tansiq.store.database import StoreError

    settings = _settings(kwargs)
    try:
        r = init_node(settings, partner, name, admin_password)
    except (NodeError, StoreError, AccountError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Initialised node {r.code} in {r.data_dir} ({r.database})")
    click.echo(f"  identity:  {r.identity_id}")
    click.echo(f"  login:     user '{r.admin_username}', password '{r.admin_password}'")
    click.echo(f"  API token: {r.admin_token}")
    if r.config is not None:
        click.echo(f"  settings:  {', '.join(r.saved)} kept in {r.config}")
    click.echo(f"Start it with: tansiq serve --data-dir {r.data_dir}")
    click.echo(
        f"Then:          curl -H 'Authorization: Bearer {r.admin_token}' "
        f"http://{settings.host}:{settings.port}/api/objects"
    )


@main.command()
@_settings_options
def serve(**kwargs: Any) -> None:
    """Run the web server (REST API, /docs) for the node in --data-dir."""
    import uvicorn

    from tansiq.api.app import create_app
    from tansiq.ports import listen_problem

    settings = _settings(kwargs)
    problem = listen_problem(settings.host, settings.port)
    if problem is not None:
        raise click.ClickException(problem)
    tls: dict[str, Any] = {}
    if settings.certfile or settings.keyfile:
        if not (settings.certfile and settings.keyfile):
            raise click.ClickException("HTTPS needs both --certfile and --keyfile")
        _check_tls(settings.certfile, settings.keyfile)
        tls = {"ssl_certfile": settings.certfile, "ssl_keyfile": settings.keyfile}
    node = _open_node(settings)
    node.db.checkpoint_in_background()
    scheduler = None

    def close() -> None:
        """Stop the scheduler, then close every connection (SQLite folds its WAL in)."""
        if scheduler is not None:
            scheduler.close()
            scheduler.node.close()
        node.close()

    app = create_app(settings, node, on_shutdown=close)
    if settings.sync_interval_seconds > 0:
        from tansiq.federation.sync import Scheduler
        from tansiq.node import Node

        scheduler = Scheduler(Node(settings))  # its own connections
        scheduler.start()
    scheme = "https" if tls else "http"
    click.echo(
        f"tansiq node {node.code} on {scheme}://{settings.host}:{settings.port}/ "
        f"({node.db.describe()})",
        err=True,
    )
    try:
        uvicorn.run(
            app, host=settings.host, port=settings.port, log_level=settings.log_level, **tls
        )
    except SystemExit as exc:  # uvicorn's exit 3: it could not start (the port taken since)
        if exc.code == 0 or exc.code is None:
            raise
        raise click.ClickException(
            f"the server could not start on {settings.host}:{settings.port} (see above)"
        ) from None
    finally:
        close()  # also when the server never started (the port in use, say)


def _check_tls(certfile: str, keyfile: str) -> None:
    """Load the certificate and key as the server will, to refuse them with a message now."""
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except ssl.SSLError as exc:
        raise click.ClickException(
            f"--certfile {certfile} / --keyfile {keyfile}: not a PEM certificate and its "
            f"matching private key ({exc.reason or exc})"
        ) from None
    except OSError as exc:
        raise click.ClickException(
            f"--certfile {certfile} / --keyfile {keyfile}: {exc.strerror or exc}"
        ) from None


def _tlp_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """A ``--tlp`` value as its TLP 2.0 level (``TLP:RED``: ``red``); a usage error else."""
    from tansiq.sharing import SharingError, tlp_level

    try:
        return None if value is None else tlp_level(value)
    except SharingError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command("ingest")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--distribution",
    default=None,
    help="own, all, or partner codes / group names (comma-separated, any case). Default: keep the "
    "objects' own distribution, else own agency only.",
)
@click.option(
    "--tlp",
    default=None,
    callback=_tlp_option,
    help="TLP 2.0 marking: clear, green, amber, amber+strict, red (any case; TLP:RED too).",
)
@_settings_options
def ingest_cmd(
    files: tuple[Path, ...], distribution: str | None, tlp: str | None, **kwargs: Any
) -> None:
    """Validate and store STIX bundles (files, or directories of *.json files); all of them,
    or nothing when any object is invalid."""

    from tqdm import tqdm

    from tansiq.sharing import SharingError, parse_spec
    from tansiq.stix.bundles import InputError
    from tansiq.store.database import StoreUnavailable
    from tansiq.store.ingest import IngestError

    settings = _settings(kwargs)
    node = _open_node(settings)
    paths: list[Path] = []
    for f in files:
        if f.is_dir():  # a directory stands for the *.json files in it, in name order
            found = sorted(p for p in f.glob("*.json") if p.is_file())
            if not found:
                raise click.ClickException(f"{f}: directory holds no .json files")
            paths.extend(found)
        elif f.is_file():
            paths.append(f)
        else:
            raise click.ClickException(f"{f}: no such file")
    bar = tqdm(unit=" objects", desc="ingest", disable=None, file=sys.stderr)

    def progress(n: int) -> None:
        bar.update(n - bar.n)

    try:
        result = node.ingest_files(
            paths,
            distribution=parse_spec(distribution),
            tlp=tlp,
            progress=progress,
        )
    except SharingError as exc:
        bar.close()
        raise click.ClickException(f"{exc}; nothing stored") from None
    except StoreUnavailable as exc:
        bar.close()
        raise click.ClickException(str(exc)) from None
    except InputError as exc:
        bar.close()
        raise click.ClickException(f"{exc}; nothing stored") from None
    except IngestError as exc:
        bar.close()
        where = _file_of(paths, [e.index for e in exc.errors[:50]])
        for e in exc.errors[:50]:
            if e.index in where:  # the index within that file, not across all of them
                path, local = where[e.index]
                e = dataclasses.replace(e, index=local)
                click.echo(f"error: {path}: {e}", err=True)
            else:
                click.echo(f"error: {e}", err=True)
        if len(exc.errors) > 50:
            click.echo(f"... and {len(exc.errors) - 50} more", err=True)
        raise click.ClickException(str(exc)) from None
    bar.close()
    read = "1 object" if result.total == 1 else f"{result.total} objects"
    click.echo(f"{read} read: {result.stored} stored, {result.unchanged} unchanged")


def _file_of(paths: list[Path], indexes: list[int]) -> dict[int, tuple[Path, int]]:
    """Map object *indexes* counted across *paths* (several files) to (file, index in it)."""
    from tansiq.stix.bundles import InputError, iter_file

    if len(paths) < 2 or not indexes:
        return {}
    wanted = sorted(set(indexes))
    found: dict[int, tuple[Path, int]] = {}
    start = 0
    try:
        for path in paths:
            count = sum(1 for _ in iter_file(path))
            for i in wanted:
                if start <= i < start + count:
                    found[i] = (path, i - start)
            start += count
            if start > wanted[-1]:
                break
    except InputError:
        pass
    return found


@main.command()
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, allow_dash=True),
    default=None,
    help="Write the bundle to this file; - (the default) is standard output.",
)
@_settings_options
def export(output: Path | None, **kwargs: Any) -> None:
    """Write the latest version of every object as one STIX bundle."""
    from tansiq.stix.bundles import stream_bundle
    from tansiq.store.query import iterate_latest

    settings = _settings(kwargs)
    node = _open_node(settings)
    chunks = stream_bundle(iterate_latest(node.db, _operator_view(node)))
    if output is None or str(output) == "-":  # standard output: the bundle and nothing else
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.write(b"\n")
        return
    tmp = output.with_name(output.name + ".part")
    try:
        with tmp.open("wb") as f:
            for chunk in chunks:
                f.write(chunk)
        tmp.replace(output)  # never leave a half-written export under the final name
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(f"wrote {output}", err=True)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print counts by type as one JSON object.")
@_settings_options
def stats(as_json: bool, **kwargs: Any) -> None:
    """Count the latest objects by type."""
    from tansiq.store.query import count_by_type, count_versions

    settings = _settings(kwargs)
    node = _open_node(settings)
    visible = _operator_view(node)
    counts = count_by_type(node.db, visible)
    if as_json:
        click.echo(orjson.dumps(counts).decode())
        return
    width = max((len(t) for t in counts), default=4)
    for t, n in counts.items():
        click.echo(f"{t:<{width}}  {n:>8}")
    versions = count_versions(node.db, visible)
    click.echo(f"{'total':<{width}}  {sum(counts.values()):>8}  ({versions} versions)")


def _without_password(url: str) -> str:
    """*url* with the password of its user part (``user:password@``) masked."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name = user.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{name}:********@{host}"))


@main.command("settings")
@_settings_options
def settings_cmd(**kwargs: Any) -> None:
    """Print every setting, its value and where the value came from."""
    settings = _settings(kwargs)
    for s, value, source in settings.items():
        shown = "********" if s.secret and value else value
        if s.name == "database_url" and value:
            shown = _without_password(value)
        click.echo(f"{s.name:<22} {shown!s:<40} {source}")


@main.command()
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the demo nodes keep their data (default: a new temporary directory).",
)
@click.option(
    "--base-port", type=int, default=8400, help="First port; nodes use consecutive ports."
)
def demo(data_dir: Path | None, base_port: int) -> None:
    """Start the demo federation with the Libya scenario loaded; Ctrl-C stops it."""
    from tansiq.demo import run_demo

    run_demo(data_dir, base_port)


@main.group()
def audit() -> None:
    """Check and read the node's hash-chained audit log."""


@audit.command("verify")
@_settings_options
def audit_verify(**kwargs: Any) -> None:
    """Recompute the audit chain; exit 1 naming the first bad entry."""
    from tansiq.audit import verify

    node = _open_node(_settings(kwargs))
    result = verify(node.db)
    if not result.ok:
        raise click.ClickException(f"audit chain broken: {result.problem}")
    click.echo(f"audit chain intact: {result.entries} entries")
    if result.head:
        click.echo(f"head: {result.head}  (keep a copy elsewhere to detect rewrites)")


@audit.command("list")
@click.option("--after", type=click.IntRange(0), default=None, help="Only entries after this seq.")
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=100,
    show_default=True,
    help="At most this many entries (capped at 1000).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the entries as one JSON array.")
@_settings_options
def audit_list(after: int | None, limit: int, as_json: bool, **kwargs: Any) -> None:
    """Print audit entries, oldest first."""
    from tansiq.audit import page

    node = _open_node(_settings(kwargs))
    entries = page(node.db, after, limit)
    if as_json:
        click.echo(orjson.dumps(entries).decode())
        return
    for e in entries:
        detail = "" if e["detail"] in ({}, "") else " " + orjson.dumps(e["detail"]).decode()
        click.echo(
            f"{e['seq']:>7}  {e['time']}  {e['actor']:<16} {e['action']:<20} {e['target']}{detail}"
        )


from tansiq.cli_sharing import group, partner, sync  # noqa: E402 - needs the helpers above

main.add_command(partner)
main.add_command(group)
main.add_command(sync)


@main.group()
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
@click.option("--password", default=None, help="Password (default: generated, printed once).")
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


def _account_change(kwargs: dict[str, Any], username: str, op: str, change: Any) -> None:
    """Run *change(db, record)* on the node's accounts, where *record* audits it as *op* in the
    change's own transaction, and turn errors into exits."""
    from tansiq import audit
    from tansiq.accounts.store import AccountError

    node = _open_node(_settings(kwargs))

    def record() -> None:
        audit.record_in(node.db, "cli", "account_changed", username, {"op": op})

    try:
        change(node.db, record)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None


@account.command("disable")
@click.argument("username")
@_settings_options
def account_disable(username: str, **kwargs: Any) -> None:
    """Disable an account: its password, API tokens and web sessions are refused at once.
    The node's last enabled admin account is not disabled: enable or add another first."""
    from tansiq.accounts.store import set_disabled

    _account_change(
        kwargs, username, "disabled", lambda db, rec: set_disabled(db, username, True, rec)
    )
    click.echo(f"disabled account {username!r}; its web sessions are ended")


@account.command("enable")
@click.argument("username")
@_settings_options
def account_enable(username: str, **kwargs: Any) -> None:
    """Enable a disabled account again (its unexpired, unrevoked tokens work again)."""
    from tansiq.accounts.store import set_disabled

    _account_change(
        kwargs, username, "enabled", lambda db, rec: set_disabled(db, username, False, rec)
    )
    click.echo(f"enabled account {username!r}")


@account.command("password")
@click.argument("username")
@click.option("--password", default=None, help="New password (default: generated, printed once).")
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


@main.group()
def token() -> None:
    """Manage API tokens."""


@token.command("create")
@click.argument("username")
@click.option("--label", default="created with tansiq token create", help="What it is for.")
@click.option("--days", type=int, default=None, help="Lifetime (default: token_days).")
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
        parse_scopes,
        token_id,
    )

    settings = _settings(kwargs)
    node = _open_node(settings)
    a = get_account(node.db, username)
    if a is None:
        raise click.ClickException(f"no account {username!r}; see `tansiq account list`")
    from tansiq import audit

    try:
        lifetime = check_token_days(days if days is not None else settings.token_days)
        with node.db.bookkeeping():  # no token without its audit entry
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
    from tansiq.accounts.store import get_account, list_tokens

    node = _open_node(_settings(kwargs))
    if username is not None and get_account(node.db, username) is None:
        raise click.ClickException(f"no account {username!r}; see `tansiq account list`")
    for t in list_tokens(node.db, username):
        d = t.as_dict()
        click.echo(
            f"{t.id}  {t.username:<16} {d['state']:<8} {d['expires']}  "
            f"{' '.join(t.scopes):<15} {t.label}"
        )


@token.command("revoke")
@click.argument("token_prefix")
@_settings_options
def token_revoke(token_prefix: str, **kwargs: Any) -> None:
    """Revoke a token named by its id (or a unique prefix of it) or the token itself."""
    from tansiq import audit
    from tansiq.accounts.store import AccountError, revoke_token

    node = _open_node(_settings(kwargs))
    try:
        with node.db.bookkeeping():  # the revocation and its audit entry commit together
            t = revoke_token(node.db, token_prefix)
            audit.record_in(node.db, "cli", "token_revoked", t.username, {"id": t.id})
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"revoked token {t.id} of {t.username!r} ({t.label})")


if __name__ == "__main__":  # pragma: no cover
    main()
