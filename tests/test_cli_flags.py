"""Each command takes as flags only the settings it reads (declared in tansiq/settings.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from sync_peers import OriginPeer, enrolled
from test_store import indicator

from tansiq.cli import main
from tansiq.node import Node
from tansiq.settings import COMMANDS, EVERY_SETTING, SETTINGS, STORE, Settings, read_by


def _leaves(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, click.Command]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _leaves(command, (*path, name))
        else:
            yield " ".join((*path, name)), command


LEAVES = dict(_leaves(main))
FLAG = re.compile(r"^\s+(--[a-z-]+)", re.MULTILINE)


def _settings_flags_in_help(path: str) -> set[str]:
    result = CliRunner().invoke(main, [*path.split(), "--help"], env={})
    assert result.exit_code == 0, result.output
    return set(FLAG.findall(result.output)) & {s.flag for s in SETTINGS}


def test_every_command_is_declared_and_every_declared_command_exists() -> None:
    assert set(COMMANDS) == set(LEAVES) - {"demo"}
    for s in SETTINGS:
        assert s.commands and set(s.commands) <= set(STORE), s.name


@pytest.mark.parametrize("path", sorted(LEAVES))
def test_a_command_offers_the_flags_of_the_settings_it_reads(path: str) -> None:
    """`tansiq account add --help` offered --certfile, --port, --ingest-batch ...: every
    setting, read or not.  Now its options and its help list those it reads, and no other."""
    wanted = set() if path == "demo" else {s.flag for s in read_by(path)}
    if path == "demo":  # its own --data-dir, not the setting
        assert _settings_flags_in_help(path) == {"--data-dir"}
        return
    offered = {p.opts[0] for p in LEAVES[path].params if p.name in {s.name for s in SETTINGS}}
    assert offered == wanted
    assert _settings_flags_in_help(path) == wanted
    assert "--data-dir" in wanted
    if path in EVERY_SETTING:
        assert wanted == {s.flag for s in SETTINGS}


def test_scopes_of_a_few_settings() -> None:
    """What the code reads, spelled out for the settings users reach for most."""
    by = {path: {s.name for s in read_by(path)} for path in COMMANDS}
    assert "port" in by["serve"] and "port" in by["partner invite"]  # the invitation's URL
    assert "port" not in by["ingest"] and "port" not in by["account add"]
    assert {"ingest_batch", "ingest_stall_seconds"} <= by["ingest"]
    assert "sync_read_timeout_seconds" in by["sync"] and "sync_read_timeout_seconds" in by["serve"]
    assert "sync_interval_seconds" not in by["sync"]  # a one-off pull has no interval
    assert "page_size" not in by["sync"]  # its page is --limit
    assert "token_days" in by["token create"] and "log_level" not in by["stats"]
    assert by["account add"] == {"data_dir", "database_url", "sqlite_cache_mb"}


@pytest.mark.parametrize("path", sorted(STORE))
def test_a_setting_flag_a_command_does_not_read_is_a_usage_error(path: str) -> None:
    """`tansiq ingest --port 1` was accepted and did nothing; now it is exit 2 naming the flag
    and the commands that do read the setting, the command not run."""
    unread = [s for s in SETTINGS if s not in read_by(path)]
    for s in unread:
        value = "true" if s.type is bool else "1"
        result = CliRunner().invoke(main, [*path.split(), s.flag, value], env={})
        assert result.exit_code == 2, (path, s.flag, result.output)
        assert f"No such option: {s.flag}:" in result.stderr, result.stderr
        assert s.env in result.stderr and "only init, settings" in result.stderr, result.stderr


def test_a_setting_flag_given_to_demo_says_it_reads_no_settings() -> None:
    """`tansiq demo --port 9000` answered "to set it for every command use TANSIQ_PORT or
    DATA_DIR/tansiq.toml", which the demo's nodes do not read either."""
    for s in SETTINGS:
        if s.name == "data_dir":  # the demo's own --data-dir: where its nodes go
            continue
        value = "true" if s.type is bool else "1"
        result = CliRunner().invoke(main, ["demo", s.flag, value], env={}, prog_name="tansiq")
        said = result.stderr.replace("\n", " ")
        assert result.exit_code == 2, (s.flag, result.output)
        assert f"No such option: {s.flag}: `tansiq demo` reads no settings" in said, said
        assert "to set it for every command" not in said and "tansiq demo --help" in said


