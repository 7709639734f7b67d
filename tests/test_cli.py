"""The command line: init, export, stats, settings (ingest: test_cli_ingest.py)."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest
from click.testing import CliRunner
from conftest import PG_SKIP_REASON, PG_URL, STIX_DIR, PgSchema
from test_store import indicator

from tansiq.cli import main
from tansiq.stix.extensions import DISTRIBUTION_EXT, strip_distribution


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env or {}, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_init_creates_key_with_private_mode(data_dir: Path) -> None:
    mode = stat.S_IMODE(os.stat(data_dir / "node_ed25519.pem").st_mode)
    assert mode == 0o600
    code, _, err = run("init", "--data-dir", str(data_dir), "--partner", "EG", "--name", "Egypt")
    assert code == 1 and "already holds a node" in err


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_a_private_key_others_can_read_is_refused(data_dir: Path, mode: int) -> None:
    key = data_dir / "node_ed25519.pem"
    key.chmod(mode)
    code, _, err = run("stats", "--data-dir", str(data_dir))
    assert code == 1
    assert f"has mode {mode:04o}" in err and f"chmod 600 {key}" in err
    key.chmod(0o600)
    code, _, err = run("stats", "--data-dir", str(data_dir))
    assert code == 0, err


TRASH = b"\xff" * 40
CUT = b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----\n"


@pytest.mark.parametrize(
    "content",
    [b"", CUT, TRASH],
    ids=["empty", "truncated", "binary"],
)
def test_a_damaged_private_key_is_a_clear_message(data_dir: Path, content: bytes) -> None:
    key = data_dir / "node_ed25519.pem"
    key.write_bytes(content)
    code, _, err = run("stats", "--data-dir", str(data_dir))
    assert code == 1
    assert f"{key} is not a readable PEM private key" in err
    assert "Traceback" not in err
    key.unlink()  # opening the node needs no key; signing does
    code, _, err = run("ingest", "--data-dir", str(data_dir), str(STIX_DIR / "apt1.json"))
    assert code == 1 and f"the node's private key {key} is missing" in err, err
    assert "Traceback" not in err


def test_init_gives_the_admin_token_the_token_days_lifetime(tmp_path: Path) -> None:
    from tansiq.node import Node
    from tansiq.settings import load
    from tansiq.stix.timestamps import now_micros

    d = tmp_path / "eg"
    code, out, err = run(
        "init", "--data-dir", str(d), "--partner", "EG", "--name", "Egypt", "--token-days", "7"
    )
    assert code == 0, out + err
    assert "(7 days; `tansiq token create admin` makes another)" in out  # the admin is told
    node = Node(load({"data_dir": str(d)}, env={}))
    try:
        row = node.db.fetchone("SELECT created, expires FROM tokens WHERE username = 'admin'")
    finally:
        node.close()
    assert row is not None and row[1] - row[0] == 7 * 86_400_000_000
    assert row[1] > now_micros()


def test_init_rejects_bad_code(tmp_path: Path) -> None:
    code, _, err = run("init", "--data-dir", str(tmp_path / "x"), "--partner", "e g", "--name", "E")
    assert code == 1 and "partner code" in err


def test_ingest_export_stats(data_dir: Path, tmp_path: Path) -> None:
    src = STIX_DIR / "apt1.json"
    code, out, err = run("ingest", "--data-dir", str(data_dir), str(src))
    assert code == 0, err
    code, out, _ = run("stats", "--data-dir", str(data_dir), "--json")
    counts = json.loads(out)
    originals = orjson.loads(src.read_bytes())["objects"]
    assert sum(counts.values()) == len(originals) + 4  # + 2 identities, 2 extension-defs
    target = tmp_path / "out.json"
    code, _, _ = run("export", "--data-dir", str(data_dir), "-o", str(target))
    exported = {o["id"]: o for o in json.loads(target.read_text())["objects"]}
    for o in originals:
        assert strip_distribution(exported[o["id"]]) == o
        assert exported[o["id"]]["extensions"][DISTRIBUTION_EXT]["partners"] == ["EG"]


def test_command_without_node_says_what_to_do(tmp_path: Path) -> None:
    code, _, err = run("stats", "--data-dir", str(tmp_path / "none"))
    assert code == 1 and "tansiq init" in err


def test_settings_layers(tmp_path: Path) -> None:
    d = tmp_path / "n"
    d.mkdir()
    (d / "tansiq.toml").write_text("port = 9001\npage_size = 50\n")
    code, out, _ = run(
        "settings", "--data-dir", str(d), "--page-size", "70", env={"TANSIQ_PORT": "9002"}
    )
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert "9002" in lines["port"] and "env TANSIQ_PORT" in lines["port"]
    assert "70" in lines["page_size"] and "flag --page-size" in lines["page_size"]
    assert "default" in lines["host"]
    code, _, err = run("settings", "--data-dir", str(d), env={"TANSIQ_PORT": "many"})
    assert code == 1 and "TANSIQ_PORT" in err


def test_python_dash_m() -> None:
    r = subprocess.run([sys.executable, "-m", "tansiq", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "ingest" in r.stdout


def test_export_to_an_unwritable_path_is_a_clean_error(data_dir: Path, tmp_path: Path) -> None:
    code, _, err = run("export", "--data-dir", str(data_dir), "-o", str(tmp_path / "no" / "x.json"))
    assert code == 1
    assert "Traceback" not in err and "x.json" in err


def test_export_writes_into_a_named_pipe_or_a_link_and_leaves_them_in_place(
    data_dir: Path, tmp_path: Path
) -> None:
    """-o wrote OUTPUT.part and renamed it over OUTPUT: a named pipe (or, as root, /dev/null)
    was replaced by a regular file and never written to, a symbolic link by a copy."""
    out = tmp_path / "out"
    out.mkdir()
    pipe = out / "pipe"
    os.mkfifo(pipe)
    reader = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)  # the export's bundle fits its buffer
    try:
        code, _, err = run("export", "--data-dir", str(data_dir), "-o", str(pipe))
        assert code == 0, err
        assert stat.S_ISFIFO(pipe.lstat().st_mode) and not (out / "pipe.part").exists()
        received = b"".join(iter(lambda: os.read(reader, 65536), b""))
    finally:
        os.close(reader)
    assert json.loads(received)["type"] == "bundle"
    (out / "exports").mkdir()
    target = out / "exports" / "latest.json"
    target.write_text("an older export")
    link = out / "link.json"
    link.symlink_to(target)
    code, _, err = run("export", "--data-dir", str(data_dir), "-o", str(link))
    assert code == 0, err
    assert link.is_symlink() and json.loads(target.read_text())["type"] == "bundle"
    assert sorted(p.name for p in out.iterdir()) == ["exports", "link.json", "pipe"]


def test_settings_does_not_print_the_database_password(tmp_path: Path) -> None:
    url = "postgresql://tansiq:s3cret-pw@db.example:5432/tansiq"
    code, out, _ = run("settings", "--data-dir", str(tmp_path), "--database-url", url)
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("database_url"))
    assert "s3cret-pw" not in out
    assert "postgresql://tansiq:********@db.example:5432/tansiq" in line


def test_settings_does_not_print_a_password_given_as_a_url_parameter(tmp_path: Path) -> None:
    """libpq takes the password (and the TLS key's, ``sslpassword``) as URL parameters too; they
    were printed as given."""
    url = "postgresql://tansiq@db.example:5432/tansiq?sslmode=require&password=s3cret-pw"
    code, out, _ = run(
        "settings", "--data-dir", str(tmp_path), "--database-url", url + "&sslpassword=k3y-pw"
    )
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith("database_url"))
    assert "s3cret-pw" not in out and "k3y-pw" not in out
    assert "postgresql://tansiq@db.example:5432/tansiq?sslmode=require&password=********" in line
    code, out, _ = run("settings", "--data-dir", str(tmp_path), "--database-url", "sqlite:///x.db")
    assert "sqlite:///x.db " in next(x for x in out.splitlines() if x.startswith("database_url"))


def test_messages_naming_the_database_do_not_show_a_url_parameter_password(tmp_path: Path) -> None:
    """What init prints and every message naming the database (here, one that does not exist)
    showed ``?password=...`` as given, into the operator's terminal and the server's log."""
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    secret = "s3cret-pw"
    schema = PgSchema()
    try:
        url = f"{schema.url}&password={secret}"  # (trust authentication takes any)
        d = str(tmp_path / "eg")
        code, out, err = run(
            "init", "--partner", "EG", "--name", "Egypt", "--data-dir", d, "--database-url", url
        )
        assert code == 0, err
        assert secret not in out + err and "password=********" in out
        missing = urlsplit(url)._replace(path="/no_such_database_for_tansiq").geturl()
        code, out, err = run("stats", "--data-dir", d, "--database-url", missing)
        assert code == 1 and "cannot open PostgreSQL" in err, err
        assert secret not in out + err
    finally:
        schema.drop()


def test_export_dash_writes_the_bundle_to_stdout(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`-o -` is standard output (not a file named "-"), and stdout holds the bundle alone."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run("ingest", "--data-dir", str(data_dir), str(STIX_DIR / "apt1.json"))
    assert code == 0, err
    code, out, err = run("export", "--data-dir", str(data_dir), "-o", "-")
    assert code == 0, err
    assert not (tmp_path / "-").exists() and not (tmp_path / "-.part").exists()
    exported = json.loads(out)  # one JSON document: nothing else on stdout
    assert exported["type"] == "bundle"
    originals = orjson.loads((STIX_DIR / "apt1.json").read_bytes())["objects"]
    assert {o["id"] for o in originals} <= {o["id"] for o in exported["objects"]}


def test_init_saves_its_settings_flags_for_later_commands(tmp_path: Path) -> None:
    """Settings given to `tansiq init` are written to DATA_DIR/tansiq.toml, so that `serve`
    and `settings` on that data dir use them, shown as coming from the file."""
    from tansiq.settings import load

    d = tmp_path / "eg"
    code, out, err = run(
        "init",
        "--data-dir",
        str(d),
        "--partner",
        "EG",
        "--name",
        "Egypt",
        "--port",
        "8555",
        "--host",
        "0.0.0.0",
        "--public-url",
        'https://eg.example/a "quoted" \\ path',
        "--sync-interval-seconds",
        "0",
        "--allow-plain-http",
        "true",
        env={"TANSIQ_PAGE_SIZE": "70"},  # not a flag: not saved
    )
    assert code == 0, out + err
    config = d / "tansiq.toml"
    assert "tansiq.toml" in out
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o600  # it may hold a database password
    settings = load({"data_dir": str(d)}, env={})  # what `tansiq serve --data-dir` reads
    assert settings.port == 8555 and settings.host == "0.0.0.0"
    assert settings.public_url == 'https://eg.example/a "quoted" \\ path'
    assert settings.sync_interval_seconds == 0 and settings.allow_plain_http is True
    assert settings.page_size == 100 and settings.source("page_size") == "default"
    assert "data_dir" not in config.read_text()
    code, out, _ = run("settings", "--data-dir", str(d))
    lines = {line.split()[0]: line for line in out.splitlines()}
    for name in ("port", "host", "public_url", "sync_interval_seconds", "allow_plain_http"):
        assert f"file {config}" in lines[name], lines[name]
    assert "8555" in lines["port"] and lines["page_size"].endswith("default")


def test_init_keeps_a_config_file_already_there(tmp_path: Path) -> None:
    d = tmp_path / "eg"
    d.mkdir()
    (d / "tansiq.toml").write_text("page_size = 50\nport = 9001\n")
    code, out, err = run(
        "init", "--data-dir", str(d), "--partner", "EG", "--name", "Egypt", "--port", "9002"
    )
    assert code == 0, out + err
    from tansiq.settings import load

    settings = load({"data_dir": str(d)}, env={})
    assert settings.page_size == 50 and settings.port == 9002


def test_config_file_round_trips_any_string(tmp_path: Path) -> None:
    from tansiq.settings import load, write_config

    odd = 'a "b" \\ c\nd\te\x7f é'
    write_config(tmp_path, {"certfile": odd, "port": 8401, "allow_plain_http": False})
    settings = load({"data_dir": str(tmp_path)}, env={})  # (public_url is checked: a URL)
    assert settings.certfile == odd and settings.port == 8401
    assert settings.allow_plain_http is False


def test_init_where_no_directory_can_be_made_is_a_clean_error(tmp_path: Path) -> None:
    a_file = tmp_path / "bundle.json"
    a_file.write_text("{}")
    code, _, err = run("init", "--data-dir", str(a_file), "--partner", "EG", "--name", "E")
    assert code == 1 and "is a file, not a directory" in err and "--data-dir" in err
    code, _, err = run("init", "--data-dir", str(a_file / "sub"), "--partner", "EG", "--name", "E")
    assert code == 1 and "cannot create the data directory" in err


def test_command_in_a_directory_without_a_node_leaves_nothing_there(tmp_path: Path) -> None:
    for command in ("stats", "export", "partner list", "audit verify"):
        code, _, err = run(*command.split(), "--data-dir", str(tmp_path))
        assert code == 1 and "no node in" in err and "tansiq init" in err, (command, err)
    assert list(tmp_path.iterdir()) == []  # no stray tansiq.db in the user's directory
    a_file = tmp_path / "bundle.json"
    a_file.write_text("{}")
    code, _, err = run("stats", "--data-dir", str(a_file))
    assert code == 1 and "is a file, not a node's data directory" in err


def test_command_without_data_dir_says_how_to_name_the_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --data-dir and no TANSIQ_DATA_DIR: the default ./tansiq-data holds no node, and the
    newcomer whose node is elsewhere is told how to name it, not only to make another."""
    monkeypatch.chdir(tmp_path)
    for command in ("stats", "serve", "account list"):
        result = CliRunner().invoke(main, command.split(), env={"TANSIQ_DATA_DIR": None})
        err = result.stderr
        assert result.exit_code == 1 and "no node in tansiq-data" in err, (command, err)
        assert "--data-dir DIR" in err and "TANSIQ_DATA_DIR=DIR" in err, err
        assert "tansiq init --data-dir tansiq-data" in err and "Traceback" not in err, err
    code, _, err = run("stats", env={"TANSIQ_DATA_DIR": str(tmp_path / "elsewhere")})
    assert code == 1 and "TANSIQ_DATA_DIR=DIR" not in err and "tansiq init" in err, err
    assert list(tmp_path.iterdir()) == []


def test_serve_and_demo_on_a_port_in_use_say_which_flag_to_change(tmp_path: Path) -> None:
    import socket

    d = tmp_path / "eg"
    code, out, err = run("init", "--data-dir", str(d), "--partner", "EG", "--name", "Egypt")
    assert code == 0, out + err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run("serve", "--data-dir", str(d), "--port", str(port))
        assert code == 1 and f"port {port} on 127.0.0.1 is already in use" in err, err
        assert "--port" in err
        demo_dir = tmp_path / "demo"
        code, _, err = run("demo", "--data-dir", str(demo_dir), "--base-port", str(port))
        assert code == 1 and f"DZ: port {port} on 127.0.0.1 is already in use" in err, err
        assert "--base-port" in err
        assert not (demo_dir / "dz").exists()  # no node made: this --data-dir works next time


def test_demo_base_port_out_of_range_is_a_usage_error(tmp_path: Path) -> None:
    """`tansiq demo --base-port 70000` (or 0, or 65534, whose third node is 65536) ended in a
    traceback of the node settings' port check, after making a demo directory."""
    for port in ("0", "65534", "70000"):
        demo_dir = tmp_path / port
        code, _, err = run("demo", "--data-dir", str(demo_dir), "--base-port", port)
        assert code == 2 and "--base-port" in err and "1<=x<=65533" in err, (port, err)
        assert "Traceback" not in err and not demo_dir.exists(), (port, err)


def test_demo_data_dir_that_cannot_be_a_directory_is_refused(tmp_path: Path) -> None:
    """`tansiq demo --data-dir` naming a file, or a place no directory can be made, ended in a
    traceback (FileExistsError, FileNotFoundError)."""
    import socket

    with socket.socket() as s:  # a port free now (and, likely, the next two)
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    a_file = tmp_path / "bundle.json"
    a_file.write_text("{}")
    for where, said in ((a_file, "is a file"), (a_file / "sub", "cannot create the demo")):
        code, _, err = run("demo", "--data-dir", str(where), "--base-port", port)
        assert code == 1 and said in err and "--data-dir" in err, (where, err)
        assert "Traceback" not in err, err


def test_partner_add_takes_the_invitation_string_that_invite_printed(tmp_path: Path) -> None:
    """The README's flow: `partner invite` prints a string (longer than a file name may be)
    that `partner add --enrolment STRING` consumes on the partner's node."""
    nodes = {}
    for code in ("DZ", "EG"):
        nodes[code] = d = tmp_path / code.lower()
        status, out, err = run("init", "--data-dir", str(d), "--partner", code, "--name", code)
        assert status == 0, out + err
    status, invitation, err = run("partner", "invite", "EG", "--data-dir", str(nodes["DZ"]))
    assert status == 0 and len(invitation.strip()) > 255, err
    status, out, err = run(
        "partner", "add", "--enrolment", invitation.strip(), "--data-dir", str(nodes["EG"])
    )
    assert status == 0 and "partner DZ" in out and "enrolled" in out, out + err


def test_a_relative_sqlite_url_is_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sqlite:///PATH`` with a relative PATH is taken from the data dir, not from the
    directory a command runs in: the node must be found from anywhere."""
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path)
    d = tmp_path / "eg"
    url = "sqlite:///node.db"
    code, out, err = run(
        "init", "--data-dir", "eg", "--partner", "EG", "--name", "Egypt", "--database-url", url
    )
    assert code == 0, out + err
    assert (d / "node.db").is_file() and not (tmp_path / "node.db").exists()
    monkeypatch.chdir(tmp_path / "elsewhere")
    code, out, err = run("stats", "--data-dir", str(d))
    assert code == 0 and "total" in out, err
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_an_absolute_sqlite_url_and_one_naming_no_file(tmp_path: Path) -> None:
    from tansiq.store.dialect import sqlite_path

    assert sqlite_path(f"sqlite:///{tmp_path}/x.db", Path("d")) == tmp_path / "x.db"
    assert sqlite_path("sqlite:///x.db", Path("d")) == Path("d/x.db")
    assert sqlite_path("", Path("d")) == Path("d/tansiq.db")
    for url in ("sqlite:///", "sqlite:////"):
        code, _, err = run("stats", "--data-dir", str(tmp_path), "--database-url", url)
        assert code == 1 and "names no file" in err, err


def test_sync_limit_below_one_is_a_usage_error(data_dir: Path) -> None:
    """`tansiq sync --limit 0` was sent to every partner, and the sync failed with the
    partner's 400 in raw JSON: it is this command's usage error, before anything is asked."""
    code, _, err = run("sync", "--data-dir", str(data_dir), "--limit", "0")
    assert code == 2, err
    assert "--limit" in err and "x>=1" in err


def test_sync_with_no_partner_enrolled_says_so(data_dir: Path) -> None:
    """`tansiq sync` on a new node (or one whose partners were added by hand, without a sync
    token) printed nothing at all: it says there was nothing to pull, and how to enrol."""
    d = str(data_dir)
    for added in ("", "DZ"):  # no partner; then one added by hand, which has no token
        if added:
            code, _, err = run("partner", "add", added, "--name", added, "--data-dir", d)
            assert code == 0, err
        code, out, err = run("sync", "--data-dir", d)
        assert code == 0 and out.startswith("nothing to pull"), out + err
        assert "tansiq partner add --enrolment" in out and "partner invite EG" in out, out


def test_partner_url_is_checked_when_given(data_dir: Path) -> None:
    """`partner add/update --url notaurl` was stored, and only the next sync said it was no
    http(s) URL; --public-key is checked when given, and so is --url now (exit 2)."""
    d = str(data_dir)
    for bad in ("notaurl", "ftp://node.example", "http://", "https://node.example/?x=1"):
        code, _, err = run(
            "partner", "add", "DZ", "--name", "Algeria", "--url", bad, "--data-dir", d
        )
        assert code == 2 and "--url" in err, (bad, err)
    code, out, err = run("partner", "add", "DZ", "--name", "Algeria", "--data-dir", d)
    assert code == 0, err
    code, _, err = run("partner", "update", "DZ", "--url", "dz.example:8400", "--data-dir", d)
    assert code == 2 and "not an http(s) URL" in err, err
    code, out, err = run(
        "partner", "update", "DZ", "--url", "https://dz.example:8400", "--data-dir", d
    )
    assert code == 0 and "https://dz.example:8400" in out, err


def test_one_object_is_one_object_and_audit_after_is_not_negative(
    data_dir: Path, tmp_path: Path
) -> None:
    f = tmp_path / "one.json"
    f.write_text(json.dumps([indicator(77)]))
    code, out, err = run("ingest", "--data-dir", str(data_dir), str(f))
    assert code == 0 and "1 object read: 1 stored, 0 unchanged" in out, out + err
    code, _, err = run("audit", "list", "--data-dir", str(data_dir), "--after", "-1")
    assert code == 2 and "--after" in err, err


def test_partner_list_shows_a_partner_s_name_escaped(data_dir: Path) -> None:
    """A partner's name comes from its invitation: with a line break and a terminal escape in
    it, ``tansiq partner list`` (and ``partner add``) printed them as is: a forged partner row
    in an admin's terminal, or the screen cleared.  Shown escaped, as ``tansiq audit list``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tansiq.federation.enrol import Invitation
    from tansiq.node import partner_identity_id

    pem = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    forged = "Libya\x1b[2J\r\nDZ     Algeria  identity--forged\x9b"
    invitation = Invitation(
        "LY", forged, partner_identity_id("LY"), "http://127.0.0.1:9", pem, "tsq_x"
    ).encode()
    where = ("--data-dir", str(data_dir))
    code, out, err = run("partner", "add", "--enrolment", invitation, *where)
    assert code == 0 and "(Libya\\x1b[2J\\r\\nDZ" in out, out + err
    code, listed, err = run("partner", "list", *where)
    assert code == 0, err
    for text in (out, listed):
        assert not any(ch in text for ch in "\x1b\r\x9b"), text
    row = next(line for line in listed.splitlines() if line.startswith("LY"))
    assert "Libya\\x1b[2J\\r\\nDZ     Algeria  identity--forged\\x9b" in row, row
    assert not any(line.startswith("DZ") for line in listed.splitlines()), listed


def _on_a_terminal(*args: str) -> tuple[int, str]:
    """Run ``tansiq ARGS`` with its stderr on a pseudo-terminal (as a person at a shell sees
    it): the exit code and what the terminal showed."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 24x100
    proc = subprocess.Popen(
        [sys.executable, "-m", "tansiq", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the process has closed the terminal
            break
        if not data:
            break
        shown += data
    os.close(leader)
    return proc.wait(timeout=60), shown.decode(errors="replace")


def test_ingest_and_export_to_a_file_show_progress_on_a_terminal(
    data_dir: Path, tmp_path: Path
) -> None:
    """Long work shows a progress bar where a person watches (stderr on a terminal), with the
    objects counted; export had none (a million objects: minutes of a silent terminal)."""
    source = STIX_DIR / "apt1.json"
    count = len(orjson.loads(source.read_bytes())["objects"])
    code, shown = _on_a_terminal("ingest", "--data-dir", str(data_dir), str(source))
    assert code == 0, shown
    assert f"ingest: {count} objects" in shown.replace("\r", "\n"), shown
    out = tmp_path / "out.json"
    code, shown = _on_a_terminal("export", "--data-dir", str(data_dir), "-o", str(out))
    assert code == 0, shown
    total = len(orjson.loads(out.read_bytes())["objects"])
    assert total >= count
    assert "export: 100%" in shown and f"{total}/{total} [" in shown, shown
    code, _, err = run("export", "--data-dir", str(data_dir), "-o", str(out))
    assert code == 0 and "export:" not in err  # no bar where no one watches (a pipe, a log)


@pytest.mark.parametrize(
    ("flags", "url"),
    [
        (("--host", "::1", "--port", "8411"), "http://[::1]:8411"),
        (("--certfile", "c.pem", "--keyfile", "k.pem", "--port", "8412"), "https://127.0.0.1:8412"),
    ],
)
def test_init_prints_a_url_that_works(tmp_path: Path, flags: tuple[str, ...], url: str) -> None:
    """init's "Then: curl ..." line printed http://::1:8411 (no URL: an IPv6 address needs
    brackets) and, for a node given --certfile, http:// where the server speaks HTTPS."""
    args = ("init", "--data-dir", str(tmp_path / "eg"), "--partner", "EG", "--name", "Egypt")
    code, out, err = run(*args, *flags)
    assert code == 0, out + err
    assert f" {url}/api/objects" in out, out


