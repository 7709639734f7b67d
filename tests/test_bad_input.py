"""Bad input from a user or client answers a clear error: never a 500 or a traceback."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from test_store import indicator

from tansiq.cli import main
from tansiq.node import Node

SHARED = "/taxii2/api/collections/shared/objects/"
TAXII = "application/taxii+json;version=2.1"
TAXII_ACCEPT = {"Accept": TAXII}


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """The CLI in process; an uncaught exception (a traceback for a person) fails the test."""
    result = CliRunner().invoke(main, list(args), env=env or {}, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _init(tmp_path: Path, name: str = "eg") -> Path:
    d = tmp_path / name
    code, out, err = run("init", "--data-dir", str(d), "--partner", "EG", "--name", "Egypt")
    assert code == 0, out + err
    return d


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize("raw", ["a" + "9" * 30, "a-" + "9" * 30, "a-5"])
def test_out_of_range_cursor_is_a_bad_request(client: TestClient, raw: str) -> None:
    r = client.get("/api/objects", params={"cursor": _cursor(raw)})
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "invalid cursor" in r.json()["detail"]
    r = client.get(SHARED, params={"next": _cursor(raw)}, headers=TAXII_ACCEPT)
    assert r.status_code == 400, r.text
    assert r.json()["http_status"] == "400" and "next" in r.json()["description"]


def test_audit_after_beyond_64_bits_is_an_empty_page(client: TestClient) -> None:
    r = client.get("/api/audit", params={"after": 10**30})
    assert r.status_code == 200, r.text
    assert r.json() == {"entries": [], "next": None}


def test_cli_audit_list_after_huge_or_negative(tmp_path: Path) -> None:
    d = _init(tmp_path)
    code, out, err = run("audit", "list", "--data-dir", str(d), "--after", str(10**30))
    assert code == 0 and out == "", err
    code, out, err = run("audit", "list", "--data-dir", str(d), "--after", str(-(10**30)))
    assert code == 2 and "--after" in err and out == "", err  # a usage error, as the API's 422


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--database-url", "mysql://db/x", "unsupported database URL"),
        ("--log-level", "loud", "not one of critical, error, warning, info, debug, trace"),
        ("--port", "99999", "above the maximum, 65535"),
        ("--sqlite-cache-mb", "-5", "below the minimum, 1"),
        ("--page-size", "0", "below the minimum, 1"),
        ("--token-days", "0", "below the minimum, 1"),
        ("--sync-interval-seconds", "-1", "below the minimum, 0"),
        # was taken, put in invitations, and refused only by the partner's first pull
        ("--public-url", "node.example:8400", "not an http(s) URL with a host"),
        ("--public-url", "ftp://node.example", "not an http(s) URL with a host"),
    ],
)
def test_unusable_setting_flag_is_refused_by_name(
    tmp_path: Path, flag: str, value: str, expected: str
) -> None:
    d = _init(tmp_path)
    code, _, err = run("settings", "--data-dir", str(d), flag, value)  # it takes every flag
    assert code == 1 and expected in err and f"flag {flag}" in err, err


def test_unusable_setting_in_env_or_config_file_names_its_source(tmp_path: Path) -> None:
    d = _init(tmp_path)
    code, _, err = run("stats", "--data-dir", str(d), env={"TANSIQ_LOG_LEVEL": "chatty"})
    assert code == 1 and "setting log_level from env TANSIQ_LOG_LEVEL" in err, err
    (d / "tansiq.toml").write_text("port = 8400.5\n", encoding="utf-8")
    code, _, err = run("stats", "--data-dir", str(d))
    assert code == 1 and "setting port from file" in err and "expected an integer" in err, err
    (d / "tansiq.toml").write_text('log_level = "WARNING"\n', encoding="utf-8")
    code, out, err = run("settings", "--data-dir", str(d))
    assert code == 0 and "warning" in out, err
    for text in ("abc", "8400x"):  # int() said "invalid literal for int() with base 10"
        code, _, err = run("stats", "--data-dir", str(d), env={"TANSIQ_PORT": text})
        assert code == 1 and f"from env TANSIQ_PORT: expected an integer, got {text!r}" in err
        (d / "tansiq.toml").write_text(f'port = "{text}"\n', encoding="utf-8")
        code, _, err = run("stats", "--data-dir", str(d))
        assert code == 1 and f"expected an integer, got {text!r}" in err, err
        (d / "tansiq.toml").write_text("", encoding="utf-8")


@pytest.mark.parametrize("password", ["my secret", "s3cret%zz", "with%20space and more"])
def test_a_database_url_psycopg_cannot_parse_is_refused_without_its_password(
    tmp_path: Path, password: str
) -> None:
    """psycopg quotes the part of a URL it cannot parse: "cannot open PostgreSQL
    127.0.0.1:1/x: unexpected spaces found in "my secret"" printed the password."""
    url = f"postgresql://tansiq:{password}@127.0.0.1:1/x"
    node = ("stats", "--data-dir", str(_init(tmp_path)))
    new = ("init", "--data-dir", str(tmp_path / "new"), "--partner", "EG", "--name", "Egypt")
    for args in (node, new):
        code, out, err = run(*args, "--database-url", url)
        assert code == 1 and "cannot open PostgreSQL 127.0.0.1:1/x" in err, out + err
        assert "secret" not in err and "s3cret" not in err and "********" in err, err


