"""The ``tansiq`` command: a thin layer over the library.

Settings flags are derived from :data:`tansiq.settings.SETTINGS`: each command takes those of the
settings it reads (``Setting.commands``); a setting's flag given to another command is a usage
error naming the commands that read it.
Exit codes: 0 success, 1 rejected input or failed operation, 2 usage error, 3 a sync that
rejected versions (the good ones stored), 130 an ingest interrupted (Ctrl-C; nothing stored).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import orjson

from tansiq import __version__
from tansiq.settings import SETTINGS, Settings, SettingsError, commands_of, load, read_by

_TAKES_SETTINGS: set[Callable[..., Any]] = set()


def _settings_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a command as taking settings flags: one ``--flag`` per setting it reads
    (:func:`tansiq.settings.read_by` of its path, e.g. ``account add``), all optional (unset
    flags fall through to lower layers); added by :func:`_add_settings_flags`."""
    _TAKES_SETTINGS.add(func)
    return func


def _add_settings_flags(group: click.Group, path: tuple[str, ...] = ()) -> None:
    """Give each marked command of *group*'s tree the flags of the settings it reads."""
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            _add_settings_flags(cmd, (*path, name))
        elif cmd.callback in _TAKES_SETTINGS:
            for s in read_by(" ".join((*path, name))):
                kind: Any = {int: int, float: float, bool: bool}.get(s.type, str)
                cmd.params.append(
                    click.Option([s.flag, s.name], type=kind, default=None, help=s.help)
                )


def _not_read_here(exc: click.NoSuchOption) -> click.UsageError | None:
    """A usage error for a setting's flag given to a command that does not read the setting,
    naming the commands that do; None for any other unknown option."""
    setting = next((s for s in SETTINGS if s.flag == exc.option_name), None)
    if setting is None or exc.ctx is None:
        return None
    command = exc.ctx.command
    if not isinstance(command, click.Group) and command.callback not in _TAKES_SETTINGS:
        return click.UsageError(  # `tansiq demo`: its nodes read no TANSIQ_* nor tansiq.toml
            f"No such option: {setting.flag}: `{exc.ctx.command_path}` reads no settings, from"
            f" flags, {setting.env} or a tansiq.toml; its options are in"
            f" `{exc.ctx.command_path} --help`",
            exc.ctx,
        )
    return click.UsageError(
        f"No such option: {setting.flag}: `{exc.ctx.command_path}` does not use the setting"
        f" {setting.name} (only {', '.join(commands_of(setting))} do); to set it for every"
        f" command use {setting.env} or DATA_DIR/tansiq.toml",
        exc.ctx,
    )


