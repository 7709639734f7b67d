"""Account rules the command line enforces: the last admin, names taken at once, reserved names."""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import make_settings

from tansiq import audit
from tansiq.accounts import store
from tansiq.accounts.store import AccountError, create_account, get_account, set_disabled
from tansiq.node import Node, init_node
from tansiq.settings import Settings

PASSWORD = "some-password-1"


def cli(settings: Settings) -> Callable[..., tuple[int, str, str]]:
    from tansiq.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        # catch_exceptions=False: a traceback (an IntegrityError, say) fails the test as one
        r = CliRunner().invoke(
            main, [*args, "--data-dir", str(settings.data_path)], env={}, catch_exceptions=False
        )
        return r.exit_code, r.stdout, r.stderr

    return run


def raced(monkeypatch: pytest.MonkeyPatch, name: str, parties: int = 2) -> None:
    """Make ``store.<name>`` wait (up to 2 s) until *parties* threads have called it: a check done
    outside the write lock then lets every thread pass it before any writes; under the lock, the
    first thread waits alone, and the others find the barrier broken and go straight on."""
    real = getattr(store, name)
    barrier = threading.Barrier(parties)

    def waiting(*args: Any) -> Any:
        answer = real(*args)
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=2)
        return answer

    monkeypatch.setattr(store, name, waiting)