def test_init_refusing_the_admin_password_leaves_no_half_node(tmp_path: Path) -> None:
    d = tmp_path / "eg"
    args = ("init", "--data-dir", str(d), "--partner", "EG", "--name", "Egypt")
    code, _, err = run(*args, "--admin-password", "short")
    assert code == 1 and "password: at least 10 characters" in err, err
    code, out, err = run(*args, "--admin-password", "long-enough-1")
    assert code == 0 and "Initialised node EG" in out, err


def test_init_on_a_sqlite_url_in_a_missing_directory_names_the_database(tmp_path: Path) -> None:
    """`--database-url sqlite:///other/x.db` in a directory that does not exist said "data
    directory eg/other does not exist": not the data directory, and no word of the database."""
    d = tmp_path / "eg"
    url = "sqlite:///other/x.db"
    args = ("init", "--data-dir", str(d), "--partner", "EG", "--name", "Egypt")
    code, out, err = run(*args, "--database-url", url)
    assert code == 1 and out == "", out + err
    expected = f"cannot open SQLite {d / 'other' / 'x.db'}: the directory {d / 'other'} does not"
    assert expected in err and "--database-url" in err, err
    assert not d.exists()  # a failed init leaves nothing


def test_init_failing_midway_can_be_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tansiq.node
    from tansiq.node import Node, init_node
    from tansiq.settings import load

    settings = load({"data_dir": str(tmp_path / "eg")}, env={})

    def broken(*_: object, **__: object) -> str:
        raise OSError("disk full")

    with monkeypatch.context() as m:
        m.setattr(tansiq.node, "create_token", broken)
        with pytest.raises(OSError):
            init_node(settings, "EG", "Egypt", "long-enough-1")
    assert not (tmp_path / "eg").exists()  # all or nothing: not even the data dir
    with pytest.raises(tansiq.node.NodeError, match="no node in"):
        Node(settings)  # no node without its admin
    r = init_node(settings, "EG", "Egypt", "long-enough-1")
    node = Node(settings)
    try:
        from tansiq.accounts.store import account_for_token

        account = account_for_token(node.db, r.admin_token)
        assert account is not None and account.username == "admin"
    finally:
        node.close()


REFUSED_URL = "postgresql://nobody@127.0.0.1:1/x"  # port 1: nothing listens there


def test_a_failed_init_leaves_no_data_dir_behind(tmp_path: Path) -> None:
    """A database init cannot open: no config file keeping that URL for the next try, and the
    directories init made are gone again."""
    d = tmp_path / "new" / "eg"
    args = ("init", "--data-dir", str(d), "--partner", "MA", "--name", "Morocco")
    code, _, err = run(*args, "--database-url", REFUSED_URL)
    assert code == 1 and "cannot open PostgreSQL" in err, err
    assert not (tmp_path / "new").exists()
    code, out, err = run(*args)  # the retry uses SQLite, not the URL of the failed try
    assert code == 0 and "SQLite" in out, out + err
    assert not (d / "tansiq.toml").exists()


