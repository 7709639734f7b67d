"""``tansiq ingest``: validate and store STIX files, all or nothing."""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from tansiq.cli import _open_node, _settings, _settings_options

MAX_INGEST_WORKERS = 32  # each parses every file: more workers than cores only slow it down


def _tlp_option(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """A ``--tlp`` value as its TLP 2.0 level (``TLP:RED``: ``red``); a usage error else."""
    from tansiq.sharing import SharingError, tlp_level

    try:
        return None if value is None else tlp_level(value)
    except SharingError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("ingest")
@click.argument("files", nargs=-1, required=True, type=click.Path(allow_dash=True))
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
@click.option(
    "--workers",
    type=click.IntRange(0, MAX_INGEST_WORKERS),
    default=None,
    help="Worker processes that parse and validate the files while this one stores them; 0 "
    "does it all in this process, as an ingest reading standard input (-) always does.  "
    "Default: one per core but one, at most 4, and 0 with two cores or fewer.",
)
@_settings_options
def ingest_cmd(
    files: tuple[str, ...],
    distribution: str | None,
    tlp: str | None,
    workers: int | None,
    **kwargs: Any,
) -> None:
    """Validate and store STIX bundles (files, directories of *.json and *.json.gz files, not
    their subdirectories, or - for standard input, read in this process); gzip-compressed
    files are decompressed as they are read.  All of them, or nothing when any object is
    invalid.  Ctrl-C stores nothing (exit 130)."""
    interruption = _Interruption()
    with interruption:
        try:
            result = _ingest(files, distribution, tlp, workers, kwargs, interruption.committing)
        except KeyboardInterrupt:
            raise _Interrupted("interrupted; nothing stored") from None
    read = "1 object" if result.total == 1 else f"{result.total} objects"
    click.echo(f"{read} read: {result.stored} stored, {result.unchanged} unchanged")
    if interruption.noted:
        click.echo("interrupted as the ingest was committing: it is complete", err=True)


class _Interrupted(click.ClickException):
    exit_code = 128 + signal.SIGINT


class _Interruption:
    """Ctrl-C (SIGINT) during ``tansiq ingest``: the first, before the commit, raises
    KeyboardInterrupt and the transaction rolls back; a later one, or one from the commit on,
    is only noted, so that neither the rollback nor the commit is cut short.  (Left alone
    where SIGINT is ignored, as for a command started in the background by a shell.)"""

    def __init__(self) -> None:
        self.raising = True
        self.noted = False
        self.previous: Any = None

    def _handle(self, _signum: int, _frame: Any) -> None:
        self.noted = True
        if self.raising:
            self.raising = False
            raise KeyboardInterrupt

    def committing(self, _result: Any) -> None:
        self.raising = False

    def __enter__(self) -> _Interruption:
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
        ):
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _files(files: tuple[str, ...]) -> list[Path]:
    """The files to read: FILES, a directory standing for the *.json and *.json.gz files in
    it, in name order, ``-`` for standard input (at most once).  Anything else is refused, a
    named pipe too: each worker reads every file from its beginning."""
    from tansiq.stix.bundles import STDIN

    if files.count("-") > 1:
        raise click.UsageError("- (standard input) can be given only once")
    paths: list[Path] = []
    for name in files:
        if name == "-":
            paths.append(STDIN)
            continue
        f = Path(name)
        if f.is_dir():
            try:
                found = sorted(
                    p for p in f.iterdir() if p.name.endswith((".json", ".json.gz")) and p.is_file()
                )
            except OSError as exc:
                raise click.ClickException(f"{f}: {exc.strerror or exc}") from None
            if not found:
                below = sorted(p for p in f.iterdir() if p.is_dir())
                hint = ""
                if below:
                    hint = f" (its subdirectories are not read: name them, e.g. {below[0]})"
                raise click.ClickException(f"{f}: directory holds no .json or .json.gz files{hint}")
            paths.extend(found)
        elif f.is_file():
            paths.append(f)
        elif f.exists():
            raise click.ClickException(
                f"{f}: not a regular file (a device, a pipe?) nor a directory"
            )
        else:
            raise click.ClickException(f"{f}: no such file")
    return paths


def _ingest(
    files: tuple[str, ...],
    distribution: str | None,
    tlp: str | None,
    workers: int | None,
    kwargs: dict[str, Any],
    before_commit: Callable[[Any], None],
) -> Any:
    """The ingest of *files*, or a ClickException saying why nothing was stored."""
    from tqdm import tqdm

    from tansiq.sharing import SharingError, parse_spec
    from tansiq.stix.bundles import InputError, file_of
    from tansiq.store.database import StoreUnavailable
    from tansiq.store.ingest import IngestError
    from tansiq.store.parallel import WorkerFailed

    settings = _settings(kwargs)
    node = _open_node(settings)
    paths = _files(files)
    bar = tqdm(unit=" objects", desc="ingest", disable=None, file=sys.stderr)

    def progress(n: int) -> None:
        bar.update(n - bar.n)

    starts: list[int] = []  # the index of each file's first object
    try:
        result = node.ingest_files(
            paths,
            distribution=parse_spec(distribution),
            tlp=tlp,
            progress=progress,
            workers=workers,
            file_starts=starts,
            before_commit=before_commit,
        )
    except SharingError as exc:
        raise click.ClickException(f"{exc}; nothing stored") from None
    except StoreUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    except (InputError, WorkerFailed) as exc:
        raise click.ClickException(f"{exc}; nothing stored") from None
    except IngestError as exc:
        bar.close()
        for e in exc.errors[:50]:
            where = file_of(starts, e.index) if len(paths) > 1 else None
            if where is not None:  # the index within that file, not across all of them
                e = dataclasses.replace(e, index=where[1])
                click.echo(f"error: {paths[where[0]]}: {e}", err=True)
            else:
                click.echo(f"error: {e}", err=True)
        if len(exc.errors) > 50:
            click.echo(f"... and {len(exc.errors) - 50} more", err=True)
        raise click.ClickException(str(exc)) from None
    finally:
        bar.close()
    ends = [*starts[1:], result.total]
    for path, start, end in zip(paths, starts, ends, strict=False):
        if start == end:
            click.echo(f"warning: {path}: no objects in it", err=True)
    return result