def test_the_demo_nodes_read_no_settings_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README: the demo's nodes read no TANSIQ_* (the demo is always the same three SQLite
    nodes on its --base-port, pulling every 5 s)."""
    from tansiq.demo import setup

    for s in SETTINGS:
        if s.name != "data_dir":
            monkeypatch.setenv(s.env, "postgresql://nowhere.invalid/x" if s.type is str else "7")
    nodes = setup(tmp_path, [18001, 18002, 18003])
    try:
        for d, port in zip(nodes, (18001, 18002, 18003), strict=True):
            sources = {s.name: source for s, _, source in d.node.settings.items()}
            assert {x for x in sources.values() if not x.startswith("flag")} == {"default"}
            assert d.node.settings.port == port and d.node.settings.sync_interval_seconds == 5
    finally:
        for d in nodes:
            d.node.close()


def test_ingest_port_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    bundle = tmp_path / "b.json"
    bundle.write_text("[]")
    result = CliRunner().invoke(
        main, ["ingest", "--port", "1", str(bundle)], env={}, prog_name="tansiq"
    )
    assert result.exit_code == 2 and "--port" in result.stderr
    assert "`tansiq ingest` does not use the setting port" in result.stderr.replace("\n", " ")


class _Reads:
    """The settings read through :class:`Settings` while a command runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: set[str] = set()
        plain = Settings.__getattr__
        data_path = Settings.data_path
        source = Settings.source

        def getattr_(settings: Settings, name: str) -> Any:
            self.names.add(name)
            return plain(settings, name)

        def source_(settings: Settings, name: str) -> str:
            self.names.add(name)
            return source(settings, name)

        def data_path_(settings: Settings) -> Path:
            self.names.add("data_dir")
            return data_path.fget(settings)  # type: ignore[attr-defined,no-any-return]

        monkeypatch.setattr(Settings, "__getattr__", getattr_)
        monkeypatch.setattr(Settings, "source", source_)
        monkeypatch.setattr(Settings, "data_path", property(data_path_))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_commands_read_no_setting_they_do_not_declare(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run the commands (but serve, init and settings, which take every flag) and record each
    setting they read: each is one the command declares, so one it takes as a flag."""
    bundle = tmp_path / "b.json"
    bundle.write_text(json.dumps([indicator(1)]))
    runs = [
        ["ingest", "--workers", "1", str(bundle)],
        ["ingest", "--workers", "0", str(bundle)],
        ["export", "-o", str(tmp_path / "out.json")],
        ["stats"],
        ["audit", "verify"],
        ["audit", "list"],
        ["account", "add", "ana", "--role", "editor", "--password", "a-long-password-1"],
        ["account", "list"],
        ["account", "password", "ana"],
        ["account", "role", "ana", "reader"],
        ["account", "disable", "ana"],
        ["account", "enable", "ana"],
        ["token", "create", "ana"],
        ["token", "list"],
        ["partner", "invite", "TN", "-o", str(tmp_path / "tn.txt")],
        ["partner", "add", "DZ", "--name", "Algeria"],
        ["partner", "update", "DZ", "--name", "Algeria 2"],
        ["partner", "suspend", "DZ"],
        ["partner", "resume", "DZ"],
        ["partner", "list"],
        ["group", "add", "maghreb", "--members", "DZ,EG"],
        ["group", "list"],
        ["sync"],
    ]
    where = ["--data-dir", str(node.settings.data_dir)]
    seen = set()
    with enrolled(node, OriginPeer()) as peer:
        peer.store(peer.signed(99, "2016-01-01T00:00:00.000Z"))  # not the id ingested here
        for args in runs:
            reads = _Reads(monkeypatch)
            result = CliRunner().invoke(main, [*args, *where], env={})
            monkeypatch.undo()
            assert result.exit_code == 0, (args, result.output)
            path = " ".join(args[:2]) if args[0] in GROUPS else args[0]
            declared = {s.name for s in read_by(path)}
            assert reads.names <= declared, (path, reads.names - declared)
            assert "data_dir" in reads.names
            seen.add(path)
            if path == "token create":
                runs.append(["token", "revoke", result.stdout.strip()])
            if path == "sync":
                assert "sync_read_timeout_seconds" in reads.names  # it did pull
            if path == "ingest" and "1" in args:
                assert "ingest_stall_seconds" in reads.names  # it had a worker process
    assert seen == set(STORE) - {"serve"}


GROUPS = {c for c in main.commands if isinstance(main.commands[c], click.Group)}