def test_a_failed_init_leaves_a_data_dir_as_it_found_it(tmp_path: Path) -> None:
    d = tmp_path / "eg"
    d.mkdir()
    (d / "tansiq.toml").write_text("port = 8477\n", encoding="utf-8")
    (d / "notes.txt").write_text("mine\n", encoding="utf-8")
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    code, _, err = run(
        "init",
        "--data-dir",
        str(d),
        "--partner",
        "MA",
        "--name",
        "Morocco",
        "--database-url",
        REFUSED_URL,
    )
    assert code == 1 and "cannot open PostgreSQL" in err, err
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before


def test_init_failing_late_on_sqlite_removes_the_database_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tansiq.node
    from tansiq.node import init_node
    from tansiq.settings import load

    d = tmp_path / "eg"
    d.mkdir()
    settings = load({"data_dir": str(d), "port": 8477}, env={})

    def broken(*_: object, **__: object) -> str:
        raise OSError("disk full")

    with monkeypatch.context() as m:
        m.setattr(tansiq.node, "create_token", broken)
        with pytest.raises(OSError):
            init_node(settings, "EG", "Egypt", "long-enough-1")
    assert list(d.iterdir()) == []  # no config, keys, database, WAL: the (found) dir stays


def test_init_on_the_database_of_another_node_leaves_that_database_alone(tmp_path: Path) -> None:
    first = _init(tmp_path)
    url = f"sqlite:///{first / 'tansiq.db'}"
    files = sorted(p.name for p in first.iterdir())
    d = tmp_path / "second"
    code, _, err = run(
        "init", "--data-dir", str(d), "--partner", "MA", "--name", "Morocco", "--database-url", url
    )
    assert code == 1 and "already belongs to a node" in err, err
    assert not d.exists()
    assert sorted(p.name for p in first.iterdir()) == files
    code, _, err = run("stats", "--data-dir", str(first))
    assert code == 0, err


class AuditDown(RuntimeError):
    pass