def in_threads(*calls: Callable[[], object]) -> list[BaseException | None]:
    """Run *calls* at once, one thread each; what each raised (None when it returned)."""
    outcome: list[BaseException | None] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            calls[i]()
        except BaseException as exc:  # reported to the test
            outcome[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return outcome


# -- the last admin ----------------------------------------------------------------------------
def test_the_last_enabled_admin_is_not_disabled(settings: Settings, node: Node) -> None:
    run = cli(settings)
    entries = len(audit.page(node.db, None, 1000))
    code, _, err = run("account", "disable", "admin")
    assert code == 1
    assert "last enabled admin" in err and "--role admin" in err  # says what to do instead
    account = get_account(node.db, "admin")
    assert account is not None and not account.disabled
    assert len(audit.page(node.db, None, 1000)) == entries  # nothing recorded: nothing done

    assert run("account", "add", "amira", "--role", "admin", "--password", PASSWORD)[0] == 0
    code, _, err = run("account", "disable", "admin")  # another admin remains: fine
    assert code == 0, err
    code, _, err = run("account", "disable", "amira")
    assert code == 1 and "'amira' is the last enabled admin" in err
    assert run("account", "enable", "admin")[0] == 0
    assert run("account", "disable", "amira")[0] == 0


def test_an_admin_of_another_agency_does_not_count(settings: Settings, node: Node) -> None:
    """An admin account of a partner (stored before create_account refused them) acts as a
    reader: it administers nothing, so it does not stand in for the last real admin."""
    node.db.execute(
        "INSERT INTO accounts (username, password_hash, role, partner, created) "
        "VALUES ('odd', 'x', 'admin', 'TN', 0)"
    )
    with pytest.raises(store.LastAdmin):
        set_disabled(node.db, "admin", True)


def test_concurrent_disables_leave_an_admin(
    settings: Settings, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two admins disabling each other at the same moment: one wins, the other is refused."""
    create_account(node.db, "amira", PASSWORD, "admin", "EG")
    raced(monkeypatch, "enabled_admins")
    outcome = in_threads(
        lambda: set_disabled(node.db, "admin", True),
        lambda: set_disabled(node.db, "amira", True),
    )
    assert store.enabled_admins(node.db) in (["admin"], ["amira"])
    assert sorted(type(e).__name__ for e in outcome) == ["LastAdmin", "NoneType"]


# -- one name, created twice at once -----------------------------------------------------------
def test_cli_add_of_a_name_taken_meanwhile_is_refused_cleanly(
    settings: Settings, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name check passes (another `account add` has not committed yet, as this one saw it)
    and the insert then collides: the loser is told the name exists, with no traceback."""
    run = cli(settings)
    assert run("account", "add", "sami", "--role", "editor", "--password", PASSWORD)[0] == 0
    monkeypatch.setattr(store, "same_name", lambda db, username: None)
    code, out, err = run("account", "add", "sami", "--role", "reader", "--password", PASSWORD)
    assert code == 1, out
    assert "account 'sami' already exists" in err and "Traceback" not in err
    assert [a.role for a in store.list_accounts(node.db) if a.username == "sami"] == ["editor"]


@pytest.mark.parametrize("names", [("sami", "sami"), ("Sami", "\uff53\uff41\uff4d\uff49")])
def test_concurrent_creations_of_one_name_make_one_account(
    node: Node, monkeypatch: pytest.MonkeyPatch, names: tuple[str, str]
) -> None:
    """Two creations racing (outside any transaction of the caller's, as the demo makes them):
    one account is made, the other creation fails with "already exists", whether the names
    are equal or only read the same (fullwidth ｓａｍｉ is Sami under NFKC + casefold)."""
    raced(monkeypatch, "same_name")
    outcome = in_threads(
        *(lambda n=n: create_account(node.db, n, PASSWORD, "reader", "EG") for n in names)
    )
    made = [
        a.username for a in store.list_accounts(node.db) if store.name_key(a.username) == "sami"
    ]
    assert len(made) == 1
    errors = [e for e in outcome if e is not None]
    assert len(errors) == 1 and isinstance(errors[0], AccountError), outcome
    assert "already exists" in str(errors[0])


# -- reserved names ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sync-DZ", "sync-dz", "SYNC-Dz", "\uff53\uff59\uff4e\uff43-DZ"])
def test_sync_account_names_are_left_to_enrolment(
    settings: Settings, node: Node, name: str
) -> None:
    run = cli(settings)
    for role in ("sync", "reader"):
        code, _, err = run("account", "add", name, "--role", role, "--partner", "DZ")
        assert code == 1 and "made by partner enrolment" in err, err
    assert [a.username for a in store.list_accounts(node.db)] == ["admin"]
    code, _, err = run("partner", "invite", "DZ")  # which makes it, and still can
    assert code == 0, err
    assert get_account(node.db, "sync-dz") is not None


@pytest.mark.parametrize(
    "name", ["cli", "CLI", "\uff43\uff4c\uff49", "system", "demo", "anonymous"]
)
def test_audit_actor_names_are_no_accounts(settings: Settings, name: str) -> None:
    """`cli` (and the others) stand in the audit log for who acted when no account did: an
    account of that name would read there as the command line."""
    code, _, err = cli(settings)("account", "add", name, "--role", "admin", "--password", PASSWORD)
    assert code == 1 and "kept for the audit log" in err, err


def test_names_only_near_a_reserved_one_are_free(node: Node) -> None:
    for name in ("sync-d", "sync-dz1", "sync_dz", "syncdz", "clio", "demo-team"):
        create_account(node.db, name, PASSWORD, "reader", "EG")


# -- another role --------------------------------------------------------------------------
def _entries(node: Node, username: str) -> list[dict[str, Any]]:
    return [
        e["detail"]
        for e in audit.page(node.db, None, 1000)
        if e["action"] == "account_changed" and e["target"] == username
    ]


def test_account_role_changes_the_role_ends_sessions_and_is_audited(
    settings: Settings, node: Node
) -> None:
    from test_auth import bundle, login, web
    from test_store import indicator

    run = cli(settings)
    create_account(node.db, "sami", PASSWORD, "editor", "EG")
    token = store.create_token(node.db, "sami", "ci")
    with web(node) as c:
        assert login(c, "sami", PASSWORD).status_code == 200
        code, out, err = run("account", "role", "sami", "Reader")  # any case, as `add --role`
        assert code == 0, err
        assert "role editor -> reader" in out and "sessions are ended" in out
        assert c.get("/api/session").status_code == 401
        bearer = {"Authorization": f"Bearer {token}"}  # its api token stays, as a reader's
        assert c.get("/api/session", headers=bearer).json()["role"] == "reader"
        r = c.post("/api/bundles", json=bundle(indicator(1)), headers=bearer)
        assert r.status_code == 403, r.text
    account = get_account(node.db, "sami")
    assert account is not None and account.role == "reader"
    listed = run("account", "list")[1].splitlines()
    assert [line.split()[:2] for line in listed if line.startswith("sami")] == [["sami", "reader"]]
    assert _entries(node, "sami") == [
        {"op": "role", "from": "editor", "to": "reader", "revoked": []}
    ]

    code, out, _ = run("account", "role", "sami", "reader")  # already: nothing done, no entry
    assert code == 0 and "is a reader already" in out
    assert len(_entries(node, "sami")) == 1
    code, _, err = run("account", "role", "sami", "boss")
    assert code == 2 and "'admin', 'editor', 'reader'" in err
    code, _, err = run("account", "role", "nobody", "reader")
    assert code == 1 and "no account 'nobody'" in err


def test_a_name_in_another_case_is_told_the_account_it_may_mean(
    settings: Settings, node: Node
) -> None:
    """Account names are exact (`BOB` is not `bob`): a command given one that differs only in
    case names the account, changes nothing and exits 1, not a bare 'no account'."""
    run = cli(settings)
    create_account(node.db, "sami", PASSWORD, "editor", "EG")
    for command in (
        ("account", "role", "SAMI", "reader"),
        ("account", "disable", "Sami"),
        ("account", "enable", "SAMI"),
        ("account", "password", "SAMI", "--password", "another-password-2"),
        ("token", "create", "SAMI"),
        ("token", "list", "SAMI"),
    ):
        code, _, err = run(*command)
        assert code == 1 and "names are exact; did you mean 'sami'?" in err, (command, err)
    account = get_account(node.db, "sami")
    assert account == store.Account("sami", "editor", "EG", False)
    assert store.list_tokens(node.db, "sami") == [] and _entries(node, "sami") == []
    code, _, err = run("token", "create", "nobody")
    assert code == 1 and "no account 'nobody'; see `tansiq account list`" in err, err


def test_a_former_admin_keeps_no_admin_scoped_token(settings: Settings, node: Node) -> None:
    run = cli(settings)
    create_account(node.db, "amira", PASSWORD, "admin", "EG")
    admin_token = store.create_token(node.db, "amira", "ops", "api admin")
    api_token = store.create_token(node.db, "amira", "reads")
    code, out, err = run("account", "role", "amira", "editor")
    assert code == 0, err
    assert f"revoked token {store.token_id(admin_token)}" in out
    assert store.token_grant(node.db, admin_token) is None
    grant = store.token_grant(node.db, api_token)
    assert grant is not None and grant[0] == {"api"}
    detail = _entries(node, "amira")[-1]
    assert detail["revoked"] == [store.token_id(admin_token)]


def test_the_last_enabled_admin_keeps_admin(settings: Settings, node: Node) -> None:
    run = cli(settings)
    entries = len(audit.page(node.db, None, 1000))
    for role in ("editor", "reader"):
        code, _, err = run("account", "role", "admin", role)
        assert code == 1 and "last enabled admin" in err, err
        assert "`tansiq account role NAME admin`" in err  # says how to make another
    account = get_account(node.db, "admin")
    assert account is not None and account.role == "admin"
    assert len(audit.page(node.db, None, 1000)) == entries  # nothing recorded: nothing done

    create_account(node.db, "amira", PASSWORD, "admin", "EG")
    set_disabled(node.db, "amira", True)  # a disabled admin does not count
    assert run("account", "role", "admin", "editor")[0] == 1
    assert run("account", "role", "amira", "reader")[0] == 0  # (a disabled one may change)
    assert run("account", "role", "amira", "admin")[0] == 0
    set_disabled(node.db, "amira", False)
    assert run("account", "role", "admin", "editor")[0] == 0


def test_concurrent_demotions_leave_an_admin(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    create_account(node.db, "amira", PASSWORD, "admin", "EG")
    raced(monkeypatch, "enabled_admins")
    outcome = in_threads(
        lambda: store.set_role(node.db, "admin", "editor"),
        lambda: store.set_role(node.db, "amira", "reader"),
    )
    assert store.enabled_admins(node.db) in (["admin"], ["amira"])
    assert sorted(type(e).__name__ for e in outcome) == ["LastAdmin", "NoneType"]


def test_sync_accounts_and_other_agencies_keep_their_constraints(
    settings: Settings, node: Node
) -> None:
    """A partner's sync account stays one (its node reads with it), no person's account
    becomes one, and another agency's account does not become staff (admin, editor)."""
    run = cli(settings)
    assert run("partner", "invite", "DZ")[0] == 0  # makes sync-dz
    create_account(node.db, "dz-liaison", PASSWORD, "reader", "DZ")
    for role in ("reader", "admin"):
        code, _, err = run("account", "role", "sync-dz", role)
        assert code == 1 and "it stays one" in err, err
    code, _, err = run("account", "role", "dz-liaison", "sync")
    assert code == 2  # not a choice at the command line; refused below it too
    with pytest.raises(AccountError, match="does not become a sync account"):
        store.set_role(node.db, "dz-liaison", "sync")
    for role in ("admin", "editor"):
        code, _, err = run("account", "role", "dz-liaison", role)
        assert code == 1 and "belongs to this node's agency (EG)" in err, err
    roles = {a.username: a.role for a in store.list_accounts(node.db)}
    assert roles == {"admin": "admin", "dz-liaison": "reader", "sync-dz": "sync"}


# -- what an admin is told -----------------------------------------------------------------
def test_disabling_a_disabled_account_changes_and_records_nothing(
    settings: Settings, node: Node
) -> None:
    run = cli(settings)
    create_account(node.db, "bob", PASSWORD, "reader", "EG")
    assert run("account", "disable", "bob")[0] == 0
    code, out, err = run("account", "disable", "bob")
    assert code == 0, err
    assert out.strip() == "account 'bob' is disabled already; nothing changed"
    assert run("account", "enable", "bob")[0] == 0
    code, out, _ = run("account", "enable", "bob")
    assert code == 0 and out.strip() == "account 'bob' is not disabled; nothing changed"
    assert [d["op"] for d in _entries(node, "bob")] == ["disabled", "enabled"]


@pytest.mark.parametrize(
    ("password", "says"),
    [
        ("short", "at least 10 characters (this one has 5)"),
        (" " * 12, "not only spaces"),
        ("pass-word-1\r", "no control characters"),  # (a file's CRLF, read by $(cat …))
        ("tab\there-1234", "no control characters"),
        ("Samira.Haddad", "not the account's name"),
    ],
)
def test_passwords_a_login_form_could_not_take_or_anyone_could_guess_are_refused(
    settings: Settings, node: Node, tmp_path: Any, password: str, says: str
) -> None:
    """A browser's password field drops line breaks and moves on at a tab: a password holding
    one could never be typed at /login.  Each rule holds for every way a password is set."""
    run = cli(settings)
    code, _, err = run(
        "account", "add", "samira.haddad", "--role", "reader", "--password", password
    )
    assert code == 1 and f"password: {says}" in err, err
    assert get_account(node.db, "samira.haddad") is None
    create_account(node.db, "samira.haddad", PASSWORD, "reader", "EG")
    code, _, err = run("account", "password", "samira.haddad", "--password", password)
    assert code == 1 and f"password: {says}" in err, err
    assert store.verify_login(node.db, "samira.haddad", PASSWORD) is not None
    if password != "Samira.Haddad":
        with pytest.raises(AccountError, match=f"password: {re.escape(says)}"):
            init_node(make_settings(tmp_path / "other"), "EG", "Egypt", password)


def test_a_sync_account_is_not_of_this_nodes_agency(settings: Settings, node: Node) -> None:
    """A sync account reads as a partner's node: one of this node's own agency (`--partner`
    left out, say) would read, with the 'sync' scope, every object the agency keeps to
    itself.  (One of a partner not registered yet is fine: an invitation comes first.)"""
    run = cli(settings)
    code, _, err = run("account", "add", "peer", "--role", "sync", "--password", PASSWORD)
    assert code == 1 and "a sync account is a partner node's" in err and "--partner" in err, err
    for partner in ("EG", "eg"):
        code, _, err = run("account", "add", "peer", "--role", "sync", "--partner", partner)
        assert code == 1 and "not this node's agency's (EG)" in err, err
    with pytest.raises(AccountError, match="a sync account is a partner node's"):
        create_account(node.db, "peer", PASSWORD, "sync", "EG")
    assert [a.username for a in store.list_accounts(node.db)] == ["admin"]
    code, out, err = run("account", "add", "peer", "--role", "sync", "--partner", "zz")
    assert code == 0 and "role sync, partner ZZ" in out, err