def _settings(kwargs: dict[str, Any]) -> Settings:
    flags = {s.name: kwargs.pop(s.name) for s in SETTINGS if s.name in kwargs}
    try:
        return load(flags)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _password_option(flag: str, what: str) -> Callable[[Callable[..., Any]], Any]:
    """A password option: ``FLAG -`` reads it from standard input (its first line, without the
    line end; at a terminal, a prompt without echo), out of other local users' sight in
    ``ps``, where ``FLAG PASSWORD`` shows it."""

    def read(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        if value != "-":
            return value
        stream = sys.stdin
        if stream is None:  # started with standard input closed
            raise click.BadParameter("- reads the password from standard input, which is closed")
        if stream.isatty():
            return str(
                click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
            )
        secret = stream.readline().removesuffix("\n").removesuffix("\r")
        if not secret:
            raise click.BadParameter("- reads the password from standard input, which held none")
        return secret

    return click.option(
        flag,
        default=None,
        metavar="PASSWORD|-",
        callback=read,
        help=f"{what} (default: generated, printed once).  `{flag} PASSWORD` shows it to every"
        f" local user (in `ps`): `{flag} -` reads it from standard input instead (one line;"
        " at a terminal, typed without echo).",
    )


def _open_node(settings: Settings) -> Any:
    from tansiq.node import Node, NodeError
    from tansiq.store.database import StoreError

    try:
        node = Node(settings)
    except (NodeError, StoreError) as exc:
        raise click.ClickException(str(exc)) from None
    click.get_current_context().call_on_close(node.close)
    return node


def _shown(text: str) -> str:
    """*text* for a terminal: what is not printable (control characters such as an escape or a
    line break, bidi overrides) as its Python escape (``\\x1b``).  Audit entries hold what
    anyone typed at /login, and token labels what their owner chose: as is, they could forge,
    reorder or hide rows of a listing in an admin's terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


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
    """The command group; a store that cannot grow, is read-only for this process, or (SQLite)
    is busy with another write past the busy timeout ends any command with a message, exit 1;
    so does a :class:`~tansiq.node.NodeError` met on the way (e.g. the private key missing or
    damaged when a command first needs it)."""

    def invoke(self, ctx: click.Context) -> Any:
        from tansiq.node import NodeError
        from tansiq.store.database import StoreUnavailable

        try:
            return super().invoke(ctx)
        except (StoreUnavailable, NodeError) as exc:
            raise click.ClickException(str(exc)) from None
        except click.NoSuchOption as exc:
            raise (_not_read_here(exc) or exc) from None


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
@_password_option("--admin-password", "Password for 'admin'")
@_settings_options
def init(partner: str, name: str, admin_password: str | None, **kwargs: Any) -> None:
    """Create a node: data dir, database, STIX identity, Ed25519 key and the first admin.

    Settings given here as flags (--port, --host, --database-url, ...) are kept in
    DATA_DIR/tansiq.toml, so that later commands on the data dir use them.  A failed init
    leaves DATA_DIR as it found it."""
    from tansiq.accounts.store import AccountError
    from tansiq.node import NodeError, init_node
    from tansiq.ports import listen_url
    from tansiq.store.database import StoreError

    settings = _settings(kwargs)
    try:
        r = init_node(settings, partner, name, admin_password)
    except (NodeError, StoreError, AccountError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Initialised node {r.code} in {r.data_dir} ({r.database})")
    click.echo(f"  identity:  {r.identity_id}")
    given = "as given" if admin_password is not None else f"'{r.admin_password}'"
    click.echo(f"  login:     user '{r.admin_username}', password {given}")
    click.echo(
        f"  API token: {r.admin_token}  ({settings.token_days} days;"
        " `tansiq token create admin` makes another)"
    )
    if r.config is not None:
        click.echo(f"  settings:  {', '.join(r.saved)} kept in {r.config}")
    click.echo(f"Start it with: tansiq serve --data-dir {r.data_dir}")
    click.echo(
        f"Then:          curl -H 'Authorization: Bearer {r.admin_token}' "
        f"{listen_url(settings.host, settings.port, bool(settings.certfile))}/api/objects"
    )


@main.command()
@_settings_options
def serve(**kwargs: Any) -> None:
    """Run the web server (REST API, TAXII 2.1, /docs) for the node in --data-dir."""
    import uvicorn

    from tansiq.api.app import create_app
    from tansiq.ports import listen_problem, listen_url

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
    node.db.check_writable()  # read-only: a message and exit 1 now, not an error per request
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
    click.echo(
        f"tansiq node {node.code} on {listen_url(settings.host, settings.port, bool(tls))}/ "
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
    visible = _operator_view(node)
    latest = iterate_latest(node.db, visible)
    if output is None or str(output) == "-":
        for chunk in stream_bundle(latest):  # standard output: the bundle and nothing else
            sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.write(b"\n")
        return
    from tansiq.store.query import count_by_type

    total = sum(count_by_type(node.db, visible).values())  # for the progress bar
    _write_file(output, latest, total)
    click.echo(f"wrote {output}", err=True)


def _write_file(output: Path, latest: Iterator[str], total: int) -> None:
    """Write the bundle of *latest* (*total* objects: a progress bar, on a terminal only) to
    *output*: a regular file (or a new one) through ``OUTPUT.part``, synced to disk and
    renamed over it, so that no half-written export is left under its name; anything else
    (``/dev/null``, ``/dev/stdout``, a named pipe, a symbolic link) is written to as it is, as
    a rename would put a file in its place."""
    from tqdm import tqdm

    from tansiq.stix.bundles import stream_bundle

    in_place = output.is_symlink() or (output.exists() and not output.is_file())
    tmp = output if in_place else output.with_name(output.name + ".part")
    try:
        with (
            tmp.open("wb") as f,
            tqdm(total=total, unit=" objects", desc="export", disable=None, file=sys.stderr) as bar,
        ):
            for chunk in stream_bundle(_counted(latest, bar.update)):
                f.write(chunk)
            if not in_place:
                f.flush()
                os.fsync(f.fileno())  # on disk before it takes the final name
        if not in_place:
            tmp.replace(output)
    except OSError as exc:
        if not in_place:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None


def _counted(texts: Iterator[str], count: Callable[[int], object]) -> Iterator[str]:
    """*texts*, calling *count* (a progress bar's update) once for each."""
    for text in texts:
        yield text
        count(1)


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


@main.command("settings")
@_settings_options
def settings_cmd(**kwargs: Any) -> None:
    """Print every setting, its value and where the value came from."""
    from tansiq.store.dialect import without_password

    settings = _settings(kwargs)
    for s, value, source in settings.items():
        shown = "********" if s.secret and value else value
        if s.name == "database_url" and value:
            shown = without_password(value)
        click.echo(f"{s.name:<22} {shown!s:<40} {source}")


@main.command()
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the demo nodes keep their data (default: a new temporary directory).",
)
@click.option(
    "--base-port",
    type=click.IntRange(1, 65535 - 2),  # the three nodes' ports, each a port (settings.port)
    default=8400,
    show_default=True,
    help="First port; the nodes use it and the next two.",
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
        actor, action, target = (_shown(str(e[k])) for k in ("actor", "action", "target"))
        click.echo(f"{e['seq']:>7}  {e['time']}  {actor:<16} {action:<20} {target}{_shown(detail)}")


from tansiq.cli_accounts import account, token  # noqa: E402 - needs the helpers above
from tansiq.cli_ingest import ingest_cmd  # noqa: E402
from tansiq.cli_sharing import group, partner, sync  # noqa: E402

main.add_command(ingest_cmd)
main.add_command(partner)
main.add_command(group)
main.add_command(sync)
main.add_command(account)
main.add_command(token)
_add_settings_flags(main)


if __name__ == "__main__":  # pragma: no cover
    main()