def test_an_invitation_of_a_node_on_an_ipv6_address_holds_a_url(data_dir: Path) -> None:
    """The invitation's URL was http://::1:8411: a partner's node took it, then refused to
    send its token there ("plain HTTP", as ::1 was not read as loopback) or could not parse it."""
    from tansiq.federation.enrol import Invitation

    code, text, err = run(
        "partner", "invite", "DZ", "--data-dir", str(data_dir), "--host", "::1", "--port", "8411"
    )
    assert code == 0, err
    assert Invitation.decode(text).url == "http://[::1]:8411"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_data_dir_that_lost_its_database_does_not_send_the_user_to_init(
    data_dir: Path, tmp_path: Path
) -> None:
    """tansiq.db deleted (or another database given) beside the node's key: "no node in eg:
    run `tansiq init --data-dir eg ...`", which then refused: "eg already holds a node"."""
    for f in data_dir.glob("tansiq.db*"):
        f.unlink()
    code, _, err = run("stats", "--data-dir", str(data_dir))
    assert code == 1, err
    assert f"the database {data_dir / 'tansiq.db'} is missing, but {data_dir} holds" in err, err
    assert "restore the database from a backup" in err and "run `tansiq init` first" not in err
    assert "tansiq init --data-dir" not in err, err
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    code, _, err = run("stats", "--data-dir", str(data_dir), "--database-url", f"sqlite:///{empty}")
    assert code == 1 and f"{data_dir} holds a node's key" in err, err
    assert f"but SQLite {empty} holds no node" in err and "first" not in err, err
    args = ("init", "--data-dir", str(data_dir), "--partner", "EG", "--name", "Egypt")
    code, _, err = run(*args)  # what the old message led to: init refuses this data dir
    assert code == 1 and "holds a node's key" in err, err
