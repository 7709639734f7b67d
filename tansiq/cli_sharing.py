"""``tansiq partner`` and ``tansiq group``: the registry of partner agencies and sharing groups."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click
import orjson

from tansiq.cli import _open_node, _settings, _settings_options, _shown

if TYPE_CHECKING:
    from tansiq.federation.received import SyncReport
    from tansiq.sharing import Partner


def _url_problem(value: str) -> str | None:
    """Why *value* is not a partner node's base URL (an http(s) URL with a host, without ? or
    #), or None."""
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        host = None
        parts = urlsplit("")
    if parts.scheme.lower() not in ("http", "https") or not host:
        return f"{value!r} is not an http(s) URL with a host, e.g. https://node.example:8400"
    if parts.query or parts.fragment:
        return f"{value!r}: give the node's base URL, without ? or #"
    return None


def _check_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """--url: an http(s) URL with a host, checked now rather than at the first sync."""
    problem = _url_problem(value) if value else None
    if problem is not None:
        raise click.BadParameter(problem)
    return value


@click.group()
def partner() -> None:
    """Partner agencies this node knows (code, name, identity, public key, URL), and
    suspending and resuming them."""


@partner.command("invite")
@click.argument("code")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, allow_dash=True),
    default=None,
    help="Write the invitation to this file (mode 0600) instead of printing it; - (the "
    "default) is standard output.",
)
@_settings_options
def partner_invite(code: str, output: Path | None, **kwargs: Any) -> None:
    """Invite partner CODE: an enrolment string for its node (holds a secret sync token).
    The tokens of CODE's earlier invitations stop working."""
    import os

    from tansiq.federation.enrol import EnrolmentError, invite

    node = _open_node(_settings(kwargs))
    if output is None or str(output) == "-":  # as `export -o -`
        try:
            text = invite(node, code).encode()
        except EnrolmentError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(text)
        return
    # The file is opened before the invitation is made, which revokes the earlier ones'
    # tokens: a path that cannot be written then changes nothing.
    existed = output.exists()
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT, 0o600)
    except OSError as exc:
        raise click.ClickException(
            f"cannot write the invitation to {output}: {exc.strerror or exc}; nothing was"
            " handed out (choose another -o FILE)"
        ) from None
    with os.fdopen(fd, "w") as f:
        try:
            text = invite(node, code).encode()
        except EnrolmentError as exc:
            if not existed:
                output.unlink(missing_ok=True)
            raise click.ClickException(str(exc)) from None
        os.fchmod(fd, 0o600)  # a file that was there keeps its mode otherwise: the token is secret
        os.ftruncate(fd, 0)
        f.write(text + "\n")
    click.echo(
        f"invitation for {code.upper()} written to {output}; on its node run: "
        f"tansiq partner add --enrolment {output}",
        err=True,
    )


@partner.command("add")
@click.argument("code", required=False)
@click.option(
    "--enrolment",
    default=None,
    help="An invitation from `tansiq partner invite` on the partner's node: "
    "a file, or the string itself. Registers code, name, key, URL and token.",
)
@click.option("--name", default=None, help="The partner agency's name.")
@click.option(
    "--identity-id", default=None, help="Its STIX identity id (default: derived from CODE)."
)
@click.option(
    "--public-key",
    "public_key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM file of the partner node's Ed25519 public key.",
)
@click.option(
    "--url", "base_url", default="", callback=_check_url, help="Base URL of the partner's node."
)
@_settings_options
def partner_add(
    code: str | None,
    enrolment: str | None,
    name: str | None,
    identity_id: str | None,
    public_key: Path | None,
    base_url: str,
    **kwargs: Any,
) -> None:
    """Register a partner agency: from an enrolment invitation, or by hand (CODE --name)."""
    from tansiq import audit
    from tansiq.node import partner_identity_id
    from tansiq.sharing import SharingError, add_partner

    node = _open_node(_settings(kwargs))
    if enrolment is not None:
        from tansiq.federation.enrol import accept

        p = _take_invitation(node, enrolment, accept)
        click.echo(f"partner {p.code} ({_shown(p.name)}) enrolled: {_shown(p.base_url)}")
        return
    if code is None or name is None:
        raise click.UsageError("give --enrolment, or CODE and --name")
    code = code.upper()
    if code == node.code:
        raise click.ClickException(f"{code} is this node's own partner code")
    key = _public_key(public_key) if public_key else ""
    try:
        with node.db.write():
            p = add_partner(
                node.db, code, name, identity_id or partner_identity_id(code), key, base_url
            )
            audit.record_in(
                node.db,
                "cli",
                "partner_added",
                code,
                {"name": name, "identity_id": p.identity_id, "base_url": base_url},
            )
    except SharingError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"partner {code} added ({p.identity_id})")