def _audit_fails_for(monkeypatch: pytest.MonkeyPatch, action: str) -> None:
    """Make appending an audit entry of *action* fail, as a full disk or a crash would."""
    import tansiq.audit

    real = tansiq.audit.record_in

    def record_in(db: object, actor: str, act: str, *args: object, **kw: object) -> int:
        if act == action:
            raise AuditDown(act)
        return real(db, actor, act, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(tansiq.audit, "record_in", record_in)


def _accounts_and_tokens(d: Path) -> list[tuple[object, ...]]:
    """Every stored row of accounts (password hash included), tokens and sessions."""
    import sqlite3

    with sqlite3.connect(d / "tansiq.db") as conn:
        return [
            (table, *row)
            for table in ("accounts", "tokens", "sessions")
            for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1")
        ]


@pytest.mark.parametrize(
    "args",
    [
        ("token", "create", "admin"),
        ("token", "revoke", "TOKEN"),
        ("account", "add", "bob", "--role", "reader"),
        ("account", "disable", "rita"),  # (not admin: the last admin is not disabled at all)
        ("account", "password", "admin", "--password", "another-password-1"),
        ("account", "role", "rita", "editor"),
        ("partner", "invite", "DZ"),
    ],
)
def test_cli_account_and_token_changes_commit_with_their_audit_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    d = _init(tmp_path)
    reader = ("account", "add", "rita", "--role", "reader", "--password", "rita-password-1")
    code, out, err = run(*reader, "--data-dir", str(d))
    assert code == 0, out + err
    token_id = run("token", "list", "--data-dir", str(d))[1].split()[0]
    args = tuple(token_id if a == "TOKEN" else a for a in args)
    before = _accounts_and_tokens(d)
    action = {"token": f"token_{args[1]}d", "account": "account_changed"}.get(
        args[0], "partner_invited"
    )
    _audit_fails_for(monkeypatch, action)
    with pytest.raises(AuditDown):
        run(*args, "--data-dir", str(d))
    monkeypatch.undo()
    assert _accounts_and_tokens(d) == before  # nothing changed without its audit entry


def test_api_token_create_and_revoke_commit_with_their_audit_entry(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = client.get("/api/tokens", params={"all": "true"}).json()["tokens"]
    _audit_fails_for(monkeypatch, "token_created")
    with pytest.raises(AuditDown):
        client.post("/api/tokens", json={"label": "x"})
    monkeypatch.undo()
    assert client.get("/api/tokens", params={"all": "true"}).json()["tokens"] == before
    made = client.post("/api/tokens", json={"label": "to revoke"}).json()
    _audit_fails_for(monkeypatch, "token_revoked")
    with pytest.raises(AuditDown):
        client.delete(f"/api/tokens/{made['id']}")
    monkeypatch.undo()
    states = {t["id"]: t["state"] for t in client.get("/api/tokens").json()["tokens"]}
    assert states[made["id"]] == "live"


def test_changing_the_distribution_of_an_unversioned_object_is_a_conflict(
    client: TestClient,
) -> None:
    sco = {
        "type": "ipv4-addr",
        "spec_version": "2.1",
        "id": "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd",
        "value": "198.51.100.3",
    }
    assert client.post("/api/bundles", json=[sco]).status_code == 201
    r = client.put(f"/api/objects/{sco['id']}/distribution", params={"distribution": "all"})
    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert "not versioned" in r.json()["detail"]


def test_partner_add_with_unusable_files_says_what_is_wrong(tmp_path: Path) -> None:
    d = _init(tmp_path)
    binary = tmp_path / "binary"
    binary.write_bytes(b"\xb9\xff\x00 not text")
    rsa = tmp_path / "rsa.pem"
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys

    rsa.write_bytes(
        rsa_keys.generate_private_key(65537, 2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    dd = ["--data-dir", str(d)]
    code, _, err = run("partner", "add", "--enrolment", str(binary), *dd)
    assert code == 1 and "not a text file" in err, err
    code, _, err = run(
        "partner", "add", "DZ", "--name", "Algeria", "--public-key", str(binary), *dd
    )
    assert code == 1 and "not a text file" in err, err
    code, _, err = run(
        "partner", "add", "DZ", "--name", "Algeria", "--public-key", str(tmp_path), *dd
    )
    assert code == 2 and "is a directory" in err, err
    code, _, err = run("partner", "add", "DZ", "--name", "Algeria", "--public-key", str(rsa), *dd)
    assert code == 1 and "not an Ed25519 public key" in err, err
    code, out, err = run("partner", "list", *dd)
    assert "DZ" not in out  # nothing registered with an unusable key


def test_serve_refuses_unusable_tls_files_before_starting(tmp_path: Path) -> None:
    d = _init(tmp_path)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n", encoding="utf-8")
    base = ("serve", "--data-dir", str(d), "--sync-interval-seconds", "0", "--port", "1")
    missing = str(tmp_path / "missing.pem")
    code, _, err = run(*base, "--certfile", missing, "--keyfile", missing)
    assert code == 1 and "No such file or directory" in err, err
    code, _, err = run(*base, "--certfile", str(junk), "--keyfile", str(junk))
    assert code == 1 and "not a PEM certificate and its matching private key" in err, err


def _with_number(n: int, number: str) -> tuple[str, bytes]:
    """(id, JSON text) of an indicator with a custom property ``x_n`` written as *number*."""
    obj = indicator(n)
    return obj["id"], orjson.dumps(obj)[:-1] + b',"x_n":' + number.encode() + b"}"


@pytest.mark.parametrize(
    "number", ["123456789012345678901234567890", "18446744073709551616", "-9223372036854775809"]
)
def test_integer_beyond_64_bits_is_refused_not_rounded(client: TestClient, number: str) -> None:
    """orjson reads an integer beyond 64 bits as a float (123456789012345678901234567890 became
    1.2345678901234568e+29, stored and served so): refused with a 400 instead."""
    oid, text = _with_number(1, number)
    r = client.post(
        "/api/bundles", content=b"[" + text + b"]", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and "64 bits" in r.json()["detail"], r.text
    r = client.post(
        SHARED,
        content=b'{"objects":[' + text + b"]}",
        headers={"Content-Type": TAXII, **TAXII_ACCEPT},
    )
    assert r.status_code == 400 and "64 bits" in r.json()["description"], r.text
    assert client.get(f"/api/objects/{oid}").status_code == 404


@pytest.mark.parametrize("number", ["18446744073709551615", "-9223372036854775808", "1.0"])
def test_numbers_within_64_bits_are_kept_exactly(client: TestClient, number: str) -> None:
    oid, text = _with_number(2, number)
    r = client.post(
        SHARED,
        content=b'{"objects":[' + text + b"]}",
        headers={"Content-Type": TAXII, **TAXII_ACCEPT},
    )
    assert r.status_code == 202 and r.json()["success_count"] == 1, r.text
    r = client.get(f"{SHARED}{oid}/", headers=TAXII_ACCEPT)
    assert r.status_code == 200
    assert json.loads(r.text)["objects"][0]["x_n"] == json.loads(number)
    assert number.encode() in r.content


def test_enrolment_naming_a_missing_file_says_so(tmp_path: Path) -> None:
    d = _init(tmp_path)
    for command in ("add", "update"):
        missing = tmp_path / "invitation-dz.txt"
        code, _, err = run("partner", command, "--enrolment", str(missing), "--data-dir", str(d))
        assert code == 1 and f"--enrolment {missing}: no such file" in err, err
        assert "tansiq partner invite" in err
        code, _, err = run("partner", command, "--enrolment", str(tmp_path), "--data-dir", str(d))
        assert code == 1 and "a directory, nor an invitation string" in err, err
    # a string that starts like one is still decoded, and its own error given
    code, _, err = run("partner", "add", "--enrolment", "tansiq-enrol:@@", "--data-dir", str(d))
    assert code == 1 and "no such file" not in err, err


def test_a_damaged_or_empty_enrolment_says_what_to_do(tmp_path: Path) -> None:
    """An invitation cut short or changed in copying said only "damaged invitation: unexpected
    end of data: line 1 column 36 (char 35)"; an empty --enrolment "--enrolment : a directory"
    (the empty path is the current directory)."""
    inviter, d = _init(tmp_path, "other"), _init(tmp_path)
    code, text, err = run("partner", "invite", "DZ", "--data-dir", str(inviter))
    assert code == 0, err
    text = text.strip()
    for damaged in (text[:60], text[:40] + "!" + text[41:], "tansiq-enrol:xyz"):
        for command in ("add", "update"):
            code, _, err = run("partner", command, "--enrolment", damaged, "--data-dir", str(d))
            assert code == 1 and "damaged invitation" in err, err
            assert "cut short or changed" in err and "ask for a new one" in err, err
        code, _, err = run("partner", "add", "--enrolment", "", "--data-dir", str(d))
        assert code == 1 and "--enrolment is empty: give the file" in err, err
    assert "DZ" not in run("partner", "list", "--data-dir", str(d))[1]


def test_reader_account_of_an_unknown_partner_is_refused(tmp_path: Path) -> None:
    d = _init(tmp_path)
    dd = ["--data-dir", str(d)]
    code, _, err = run("account", "add", "liaison", "--role", "reader", "--partner", "dq", *dd)
    assert code == 1 and "no partner DQ" in err and "tansiq partner add" in err, err
    assert "liaison" not in run("account", "list", *dd)[1]
    code, out, err = run("partner", "add", "DZ", "--name", "Algeria", *dd)
    assert code == 0, out + err
    code, out, err = run("account", "add", "liaison", "--role", "reader", "--partner", "dz", *dd)
    assert code == 0 and "partner DZ" in out, out + err
    # a sync account may come before the partner (an invitation makes one), own readers too
    assert run("account", "add", "node-tn", "--role", "sync", "--partner", "TN", *dd)[0] == 0
    assert run("account", "add", "reader", "--role", "reader", *dd)[0] == 0


def test_token_list_of_an_unknown_account_says_so(tmp_path: Path) -> None:
    d = _init(tmp_path)
    code, out, err = run("token", "list", "nobody", "--data-dir", str(d))
    assert code == 1 and out == "" and "no account 'nobody'" in err, err
    code, out, err = run("token", "list", "admin", "--data-dir", str(d))
    assert code == 0 and "admin" in out, err


def test_sync_from_an_unreachable_partner_says_it_failed_and_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import socket

    d = _init(tmp_path)
    dd = ["--data-dir", str(d)]
    with socket.socket() as s:  # a port nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    from tansiq.federation.enrol import Invitation

    other = _init(tmp_path, "dz-node")
    pem = (other / "node_ed25519.pub.pem").read_text()
    from tansiq.node import partner_identity_id

    invitation = Invitation(
        "DZ",
        "Algeria",
        partner_identity_id("DZ"),
        f"http://127.0.0.1:{port}",
        pem,
        "tsq_" + "x" * 43,
    )
    code, out, err = run("partner", "add", "--enrolment", invitation.encode(), *dd)
    assert code == 0, out + err
    code, out, err = run("sync", *dd)
    assert code == 1 and "sync from DZ failed" in err, err
    assert "DZ: sync failed: cannot reach" in out and "received" not in out, out
    assert "rejected sync failed" not in err, err
    # One line on the failed partner (and why), then the command's error: not a log line too
    # (at the default level, Python prints WARNING and above on stderr; pytest captures them).
    assert out.count("cannot reach") == 1 and "cannot reach" not in err, (out, err)
    assert err.strip().splitlines() == ["Error: sync from DZ failed"], err
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_partner_invite_to_an_unwritable_file_says_so_and_hands_nothing_out(
    node: Node, tmp_path: Path
) -> None:
    """`partner invite -o FILE` where FILE cannot be written ended in a traceback, after the
    invitation was made: the earlier invitation's token was revoked, the new one lost."""
    from tansiq.accounts.store import list_tokens

    s = node.settings
    where = ["--data-dir", str(s.data_dir), "--database-url", s.database_url]
    code, _, err = run("partner", "invite", "DZ", *where)
    assert code == 0, err
    before = [(t.id, t.state()) for t in list_tokens(node.db, "sync-dz")]
    for unwritable in (tmp_path / "missing" / "dz.txt", tmp_path):
        code, out, err = run("partner", "invite", "DZ", "-o", str(unwritable), *where)
        assert code == 1 and out == "", out + err
        assert f"cannot write the invitation to {unwritable}" in err, err
        assert "nothing was handed out" in err, err
        assert [(t.id, t.state()) for t in list_tokens(node.db, "sync-dz")] == before
    assert not (tmp_path / "missing").exists()


def test_partner_invite_dash_prints_the_invitation(
    node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`partner invite -o -` is standard output, as `export -o -` (it wrote a file named "-",
    holding a secret token, in the current directory)."""
    from tansiq.federation.enrol import Invitation

    monkeypatch.chdir(tmp_path)
    s = node.settings
    where = ["--data-dir", str(s.data_dir), "--database-url", s.database_url]
    code, out, err = run("partner", "invite", "DZ", "-o", "-", *where)
    assert code == 0, err
    assert Invitation.decode(out.strip()).url
    assert not (tmp_path / "-").exists()


def test_partner_invite_makes_a_file_that_was_there_private(node: Node, tmp_path: Path) -> None:
    """--help says the invitation file has mode 0600 (it holds a secret token): a file that
    was there kept its mode (0644: every local user could read the token)."""
    s = node.settings
    target = tmp_path / "dz.txt"
    target.write_text("an older, longer invitation\n" * 40)
    target.chmod(0o644)
    where = ["--data-dir", str(s.data_dir), "--database-url", s.database_url]
    code, out, err = run("partner", "invite", "DZ", "-o", str(target), *where)
    assert code == 0, out + err
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    text = target.read_text()
    assert text.startswith("tansiq-enrol:") and text.count("\n") == 1, text


def test_a_partner_added_by_hand_is_told_how_to_take_its_invitation(
    node: Node, tmp_path: Path
) -> None:
    """`sync --partner DZ` for a partner added by hand said "partner DZ has no public key
    registered", or, with a key, to run `partner add --enrolment`, which answered "partner DZ
    is already registered": `partner update --enrolment` is what takes the invitation."""
    s = node.settings
    where = ["--data-dir", str(s.data_dir), "--database-url", s.database_url]
    assert run("partner", "add", "DZ", "--name", "Algeria", *where)[0] == 0
    code, out, err = run("sync", "--partner", "DZ", *where)
    assert code == 1, out + err
    assert "DZ is not enrolled for sync" in err and "`tansiq partner update --enrolment`" in err
    assert "`tansiq partner invite EG` there" in err, err
    other = tmp_path / "dz"
    args = ("init", "--data-dir", str(other), "--partner", "DZ", "--name", "Algeria")
    assert run(*args)[0] == 0
    code, invitation, err = run("partner", "invite", "EG", "--data-dir", str(other))
    assert code == 0, err
    code, out, err = run("partner", "add", "--enrolment", invitation.strip(), *where)
    assert code == 1 and "DZ is already registered: `tansiq partner update`" in err, err
    code, out, err = run("partner", "update", "--enrolment", invitation.strip(), *where)
    assert code == 0 and "partner DZ" in out, out + err


def test_partner_invite_of_a_node_listening_on_every_address_asks_for_its_public_url(
    node: Node,
) -> None:
    """With --host 0.0.0.0 (or ::) and no public_url, the invitation said its node was at
    http://0.0.0.0:8400, an address that, on the partner's machine, is the partner's own
    host: its node would send its sync token there.  And the earlier invitation's token was
    already revoked when the URL was made."""
    from tansiq.accounts.store import list_tokens
    from tansiq.federation.enrol import Invitation

    s = node.settings
    where = ["--data-dir", str(s.data_dir), "--database-url", s.database_url]
    assert run("partner", "invite", "DZ", *where)[0] == 0
    before = [(t.id, t.state()) for t in list_tokens(node.db, "sync-dz")]
    for host in ("0.0.0.0", "::"):
        code, out, err = run("partner", "invite", "DZ", "--host", host, *where)
        assert code == 1 and out == "", out + err
        assert f"listens on every address (host {host})" in err and "--public-url" in err, err
        assert [(t.id, t.state()) for t in list_tokens(node.db, "sync-dz")] == before
    public = ("--host", "0.0.0.0", "--public-url", "https://eg.example:8400")
    code, out, err = run("partner", "invite", "DZ", *public, *where)
    assert code == 0 and Invitation.decode(out).url == "https://eg.example:8400", err


def test_an_invitation_with_no_usable_url_is_refused(tmp_path: Path) -> None:
    """An invitation from a node that took any public_url (node.example:8400, no scheme) was
    enrolled ("enrolled: node.example:8400"); only the first pull said it was no URL."""
    from tansiq.federation.enrol import Invitation
    from tansiq.node import partner_identity_id

    d, other = _init(tmp_path), _init(tmp_path, "dz")
    pem = (other / "node_ed25519.pub.pem").read_text()
    for url in ("node.example:8400", "ftp://node.example", "https://node.example/?x=1"):
        invitation = Invitation("DZ", "Algeria", partner_identity_id("DZ"), url, pem, "tsq_x")
        for command in ("add", "update"):
            code, out, err = run(
                "partner", command, "--enrolment", invitation.encode(), "--data-dir", str(d)
            )
            assert code == 1 and "the invitation holds no usable URL" in err, out + err
            assert "public_url" in err, err
    assert "DZ" not in run("partner", "list", "--data-dir", str(d))[1]