@partner.command("update")
@click.argument("code", required=False)
@click.option(
    "--enrolment",
    default=None,
    help="A new invitation from the partner's node (a file, or the string itself): its key, "
    "URL and sync token replace the ones held.",
)
@click.option("--name", default="", help="The partner agency's new name.")
@click.option(
    "--public-key",
    "public_key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM file of the partner node's new Ed25519 public key.",
)
@click.option(
    "--url",
    "base_url",
    default="",
    callback=_check_url,
    help="New base URL of the partner's node.",
)
@_settings_options
def partner_update(
    code: str | None,
    enrolment: str | None,
    name: str,
    public_key: Path | None,
    base_url: str,
    **kwargs: Any,
) -> None:
    """Change a registered partner: from a new invitation, or by hand (CODE and any of
    --public-key, --url, --name).  A pull refused for the key (no version of a page verified)
    resumes where it stopped; versions rejected one by one under the old key are pulled again
    by `tansiq sync --partner CODE --from-start`."""
    from tansiq import audit
    from tansiq.sharing import SharingError, update_partner

    node = _open_node(_settings(kwargs))
    if enrolment is not None:
        from tansiq.federation.enrol import renew

        p = _take_invitation(node, enrolment, renew)
        click.echo(f"partner {p.code} ({_shown(p.name)}) updated: {_shown(p.base_url)}")
        return
    if code is None or not (name or public_key or base_url):
        raise click.UsageError("give --enrolment, or CODE and --public-key, --url or --name")
    key = _public_key(public_key) if public_key else ""
    try:
        with node.db.write():
            p = update_partner(node.db, code.upper(), name=name, public_key=key, base_url=base_url)
            audit.record_in(
                node.db,
                "cli",
                "partner_changed",
                p.code,
                {"name": p.name, "base_url": p.base_url, "key_changed": bool(key)},
            )
    except SharingError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"partner {p.code} ({_shown(p.name)}) updated: {_shown(p.base_url or 'no URL')}")


def _take_invitation(node: Any, enrolment: str, take: Callable[[Any, Any], Partner]) -> Partner:
    """Decode *enrolment* (a file, or the string itself), check its key, and hand it to *take*
    (``enrol.accept`` or ``enrol.renew``); errors as a message."""
    from tansiq.federation.enrol import PREFIX, EnrolmentError, Invitation
    from tansiq.sharing import SharingError

    if enrolment.strip().startswith(PREFIX):  # the string itself (too long for a file name)
        text = enrolment
    else:
        source = Path(enrolment)
        hint = (
            "give the file that `tansiq partner invite CODE -o FILE` wrote on the partner's"
            " node, or the string it printed"
        )
        if not enrolment.strip():  # Path("") is the current directory
            raise click.ClickException(f"--enrolment is empty: {hint}")
        if not source.is_file():
            what = "a directory" if source.is_dir() else "no such file"
            raise click.ClickException(
                f"--enrolment {enrolment}: {what}, nor an invitation string (one starts with "
                f"{PREFIX!r}); {hint}"
            )
        text = _read_text(source, "--enrolment")
    try:
        invitation = Invitation.decode(text)
        _check_key(invitation.public_key, "the invitation's public key")
        problem = _url_problem(invitation.url)
        if problem is not None:  # (an invitation from a node that did not check public_url)
            raise click.ClickException(
                f"the invitation holds no usable URL ({problem}): the partner's node must set"
                " a correct public_url and invite again"
            )
        return take(node, invitation)
    except (EnrolmentError, SharingError) as exc:
        raise click.ClickException(str(exc)) from None


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise click.ClickException(f"{what} {path}: not a text file (UTF-8)") from None
    except OSError as exc:
        raise click.ClickException(f"{what} {path}: {exc.strerror}") from None


def _public_key(path: Path) -> str:
    """The PEM text of an Ed25519 public key file, checked now rather than at the first sync."""
    pem = _read_text(path, "--public-key")
    _check_key(pem, f"--public-key {path}")
    return pem


def _check_key(pem: str, what: str) -> None:
    from tansiq.federation.signing import SignatureError, load_public_key

    try:
        load_public_key(pem)
    except SignatureError as exc:
        raise click.ClickException(f"{what}: {exc.reason}") from None


def _suspension(code: str, suspend: bool, reason: str, kwargs: dict[str, Any]) -> None:
    """Suspend or resume partner *code*, audited in the change's transaction."""
    from tansiq import audit
    from tansiq.sharing import SharingError, set_suspended

    node = _open_node(_settings(kwargs))
    code = code.upper()
    action = "partner_suspended" if suspend else "partner_resumed"

    def record(p: Partner) -> None:
        detail = {"reason": reason} if suspend else {}
        audit.record_in(node.db, "cli", action, p.code, detail)

    try:
        p, changed = set_suspended(node.db, code, node.code, suspend, reason, record)
    except SharingError as exc:
        raise click.ClickException(str(exc)) from None
    if not changed:
        state = "suspended" if suspend else "not suspended"
        click.echo(f"partner {code} is already {state}: nothing changed")
    elif suspend:
        click.echo(
            f"partner {code} ({p.name}) suspended: its node and liaison accounts are refused,"
            " and it is not pulled from, until `tansiq partner resume " + code + "`"
        )
    else:
        click.echo(
            f"partner {code} ({p.name}) resumed: its tokens work again and the next sync"
            " continues where the last one ended"
        )


@partner.command("suspend")
@click.argument("code")
@click.option("--reason", default="", help="Why (shown by `partner list`, kept in the audit log).")
@_settings_options
def partner_suspend(code: str, reason: str, **kwargs: Any) -> None:
    """Suspend partner CODE, keeping its enrolment: its node's sync account and its liaison
    accounts (partner=CODE) are refused (tokens, passwords, web sessions, which end), and this
    node does not pull from it, until `tansiq partner resume CODE`.  What was released to it
    stays released, and new versions may still name it: it reads them after it is resumed.
    What was pulled from it stays stored and readable here."""
    _suspension(code, True, reason, kwargs)


@partner.command("resume")
@click.argument("code")
@_settings_options
def partner_resume(code: str, **kwargs: Any) -> None:
    """Resume suspended partner CODE: its unexpired, unrevoked tokens work again, and pulls
    (both ways) continue from where they stopped, with nothing lost or repeated."""
    _suspension(code, False, "", kwargs)


@partner.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_settings_options
def partner_list(as_json: bool, **kwargs: Any) -> None:
    """List registered partners, and which are suspended (since when, why)."""
    from tansiq.sharing import list_partners
    from tansiq.stix.timestamps import from_micros

    node = _open_node(_settings(kwargs))
    partners = list_partners(node.db)
    if as_json:
        rows = [
            {**p.__dict__, "suspended": from_micros(p.suspended) if p.suspended else None}
            for p in partners
        ]
        click.echo(orjson.dumps(rows).decode())
        return
    # Names and URLs come from partners' invitations: non-printable characters escaped, so that
    # none can forge or hide a row in the terminal (as tansiq audit list shows what was typed).
    click.echo(f"{node.code:<6} {_shown(node.name)}  (this node)")
    for p in partners:
        key = "key" if p.public_key else "no key"
        state = ""
        if p.suspended:
            why = f": {p.suspended_reason}" if p.suspended_reason else ""
            state = f"  SUSPENDED since {from_micros(p.suspended)}{why}"
        where = f"{_shown(p.identity_id)}  {_shown(p.base_url or '-')}"
        click.echo(f"{p.code:<6} {_shown(p.name)}  {where}  {key}{_shown(state)}")


@click.group()
def group() -> None:
    """Named sharing groups of partners (trilateral group, bilateral pairs, ...)."""


@group.command("add")
@click.argument("name")
@click.option("--members", required=True, help="Comma-separated partner codes, e.g. DZ,EG,TN.")
@_settings_options
def group_add(name: str, members: str, **kwargs: Any) -> None:
    """Create a sharing group."""
    from tansiq import audit
    from tansiq.sharing import SharingError, add_group

    node = _open_node(_settings(kwargs))
    codes = [m.strip().upper() for m in members.split(",") if m.strip()]
    try:
        with node.db.write():
            add_group(node.db, name, codes, node.code)
            audit.record_in(node.db, "cli", "group_changed", name, {"members": sorted(codes)})
    except SharingError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"group {name}: {', '.join(sorted(codes))}")


@group.command("list")
@_settings_options
def group_list(**kwargs: Any) -> None:
    """List sharing groups and their members."""
    from tansiq.sharing import list_groups

    node = _open_node(_settings(kwargs))
    for name, members in list_groups(node.db).items():
        click.echo(f"{name:<24} {', '.join(members)}")


SHOWN = 20  # rejections listed by `tansiq sync`; the audit log has them all
REJECTED_EXIT = 3  # `tansiq sync`: versions were rejected (audited); the good ones are stored


class _VersionsRejected(click.ClickException):
    exit_code = REJECTED_EXIT


@click.command()
@click.option("--partner", "partner_code", default=None, help="Pull from this partner only.")
@click.option(
    "--limit",
    "limit",  # not "page_size": that is the setting of the server's default page
    default=1000,
    type=click.IntRange(min=1),
    show_default=True,
    help="Objects per TAXII page asked of the partner.",
)
@click.option(
    "--from-start",
    is_flag=True,
    help="With --partner: pull everything the partner releases to this node again, not only"
    " what is new (versions rejected before, e.g. under a key since corrected, are taken now;"
    " versions held already are left as they are).",
)
@_settings_options
def sync(partner_code: str | None, limit: int, from_start: bool, **kwargs: Any) -> None:
    """Pull what partners originated and released to this node, now.

    Exit 0 when every pull ran and took every version; 3 when any version was rejected (a
    bad signature, another originator's version or withdrawal, ...; a page refused whole
    because none of it verifies under the partner's enrolled key): the good ones are stored,
    each rejection is audited, and stderr says how many per partner; else 1 when a pull
    failed."""
    if from_start and not partner_code:
        raise click.UsageError("--from-start needs --partner CODE")
    from tansiq.federation.sync import SyncError, SyncReport, sync_all, sync_partner

    node = _open_node(_settings(kwargs))
    node.db.checkpoint_in_background()  # as `serve` does: pages commit without waiting on it

    def progress(r: SyncReport) -> None:
        gone = r.withdrawn + r.deleted
        said = f", {gone} withdrawn or deleted" if gone else ""
        click.echo(f"  {r.partner}: page {r.pages}, {r.received} received{said}", err=True)

    try:
        with _rejections_unlogged():  # listed below instead, the first SHOWN
            if partner_code:
                report = SyncReport(partner_code.upper())
                try:
                    sync_partner(
                        node,
                        report.partner,
                        progress=progress,
                        page_size=limit,
                        from_start=from_start,
                        report=report,
                    )
                except SyncError as exc:
                    if not (report.rejected or report.refused):
                        raise click.ClickException(_shown(str(exc))) from None
                    report.error = str(exc)  # said below, with what was rejected before it
                reports = [report]
            else:
                reports = sync_all(node, progress=progress, page_size=limit)
    finally:
        node.close()
    if not reports:  # sync_all passes over partners without a sync token (added by hand)
        click.echo(
            "nothing to pull: no partner is enrolled for sync here (URL, key and token); run"
            " `tansiq partner add --enrolment` (`partner update --enrolment` for a partner"
            " added by hand) with the invitation a partner's node made for this one"
            f" (`tansiq partner invite {node.code}` there)"
        )
    failed = []
    for r in reports:
        if r.error:  # the pull itself failed: say why (once), not '0 received'
            failed.append(r.partner)
            click.echo(f"{r.partner}: sync failed: {_shown(r.error)}")
        else:
            click.echo(str(r))
        for line in r.rejections[:SHOWN]:
            click.echo(f"  rejected {_shown(line)}", err=True)  # what the peer sent: escaped
        if r.rejected > SHOWN:
            more = r.rejected - SHOWN
            click.echo(
                f"  ... and {more} more rejected (all in `tansiq audit list`: sync_rejected)",
                err=True,
            )
    rejected = [r for r in reports if r.rejected or r.refused]
    for r in rejected:
        click.echo(_rejected_summary(r), err=True)
    if rejected:
        raise _VersionsRejected(
            f"versions from {', '.join(r.partner for r in rejected)} were rejected"
            f" (exit {REJECTED_EXIT}; see `tansiq audit list`)"
        )
    if failed:
        raise click.ClickException(f"sync from {', '.join(failed)} failed")


@contextlib.contextmanager
def _rejections_unlogged() -> Iterator[None]:
    """Keep the log's line per rejected version off stderr (with no logging set up, Python
    prints warnings there): `tansiq sync` lists them itself, capped, and counts the rest."""
    from tansiq.federation.received import rejections_log

    before = rejections_log.propagate
    rejections_log.propagate = False
    handler = logging.NullHandler()
    rejections_log.addHandler(handler)
    try:
        yield
    finally:
        rejections_log.removeHandler(handler)
        rejections_log.propagate = before


def _rejected_summary(r: SyncReport) -> str:
    """One line: what was rejected from partner *r* in this run."""
    said = []
    if r.rejected:
        said.append(
            f"{r.rejected} version{'s' if r.rejected != 1 else ''} rejected (sync_rejected)"
        )
    if r.refused:
        said.append(
            f"a page of {r.refused} refused: none verifies under {r.partner}'s enrolled key"
            " (sync_refused)"
        )
    ended = ", then the pull failed" if r.error else ""
    return f"{r.partner}: {'; '.join(said)}; {r.stored} stored{ended}"
